"""One ``Worker`` in its own process on a shared store, for the two-process test:
``python -m tests.jobs.worker_process --db ... --endpoint ... --slack-url ... --config-dir ... --log ...``.

Every IAM write it makes is appended to ``--log`` (pid, operation, target) before it is sent. ``--hold`` makes the
process wait, right before its second write, until the file ``--hold`` names exists: the test starts the second
worker while the first is provably in the middle of an apply."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import boto3

WRITES = frozenset({"CreatePolicy", "CreatePolicyVersion", "DeletePolicy", "DeletePolicyVersion", "SetDefaultPolicyVersion",
                    "AttachRolePolicy", "DetachRolePolicy", "PutRolePolicy", "DeleteRolePolicy"})


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    for name in ("--db", "--endpoint", "--slack-url", "--config-dir", "--log"):
        parser.add_argument(name, required=True)
    parser.add_argument("--hold", help="before the second write, wait until this file exists")
    parser.add_argument("--holding", help="touch this file when starting to hold")
    parser.add_argument("--done", help="touch this file when finished")
    args = parser.parse_args(argv)

    from bot.jobs.context import JobContext
    from bot.jobs.worker import Worker
    from bot.slack.app import make_client
    from bot.slack.context import AppContext
    from bot.slack.notify import Notifier
    from tests.jobs.conftest import make_config

    iam = boto3.client("iam", endpoint_url=args.endpoint, region_name="us-east-1")
    writes = {"n": 0}

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name not in WRITES:
            return
        writes["n"] += 1
        if args.hold and writes["n"] == 2:
            if args.holding:
                Path(args.holding).touch()
            deadline = time.monotonic() + 120
            while not Path(args.hold).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        target = params.get("PolicyArn") or params.get("PolicyName") or ""
        with open(args.log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps([os.getpid(), model.name, target]) + "\n")

    iam.meta.events.register("before-parameter-build.iam", record)
    config = make_config(Path(args.config_dir))
    ctx = JobContext(db_path=args.db, config=config, iam_for=lambda account: iam,
                     worker_name=f"proc-{os.getpid()}", sleep=lambda seconds: None)
    client = make_client("xoxb-test", base_url=args.slack_url, wait_scale=0.0, backoff=0.001)
    ctx.notifier = Notifier(client, AppContext(db_path=args.db, config=config))
    worker = Worker(ctx)
    recovered = worker.recover()
    ran = worker.run_until_idle()
    ctx.close()
    if args.done:
        Path(args.done).touch()
    print(json.dumps({"recovered": recovered, "ran": ran}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
