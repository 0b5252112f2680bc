"""End to end on moto_server with real signed Slack requests: a proposal never grants more than the role has.

1. A role whose inline policy holds a Deny guard and a conditioned Allow is scanned, approved through a
   signed Slack request and applied by the worker; afterwards the evaluator, run on what IAM returns, finds the
   Deny and the Condition still in force, and ``check-no-new-access`` on before/after passes.
2. A widening proposal injected into the store by hand is refused right before apply, with the reason in
   Slack; the role is untouched.
3. A widening proposal produced at scan time is refused: nothing stored or posted, the reason in the scan
   record and in ``/tighten status``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.aws.inventory import get_role_snapshot
from bot.commands import check_no_new_access
from bot.demo.fake_slack import FakeSlackApi
from bot.jobs.worker import Worker
from bot.policy import generate as generate_module
from bot.policy.evaluate import Decision, Evaluator
from bot.policy.model import parse_policy
from bot.slack.app import build_app, make_client, start_http
from bot.slack.context import AppContext
from bot.slack.ids import ActionId
from bot.store import proposals as ps
from bot.store import scans as sc
from bot.store.roles import KnownRole
from tests.jobs.conftest import ACCOUNT, APPROVER, CHANNEL, Env, attach_notifier
from tests.slack.conftest import SECRET, Harness, wait_until

REPORTS = "arn:aws:s3:::reports"
SECURE = {"Bool": {"aws:SecureTransport": "true"}}
GUARD = {"Sid": "RegionGuard", "Effect": "Deny", "Action": "*", "Resource": "*",
         "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["eu-west-1"]}}}
INLINE = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Reports", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"],
     "Resource": [REPORTS, f"{REPORTS}/*"], "Condition": SECURE},
    {"Sid": "Ops", "Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
    GUARD,
]}


@pytest.fixture()
def harness(env: Env, slack: FakeSlackApi) -> Iterator[Harness]:
    """The Bolt app over HTTP on the jobs' store, and the worker's notifier, both on the fake Slack API."""
    attach_notifier(env, slack)
    ctx = AppContext(db_path=env.ctx.db_path, config=env.ctx.config, clock=env.clock)
    app = build_app(ctx, signing_secret=SECRET,
                    client=make_client("xoxb-test", base_url=slack.base_url, wait_scale=0.0, backoff=0.001))
    server = start_http(app, SECRET)
    try:
        yield Harness(fake=slack, ctx=ctx, app=app, transport="http", server=server)
    finally:
        server.stop()


def _role(env: Env, name: str) -> str:
    arn = env.role(name, INLINE)
    env.ctx.roles.upsert(KnownRole(account=ACCOUNT, arn=arn, name=name))
    return arn


def _thread_text(slack: FakeSlackApi, ts: str) -> str:
    return json.dumps([m for m in slack.posted(CHANNEL) if m.get("thread_ts") == ts])


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tighten")
    check_no_new_access.add_parser(parser.add_subparsers())
    args = parser.parse_args(["check-no-new-access", *argv])
    return int(args.func(args))


def test_scan_approve_apply_keeps_the_deny_and_the_condition(env: Env, harness: Harness, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    arn = _role(env, "reporting")
    before = get_role_snapshot(env.iam, "reporting")
    env.use(arn, "s3:GetObject", f"{REPORTS}/2024/q1.csv")
    env.use(arn, "ec2:DescribeInstances", "*")
    env.ctx.queue.enqueue("scan", {"account": ACCOUNT, "principal_arn": arn, "requested_by": "scheduler"})
    Worker(env.ctx).run_until_idle()

    proposal = env.ctx.proposals.latest(arn)
    assert proposal is not None and proposal.state == ps.PENDING and proposal.message_ts
    assert proposal.checks["containment"]["result"] == "pass"
    review = json.dumps(harness.fake.messages[(CHANNEL, proposal.message_ts)]["blocks"], ensure_ascii=False)
    assert "*Containment:* grants nothing new — every proposed statement lies inside a current one" in review

    assert harness.click(ActionId.APPROVE, proposal.id, user=APPROVER, ts=proposal.message_ts) == 200
    wait_until(lambda: env.ctx.queue.pending("apply"))
    Worker(env.ctx).run_until_idle()
    applied = env.ctx.proposals.get(proposal.id)
    assert applied is not None and applied.state == ps.APPLIED, applied.decision_reason

    after = get_role_snapshot(env.iam, "reporting")
    assert after.inline == {} and after.attached  # the proposal replaced the inline policy
    identity = [parse_policy(doc, name) for name, doc in after.identity_documents()]
    evaluator = Evaluator(identity)
    obj = f"{REPORTS}/2024/q1.csv"
    ok = {"aws:SecureTransport": "true", "aws:RequestedRegion": "eu-west-1"}
    assert evaluator.evaluate("s3:GetObject", obj, ok) is Decision.ALLOWED
    # the Condition is in force
    assert evaluator.evaluate("s3:GetObject", obj, {**ok, "aws:SecureTransport": "false"}) is not Decision.ALLOWED
    # the Deny is in force, also for what the proposal keeps without a condition
    us = {"aws:SecureTransport": "true", "aws:RequestedRegion": "us-east-1"}
    assert evaluator.evaluate("s3:GetObject", obj, us) is Decision.EXPLICIT_DENY
    assert evaluator.evaluate("ec2:DescribeInstances", "*", {"aws:RequestedRegion": "us-east-1"}) is \
        Decision.EXPLICIT_DENY
    assert evaluator.evaluate("ec2:DescribeInstances", "*", {"aws:RequestedRegion": "eu-west-1"}) is Decision.ALLOWED

    before_file = tmp_path / "before.json"
    before_file.write_text(json.dumps([doc for _, doc in before.identity_documents()]))
    after_file = tmp_path / "after.json"
    after_file.write_text(json.dumps([doc for _, doc in after.identity_documents()]))
    assert _cli(["--current", str(before_file), "--proposed", str(after_file)]) == 0
    assert capsys.readouterr().out == "PASS\n"


def test_a_widening_proposal_injected_by_hand_is_refused_before_apply(env: Env, harness: Harness) -> None:
    arn = _role(env, "billing")
    snapshot = get_role_snapshot(env.iam, "billing")
    widening = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{REPORTS}/*"}]}  # no Condition, no Deny
    proposal = env.ctx.proposals.create(
        account=ACCOUNT, principal_arn=arn, role_name="billing", documents=[widening],
        current_documents=[{"name": n, "document": d} for n, d in snapshot.identity_documents()],
        base_policy_hash=snapshot.policy_hash(), summary="hand-made", requested_by="someone-else",
        channel=CHANNEL)
    assert env.ctx.notifier is not None and env.ctx.notifier.post_proposal(proposal.id)
    ts = env.ctx.proposals.get(proposal.id).message_ts  # type: ignore[union-attr]
    assert harness.click(ActionId.APPROVE, proposal.id, user=APPROVER, ts=ts) == 200
    wait_until(lambda: env.ctx.queue.pending("apply"))
    Worker(env.ctx).run_until_idle()

    refused = env.ctx.proposals.get(proposal.id)
    assert refused is not None and refused.state == ps.REFUSED
    assert "would grant more than the role has today" in (refused.decision_reason or "")
    assert env.ctx.changes.list() == []  # nothing was attempted
    assert get_role_snapshot(env.iam, "billing").policy_hash() == snapshot.policy_hash()
    thread = _thread_text(harness.fake, ts or "")
    assert "would grant more than the role has today" in thread and "aws:SecureTransport" in thread
    assert "RegionGuard" in thread
    decision = json.dumps(harness.fake.messages[(CHANNEL, ts)]["blocks"])
    assert "Refused before apply" in decision
    assert any(e["action"] == "apply.refused" for e in env.ctx.audit.entries(proposal.id))


def test_a_widening_proposal_at_scan_time_is_refused_and_recorded(env: Env, harness: Harness,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    arn = _role(env, "builder")
    env.use(arn, "s3:GetObject", f"{REPORTS}/a.csv")
    real = generate_module.generate_policy

    def faulty(*args: Any, **kwargs: Any) -> Any:
        """A generator that forgets the current policy's Denies (the failure the scan must catch)."""
        generated = real(*args, **kwargs)
        for d in generated.documents:
            d["Statement"] = [s for s in d["Statement"] if s["Effect"] != "Deny"]
        return generated

    monkeypatch.setattr("bot.jobs.scan.generate_policy", faulty)
    env.ctx.queue.enqueue("scan", {"account": ACCOUNT, "principal_arn": arn, "requested_by": "scheduler"})
    Worker(env.ctx).run_until_idle()

    assert env.ctx.proposals.list(principal_arn=arn) == []  # never stored
    assert harness.fake.posted(CHANNEL) == []  # never posted
    record = env.ctx.scans.get(arn)
    assert record is not None and record.result == sc.REFUSED
    assert record.detail["check"] == "containment"
    assert "would grant more than the role has today" in record.detail["reason"]
    findings = record.detail["findings"]
    assert findings and {f["kind"] for f in findings} == {"deny-lost"}
    assert all("RegionGuard" in f["detail"] for f in findings)
    assert not env.ctx.scans.is_fresh(arn, record.policy_hash, record.usage_fingerprint)  # retried next time

    answer = harness.command("status builder", user=APPROVER)
    text = json.dumps(answer)
    assert "refused" in text and "containment" in text and "would grant more than the role has today" in text


