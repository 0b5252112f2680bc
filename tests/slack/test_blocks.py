"""Message builders and templates against Slack's Block Kit limits."""

from __future__ import annotations

import json
import re

import pytest

from bot.slack import blocks as b
from bot.slack import limits
from bot.slack.review import review_message
from bot.store.proposals import APPROVED, PENDING, REJECTED, Proposal

BIG_DOC = {"Version": "2012-10-17", "Statement": [
    {"Sid": f"S{i}", "Effect": "Allow", "Action": [f"service{i}:Action{j}" for j in range(40)],
     "Resource": [f"arn:aws:s3:::bucket-{i}-{j}/*" for j in range(20)]} for i in range(60)]}


def proposal(state: str = PENDING, **kw: object) -> Proposal:
    fields: dict = dict(id="p-0123abcd", account="111122223333", principal_arn="arn:aws:iam::111122223333:role/r",
                        role_name="r", state=state, created_at="2026-11-23T12:00:00Z",
                        updated_at="2026-11-23T12:00:00Z", documents=[BIG_DOC, BIG_DOC],
                        summary="removes " + "many actions; " * 400,
                        diff_text="\n".join(f"- service{i}:Action{j}" for i in range(300) for j in range(40)),
                        risk_reasons=[f"reason {i} " + "x" * 100 for i in range(80)],
                        warnings=[{"code": f"w{i}", "message": "window too short " * 10} for i in range(80)],
                        stats={f"stat_{i}": i * 1000 for i in range(30)}, requested_by="U0ALICE001",
                        decided_by="U0BOB00001", decided_at="2026-11-23T13:00:00Z",
                        decision_reason="because <script> & more " * 50)
    fields.update(kw)
    return Proposal(**fields)


@pytest.mark.parametrize("state", [PENDING, APPROVED, REJECTED, "applied", "failed", "rolled_back", "stale",
                                   "expired", "superseded"])
def test_review_message_within_limits_for_huge_proposals(state: str) -> None:
    msg = review_message(proposal(state))
    assert limits.check_blocks(msg.blocks) == []
    assert limits.units(msg.text) <= limits.MAX_NOTIFICATION_TEXT
    diff = next(x for x in msg.blocks if x.get("text", {}).get("text", "").startswith("```"))
    assert diff["text"]["text"].endswith(limits.TRUNCATED)
    has_buttons = any(x["type"] == "actions" for x in msg.blocks)
    assert has_buttons == (state == PENDING)


def test_review_message_escapes_user_text() -> None:
    msg = review_message(proposal(REJECTED, decision_reason="<!channel> & <@U1>"))
    text = json.dumps(msg.blocks)
    assert "`&lt;!channel&gt; &amp; &lt;@U1&gt;" in text and "<!channel>" not in text


def test_small_proposal_shows_whole_diff_without_marker() -> None:
    msg = review_message(proposal(diff_text="- iam:*\n+ s3:GetObject", summary="short", risk_reasons=[],
                                  warnings=[], stats={}))
    assert "```\n- iam:*\n+ s3:GetObject\n```" in json.dumps(msg.blocks).replace("\\n", "\n")
    assert limits.TRUNCATED not in json.dumps(msg.blocks)


def test_policy_modal_and_home_within_view_limits() -> None:
    modal = b.policy_modal(proposal(documents=[BIG_DOC] * 3))
    assert limits.check_blocks(modal["blocks"], limits.MAX_VIEW_BLOCKS) == []
    assert len(modal["blocks"]) <= 100 and len(modal["title"]["text"]) <= limits.MAX_MODAL_TITLE
    assert "full policy is in the review thread" in json.dumps(modal["blocks"][-1])
    home = b.home_view("U0ALICE001", [proposal() for _ in range(40)], [], [f"{i}. scan" for i in range(500)])
    assert limits.check_blocks(home["blocks"], limits.MAX_VIEW_BLOCKS) == []


