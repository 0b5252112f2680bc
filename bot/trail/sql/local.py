"""The usage query run locally by DuckDB, over CloudTrail logs loaded into a table shaped like Athena's.

``LocalTrail(spec)`` reads the log objects under a path (or ``s3://`` URL) with the same reader as the file
ingest and loads every record into an in-memory DuckDB table whose columns come from the Athena DDL
(:data:`bot.trail.sql.table.COLUMNS`, parsed with sqlglot), filled the way Athena's JSON SerDe fills them:
field names matched case-insensitively, unknown fields dropped, a nested object or a number in a ``STRING``
column kept as its JSON text (``requestparameters`` is a JSON string), a value of the wrong shape for a
struct, array or map column read as NULL. The partitions (account, region, log_date) come from the object's
trail path (``.../<account>/CloudTrail/<region>/YYYY/MM/DD/``) when it has one, else from the record
(recipient account, region, UTC day of the event), since Athena would find the file in that folder; a record
without a usable time goes to :data:`UNDATED`.

:meth:`LocalTrail.run` transpiles the Trino query with sqlglot and runs it: the same SQL text Athena runs,
which is what makes the local run a test of the query's meaning.

Needs the optional ``duckdb`` and ``sqlglot`` packages (``pip install 'tighten[sql]'``).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import orjson

from bot.trail.normalize import Skip
from bot.trail.reader import DEFAULT_LIMITS, Unreadable, iter_raw_records
from bot.trail.sources import LogObject, UnreadableEntry, iter_log_objects
from bot.trail.sql.query import day_of, to_duckdb
from bot.trail.sql.rows import QueryFailed, QueryResult, QueryStats, Row, unflatten_maps
from bot.trail.sql.table import COLUMNS, LAKE_COLUMNS, PARTITIONS

_TRAIL_PATH = re.compile(r"/(\d{12})/CloudTrail/([a-z0-9-]+)/(\d{4})/(\d{2})/(\d{2})/[^/]*$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
#: The partition of a record outside the trail layout whose event time names no day (the normalizer then counts
#: it by the reason it gives any such event).
UNDATED = "1970/01/01"
#: Shaped records written to the loader's JSON-lines file before DuckDB reads them, per write.
_WRITE_BATCH = 5000

Shaper = Callable[[Any], Any]


class EngineMissing(ImportError):
    """duckdb or sqlglot is not installed."""


def require_engine() -> None:
    """Raise :class:`EngineMissing` with an install hint unless duckdb and sqlglot can be imported."""
    missing = []
    for module in ("duckdb", "sqlglot"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise EngineMissing(f"the duckdb engine needs {' and '.join(missing)}: pip install 'tighten[sql]'")


def _string(value: Any) -> str | None:
    if value is None or value.__class__ is str:
        return value
    return orjson.dumps(value).decode()


def _timestamp(value: Any) -> str | None:
    """An ISO-8601 time as a UTC ``YYYY-MM-DD HH:MM:SS`` timestamp; None when unparseable (a typed store
    such as CloudTrail Lake holds no such value)."""
    if value.__class__ is not str:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def _struct_shaper(fields: dict[str, Shaper]) -> Shaper:
    """A JSON object -> the struct's fields, matched by lower-cased name; unknown and null fields left out (an
    absent field reads as NULL, and smaller rows are faster for DuckDB to parse)."""
    memo: dict[str, tuple[str, Shaper] | None] = {}  # key as spelled in the logs -> (field, shaper)

    def struct(value: Any) -> Any:
        if value.__class__ is not dict:
            return None
        out = {}
        for key, v in value.items():
            if v is None:
                continue
            try:
                field = memo[key]
            except KeyError:
                low = str(key).lower()
                fn = fields.get(low)
                field = (low, fn) if fn is not None else None
                if len(memo) < 10_000:
                    memo[key] = field
            if field is not None:
                v = field[1](v)
                if v is not None:
                    out[field[0]] = v
        return out

    return struct


def _shaper(dtype: Any) -> Shaper:
    from sqlglot import exp

    kind = dtype.this
    if kind == exp.DataType.Type.STRUCT:
        return _struct_shaper({f.name.lower(): _shaper(f.args["kind"]) for f in dtype.expressions})
    if kind == exp.DataType.Type.ARRAY:
        element = _shaper(dtype.expressions[0])

        def array(value: Any) -> Any:
            return [element(v) for v in value] if value.__class__ is list else None

        return array
    if kind in (exp.DataType.Type.TIMESTAMP, exp.DataType.Type.DATETIME):
        return _timestamp
    if kind == exp.DataType.Type.BOOLEAN:
        return lambda value: value if value.__class__ is bool else None
    if kind == exp.DataType.Type.MAP:

        def mapping(value: Any) -> Any:
            return {str(k): _string(v) for k, v in value.items()} if value.__class__ is dict else None

        return mapping
    return _string


def table_columns(columns: str = COLUMNS, partitions: tuple[str, ...] = PARTITIONS) -> list[tuple[str, str]]:
    """(column, DuckDB type) for every column of the table, partitions last."""
    return [(name, dtype.sql("duckdb")) for name, dtype in _column_types(columns)] + [(p, "VARCHAR") for p in partitions]


def _column_types(columns: str) -> list[tuple[str, Any]]:
    import sqlglot

    create = sqlglot.parse_one(f"CREATE TABLE t ({columns})", read="hive")
    return [(c.name.lower(), c.args["kind"]) for c in create.this.expressions]


def record_shaper(columns: str = COLUMNS) -> Shaper:
    """A raw CloudTrail record -> the table row (without the partition columns), as Athena's SerDe reads it."""
    return _struct_shaper({name: _shaper(dtype) for name, dtype in _column_types(columns)})


