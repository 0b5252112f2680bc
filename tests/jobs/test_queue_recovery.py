"""Restart mid-queue (no loss, no duplicate) and the Access Analyzer quota across a simulated week."""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from bot.jobs.context import JobContext
from bot.jobs.planner import plan_scans
from bot.jobs.worker import Worker
from bot.store import scans as sc
from bot.store.queue import DONE, RUNNING
from bot.util.clock import iso, parse_iso
from tests.jobs.conftest import Env, policy


class Crash(BaseException):
    """Stands for the process being killed (not an Exception: the worker must not catch it)."""


def _fresh_process(env: Env) -> JobContext:
    """A new JobContext on the same store file: what a restarted process sees."""
    env.ctx.close()
    return dataclasses.replace(env.ctx, counters=Counter(), _local=threading.local())


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


class CountingGenerator:
    """Stands in for Access Analyzer's generation (moto has no Access Analyzer): records every generation."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.running = 0
        self.max_running = 0
        self.per_day: Counter[str] = Counter()

    def generate(self, principal_arn: str, since: str, until: str) -> tuple[list[dict[str, Any]], list[str]]:
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self.per_day[iso(self.clock())[:10]] += 1
        self.running -= 1
        return [policy("s3:ListAllMyBuckets")], []


class DailyQuota:
    """Concurrent + per-UTC-day limits in SQLite, the interface bot.jobs.quota expects (helper D's
    AccessAnalyzerQuota had not landed when this was written)."""

    def __init__(self, ctx: JobContext, concurrent: int, per_day: int) -> None:
        self.ctx, self.concurrent, self.per_day = ctx, concurrent, per_day
        ctx.db.conn.execute("CREATE TABLE IF NOT EXISTS test_aa (key TEXT PRIMARY KEY, day TEXT, active INT)")

    def try_acquire(self, key: str) -> bool:
        conn, day = self.ctx.db.conn, iso(self.ctx.clock())[:10]
        conn.execute("BEGIN IMMEDIATE")
        active = conn.execute("SELECT COUNT(*) FROM test_aa WHERE active = 1").fetchone()[0]
        today = conn.execute("SELECT COUNT(*) FROM test_aa WHERE day = ?", [day]).fetchone()[0]
        ok = active < self.concurrent and today < self.per_day
        if ok:
            conn.execute("INSERT INTO test_aa VALUES (?, ?, 1)", [key, day])
        conn.execute("COMMIT")
        return ok

    def release(self, key: str) -> None:
        self.ctx.db.conn.execute("UPDATE test_aa SET active = 0 WHERE key = ?", [key])

    def next_slot(self) -> str:
        """Next UTC midnight, when the daily count starts again."""
        return iso(parse_iso(iso(self.ctx.clock())[:10] + "T00:00:00Z") + timedelta(days=1))


def test_access_analyzer_quota_never_exceeded_over_a_week(env: Env) -> None:
    per_day = 3
    env.ctx.config = dataclasses.replace(env.ctx.config, backend="access-analyzer")
    generator = CountingGenerator(env.clock)
    env.ctx.aa_backend = generator
    env.ctx.aa_quota = DailyQuota(env.ctx, concurrent=1, per_day=per_day)
    arns = [env.role(f"svc-{i:02d}", policy(["s3:*", "ec2:Describe*"])) for i in range(12)]
    for arn in arns:
        env.use(arn, "s3:ListAllMyBuckets")
    plan_scans(env.ctx)
    worker = Worker(env.ctx, kinds=("scan",))
    for _ in range(7 * 24):  # a simulated week, the worker waking every hour
        worker.run_until_idle()
        env.clock.advance(hours=1)
    assert generator.max_running == 1
    assert max(generator.per_day.values()) <= per_day
    assert sum(generator.per_day.values()) == len(arns)  # everyone scanned within the week, once
    results = Counter(r.result for r in env.ctx.scans.all())
    assert results == Counter({sc.PROPOSED: len(arns)})
    assert all(p.engine == "access-analyzer" for p in env.ctx.proposals.list())
    deferred = [r for r in env.ctx.scans.history() if r.result == sc.DEFERRED]
    assert deferred  # the quota did bite
    assert env.ctx.queue.pending("scan") == []
