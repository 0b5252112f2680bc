"""The grouped usage query (``usage.sql``, Trino dialect) filled in for a table, a set of days and a grouping.

``usage_query(table, days)`` is what Athena runs; :func:`to_duckdb` transpiles the very same text with sqlglot
for the local engine (``bot/trail/sql/local.py``), which is how the tests check the query's meaning against
the native file ingest.

Groupings:

* ``projected`` (default): per event source, only the request/response keys the normalizer can read
  (:mod:`bot.trail.sql.fields`) are part of the group key;
* ``full``: the whole ``requestparameters`` and ``responseelements`` JSON strings are part of the key. Correct
  for any normalizer that reads only those fields, at the cost of fewer calls per group.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from pathlib import Path

from bot.trail.sql.fields import kept_fields

QUERY_PATH = Path(__file__).resolve().parent / "usage.sql"
LAKE_SOURCE_PATH = Path(__file__).resolve().parent / "lake_source.sql"
#: CloudTrail Lake's StartQuery takes at most this many characters (botocore's service model).
LAKE_MAX_QUERY = 10_000
GROUPINGS = ("projected", "full")

#: The output columns of the query, in order (the grouped row a source hands to the normalizer).
COLUMNS = (
    "log_date", "eventsource", "eventname", "eventtype", "awsregion", "recipientaccountid", "identity_type",
    "identity_arn", "identity_account", "identity_principal_id", "identity_user_name", "identity_provider",
    "identity_invoked_by", "issuer_arn", "request", "response", "resources", "errorcode", "denied_event_id",
    "calls", "first_time", "last_time",
)

#: ``database.table`` or ``catalog.database.table`` (plain identifiers, or double-quoted ones).
_IDENT = r'(?:[A-Za-z_][A-Za-z0-9_]*|"[^"]+")'
TABLE_NAME = re.compile(rf"^{_IDENT}(?:\.{_IDENT}){{0,2}}$")
_ACCOUNT = re.compile(r"^\d{12}$")
_EVENT_DATA_STORE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{2,127}$")
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d+$")


@functools.lru_cache(maxsize=1)
def template() -> str:
    return QUERY_PATH.read_text(encoding="utf-8")


def sql_string(value: str) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def log_date(day: date) -> str:
    """The partition value of a UTC day: the trail's S3 folder date ``YYYY/MM/DD``."""
    return day.strftime("%Y/%m/%d")


def day_of(log_date_value: str) -> date:
    return date.fromisoformat(log_date_value.replace("/", "-"))


def _kept_fields_values(grouping: str) -> str:
    if grouping == "full":
        # one row that matches no event source: every call keeps its whole request and response
        return "('', CAST(NULL AS ARRAY(VARCHAR)))"
    rows = []
    for source, names in kept_fields().items():
        array = "ARRAY[" + ", ".join(sql_string(n) for n in names) + "]" if names else "CAST(ARRAY[] AS ARRAY(VARCHAR))"
        rows.append(f"({sql_string(source)}, {array})")
    return ",\n        ".join(rows)


def usage_query(table: str, days: Iterable[date], *, grouping: str = "projected",
                accounts: Sequence[str] = (), regions: Sequence[str] = ()) -> str:
    """The grouped usage query over ``table`` for the partitions of ``days`` (and optional accounts/regions)."""
    if not TABLE_NAME.match(table):
        raise ValueError(f"not a table name (database.table): {table!r}")
    if grouping not in GROUPINGS:
        raise ValueError(f"grouping must be one of {', '.join(GROUPINGS)}, got {grouping!r}")
    wanted = sorted(set(days))
    if not wanted:
        raise ValueError("no day to query")
    for acct in accounts:
        if not _ACCOUNT.match(acct):
            raise ValueError(f"not an account ID: {acct!r}")
    for region in regions:
        if not _REGION.match(region):
            raise ValueError(f"not a region: {region!r}")
    scope = ""
    if accounts:
        scope += "\n      AND t.account IN (" + ", ".join(sql_string(a) for a in sorted(set(accounts))) + ")"
    if regions:
        scope += "\n      AND t.region IN (" + ", ".join(sql_string(r) for r in sorted(set(regions))) + ")"
    fill = {
        "table": table,
        "log_dates": ", ".join(sql_string(log_date(d)) for d in wanted),
        "scope": scope,
        "kept_fields": _kept_fields_values(grouping),
    }
    return re.sub(r"\{(table|log_dates|scope|kept_fields)\}", lambda m: fill[m.group(1)], template())


def _without_comments(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))


def lake_query(event_data_store: str, days: Iterable[date]) -> str:
    """The usage query over a CloudTrail Lake event data store (its ID, the last part of its ARN).

    The same text as :func:`usage_query` with the table replaced by ``lake_source.sql``, which presents the event
    data store in the Athena table's shape. Always the ``full`` grouping: the projection table does not fit in
    Lake's 10,000-character query limit.
    """
    if not _EVENT_DATA_STORE.match(event_data_store):
        raise ValueError(f"not an event data store ID: {event_data_store!r}")
    wanted = sorted(set(days))
    if not wanted:
        raise ValueError("no day to query")
    end = wanted[-1] + timedelta(days=1)
    source = LAKE_SOURCE_PATH.read_text(encoding="utf-8")
    fill_source = {"event_data_store": event_data_store, "start": sql_string(f"{wanted[0]} 00:00:00"),
                   "end": sql_string(f"{end} 00:00:00")}
    source = re.sub(r"\{(event_data_store|start|end)\}", lambda m: fill_source[m.group(1)],
                    _without_comments(source))
    fill = {
        "table": "(\n" + source + "\n)",
        "log_dates": ", ".join(sql_string(log_date(d)) for d in wanted),
        "scope": "",
        "kept_fields": _kept_fields_values("full"),
    }
    sql = re.sub(r"\{(table|log_dates|scope|kept_fields)\}", lambda m: fill[m.group(1)],
                 _without_comments(template()))
    if len(sql) > LAKE_MAX_QUERY:
        raise ValueError(f"the Lake query is {len(sql)} characters, over Lake's limit of {LAKE_MAX_QUERY}")
    return sql


def to_duckdb(sql: str) -> str:
    """The Trino query in DuckDB's dialect (sqlglot). Raises ImportError when sqlglot is not installed."""
    import sqlglot

    return sqlglot.transpile(sql, read="trino", write="duckdb", pretty=False)[0]