def _partition(key: str, record: dict[str, Any]) -> tuple[str | None, str | None, str]:
    m = _TRAIL_PATH.search(key.replace(os.sep, "/"))
    if m:
        return m.group(1), m.group(2), f"{m.group(3)}/{m.group(4)}/{m.group(5)}"
    when = record.get("eventTime") or record.get("@timestamp")
    d = _DAY.match(when) if when.__class__ is str else None
    account = record.get("recipientAccountId")
    region = record.get("awsRegion")
    return (account if account.__class__ is str else None, region if region.__class__ is str else None,
            f"{d.group(1)}/{d.group(2)}/{d.group(3)}" if d else UNDATED)


class LocalTrail:
    """Log objects under ``spec`` in a DuckDB table shaped like the Athena CloudTrail table."""

    def __init__(self, spec: str, *, since: date | None = None, until: date | None = None,
                 accounts: list[str] | None = None, regions: list[str] | None = None, s3_client: Any = None,
                 lake_table: str | None = None) -> None:
        require_engine()
        import duckdb

        self.spec = spec
        # lake_table: load the records shaped like CloudTrail Lake's schema into a table of that name instead
        # (tests of the Lake variant of the query); run() then post-processes rows as the Lake engine does
        self.lake_table = lake_table
        self.objects: list[LogObject] = list(iter_log_objects(spec, since=since, until=until, accounts=accounts,
                                                              regions=regions, s3_client=s3_client))
        self.limits = DEFAULT_LIMITS
        self.events = 0
        self.skipped: Counter[str] = Counter()  # records the reader could not use
        self.errors: dict[str, str] = {}  # object key -> "reason: detail": not used at all
        self.unreadable: dict[str, str] = {}  # directory entry that is not a regular file -> "reason: detail"
        self._con = duckdb.connect(":memory:")
        self._loaded = False

    def version(self) -> str:
        """A digest of the listed objects (key, size, ETag): changes when any of them changes."""
        h = hashlib.sha256()
        for obj in sorted(self.objects, key=lambda o: o.key):
            h.update(f"{obj.key}\0{obj.size}\0{obj.etag}\n".encode())
        return "sha256:" + h.hexdigest()[:32]

    def load(self) -> None:
        """Read every listed object into the table (once)."""
        if self._loaded:
            return
        with tempfile.TemporaryDirectory(prefix="tighten-duckdb-") as tmp:
            path = os.path.join(tmp, "records.jsonl")
            with open(path, "wb") as out:
                batch: list[bytes] = []
                for row in self._rows():
                    batch.append(orjson.dumps(row))
                    if len(batch) >= _WRITE_BATCH:
                        out.write(b"\n".join(batch) + b"\n")
                        batch = []
                if batch:
                    out.write(b"\n".join(batch) + b"\n")
            columns = table_columns(LAKE_COLUMNS, ()) if self.lake_table else table_columns()
            spec = ", ".join(f"'{name}': '{dtype}'" for name, dtype in columns)
            self._con.execute(
                f"CREATE TABLE {self.lake_table or 'cloudtrail'} AS SELECT * FROM read_json(?, "
                f"format='newline_delimited', columns={{{spec}}}, maximum_object_size=67108864)", [path])
        self._loaded = True

    def _rows(self) -> Iterator[dict[str, Any]]:
        """Table rows: each raw record as the SerDe reads it, plus the partition columns.

        As in the file ingest, an object is used whole or not at all: one the reader refuses (truncated,
        not CloudTrail, past a limit) or that cannot be read is reported in ``errors`` and none of its records
        is loaded; an entry that is not a regular file is reported in ``unreadable`` and never opened.
        """
        shape = record_shaper(LAKE_COLUMNS if self.lake_table else COLUMNS)
        for obj in self.objects:
            if obj.entry_problem is not None:
                self.unreadable[obj.key] = "{}: {}".format(*obj.entry_problem)
                continue
            if obj.size > self.limits.max_bytes:
                self.errors[obj.key] = (f"too_large: {obj.size:,} bytes, over the {self.limits.max_bytes:,} "
                                        "bytes an object may hold")
                continue
            rows: list[dict[str, Any]] = []
            skipped: Counter[str] = Counter()
            try:
                with obj.open() as fh:
                    for item in iter_raw_records(fh, obj.key, self.limits):
                        if isinstance(item, Skip):
                            skipped[item.reason] += 1
                            continue
                        rows.append(self._row(shape, obj.key, item))
            except UnreadableEntry as exc:
                self.unreadable[obj.key] = f"{exc.reason}: {exc.detail}"
                continue
            except Unreadable as exc:
                self.errors[obj.key] = str(exc)
                continue
            except Exception as exc:  # an unreadable object is reported (and retried on the next run)
                self.errors[obj.key] = f"read_error: {type(exc).__name__}: {exc}"
                continue
            self.skipped.update(skipped)
            self.events += len(rows)
            yield from rows

    def _row(self, shape: Shaper, key: str, item: dict[str, Any]) -> dict[str, Any]:
        row = shape(item)
        if row.get("eventtime") is None and item.get("@timestamp").__class__ is str:
            row["eventtime"] = item["@timestamp"]  # Logstash exports (OTRF) rename the field
            if self.lake_table:
                row["eventtime"] = _timestamp(item["@timestamp"])
        if not self.lake_table:
            account, region, log_date = _partition(key, item)
            row.update(account=account, region=region, log_date=log_date)
        return row

    def log_dates(self) -> list[date]:
        """The days (partitions) present in the table."""
        self.load()
        if self.lake_table:
            query = f"SELECT DISTINCT strftime(eventtime, '%Y/%m/%d') FROM {self.lake_table} WHERE eventtime IS NOT NULL"
        else:
            query = "SELECT DISTINCT log_date FROM cloudtrail WHERE log_date IS NOT NULL"
        return sorted(day_of(r[0]) for r in self._con.execute(query).fetchall())

    def run(self, sql: str) -> QueryResult:
        """Run the Trino query ``sql`` (table name ``cloudtrail``) in DuckDB."""
        self.load()
        try:
            cursor = self._con.execute(to_duckdb(sql))
        except Exception as exc:  # duckdb.Error and friends: the query is unusable as a whole
            raise QueryFailed(f"duckdb: {exc}") from exc
        names = [d[0] for d in cursor.description]

        def rows() -> Iterator[Row]:
            while True:
                chunk = cursor.fetchmany(10_000)
                if not chunk:
                    return
                for values in chunk:
                    row = dict(zip(names, values, strict=True))
                    yield unflatten_maps(row) if self.lake_table else row

        return QueryResult(rows(), QueryStats())

    def close(self) -> None:
        self._con.close()