def test_denial_alert_stays_within_limits_and_offers_buttons_only_with_a_stored_offer() -> None:
    denials = [b.Denial(f"s3:Action{i}", "arn:aws:s3:::b/" + "k" * 3000, "AccessDenied", "2026-11-23T10:00:00Z",
                        offer_id=f"a-{i:08x}" if i % 2 else None) for i in range(60)]
    msg = b.denial_alert_message(proposal(), "c-0000abcd", denials)
    assert limits.check_blocks(msg.blocks) == []
    offered = [x["accessory"] for x in msg.blocks if "accessory" in x]
    assert offered and all(el["value"].startswith("a-") for el in offered)
    assert len({el["action_id"] for el in offered}) == len(offered)
    assert msg.blocks[-1]["type"] == "actions"  # Roll back is kept whatever the number of denials
    with pytest.raises(b.ButtonValueError):
        b.button("Allow", "x", json.dumps({"a": "s3:GetObject", "r": "*"}))


def test_clip_helpers() -> None:
    assert limits.clip("abc", 5) == "abc"
    assert limits.clip("abcdefgh", 5) == "abc…"  # one unit kept to close a code span the cut may open
    code = limits.clip_code("line\n" * 2000, 300)
    assert len(code) <= 300 and code.endswith(limits.TRUNCATED) and code.count("```") == 2
    assert limits.clip_code("a ``` b") == "```\na ˋˋˋ b\n```"
    with pytest.raises(b.ButtonValueError):
        b.button("x", "id", "v" * 2001)
    many = [b.mrkdwn(str(i)) for i in range(80)] + [{"type": "actions", "elements": [b.button("ok", "a", "p-0123abcd")]}]
    fitted = limits.fit_blocks(many)
    assert len(fitted) == 50 and fitted[-1]["type"] == "actions" and "not shown" in json.dumps(fitted[-2])


def test_chunk_lines_never_exceeds_size() -> None:
    text = "\n".join("y" * n for n in (10, 5000, 3, 2999, 0, 7))
    chunks = b.chunk_lines(text, 1000)
    assert all(len(c) <= 1000 for c in chunks)
    assert "".join(chunks).replace("\n", "") == text.replace("\n", "")


def test_actors_are_mentioned_only_when_they_are_slack_users() -> None:
    from bot.slack.templating import who

    assert who("U0123ABCD") == "<@U0123ABCD>"
    assert who("scheduler") == "the scheduler"
    assert who("jdoe") == "`jdoe`"
    assert who("<!channel>") == "`&lt;!channel&gt;`"


def test_lengths_are_utf16_units_and_cuts_never_split_an_entity_a_pair_or_a_span() -> None:
    # an emoji outside the Basic Multilingual Plane is a surrogate pair in UTF-16: two units (how Slack counts)
    emoji = "\U0001F600"
    assert limits.units(emoji * 3000) == len((emoji * 3000).encode("utf-16-le")) // 2 == 6000
    assert limits.units("é" * 10) == 10
    clipped = limits.clip(emoji * 3000, limits.MAX_SECTION_TEXT)
    assert len(clipped.encode("utf-16-le")) // 2 <= limits.MAX_SECTION_TEXT
    clipped.encode("utf-8")  # no lone surrogate
    # every cut point across an escaped text: no partial entity is ever left
    text = "a &amp; b &lt;!channel&gt; " * 20
    for limit in range(1, len(text)):
        cut = limits.clip(text, limit)
        assert limits.units(cut) <= limit
        assert not re.search(r"&(?!amp;|lt;|gt;)", cut), (limit, cut)
    # a cut inside a code span closes it; inside a Slack control sequence drops it whole
    spans = limits.clip("`" + "x" * 50 + "` tail", 20)
    assert spans.count("`") % 2 == 0
    assert "<@U0" not in limits.clip("hello <@U0ALICE001> there", 12)
    # a family emoji (joined by zero-width joiners) is never cut in the middle of its sequence
    family = "\U0001F468\u200d\U0001F469\u200d\U0001F467"
    assert not limits.clip("x" + family * 5, 9).rstrip(limits.CUT).endswith("\u200d")
