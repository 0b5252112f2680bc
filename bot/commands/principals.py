"""``tighten principals [--db FILE]``: every principal in the usage index with its activity."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from bot.store.db import DEFAULT_DB, open_db
from bot.store.usage import UsageIndex


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "principals", help="list principals in the usage index",
        description="Principals seen in ingested CloudTrail logs: events (denied included), denied calls, "
                    "distinct actions used, first and last seen.",
    )
    parser.add_argument("--db", default=DEFAULT_DB, metavar="FILE", help=f"the index (default {DEFAULT_DB})")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    principals = UsageIndex(open_db(args.db, create=False)).principals()
    if not principals:
        print(f"no principals in {args.db}; run `tighten ingest --cloudtrail ...` first", file=sys.stderr)
        return 0
    table = Table(title=f"{len(principals)} principals in {args.db}")
    for col, justify in (("principal", "left"), ("kind", "left"), ("events", "right"), ("denied", "right"),
                         ("actions", "right"), ("first seen", "left"), ("last seen", "left")):
        table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for p in principals:
        kind = p.kind + (" (service-linked)" if p.service_linked else "")
        table.add_row(p.arn, kind, str(p.events), str(p.denied), str(p.distinct_actions), p.first_seen,
                      p.last_seen)
    Console(width=200).print(table)
    return 0
