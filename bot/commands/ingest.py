"""``tighten ingest --cloudtrail PATH_OR_S3_URL [--db FILE] [--since DATE] [--until DATE]``.

``--engine duckdb`` (with ``--cloudtrail``) and ``--athena`` read the same usage through the grouped SQL
query instead (``bot/commands/_sql_ingest.py``).

Reads every new or changed CloudTrail object into the usage index, with a progress bar on stderr and a
summary (files, events, principals, skipped records, errors and unreadable entries by reason) at the end.
Exit codes: see ``EXIT_CODES_HELP``.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bot.commands._args import positive_int
from bot.commands._sql_ingest import add_sql_arguments, run_sql
from bot.ingest import IngestReport, ingest
from bot.store.db import DEFAULT_DB, open_db
from bot.store.usage import UsageIndex

EXIT_READ_ERRORS = 1
EXIT_BAD_INPUT = 2
EXIT_UNREADABLE_ENTRIES = 3

EXIT_CODES_HELP = """exit codes:
  0  every log object listed was read
  1  finished, but some log objects could not be used (unreadable, truncated gzip, not CloudTrail, or past a
     size/ratio/record limit): nothing of them is in the index, they are listed with their reason, retried on
     the next run, and scans of the accounts they may hold are refused until then
  2  bad arguments, or the source does not exist
  3  finished and every log object was read, but some directory entries with log names are not regular files
     (FIFO, device, symlink loop, dangling symlink): skipped and listed; they make incomplete only an account
     their path names"""


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def add_source_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("--cloudtrail", required=required, metavar="PATH_OR_S3_URL",
                        help="a log file, a directory tree, or s3://bucket[/prefix] of a trail")
    parser.add_argument("--since", type=iso_date, metavar="DATE", help="first UTC day (YYYY-MM-DD)")
    parser.add_argument("--until", type=iso_date, metavar="DATE", help="last UTC day, inclusive")
    parser.add_argument("--endpoint-url", metavar="URL", help="S3 endpoint (e.g. a local test server)")
    parser.add_argument("--workers", type=positive_int, metavar="N", help="reader processes (default: by CPU count)")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "ingest", help="read new CloudTrail logs into the usage index",
        description="Read every new or changed CloudTrail object into the usage index (objects already "
                    "ingested are not read again). --since/--until select which log objects are listed.",
        epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_source_arguments(parser, required=False)
    parser.add_argument("--db", default=DEFAULT_DB, metavar="FILE", help=f"the index (default {DEFAULT_DB})")
    add_sql_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def s3_client_for(spec: str, endpoint_url: str | None) -> Any:
    if not spec.startswith("s3://"):
        return None
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url) if endpoint_url else boto3.client("s3")


def ingest_with_progress(args: argparse.Namespace, index: UsageIndex, console: Console) -> IngestReport:
    """Run :func:`bot.ingest.ingest` for the parsed source arguments with a rich progress bar."""
    with Progress(TextColumn("ingest"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("ingest", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return ingest(args.cloudtrail, index, since=args.since, until=args.until, progress=progress,
                      s3_client=s3_client_for(args.cloudtrail, args.endpoint_url), workers=args.workers)


def run(args: argparse.Namespace) -> int:
    if args.engine != "native":
        return run_sql(args)
    if not args.cloudtrail:
        print("tighten ingest: give --cloudtrail PATH_OR_S3_URL (or --athena)", file=sys.stderr)
        return EXIT_BAD_INPUT
    err = Console(stderr=True)
    index = UsageIndex(open_db(args.db))
    try:
        report = ingest_with_progress(args, index, err)
    except (FileNotFoundError, ValueError, BotoCoreError, ClientError) as exc:
        print(f"tighten ingest: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for line in report.summary_lines():
        print(line)
    print(f"index: {args.db} ({len(index.principals())} principals in total)")
    return exit_code(report)


def exit_code(report: IngestReport) -> int:
    if report.errors:
        return EXIT_READ_ERRORS
    return EXIT_UNREADABLE_ENTRIES if report.unreadable else 0
