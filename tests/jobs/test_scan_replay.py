"""Replay before posting: a scan replays the window's calls against the proposal and refuses to store or post
one that would deny any (moto IAM on 127.0.0.1, the real store, the real message builder)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.jobs import scan as scan_module
from bot.jobs.scan import run_scan
from bot.policy.generate import generate_policy
from bot.slack.review import review_message
from bot.store import scans as sc
from tests.jobs.conftest import ACCOUNT, Env, policy

OBJ = "arn:aws:s3:::reports/2026/q3.csv"


def _texts(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks)


def test_passing_proposal_records_the_replay_and_says_so(env: Env) -> None:
    arn = env.role("reporting", policy(["s3:*", "ec2:*"]))
    env.use(arn, "s3:GetObject", OBJ, days_ago=1, count=3)
    env.use(arn, "s3:ListBucket", "arn:aws:s3:::reports", days_ago=2, count=4)
    outcome = run_scan(env.ctx, ACCOUNT, arn, requested_by="U0ALICE001")
    assert outcome.result == sc.PROPOSED, outcome.message
    proposal = env.ctx.proposals.get(outcome.proposal.id)  # type: ignore[union-attr]
    assert proposal is not None and proposal.checks["replay"] == {"calls": 7, "days": 2, "denied": 0}
    assert "replayed 7 calls from 2 days: all allowed" in _texts(review_message(proposal).blocks)


def test_unlogged_resource_is_replayed_inside_the_current_scope(env: Env) -> None:
    arn = env.role("reader", policy(["s3:GetObject", "s3:PutObject"], "arn:aws:s3:::reports/*"))
    env.use(arn, "s3:GetObject", "?")  # the object ARN was not in the log
    outcome = run_scan(env.ctx, ACCOUNT, arn, requested_by=None)
    assert outcome.result == sc.PROPOSED, outcome.message
    assert outcome.proposal is not None and outcome.proposal.checks["replay"]["denied"] == 0


def test_proposal_that_would_deny_a_call_is_refused_and_never_stored(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A generator that loses one action (injected by hand): the replay catches it, whatever the cause."""
    arn = env.role("builder", policy(["s3:*", "ec2:*"]))
    env.use(arn, "s3:GetObject", OBJ, count=5)
    env.use(arn, "ec2:DescribeInstances", "*", count=2)

    def losing(rows: Any, allowlist: Any = (), **kw: Any) -> Any:
        return generate_policy([r for r in rows if r.action != "ec2:DescribeInstances"], allowlist, **kw)

    monkeypatch.setattr(scan_module, "generate_policy", losing)
    outcome = run_scan(env.ctx, ACCOUNT, arn, requested_by="U0ALICE001")
    assert outcome.result == sc.REFUSED and outcome.proposal is None
    assert "would deny 2 of 7 calls" in outcome.message and "ec2:DescribeInstances" in outcome.message
    record = env.ctx.scans.get(arn)
    assert record is not None and record.result == sc.REFUSED and record.proposal_id is None
    assert record.detail["check"] == "replay" and "ec2:DescribeInstances on *" in record.detail["reason"]
    assert [(d["action"], d["resource"], d["decision"], d["count"]) for d in record.detail["denied"]] == [
        ("ec2:DescribeInstances", "*", "implicit_deny", 2)]
    assert env.ctx.proposals.latest(arn) is None


def test_boundary_that_now_denies_past_calls_refuses(env: Env) -> None:
    arn = env.role("legacy", policy(["s3:*"]))
    boundary = env.iam.create_policy(PolicyName="only-get", PolicyDocument=json.dumps(policy("s3:GetObject")))
    env.iam.put_role_permissions_boundary(RoleName="legacy", PermissionsBoundary=boundary["Policy"]["Arn"])
    env.use(arn, "s3:GetObject", OBJ)
    env.use(arn, "s3:PutObject", "arn:aws:s3:::reports/out.csv")  # made before the boundary was attached
    outcome = run_scan(env.ctx, ACCOUNT, arn, requested_by=None)
    assert outcome.result == sc.REFUSED
    assert [d["action"] for d in env.ctx.scans.get(arn).detail["denied"]] == ["s3:PutObject"]  # type: ignore[union-attr]