def test_access_analyzer_output_is_held_to_the_current_policy(env: Env) -> None:
    """Access Analyzer (botocore's Stubber: no emulator implements it) proposes s3:GetObject and s3:PutObject
    on every bucket (its placeholder widened) and sqs:*, which the role never held: the stored proposal keeps
    the Condition and the Deny, scopes s3 to the role's own objects, and leaves sqs out."""
    import dataclasses

    import boto3
    from botocore.stub import Stubber

    from bot.config import AccessAnalyzerSettings
    from bot.jobs.scan import run_scan

    env.ctx.config = dataclasses.replace(env.ctx.config, backend="access-analyzer", access_analyzer=(
        AccessAnalyzerSettings(trail_arn=f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/main",
                               access_role_arn=f"arn:aws:iam::{ACCOUNT}:role/AccessAnalyzerTrailReader")))
    client = boto3.client("accessanalyzer", region_name="us-east-1")
    stub = Stubber(client)
    env.ctx.aa_client_for = lambda account: client
    env.ctx.sleep = lambda seconds: None
    arn = _role(env, "analyzed")
    env.use(arn, "s3:GetObject", f"{REPORTS}/x.csv")
    generated = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::${BucketName}/*"},
        {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}
    stub.add_response("start_policy_generation", {"jobId": "job-1"})
    stub.add_response("get_generated_policy", {
        "jobDetails": {"jobId": "job-1", "status": "SUCCEEDED", "startedOn": env.clock()},
        "generatedPolicyResult": {"properties": {"principalArn": arn, "isComplete": True},
                                  "generatedPolicies": [{"policy": json.dumps(generated)}]}})
    with stub:
        outcome = run_scan(env.ctx, ACCOUNT, arn, requested_by="scheduler")
    assert outcome.result == sc.PROPOSED and outcome.proposal is not None, outcome.message
    proposal = outcome.proposal
    assert proposal.engine == "access-analyzer" and proposal.checks["containment"]["result"] == "pass"
    statements = [s for d in proposal.documents for s in d["Statement"]]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert [s["Action"] for s in allows] == [["s3:GetObject", "s3:PutObject"]]
    assert allows[0]["Condition"] == SECURE and allows[0]["Resource"] == [f"{REPORTS}/*"]
    assert {**GUARD, "Condition": {"StringNotEquals": {"aws:RequestedRegion": "eu-west-1"}}} in statements
    assert any("sqs" in n and "not granted" in n for n in proposal.notes)
    assert any("Access Analyzer" in n for n in proposal.notes)
