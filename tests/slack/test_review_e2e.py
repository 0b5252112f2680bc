"""Review messages, Approve/Reject/View policy, apply results, denial alerts, App Home — end to end."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import yaml

from bot.slack.ids import REASON_INPUT, ActionId, BlockId, CallbackId
from bot.slack.notify import Notifier
from bot.store.changes import APPLIED, APPLYING, ChangeStore
from bot.store.proposals import APPROVED, PENDING, REJECTED
from tests.slack.conftest import (
    ACCOUNT,
    ALICE,
    BOB,
    CHANNEL,
    MALLORY,
    POLICY,
    ROLE_ARN,
    Harness,
    action_ids,
    wait_until,
)


def _notifier(h: Harness) -> Notifier:
    from bot.slack.app import make_client

    return Notifier(make_client("xoxb-test", base_url=h.fake.base_url, wait_scale=0.0, backoff=0.001), h.ctx)


def _posted(h: Harness) -> tuple[str, str]:
    p = h.add_proposal(requested_by=MALLORY)
    assert _notifier(h).post_proposal(p.id)
    stored = h.ctx.proposals.get(p.id)
    assert stored.channel == CHANNEL and stored.message_ts
    return p.id, stored.message_ts


def _message(h: Harness, ts: str) -> dict[str, Any]:
    return h.fake.messages[(CHANNEL, ts)]


def test_review_message_and_thread_uploads(http_harness: Harness) -> None:
    pid, ts = _posted(http_harness)
    msg = _message(http_harness, ts)
    assert msg["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": "Tighten: reporting",
                                                           "emoji": True}}
    text = json.dumps(msg["blocks"], ensure_ascii=False)
    for part in ("removes 11,873 actions", "AdministratorAccess attached", "S3 data events are not logged",
                 "```\\n- iam:*", "*Actions*\\n11,875 \u2192 2"):
        assert part in text
    # who may approve (config: a user and a user group), and who may not (the requester)
    first = msg["blocks"][1]["text"]["text"]
    assert f"*Who may approve:* <@{ALICE}>, <!subteam^S0APPROVE1>" in first
    assert f"*May not:* <@{MALLORY}> (requested this scan)" in first
    assert action_ids(msg) == [ActionId.APPROVE, ActionId.REJECT, ActionId.VIEW_POLICY]
    complete = http_harness.fake.calls_to("files.completeUploadExternal")[0].params
    assert complete["thread_ts"] == ts and complete["channel_id"] == CHANNEL
    contents = sorted(http_harness.fake.uploads.values(), key=len)
    assert json.loads(contents[-1]) == POLICY or json.loads(contents[0]) == POLICY
    # posting again refreshes the same message instead of posting twice
    assert _notifier(http_harness).post_proposal(pid)
    assert len(http_harness.fake.posted(CHANNEL)) == 1


def test_approve_by_approver_updates_message_and_queues_one_apply(harness: Harness) -> None:
    pid, ts = _posted(harness)
    assert harness.click(ActionId.APPROVE, pid, user=ALICE, ts=ts) == 200
    wait_until(lambda: not action_ids(_message(harness, ts)))
    p = harness.ctx.proposals.get(pid)
    assert p.state == APPROVED and p.decided_by == ALICE and p.decided_at
    (item,) = harness.ctx.queue.pending("apply")
    assert item.payload == {"proposal_id": pid, "approved_by": ALICE}
    assert f"*Approved* by <@{ALICE}>" in json.dumps(_message(harness, ts)["blocks"])
    assert any(e["action"] == "proposal.approve" for e in harness.ctx.audit.entries(pid))


def test_group_member_can_approve(harness: Harness) -> None:
    pid, ts = _posted(harness)
    harness.click(ActionId.APPROVE, pid, user=BOB, ts=ts)
    wait_until(lambda: harness.ctx.proposals.get(pid).state == APPROVED)
    assert harness.fake.calls_to("usergroups.users.list")


def test_unauthorized_and_self_approval_change_nothing(harness: Harness) -> None:
    pid, ts = _posted(harness)  # requested by MALLORY
    harness.click(ActionId.APPROVE, pid, user="U0STRANGER", ts=ts)
    (refusal,) = harness.fake.wait_for("chat.postEphemeral")
    assert refusal.params["user"] == "U0STRANGER" and "not an approver" in refusal.params["text"]
    harness.ctx.config = harness.ctx.config  # (config unchanged: MALLORY is not an approver either)
    harness.click(ActionId.APPROVE, pid, user=MALLORY, ts=ts)
    harness.fake.wait_for("chat.postEphemeral", 2)
    assert harness.ctx.proposals.get(pid).state == PENDING
    assert harness.ctx.queue.pending() == []
    assert action_ids(_message(harness, ts))  # buttons still there
    assert not harness.fake.calls_to("chat.update")
    assert harness.ctx.counters["slack.unauthorized"] == 2


def test_requester_cannot_approve_own_proposal(harness: Harness) -> None:
    p = harness.add_proposal(requested_by=ALICE)
    assert _notifier(harness).post_proposal(p.id)
    harness.click(ActionId.APPROVE, p.id, user=ALICE, ts=harness.ctx.proposals.get(p.id).message_ts)
    (refusal,) = harness.fake.wait_for("chat.postEphemeral")
    assert "you requested this scan" in refusal.params["text"]
    assert harness.ctx.proposals.get(p.id).state == PENDING


def test_self_approval_when_config_allows(self_approving_harness: Harness) -> None:
    h = self_approving_harness
    p = h.add_proposal(requested_by=ALICE)
    h.click(ActionId.APPROVE, p.id, user=ALICE, channel=None)
    wait_until(lambda: h.ctx.proposals.get(p.id).state == APPROVED)


def test_fifty_concurrent_approve_clicks_make_one_approval_and_one_apply(harness: Harness) -> None:
    pid, ts = _posted(harness)
    statuses: list[int] = []
    lock = threading.Lock()

    def click(i: int) -> None:
        status = harness.click(ActionId.APPROVE, pid, user=ALICE if i % 2 else BOB, ts=ts)
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=click, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 50
    # every click is answered: one update, 49 "already approved" notes
    harness.fake.wait_for("chat.postEphemeral", 49, timeout=20)
    assert harness.ctx.proposals.get(pid).state == APPROVED
    assert len(harness.ctx.queue.items(kind="apply")) == 1
    assert [e["action"] for e in harness.ctx.audit.entries(pid)].count("proposal.approve") == 1


def test_reject_opens_modal_then_submission_rejects_with_reason(harness: Harness) -> None:
    pid, ts = _posted(harness)
    harness.click(ActionId.REJECT, pid, user="U0STRANGER", ts=ts)
    harness.fake.wait_for("chat.postEphemeral")
    assert not harness.fake.calls_to("views.open")
    harness.click(ActionId.REJECT, pid, user=BOB, ts=ts)
    (opened,) = harness.fake.wait_for("views.open")
    view = opened.params["view"]
    assert view["callback_id"] == CallbackId.REJECT_MODAL
    status, body = harness.submit_view(CallbackId.REJECT_MODAL, view["private_metadata"],
                                       {BlockId.REJECT_REASON: {REASON_INPUT: {"type": "plain_text_input",
                                                                               "value": " "}}}, user=BOB)
    assert status == 200 and json.loads(body)["response_action"] == "errors"
    assert harness.ctx.proposals.get(pid).state == PENDING
    status, _ = harness.submit_view(CallbackId.REJECT_MODAL, view["private_metadata"],
                                    {BlockId.REJECT_REASON: {REASON_INPUT: {"type": "plain_text_input",
                                                                            "value": "monthly batch <job>"}}},
                                    user=BOB)
    assert status == 200
    wait_until(lambda: not action_ids(_message(harness, ts)))
    p = harness.ctx.proposals.get(pid)
    assert (p.state, p.decided_by, p.decision_reason) == (REJECTED, BOB, "monthly batch <job>")
    assert ": `monthly batch &lt;job&gt;`" in json.dumps(_message(harness, ts)["blocks"])
    assert harness.ctx.queue.pending() == []


def test_view_policy_opens_modal_with_the_documents(harness: Harness) -> None:
    pid, ts = _posted(harness)
    harness.click(ActionId.VIEW_POLICY, pid, user=MALLORY, ts=ts)
    (opened,) = harness.fake.wait_for("views.open")
    assert "arn:aws:s3:::reports/*" in json.dumps(opened.params["view"]["blocks"])


def test_rate_limits_and_server_errors_are_retried(http_harness: Harness) -> None:
    http_harness.fake.fail_next("chat.postMessage", 2, status=429, retry_after=1)
    http_harness.fake.fail_next("files.getUploadURLExternal", 1, status=502)
    pid, _ = _posted(http_harness)
    statuses = [c.status for c in http_harness.fake.calls_to("chat.postMessage")]
    assert statuses == [429, 429, 200]
    assert http_harness.fake.uploads  # upload went through after the 502
    assert http_harness.ctx.proposals.get(pid).state == PENDING


def test_unpostable_proposal_stays_pending_and_posts_later(http_harness: Harness) -> None:
    p = http_harness.add_proposal()
    http_harness.fake.fail_next("chat.postMessage", 100, status=500)
    notifier = _notifier(http_harness)
    assert notifier.post_proposal(p.id) is False
    stored = http_harness.ctx.proposals.get(p.id)
    assert stored.state == PENDING and stored.message_ts is None
    assert len(http_harness.fake.calls_to("chat.postMessage")) == 4  # first try + 3 retries
    http_harness.fake.fail_next("chat.postMessage", 0)
    assert notifier.post_proposal(p.id) is True


def _applied_change(h: Harness, pid: str) -> str:
    store = ChangeStore(h.ctx.db)
    change = store.create(account=ACCOUNT, role_name="reporting", role_arn=ROLE_ARN, before_image={"x": 1},
                          before_policy_hash="h", state=APPLYING, steps=[], documents=[POLICY],
                          policy_names=["tighten-reporting"], expected_policy_hash="h", proposal_id=pid,
                          requested_by=ALICE)
    store.transition(change.id, APPLIED)
    return change.id


def test_apply_result_with_rollback_button(harness: Harness) -> None:
    pid, ts = _posted(harness)
    change_id = _applied_change(harness, pid)
    assert _notifier(harness).post_apply_result(pid, change_id, True, "1 policy attached, 2 detached")
    thread = [m for m in harness.fake.posted(CHANNEL) if m.get("thread_ts") == ts and m.get("blocks")]
    result = thread[-1]
    assert action_ids(result) == [ActionId.ROLLBACK]
    harness.click(ActionId.ROLLBACK, change_id, user=MALLORY, ts=result.get("ts"))
    harness.fake.wait_for("chat.postEphemeral")
    assert harness.ctx.queue.pending() == []
    harness.click(ActionId.ROLLBACK, change_id, user=BOB, ts=ts)
    harness.fake.wait_for("chat.postEphemeral", 2)
    (item,) = harness.ctx.queue.pending("rollback")
    assert item.payload == {"change_id": change_id, "requested_by": BOB}
    assert _notifier(harness).post_rollback_result(None, change_id, True, "restored", requested_by=BOB)


def test_denial_alert_allow_button_allowlists_the_stored_denial_and_asks_for_a_restore(harness: Harness) -> None:
    pid, ts = _posted(harness)
    change_id = _applied_change(harness, pid)
    long_key = "arn:aws:s3:::reports/" + "\U0001F600" * 256  # a 1,024-byte S3 key of emoji: 512 UTF-16 units
    denials = [("s3:PutObject", "arn:aws:s3:::reports/out.csv", "AccessDenied", "2026-11-23T10:00:00Z"),
               ("s3:PutObject", long_key, "AccessDenied", "2026-11-23T10:01:00Z"),
               ("s3:GetObject", "arn:aws:s3:::reports/<!channel>", "AccessDenied", "2026-11-23T10:01:30Z"),
               ("s3:GetObject", "?", "AccessDenied", "2026-11-23T10:01:40Z"),  # resource not recorded
               ("s3:GetObject", "arn:aws:s3:::reports/a*b", "AccessDenied", "2026-11-23T10:01:50Z"),  # a wildcard
               ("kms:Decrypt", "arn:aws:kms:us-east-1:111122223333:key/abc", "AccessDenied", "2026-11-23T10:02:00Z")]
    assert _notifier(harness).post_denial_alert(pid, change_id, denials)
    alert = [m for m in harness.fake.posted(CHANNEL) if m.get("thread_ts") == ts][-1]
    lines = [b for b in alert["blocks"] if b["type"] == "section" and "accessory" in b]
    buttons = [b["accessory"] for b in lines]
    # one Allow button per denial an allowlist entry can hold exactly: not for "?" nor for a key holding "*"
    assert [b["text"]["text"] for b in buttons] == ["Allow s3:PutObject"] * 2 + ["Allow s3:GetObject",
                                                                             "Allow kms:Decrypt"]
    # every value is the id of a stored offer, whatever the length of the resource
    offers = [harness.ctx.allowances.get(b["value"]) for b in buttons]
    assert all(len(b["value"]) < 20 for b in buttons)
    assert [o.resource for o in offers] == [denials[0][1], long_key, denials[2][1], denials[5][1]]
    assert "<!channel>" not in json.dumps(alert)
    harness.click(buttons[1]["action_id"], buttons[1]["value"], user=MALLORY, ts=ts)  # not an approver
    harness.fake.wait_for("chat.postEphemeral")
    assert not Path(harness.ctx.allowlist_path).exists() and not harness.ctx.queue.pending("scan")
    harness.click(buttons[1]["action_id"], buttons[1]["value"], user=ALICE, ts=ts)
    wait_until(lambda: harness.ctx.queue.pending("scan"))
    saved = yaml.safe_load(Path(harness.ctx.allowlist_path).read_text())
    assert [(e["action"], e["resource"]) for e in saved["entries"]] == [("s3:PutObject", long_key)]
    (scan,) = harness.ctx.queue.pending("scan")
    assert scan.payload == {"account": ACCOUNT, "principal_arn": ROLE_ARN, "requested_by": ALICE,
                            "restore": change_id}
    assert harness.ctx.allowances.get(buttons[1]["value"]).used_by == ALICE
    wait_until(lambda: [m for m in harness.fake.posted(CHANNEL) if m.get("thread_ts") == ts][-1] is not alert)
    said = [m for m in harness.fake.posted(CHANNEL) if m.get("thread_ts") == ts][-1]
    assert "restores it" in said["text"] and change_id in said["text"]
    # a click whose value refers to no stored offer changes nothing
    harness.click(buttons[0]["action_id"], "a-00000000", user=ALICE, ts=ts)
    wait_until(lambda: len(harness.fake.calls_to("chat.postEphemeral")) == 2)
    assert "refers to nothing" in harness.fake.calls_to("chat.postEphemeral")[-1].params["text"]
    assert len(yaml.safe_load(Path(harness.ctx.allowlist_path).read_text())["entries"]) == 1


def test_app_home_lists_pending_changes_and_queue(harness: Harness) -> None:
    pid, _ = _posted(harness)
    _applied_change(harness, pid)
    harness.add_role()
    harness.command("scan reporting")
    assert harness.event({"type": "app_home_opened", "user": ALICE, "tab": "home", "channel": "D0ALICE"}) == 200
    (published,) = harness.fake.wait_for("views.publish")
    assert published.params["user_id"] == ALICE
    text = json.dumps(published.params["view"])
    assert pid in text and "tighten-reporting" not in text  # policy names are not listed, change ids are
    assert ActionId.ROLLBACK in text and "`scan` `arn:aws:iam::111122223333:role/reporting`" in text
    # a non-approver sees nothing waiting for them
    harness.event({"type": "app_home_opened", "user": MALLORY, "tab": "home", "channel": "D0MAL"})
    published = harness.fake.wait_for("views.publish", 2)[-1]
    assert "Nothing waits for your approval" in json.dumps(published.params["view"])


def test_expired_trigger_tells_the_user_instead_of_failing_silently(harness: Harness) -> None:
    pid, ts = _posted(harness)
    harness.deliver(harness.action_body(ActionId.VIEW_POLICY, pid, user=ALICE, ts=ts).replace(
        "trigger_id", "no_trigger"))
    (note,) = harness.fake.wait_for("chat.postEphemeral")
    assert "Could not open the form (invalid_trigger_id)" in note.params["text"]
