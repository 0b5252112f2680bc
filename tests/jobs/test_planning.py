"""Planning order, scan cache hit and invalidation, already-tight and fail-closed scans (moto IAM)."""

from __future__ import annotations

import json

from bot.jobs.planner import next_off_hours_start, plan_scans
from bot.jobs.scan import run_scan
from bot.jobs.worker import Worker
from bot.store import scans as sc
from tests.jobs.conftest import ACCOUNT, Env, policy


def _roles(env: Env) -> dict[str, str]:
    arns = {
        "iam-admin": env.role("iam-admin", policy("iam:*")),
        "s3-admin": env.role("s3-admin", policy("s3:*")),
        "tight": env.role("tight", policy("s3:ListAllMyBuckets")),
    }
    env.use(arns["iam-admin"], "iam:ListRoles")
    env.use(arns["s3-admin"], "s3:ListAllMyBuckets")
    env.use(arns["tight"], "s3:ListAllMyBuckets")
    return arns


def test_iam_role_planned_before_s3_role_before_tight_role(env: Env) -> None:
    arns = _roles(env)
    plans = plan_scans(env.ctx)
    assert [p.role_name for p in plans] == ["iam-admin", "s3-admin", "tight"]
    by_name = {p.role_name: p for p in plans}
    assert by_name["iam-admin"].priority > by_name["s3-admin"].priority > by_name["tight"].priority == 0
    assert all(0 <= p.priority < 100 for p in plans)  # below manual scans, applies and rollbacks
    queued = [item.payload["principal_arn"] for item in env.ctx.queue.pending("scan")]
    assert queued == [arns["iam-admin"], arns["s3-admin"], arns["tight"]]
    # the worker takes them in that order
    worker = Worker(env.ctx, kinds=("scan",))
    ran = [worker.run_once().payload["principal_arn"] for _ in range(3)]  # type: ignore[union-attr]
    assert ran == queued
    # planning again while scans are pending never duplicates them
    env.ctx.scans.invalidate(arns["tight"])
    assert env.ctx.roles.get(arns["tight"]) is not None


def test_cache_hit_then_policy_and_usage_changes_invalidate(env: Env) -> None:
    arns = _roles(env)
    plan_scans(env.ctx)
    assert Worker(env.ctx, kinds=("scan",)).run_until_idle() == 3
    results = {r.principal_arn: r.result for r in env.ctx.scans.all()}
    assert results == {arns["iam-admin"]: sc.PROPOSED, arns["s3-admin"]: sc.PROPOSED,
                       arns["tight"]: sc.ALREADY_TIGHT}
    assert env.ctx.proposals.list(principal_arn=arns["tight"]) == []  # already tight: nothing proposed

    env.clock.advance(hours=1)
    again = plan_scans(env.ctx)
    assert all(p.skipped and "unchanged" in p.skipped for p in again)
    assert env.ctx.queue.pending("scan") == []

    # a policy change invalidates only that role
    env.iam.put_role_policy(RoleName="iam-admin", PolicyName="extra",
                            PolicyDocument=json.dumps(policy("ec2:DescribeInstances")))
    env.clock.advance(hours=1)
    plan_scans(env.ctx)
    assert [i.payload["principal_arn"] for i in env.ctx.queue.pending("scan")] == [arns["iam-admin"]]
    Worker(env.ctx, kinds=("scan",)).run_until_idle()

    # new usage invalidates too
    env.use(arns["s3-admin"], "s3:GetBucketLocation", "arn:aws:s3:::reports")
    env.clock.advance(hours=1)
    plan_scans(env.ctx)
    assert [i.payload["principal_arn"] for i in env.ctx.queue.pending("scan")] == [arns["s3-admin"]]


def test_scan_fails_closed_on_ingest_errors(env: Env) -> None:
    arn = env.role("reporting", policy("s3:*"))
    env.use(arn, "s3:ListAllMyBuckets")
    env.ctx.usage.record_error(f"s3://trail/AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/x.json.gz", "Throttling")
    outcome = run_scan(env.ctx, ACCOUNT, arn, requested_by="U0ALICE001")
    assert outcome.result == sc.INCOMPLETE
    assert "could not be read" in outcome.message
    assert env.ctx.proposals.list(principal_arn=arn) == []
    # an error for another account's object does not block this one
    env.ctx.usage.record_objects([])  # no-op
    env.ctx.db.conn.execute("DELETE FROM ingest_errors")
    env.ctx.usage.record_error("s3://trail/AWSLogs/999999999999/CloudTrail/us-east-1/y.json.gz", "Throttling")
    outcome = run_scan(env.ctx, ACCOUNT, arn, requested_by="U0ALICE001")
    assert outcome.result == sc.PROPOSED
    assert outcome.proposal is not None and outcome.proposal.stats["removed"] > 0


