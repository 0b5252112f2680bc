"""``tighten worker --config FILE [--db PATH] [--kinds scan,apply,...] [--max-items N] [--slack-api-url URL]``.

Runs the work queue once, without the Slack app and without the scheduler: recovers items a dead process left
running, finishes interrupted IAM changes, then runs every due item (in priority order) and exits. Useful from
cron or a Kubernetes Job, and to drain the queue by hand; ``tighten serve`` runs the same worker continuously.
Proposals are posted for review when ``SLACK_BOT_TOKEN`` is set in the environment; otherwise they stay pending
and unposted (the next worker run with Slack access posts them). Exit status: 0, or 2 for a bad config.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from bot.commands._args import positive_int
from bot.jobs.worker import KINDS

EXIT_BAD_INPUT = 2


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "worker", help="run the due work items once (scans, applies, rollbacks, digests...) and exit",
        description="Recover the queue, then run every due work item and exit.",
    )
    parser.add_argument("--config", default=os.environ.get("TIGHTEN_CONFIG"), help="Tighten config file")
    parser.add_argument("--db", help="Tighten's SQLite store (default: store.path from the config)")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated kinds (default {','.join(KINDS)})")
    parser.add_argument("--max-items", type=positive_int, default=10_000, help="stop after this many items")
    parser.add_argument("--slack-api-url", help="Slack Web API base URL (a local fake in tests)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from bot.config import ConfigError, load_config
    from bot.jobs.context import JobContext
    from bot.jobs.worker import Worker

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    if not args.config:
        print("tighten worker: --config FILE (or TIGHTEN_CONFIG) is required", file=sys.stderr)
        return EXIT_BAD_INPUT
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        print(f"tighten worker: unknown kind(s) {', '.join(unknown) or '(none)'}; expected {', '.join(KINDS)}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        cfg = load_config(args.config)
    except (ConfigError, OSError) as exc:
        print(f"tighten worker: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from bot.aws.account_access import aws_access, last_accessed_access
    from bot.store.db import ensure_store_directory

    if not args.db:
        ensure_store_directory(cfg.db_path)  # the configured store's directory belongs to Tighten
    ctx = JobContext(db_path=args.db or cfg.db_path, config=cfg, iam_for=aws_access(cfg),
                     worker_name=f"cli-worker-{os.getpid()}", last_accessed_for=last_accessed_access(cfg))
    ctx.notifier = _notifier(ctx, args)
    try:
        worker = Worker(ctx, kinds=kinds)
        recovered = worker.recover()
        ran = worker.run_until_idle(args.max_items)
    finally:
        ctx.close()
    print(f"recovered {recovered['requeued']} item(s), resumed {len(recovered['resumed'])} change(s); "
          f"ran {ran} item(s)")
    return 0


def _notifier(ctx: Any, args: argparse.Namespace) -> Any:
    token = os.environ.get("SLACK_BOT_TOKEN")
    if not token:
        logging.getLogger(__name__).warning("SLACK_BOT_TOKEN not set: nothing will be posted to Slack")
        return None
    from bot.slack.app import make_client
    from bot.slack.context import AppContext
    from bot.slack.notify import Notifier

    return Notifier(make_client(token, base_url=args.slack_api_url), AppContext(db_path=ctx.db_path,
                                                                                  config=ctx.config))
