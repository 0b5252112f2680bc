"""``tighten athena-ddl --location s3://BUCKET/AWSLogs/o-ORGID/ [--accounts A,B] [--regions R,S] [--table NAME]
[--database DB] [--start DATE] [--config FILE]``: print the CREATE TABLE statement for the organization trail.

Run the statement once in Athena (console or ``aws athena start-query-execution``); ``tighten ingest --athena``
then queries it. Accounts default to the config's ``accounts``, regions to every region botocore knows for
CloudTrail; both are partition-projection enums, so print the statement again (or ``ALTER TABLE ... SET
TBLPROPERTIES``) when accounts or regions are added. Prints nothing else and touches nothing. Exit 0, or 2
with a one-line reason.
"""

from __future__ import annotations

import argparse
import sys

from bot.commands.ingest import iso_date
from bot.config import ConfigError, load_config
from bot.trail.sql.table import DEFAULT_TABLE, athena_ddl

EXIT_BAD_INPUT = 2


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "athena-ddl", help="print the Athena CREATE TABLE for the organization trail (partition projection)",
        description="Print the Athena table for CloudTrail logs under --location, partitioned by account, region "
                    "and day with partition projection (no crawler, no ALTER TABLE ADD PARTITION).",
    )
    parser.add_argument("--location", metavar="S3_URL",
                        help="the trail's prefix: s3://bucket/AWSLogs/<org-id>/ (organization trail) or "
                             "s3://bucket/AWSLogs/ (one account); default: cloudtrail.source of --config")
    parser.add_argument("--accounts", metavar="ID,ID", help="account IDs (default: accounts of --config)")
    parser.add_argument("--regions", metavar="R,R", help="regions (default: every CloudTrail region botocore knows)")
    parser.add_argument("--table", metavar="NAME", help=f"table name (default: athena.table or {DEFAULT_TABLE})")
    parser.add_argument("--database", metavar="NAME", help="database to create it in (default: athena.database)")
    parser.add_argument("--start", type=iso_date, metavar="DATE", help="first day of the projection (2020-01-01)")
    parser.add_argument("--config", metavar="FILE", help="config file to take defaults from")
    parser.set_defaults(func=run)
    return parser


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def default_regions() -> list[str]:
    """Every region of the aws partition where botocore's endpoint data lists CloudTrail (no network)."""
    import boto3

    return sorted(boto3.session.Session().get_available_regions("cloudtrail"))


def run(args: argparse.Namespace) -> int:
    location, accounts, table, database = args.location, _split(args.accounts), args.table, args.database
    if args.config:
        try:
            cfg = load_config(args.config)
        except ConfigError as exc:
            print(f"tighten athena-ddl: {args.config}: {len(exc.problems)} problem(s); run tighten check-config",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
        except (OSError, ValueError) as exc:
            print(f"tighten athena-ddl: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        location = location or cfg.cloudtrail_source
        accounts = accounts or [a.id for a in cfg.accounts]
        table = table or cfg.athena.table
        database = database or cfg.athena.database
    if not location:
        print("tighten athena-ddl: give --location s3://BUCKET/AWSLogs/<org-id>/ (or cloudtrail.source in --config)",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    name = table or DEFAULT_TABLE
    if database:
        name = f"{database}.{name}"
    try:
        ddl = athena_ddl(location, accounts, _split(args.regions) or default_regions(), table=name,
                         **({"start": args.start} if args.start else {}))
    except ValueError as exc:
        print(f"tighten athena-ddl: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(ddl + ";")
    return 0
