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
from datetime import date
from typing import Any

import orjson

from bot.trail.normalize import Skip
from bot.trail.reader import iter_raw_records
from bot.trail.sources import LogObject, iter_log_objects
from bot.trail.sql.query import day_of, to_duckdb
from bot.trail.sql.rows import QueryFailed, QueryResult, QueryStats, Row
from bot.trail.sql.table import COLUMNS, PARTITIONS

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


def _shaper(dtype: Any) -> Shaper:
    from sqlglot import exp

    kind = dtype.this
    if kind == exp.DataType.Type.STRUCT:
        fields = [(f.name.lower(), _shaper(f.args["kind"])) for f in dtype.expressions]

        def struct(value: Any) -> Any:
            if value.__class__ is not dict:
                return None
            low = {str(k).lower(): v for k, v in value.items()}
            return {name: fn(low.get(name)) for name, fn in fields}

        return struct
    if kind == exp.DataType.Type.ARRAY:
        element = _shaper(dtype.expressions[0])

        def array(value: Any) -> Any:
            return [element(v) for v in value] if value.__class__ is list else None

        return array
    if kind == exp.DataType.Type.MAP:

        def mapping(value: Any) -> Any:
            return {str(k): _string(v) for k, v in value.items()} if value.__class__ is dict else None

        return mapping
    return _string


def table_columns() -> list[tuple[str, str, Shaper]]:
    """(column, DuckDB type, shaper) for every column of the Athena table, partitions last."""
    import sqlglot

    ddl = f"CREATE TABLE t ({COLUMNS})"
    create = sqlglot.parse_one(ddl, read="hive")
    out = [(c.name.lower(), c.args["kind"].sql("duckdb"), _shaper(c.args["kind"])) for c in create.this.expressions]
    return out + [(p, "VARCHAR", _string) for p in PARTITIONS]


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
                 accounts: list[str] | None = None, regions: list[str] | None = None, s3_client: Any = None) -> None:
        require_engine()
        import duckdb

        self.spec = spec
        self.objects: list[LogObject] = list(iter_log_objects(spec, since=since, until=until, accounts=accounts,
                                                              regions=regions, s3_client=s3_client))
        self.events = 0
        self.skipped: Counter[str] = Counter()  # records the reader or the loader could not place
        self.errors: dict[str, str] = {}  # object key -> why it could not be read
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
        columns = table_columns()
        with tempfile.TemporaryDirectory(prefix="tighten-duckdb-") as tmp:
            path = os.path.join(tmp, "records.jsonl")
            with open(path, "wb") as out:
                batch: list[bytes] = []
                for record in self._records():
                    batch.append(orjson.dumps({name: fn(record.get(name)) for name, _, fn in columns}))
                    if len(batch) >= _WRITE_BATCH:
                        out.write(b"\n".join(batch) + b"\n")
                        batch = []
                if batch:
                    out.write(b"\n".join(batch) + b"\n")
            spec = ", ".join(f"'{name}': '{dtype}'" for name, dtype, _ in columns)
            self._con.execute(
                f"CREATE TABLE cloudtrail AS SELECT * FROM read_json(?, format='newline_delimited', "
                f"columns={{{spec}}}, maximum_object_size=67108864)", [path])
        self._loaded = True

    def _records(self) -> Iterator[dict[str, Any]]:
        """Raw records as the SerDe sees them: lower-cased top-level names plus the partition columns."""
        for obj in self.objects:
            try:
                data = obj.read()
            except Exception as exc:  # an unreadable object is reported (and retried on the next run)
                self.errors[obj.key] = f"{type(exc).__name__}: {exc}"
                continue
            for item in iter_raw_records(data, obj.key):
                if isinstance(item, Skip):
                    self.skipped[item.reason] += 1
                    continue
                account, region, log_date = _partition(obj.key, item)
                self.events += 1
                record = {str(k).lower(): v for k, v in item.items()}
                if record.get("eventtime") is None and item.get("@timestamp") is not None:
                    record["eventtime"] = item["@timestamp"]  # Logstash exports (OTRF) rename the field
                record.update(account=account, region=region, log_date=log_date)
                yield record

    def log_dates(self) -> list[date]:
        """The days (partitions) present in the table."""
        self.load()
        rows = self._con.execute("SELECT DISTINCT log_date FROM cloudtrail WHERE log_date IS NOT NULL").fetchall()
        return sorted(day_of(r[0]) for r in rows)

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
                    yield dict(zip(names, values, strict=True))

        return QueryResult(rows(), QueryStats())

    def close(self) -> None:
        self._con.close()
