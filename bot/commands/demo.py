"""``tighten demo [--out DIR] [--slack]``: the whole loop on an embedded AWS, every step checked (exit 0/1)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo", help="run the whole loop against an embedded AWS and a local Slack (exit 0 when every step worked)",
        description="Seed an embedded AWS (moto on 127.0.0.1) with over-privileged roles and 40 days of CloudTrail, "
                    "then ingest, scan, post review messages, approve one with a signed Slack request, apply it, "
                    "and roll it back. Exit 0 only if every step did what it said.",
    )
    parser.add_argument("--out", default="demo-out", metavar="DIR",
                        help="folder for the Block Kit JSON of each review message, the config and the store "
                             "(default: demo-out)")
    parser.add_argument("--slack", action="store_true",
                        help="post to a real Slack workspace: needs SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, "
                             "TIGHTEN_DEMO_CHANNEL (channel ID) and TIGHTEN_DEMO_APPROVER (your user ID)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from bot.demo.run import run_demo

    return run_demo(args.out, slack=args.slack)
