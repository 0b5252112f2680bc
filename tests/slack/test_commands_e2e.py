"""/tighten over real signed HTTP requests and over Socket Mode; answers arrive at the (fake) response_url."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlencode

import yaml

from bot.slack.signing import signed_request
from bot.store.changes import APPLIED, APPLYING, ChangeStore
from tests.slack.conftest import ACCOUNT, ALICE, CHANNEL, MALLORY, ROLE_ARN, SECRET, Harness


def _text(answer: dict) -> str:
    assert answer.get("response_type") == "ephemeral"
    return answer["text"]


def _command_body(text: str) -> str:
    return urlencode({"team_id": "T0TIGHTEN1", "channel_id": CHANNEL, "user_id": ALICE, "command": "/tighten",
                      "text": text, "response_url": "http://127.0.0.1:9/never"})


def test_unsigned_wrongly_signed_and_replayed_requests_are_rejected(http_harness: Harness) -> None:
    http_harness.add_role()
    body = _command_body("scan reporting")
    assert http_harness.post(body, {"Content-Type": "application/x-www-form-urlencoded"})[0] == 401
    wrong = signed_request(body, "not-the-secret")
    assert http_harness.post(body, wrong)[0] == 401
    replayed = signed_request(body, SECRET, timestamp=int(time.time()) - 6 * 60)
    assert http_harness.post(body, replayed)[0] == 401
    tampered = signed_request(body, SECRET)
    assert http_harness.post(body.replace("reporting", "admin"), tampered)[0] == 401
    assert http_harness.ctx.queue.pending() == []


def test_scan_queues_once_and_answers_with_position(harness: Harness) -> None:
    harness.add_role()
    harness.add_role("billing")
    first = _text(harness.command("scan billing"))
    assert "queued (position 1 in the queue)" in first
    second = _text(harness.command(f"scan {ROLE_ARN}"))
    assert "position 2" in second
    again = _text(harness.command("scan REPORTING"))  # IAM names are case-insensitive
    assert "already queued" in again
    items = harness.ctx.queue.pending("scan")
    assert [i.payload["principal_arn"] for i in items] == [f"arn:aws:iam::{ACCOUNT}:role/billing", ROLE_ARN]
    assert items[0].payload["requested_by"] == ALICE and items[0].requested_by == ALICE


def test_bad_input_gets_the_problem_and_usage_and_changes_nothing(harness: Harness) -> None:
    harness.add_role()
    harness.add_role("legacy", in_scope=False, excluded_reason="protected")
    cases = {
        "frobnicate": "Unknown subcommand `frobnicate`",
        "scan": "Missing role name or ARN",
        "scan nosuchrole": "Unknown role `nosuchrole`",
        "scan a b": "Too many arguments",
        "scan legacy": "out of scope (`protected`)",
        "allow reporting s3:NoSuchAction": "Unknown IAM action `s3:NoSuchAction`",
        "allow reporting": "Missing action",
        "allow ghost s3:GetObject": "Unknown role `ghost`",
        "allow reporting s3:GetObject not-an-arn": "must be '*' or an ARN",
        "rollback": "Missing change id",
        "rollback c-doesnotexist": "Unknown change `c-doesnotexist`",
        "queue now": "Too many arguments",
    }
    for text, problem in cases.items():
        answer = _text(harness.command(text))
        assert problem in answer, (text, answer)
    assert "Usage: `/tighten scan &lt;role name or ARN&gt;`" in _text(harness.command("scan"))
    assert harness.ctx.queue.pending() == []
    assert not Path(harness.ctx.allowlist_path).exists()
    assert harness.ctx.counters["slack.bad_command"] == len(cases) + 1


def test_help_status_and_queue(harness: Harness) -> None:
    harness.add_role()
    assert "/tighten scan &lt;role name or ARN&gt;" in _text(harness.command("help"))
    assert "/tighten rollback" in _text(harness.command(""))
    p = harness.add_proposal()
    overview = _text(harness.command("status"))
    assert "Proposals waiting for review:* 1" in overview and p.id in overview
    harness.command("scan reporting")
    role_status = _text(harness.command("status reporting"))
    assert f"Latest proposal `{p.id}`: *pending*" in role_status and "queued (position 1)" in role_status
    queue = _text(harness.command("queue"))
    assert "`scan` `arn:aws:iam::111122223333:role/reporting` — pending" in queue


def test_allow_and_allowlist(harness: Harness) -> None:
    harness.add_role()
    refused = _text(harness.command("allow reporting s3:GetObject", user=MALLORY))
    assert "not an approver" in refused
    assert not Path(harness.ctx.allowlist_path).exists()
    ok = _text(harness.command("allow reporting S3:getobject arn:aws:s3:::reports/*"))
    assert "Allowlisted `s3:GetObject` on `arn:aws:s3:::reports/*`" in ok
    saved = yaml.safe_load(Path(harness.ctx.allowlist_path).read_text())
    assert saved["entries"] == [{"action": "s3:GetObject", "resource": "arn:aws:s3:::reports/*",
                                 "principal": ROLE_ARN, "reason": f"added by {ALICE} with /tighten allow"}]
    listed = _text(harness.command("allowlist reporting"))
    assert "`s3:GetObject` on `arn:aws:s3:::reports/*`" in listed
    assert "Nothing is allowlisted" in _text(harness.command(f"allowlist {harness.add_role('other').name}"))


def _change(harness: Harness, state: str = APPLIED) -> str:
    store = ChangeStore(harness.ctx.db)
    change = store.create(account=ACCOUNT, role_name="reporting", role_arn=ROLE_ARN,
                          before_image={"attached": [], "inline": {}}, before_policy_hash="h0", state=APPLYING,
                          steps=[], documents=[], policy_names=["tighten-reporting"], expected_policy_hash="h0",
                          proposal_id=None, requested_by=ALICE)
    if state == APPLIED:
        assert store.transition(change.id, APPLIED)
    return change.id


def test_rollback_command(harness: Harness) -> None:
    in_flight = _change(harness, APPLYING)
    assert "still being applied" in _text(harness.command(f"rollback {in_flight}"))
    ChangeStore(harness.ctx.db).transition(in_flight, APPLIED)
    assert "not an approver" in _text(harness.command(f"rollback {in_flight}", user=MALLORY))
    assert harness.ctx.queue.pending() == []
    assert "queued" in _text(harness.command(f"rollback {in_flight}"))
    assert "already queued" in _text(harness.command(f"rollback {in_flight}"))
    (item,) = harness.ctx.queue.pending("rollback")
    assert item.payload == {"change_id": in_flight, "requested_by": ALICE}
