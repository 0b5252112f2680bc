"""``tighten ingest --athena``, ``--engine lake`` and ``--engine duckdb``: usage from the grouped SQL query.

Wires the engines (Athena: ``bot/aws/athena.py``; CloudTrail Lake: ``bot/aws/lake.py``; DuckDB:
``bot/trail/sql/local.py``) to the SQL ingest
(``bot/ingest_sql.py``). Settings come from the flags, else from the ``athena`` section of ``--config``.
Exit 0; 1 when some day (or local log object) could not be ingested (it is retried next run); 2 for bad
arguments, a bad config or a missing optional engine; 3 when all was read but some local directory entries are
not regular files (as the file ingest).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bot.config import AthenaConfig, ConfigError, load_config
from bot.ingest_sql import DayVersions, SqlIngestReport, ingest_local, ingest_sql, window
from bot.store.db import open_db
from bot.store.usage import UsageIndex
from bot.trail.sql.query import GROUPINGS, lake_query, usage_query

EXIT_INCOMPLETE = 1
EXIT_BAD_INPUT = 2
EXIT_UNREADABLE_ENTRIES = 3
ENGINES = ("native", "duckdb", "athena", "lake")
DEFAULT_LOOKBACK_DAYS = 90


class _LazyIndex:
    def __init__(self, path: str) -> None:
        self.path = path
        self._index: UsageIndex | None = None

    def get(self) -> UsageIndex:
        if self._index is None:
            self._index = UsageIndex(open_db(self.path))
        return self._index


class _Refused(Exception):
    """Bad arguments or settings: one line for the user, exit 2."""


def add_sql_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("SQL engines (organization scale; see README \"Scaling past one machine\")")
    group.add_argument("--engine", choices=ENGINES, default="native",
                       help="native: read the log files here (default); duckdb: the grouped SQL query run "
                            "locally over --cloudtrail; athena: the same query in Athena over the trail's table; "
                            "lake: in a CloudTrail Lake event data store")
    group.add_argument("--athena", dest="engine", action="store_const", const="athena",
                       help="same as --engine athena")
    group.add_argument("--config", metavar="FILE", help="config file with an athena section (and lookback_days)")
    group.add_argument("--athena-database", metavar="NAME", help="Athena database (config: athena.database)")
    group.add_argument("--athena-table", metavar="NAME", help="table from `tighten athena-ddl` (athena.table)")
    group.add_argument("--athena-workgroup", metavar="NAME", help="workgroup (athena.workgroup, default primary)")
    group.add_argument("--athena-output", metavar="S3_URL", help="query result location (athena.output_location)")
    group.add_argument("--athena-region", metavar="REGION", help="region of the table (athena.region); "
                       "--endpoint-url applies to Athena too")
    group.add_argument("--lake-store", metavar="ID", help="CloudTrail Lake event data store ID (--engine lake)")
    group.add_argument("--lake-region", metavar="REGION", help="region of the event data store")
    group.add_argument("--grouping", choices=GROUPINGS,
                       help="projected: group by the request fields the event map reads (default); "
                            "full: by the whole request and response")
    group.add_argument("--days-per-query", type=int, metavar="N", help="day partitions per query (default 1)")


def run_sql(args: argparse.Namespace) -> int:
    err = Console(stderr=True)
    try:
        settings = _athena_config(args)
        if args.days_per_query is not None and args.days_per_query < 1:
            raise _Refused("--days-per-query must be at least 1")
        # the index is opened only once the arguments hold (bad input creates no file)
        index = _LazyIndex(args.db)
        if args.engine == "duckdb":
            report = _run_duckdb(args, settings, index, err)
        elif args.engine == "lake":
            report = _run_lake(args, settings, index, err)
        else:
            report = _run_athena(args, settings, index, err)
    except _Refused as exc:
        print(f"tighten ingest: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for line in report.summary_lines():
        print(line)
    print(f"index: {args.db} ({len(index.get().principals())} principals in total)")
    if report.errors:
        return EXIT_INCOMPLETE
    return EXIT_UNREADABLE_ENTRIES if report.unreadable else 0


def _athena_config(args: argparse.Namespace) -> AthenaConfig:
    base = AthenaConfig()
    lookback = DEFAULT_LOOKBACK_DAYS
    if args.config:
        try:
            cfg = load_config(args.config)
        except ConfigError as exc:
            raise _Refused(f"{args.config}: {len(exc.problems)} problem(s); run tighten check-config") from None
        except (OSError, ValueError) as exc:
            raise _Refused(str(exc)) from None
        base, lookback = cfg.athena, cfg.lookback_days
    args.lookback_days = lookback
    return AthenaConfig(
        database=args.athena_database or base.database,
        table=args.athena_table or base.table,
        workgroup=args.athena_workgroup or base.workgroup,
        output_location=args.athena_output or base.output_location,
        catalog=base.catalog,
        region=args.athena_region or base.region,
        price_per_tb=base.price_per_tb,
        grouping=args.grouping or base.grouping,
        days_per_query=args.days_per_query or base.days_per_query,
        query_timeout_minutes=base.query_timeout_minutes,
    )


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("ingest"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                    transient=True)


def _aws_client(service: str, region: str | None, endpoint_url: str | None, *, label: str | None = None) -> Any:
    import boto3
    from botocore.exceptions import BotoCoreError

    kwargs: dict[str, Any] = {}
    if region:
        kwargs["region_name"] = region
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    try:
        return boto3.client(service, **kwargs)
    except BotoCoreError as exc:  # no region configured, ...
        raise _Refused(f"{label or service}: {exc}") from None


def _days(args: argparse.Namespace) -> list[date]:
    days = window(args.since, args.until, lookback_days=args.lookback_days)
    if not days:
        raise _Refused("empty window: --since is after --until (or after today)")
    return days


def _ingest_days(engine: Any, index: _LazyIndex, err: Console, *, source: str, days: list[date], cfg: AthenaConfig,
                 query_for: Any) -> SqlIngestReport:
    with _progress(err) as bar:
        task = bar.add_task("ingest", total=None)
        return ingest_sql(engine, index.get(), source=source, days=days, query_for=query_for,
                          versions=DayVersions(), days_per_query=cfg.days_per_query,
                          progress=lambda done, total: bar.update(task, completed=done, total=total))


def _run_athena(args: argparse.Namespace, cfg: AthenaConfig, index: _LazyIndex, err: Console) -> SqlIngestReport:
    if not cfg.database:
        raise _Refused("--athena needs a database: --athena-database NAME or athena.database in --config")
    if args.cloudtrail:
        raise _Refused("--athena reads the trail's Athena table; --cloudtrail is for the native and duckdb engines")

    from bot.aws.athena import AthenaEngine, AthenaSettings

    settings = AthenaSettings(database=cfg.database, table=cfg.table, workgroup=cfg.workgroup,
                              output_location=cfg.output_location, catalog=cfg.catalog, region=cfg.region,
                              price_per_tb=cfg.price_per_tb, timeout_seconds=cfg.query_timeout_minutes * 60)
    engine = AthenaEngine(_aws_client("athena", cfg.region, args.endpoint_url), settings)
    days = _days(args)
    table = f"{cfg.database}.{cfg.table}"
    return _ingest_days(engine, index, err, source=settings.source_name, days=days, cfg=cfg,
                        query_for=lambda batch: usage_query(table, batch, grouping=cfg.grouping))


def _run_lake(args: argparse.Namespace, cfg: AthenaConfig, index: _LazyIndex, err: Console) -> SqlIngestReport:
    if not args.lake_store:
        raise _Refused("--engine lake needs --lake-store EVENT_DATA_STORE_ID")
    if args.cloudtrail:
        raise _Refused("--engine lake reads an event data store; --cloudtrail is for the native and duckdb engines")

    from bot.aws.lake import LakeEngine, LakeSettings

    settings = LakeSettings(event_data_store=args.lake_store, region=args.lake_region,
                            price_per_tb=cfg.price_per_tb, timeout_seconds=cfg.query_timeout_minutes * 60)
    try:
        lake_query(settings.event_data_store, [date(2020, 1, 1)])  # validates the ID
    except ValueError as exc:
        raise _Refused(str(exc)) from None
    engine = LakeEngine(_aws_client("cloudtrail", args.lake_region, args.endpoint_url, label="lake"), settings)
    days = _days(args)
    return _ingest_days(engine, index, err, source=settings.source_name, days=days, cfg=cfg,
                        query_for=lambda batch: lake_query(settings.event_data_store, batch))


def _run_duckdb(args: argparse.Namespace, cfg: AthenaConfig, index: _LazyIndex, err: Console) -> SqlIngestReport:
    if not args.cloudtrail:
        raise _Refused("--engine duckdb needs --cloudtrail PATH_OR_S3_URL")
    from bot.trail.sql.local import EngineMissing, require_engine

    try:
        require_engine()
    except EngineMissing as exc:
        raise _Refused(str(exc)) from None
    s3_client = None
    if args.cloudtrail.startswith("s3://"):
        import boto3

        s3_client = boto3.client("s3", endpoint_url=args.endpoint_url) if args.endpoint_url else boto3.client("s3")
    try:
        with _progress(err) as bar:
            task = bar.add_task("ingest", total=None)
            return ingest_local(args.cloudtrail, index.get(), grouping=cfg.grouping, since=args.since,
                                until=args.until, s3_client=s3_client,
                                progress=lambda done, total: bar.update(task, completed=done, total=total))
    except EngineMissing as exc:
        raise _Refused(str(exc)) from None
    except (FileNotFoundError, ValueError) as exc:
        raise _Refused(str(exc)) from None
