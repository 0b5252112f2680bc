"""Restart mid-queue (no loss, no duplicate) and the Access Analyzer quota across a simulated week."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from bot.config import AccessAnalyzerSettings
from bot.jobs.context import JobContext
from bot.jobs.planner import plan_scans
from bot.jobs.worker import Worker
from bot.store import scans as sc
from bot.store.queue import DONE, LEASE, RUNNING
from bot.util.clock import parse_iso
from tests.jobs.conftest import ACCOUNT, Env, policy

TRAIL = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/main"
ACCESS = f"arn:aws:iam::{ACCOUNT}:role/AccessAnalyzerTrailReader"


class Crash(BaseException):
    """Stands for the process being killed (not an Exception: the worker must not catch it)."""


def _fresh_process(env: Env) -> JobContext:
    """A new JobContext on the same store file: what a restarted process sees once the dead one's leases have
    expired (a live process's items are never taken from it)."""
    env.ctx.close()
    env.clock.advance(seconds=LEASE.total_seconds() + 1)
    return dataclasses.replace(env.ctx, counters=Counter())  # a fresh instance has fresh per-thread stores


def test_restart_mid_queue_loses_nothing_and_runs_nothing_twice(env: Env) -> None:
    arns = [env.role(f"app-{i}", policy("s3:*")) for i in range(4)]
    for arn in arns:
        env.use(arn, "s3:ListAllMyBuckets")
    plan_scans(env.ctx)
    assert len(env.ctx.queue.pending("scan")) == 4

    worker = Worker(env.ctx, name="w1", kinds=("scan",))
    assert worker.run_once() is not None  # item 1 done normally

    # killed after claiming item 2, before running it
    claimed = env.ctx.queue.claim("w1", ["scan"])
    assert claimed is not None and env.ctx.queue.get(claimed.id).state == RUNNING

    # restart; this time the process dies after item 3's scan finished but before the item was marked done
    ctx = _fresh_process(env)
    worker = Worker(ctx, name="w1", kinds=("scan",))
    assert worker.recover()["requeued"] == 1
    real = worker.handlers["scan"]

    def scan_then_die(c: JobContext, item: Any) -> dict[str, Any]:
        real(c, item)
        raise Crash()

    worker.handlers["scan"] = scan_then_die
    with pytest.raises(Crash):
        worker.run_once()

    ctx = _fresh_process(env)
    worker = Worker(ctx, name="w1", kinds=("scan",))
    assert worker.recover()["requeued"] == 1
    assert worker.run_until_idle() == 3  # item 2, the crashed item again, item 4

    items = ctx.queue.items(kind="scan")
    assert len(items) == 4 and {i.state for i in items} == {DONE}
    assert sorted(i.payload["principal_arn"] for i in items) == sorted(arns)
    # every role scanned exactly once (the re-run item found its finished scan), one proposal each
    history = Counter(r.principal_arn for r in ctx.scans.history())
    assert history == Counter(dict.fromkeys(arns, 1))
    for arn in arns:
        assert len(ctx.proposals.list(principal_arn=arn)) == 1
    assert not ctx.queue.pending()
    ctx.close()


def _generation(n: int, arn: str, clock: Any) -> dict[str, Any]:
    return {"jobDetails": {"jobId": f"job-{n}", "status": "SUCCEEDED", "startedOn": clock()},
            "generatedPolicyResult": {"properties": {"principalArn": arn, "isComplete": True},
                                      "generatedPolicies": [{"policy": json.dumps(policy("s3:ListAllMyBuckets"))}]}}


def test_access_analyzer_quota_never_exceeded_over_a_week(env: Env) -> None:
    """12 roles, quota 1 concurrent / 3 per day, the worker waking every hour for a simulated week. Access
    Analyzer is botocore's Stubber (no emulator implements it): exactly one start + one poll per generation is
    queued, so any generation beyond those would fail the test."""
    per_day, roles = 3, 12
    env.ctx.config = dataclasses.replace(
        env.ctx.config, backend="access-analyzer",
        access_analyzer=AccessAnalyzerSettings(trail_arn=TRAIL, access_role_arn=ACCESS, max_concurrent=1,
                                               max_per_day=per_day))
    client = boto3.client("accessanalyzer", region_name="us-east-1")
    stub = Stubber(client)
    env.ctx.aa_client_for = lambda account: client
    env.ctx.sleep = lambda seconds: env.clock.advance(seconds=seconds)  # a generation takes time
    arns = [env.role(f"svc-{i:02d}", policy(["s3:*", "ec2:Describe*"])) for i in range(roles)]
    for arn in arns:
        env.use(arn, "s3:ListAllMyBuckets")
    plan_scans(env.ctx)
    order = [i.payload["principal_arn"] for i in env.ctx.queue.pending("scan")]
    for n, arn in enumerate(order):
        stub.add_response("start_policy_generation", {"jobId": f"job-{n}"})
        stub.add_response("get_generated_policy", _generation(n, arn, env.clock))
    worker = Worker(env.ctx, kinds=("scan",))
    with stub:
        for _ in range(7 * 24):
            worker.run_until_idle()
            env.clock.advance(hours=1)
        stub.assert_no_pending_responses()

    starts = sorted(parse_iso(r[0]) for r in env.ctx.db.conn.execute("SELECT started_at FROM aa_generations"))
    assert len(starts) == roles  # every role generated exactly once within the week
    for i, start in enumerate(starts):  # never more than per_day in any 24 hours
        assert sum(1 for s in starts[i:] if s < start + timedelta(days=1)) <= per_day
    assert env.ctx.db.conn.execute("SELECT COUNT(*) FROM aa_generations WHERE finished_at IS NULL").fetchone()[0] == 0
    assert Counter(r.result for r in env.ctx.scans.all()) == Counter({sc.PROPOSED: roles})
    assert all(p.engine == "access-analyzer" for p in env.ctx.proposals.list())
    assert any(r.result == sc.DEFERRED for r in env.ctx.scans.history())  # the quota did bite
    assert env.ctx.queue.pending("scan") == []
    assert {i.state for i in env.ctx.queue.items(kind="scan", limit=1000)} == {DONE}


def test_crash_mid_apply_is_finished_at_restart_and_reported_once(env: Env, slack: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.aws import apply as aws_apply
    from bot.store import changes as cs
    from bot.store import proposals as ps
    from tests.jobs.conftest import APPROVER, CHANNEL, attach_notifier

    attach_notifier(env, slack)
    arn = env.role("reporting", policy("s3:*"))
    env.use(arn, "s3:ListAllMyBuckets")
    env.ctx.queue.enqueue("scan", {"account": ACCOUNT, "principal_arn": arn})
    Worker(env.ctx).run_until_idle()
    proposal = env.ctx.proposals.latest(arn)
    assert proposal is not None and proposal.message_ts
    env.ctx.proposals.transition(proposal.id, ps.APPROVED, decided_by=APPROVER)
    env.ctx.queue.enqueue("apply", {"proposal_id": proposal.id, "approved_by": APPROVER}, priority=200,
                          dedupe_key=f"apply:{proposal.id}")

    real_start = aws_apply.start_change

    def dies_after_first_step(*args: Any, **kwargs: Any) -> Any:
        def hook(step: Any) -> None:
            raise Crash()

        return real_start(*args, **kwargs, hook=hook)

    monkeypatch.setattr(aws_apply, "start_change", dies_after_first_step)
    with pytest.raises(Crash):
        Worker(env.ctx).run_once()
    assert env.ctx.proposals.get(proposal.id).state == ps.APPLYING  # type: ignore[union-attr]
    (change,) = env.ctx.changes.list()
    assert change.state == cs.APPLYING
    monkeypatch.setattr(aws_apply, "start_change", real_start)

    ctx = _fresh_process(env)
    worker = Worker(ctx)
    recovered = worker.recover()
    assert recovered["requeued"] == 1  # the apply item, whose lease expired with the dead process
    assert ctx.changes.get(change.id).state == cs.APPLYING  # type: ignore[union-attr] - finished by the item
    before = len(slack.posted(CHANNEL))
    assert worker.run_until_idle() == 1
    assert ctx.proposals.get(proposal.id).state == ps.APPLIED  # type: ignore[union-attr]
    assert ctx.changes.get(change.id).state == cs.APPLIED  # type: ignore[union-attr]
    assert len(ctx.changes.list()) == 1  # the apply did not run twice
    assert len(slack.posted(CHANNEL)) == before + 1  # one apply result in the thread
    ctx.close()
