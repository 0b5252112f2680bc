"""Scheduler costs: queue throughput, planning and scanning N roles on the embedded moto server, a simulated week.

    python bench/scheduler.py [ROLES]

1. Queue: 5,000 items enqueued (with dedupe keys), claimed and completed on a file-backed store.
2. Planning: ROLES roles (default 60: a third with AdministratorAccess, a third with s3:*, a third already
   tight), each with usage in the index; ``plan_scans`` (inventory, effective permissions, risk, cache, enqueue).
3. Scans: the worker runs every planned scan (snapshot, generate, diff, risk, coverage, proposal).
4. Re-planning with nothing changed (every role a cache hit).
Seconds on moto are a rough proxy for real IAM (which adds ~50-200 ms per call).
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3

from bot.aws.embedded import start_embedded_aws
from bot.config import Account, Approvers, Config
from bot.jobs.context import JobContext
from bot.jobs.planner import plan_scans
from bot.jobs.worker import Worker
from bot.store.db import open_db
from bot.store.queue import WorkQueue
from bot.store.usage import ObjectUsage
from bot.util.clock import FakeClock, iso

ACCOUNT = "123456789012"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def _policy(actions: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions,
                                                               "Resource": "*"}]})


def bench_queue(path: Path, n: int = 5000) -> None:
    queue = WorkQueue(open_db(path))
    t0 = time.perf_counter()
    for i in range(n):
        queue.enqueue("scan", {"i": i}, priority=i % 100, dedupe_key=f"scan:{i}")
    t1 = time.perf_counter()
    done = 0
    while (item := queue.claim("bench")) is not None:
        queue.complete(item.id, {"ok": True})
        done += 1
    t2 = time.perf_counter()
    print(f"queue: {n} enqueues in {t1 - t0:.2f} s ({n / (t1 - t0):,.0f}/s); "
          f"{done} claim+complete in {t2 - t1:.2f} s ({done / (t2 - t1):,.0f}/s)")


def main(roles: int) -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    aws = start_embedded_aws(load_managed_policies=True)
    tmp = Path(tempfile.mkdtemp(prefix="tighten-bench-"))
    try:
        bench_queue(tmp / "queue.db")
        iam = boto3.client("iam", endpoint_url=aws.endpoint_url, region_name="us-east-1")
        clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
        config = Config(db_path=str(tmp / "tighten.db"), lookback_days=30, accounts=(
            Account(id=ACCOUNT, name="bench", channel="C0BENCH001", approvers=Approvers(users=("U0BENCH001",))),))
        ctx = JobContext(db_path=config.db_path, config=config, clock=clock, iam_for=lambda account: iam)
        objects = []
        for i in range(roles):
            name = f"role-{i:03d}"
            arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
            kind = i % 3
            if kind == 0:
                iam.attach_role_policy(RoleName=name, PolicyArn=ADMIN)
            else:
                actions = "s3:*" if kind == 1 else "s3:ListAllMyBuckets"
                iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=_policy(actions))
            t = iso(clock() - timedelta(days=2))
            obj = ObjectUsage(key=f"AWSLogs/{ACCOUNT}/bench-{i}.json.gz", size=1, etag="e", events=5,
                              usage_events=5)
            obj.usage[(ACCOUNT, arn, "s3:ListAllMyBuckets", "*", "", t[:10])] = [5, t, t]
            obj.principals[arn] = ["role", ACCOUNT, False, 5, 0, t, t]
            objects.append(obj)
        ctx.usage.record_objects(objects)

        t0 = time.perf_counter()
        plans = plan_scans(ctx)
        t1 = time.perf_counter()
        print(f"plan: {len(plans)} roles ranked and queued in {t1 - t0:.2f} s "
              f"({(t1 - t0) / max(1, len(plans)) * 1000:.0f} ms/role)")
        t2 = time.perf_counter()
        ran = Worker(ctx, kinds=("scan",)).run_until_idle()
        t3 = time.perf_counter()
        results = Counter(r.result for r in ctx.scans.all())
        print(f"scan: {ran} scans in {t3 - t2:.2f} s ({(t3 - t2) / max(1, ran) * 1000:.0f} ms/scan); "
              f"results {dict(results)}")
        clock.advance(hours=1)
        t4 = time.perf_counter()
        again = plan_scans(ctx)
        t5 = time.perf_counter()
        hits = sum(1 for p in again if p.skipped)
        print(f"re-plan, nothing changed: {hits}/{len(again)} cache hits in {t5 - t4:.2f} s")
        ctx.close()
    finally:
        aws.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 60)