def test_scan_is_blocked_only_by_unreadable_entries_naming_its_account(env: Env) -> None:
    arn = env.role("reporting", policy("s3:*"))
    env.use(arn, "s3:ListAllMyBuckets")
    env.ctx.usage.record_error("/logs/pipe.json", "not_a_regular_file: a FIFO", kind="entry")
    assert run_scan(env.ctx, ACCOUNT, arn, requested_by=None).result == sc.PROPOSED
    env.ctx.db.conn.execute("DELETE FROM proposals")
    env.ctx.usage.record_error(f"/logs/AWSLogs/{ACCOUNT}/CloudTrail/pipe.json", "not_a_regular_file: a FIFO",
                               kind="entry")
    outcome = run_scan(env.ctx, ACCOUNT, arn, requested_by=None)
    assert outcome.result == sc.INCOMPLETE and "pipe.json" in outcome.message


def test_unused_role_is_not_emptied(env: Env) -> None:
    arn = env.role("idle", policy("s3:*"))
    env.use(env.role("other", policy("s3:ListAllMyBuckets")), "s3:ListAllMyBuckets")
    outcome = run_scan(env.ctx, ACCOUNT, arn, requested_by=None)
    assert outcome.result == sc.INCOMPLETE
    assert "unused" in outcome.message


def test_proposal_has_all_fields(env: Env) -> None:
    arn = env.role("reporting", policy("s3:*"))
    env.use(arn, "s3:ListAllMyBuckets")
    outcome = run_scan(env.ctx, ACCOUNT, arn, requested_by="U0ALICE001")
    p = outcome.proposal
    assert p is not None and p.state == "pending"
    assert p.base_policy_hash and p.usage_fingerprint and p.window_start and p.window_end
    assert p.summary and p.diff_text and p.unified_diff and p.risk_reasons
    assert p.documents[0]["Statement"][0]["Action"] in ("s3:ListAllMyBuckets", ["s3:ListAllMyBuckets"])
    assert p.channel == "C0REVIEW01" and p.engine == "local"


def test_off_hours_window(clock) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from bot.config import OffHours

    window = OffHours(start="22:00", end="06:00", timezone="UTC")
    assert next_off_hours_start(window, datetime(2026, 1, 5, 23, 0, tzinfo=UTC)) is None
    assert next_off_hours_start(window, datetime(2026, 1, 5, 3, 0, tzinfo=UTC)) is None
    assert next_off_hours_start(window, datetime(2026, 1, 5, 12, 0, tzinfo=UTC)) == datetime(2026, 1, 5, 22, 0,
                                                                                             tzinfo=UTC)
    assert next_off_hours_start(None, datetime(2026, 1, 5, 12, 0, tzinfo=UTC)) is None


def test_allowlist_change_invalidates_cache_and_follow_up_includes_action(env: Env) -> None:
    from bot.store.allowlist import load_allowlist, save_allowlist

    arn = env.role("reporting", policy("s3:*"))
    env.use(arn, "s3:ListAllMyBuckets")
    plan_scans(env.ctx)
    Worker(env.ctx, kinds=("scan",)).run_until_idle()
    first = env.ctx.proposals.latest(arn)
    assert first is not None and "s3:GetObject" not in json.dumps(first.documents)
    plan_scans(env.ctx)
    assert env.ctx.queue.pending("scan") == []  # cached

    allowlist = load_allowlist(None)
    allowlist.add(arn, "s3:GetObject", "arn:aws:s3:::reports/*", "needed at month end")
    save_allowlist(allowlist, env.ctx.config.allowlist_path)  # what the "Allow s3:GetObject" button does
    plan_scans(env.ctx)
    assert [i.payload["principal_arn"] for i in env.ctx.queue.pending("scan")] == [arn]
    Worker(env.ctx, kinds=("scan",)).run_until_idle()
    follow_up = env.ctx.proposals.latest(arn)
    assert follow_up is not None and follow_up.id != first.id
    assert "arn:aws:s3:::reports/*" in json.dumps(follow_up.documents)
    assert env.ctx.proposals.get(first.id).state == "superseded"  # type: ignore[union-attr]


def test_out_of_scope_and_deleted_roles(env: Env) -> None:
    import dataclasses

    arn = env.role("break-glass", policy("iam:*"))
    env.use(arn, "iam:ListRoles")
    env.ctx.config = dataclasses.replace(env.ctx.config, protected_roles=("break-*",))
    outcome = run_scan(env.ctx, ACCOUNT, arn, requested_by="U0ALICE001")
    assert outcome.result == sc.EXCLUDED and "protected role" in outcome.message
    assert plan_scans(env.ctx) == [] and env.ctx.roles.get(arn).in_scope is False  # type: ignore[union-attr]

    gone = env.role("gone", policy("s3:*"))
    env.ctx.queue.enqueue("scan", {"account": ACCOUNT, "principal_arn": gone})
    env.iam.delete_role_policy(RoleName="gone", PolicyName="gone-inline")
    env.iam.delete_role(RoleName="gone")
    Worker(env.ctx, kinds=("scan",)).run_until_idle()
    (item,) = env.ctx.queue.items(kind="scan")
    assert item.state == "done" and item.result == {"result": "role not found", "message": f"{gone} no longer exists"}
