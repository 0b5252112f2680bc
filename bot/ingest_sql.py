"""Ingest from a SQL source: grouped rows of the usage query -> the normalizer -> the usage index.

The engine (Athena, CloudTrail Lake, or DuckDB locally) does the heavy part: it reads the day partitions and
groups identical calls (``bot/trail/sql/usage.sql``). Each grouped row is normalized once, as the event it
stands for, and added ``calls`` times (:meth:`ObjectUsage.add_calls`), so the index holds exactly what the
file ingest would have stored from the same logs (the tests check this row for row on every bundled sample).

Incremental by day: each day partition is one object in the index, keyed ``<source>/<YYYY-MM-DD>`` and
versioned by :class:`DayVersions`. A day whose stored version is final (a finished day for Athena, the same
set of files for the local engine) is never queried again, so re-running over a finished window costs no
query at all. A day still being written (today, and the first hours of tomorrow while late files arrive)
is stored as ``partial`` and queried again on the next run, which replaces it.

Fail closed: when the engine reports a failed, cancelled or timed-out query, or a row cannot be accounted
for, none of the days of that query is written (nor marked done); the reason is kept per day in
``UsageIndex.ingest_errors`` (which the scan pipeline checks) and the run's report.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from bot.store.usage import ENTRY, OBJECT, ObjectUsage, UsageIndex
from bot.trail.normalize import Normalizer, Skip
from bot.trail.records import CallRecord
from bot.trail.sql.query import day_of, usage_query
from bot.trail.sql.rows import QueryEngine, QueryFailed, calls_of, event_of

#: A day partition is complete this long after its end (CloudTrail delivers within about 15 minutes; late
#: files of day D still land in D's folder, or in D+1's when delivered after midnight).
SETTLE = timedelta(hours=2)
COMPLETE = "complete"
PARTIAL = "partial"

Progress = Callable[[int, int], None]  # (days done, days to query)


@dataclass(frozen=True)
class DayVersions:
    """How a source versions a day: the ETag to store now, and whether that version is final.

    ``by_time`` (Athena, Lake): ``complete`` once the day is over plus :data:`SETTLE`, else ``partial``.
    ``fixed`` (local files): the digest of the files read; final, so unchanged files are not queried again.
    """

    fixed: str | None = None
    now: datetime | None = None

    def version(self, day: date) -> tuple[str, bool]:
        if self.fixed is not None:
            return self.fixed, True
        now = self.now or datetime.now(UTC)
        end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        return (COMPLETE, True) if now >= end + SETTLE else (PARTIAL, False)


@dataclass
class SqlIngestReport:
    source: str
    days_seen: int = 0
    days_read: int = 0
    days_already_ingested: int = 0
    queries: int = 0
    rows: int = 0  # grouped rows read
    events: int = 0  # calls those rows stand for
    records: int = 0
    usage_events: int = 0
    denied: int = 0
    principals: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    errors: dict[str, str] = field(default_factory=dict)  # day (or local log object) key -> why not ingested
    unreadable: dict[str, str] = field(default_factory=dict)  # local directory entry that is not a regular file
    bytes_scanned: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    @property
    def reduction(self) -> float:
        """Calls per grouped row (how much the engine's grouping saved the normalizer)."""
        return self.events / self.rows if self.rows else 0.0

    def summary_lines(self) -> list[str]:
        lines = [
            f"days: {self.days_seen} seen, {self.days_read} queried, {self.days_already_ingested} already "
            f"ingested, {len(self.errors)} errors",
            f"queries: {self.queries}, {self.rows} grouped rows for {self.events} events "
            f"({self.reduction:.1f} events per row)",
            f"events: {self.usage_events} usage, {self.denied} denied, {self.skipped_total} skipped",
            f"principals: {self.principals}",
        ]
        if self.bytes_scanned or self.cost_usd:
            cost = f"{self.cost_usd:.2f}" if self.cost_usd >= 0.01 else f"{self.cost_usd:.6f}"
            lines.append(f"scanned: {self.bytes_scanned / 1e9:.3f} GB, estimated cost ${cost} "
                         "(Athena bills at least 10 MB a query)")
        if self.skipped:
            lines.append("skipped by reason: " + ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items())))
        lines.extend(f"error: {key}: {err}" for key, err in sorted(self.errors.items()))
        lines.extend(f"unreadable entry: {key}: {err}" for key, err in sorted(self.unreadable.items()))
        return lines


class _RowRefused(Exception):
    """A grouped row the index cannot take as it is (the day must not be marked done)."""


def _canonical_time(text: object) -> bool:
    return text.__class__ is str and len(text) == 20 and text[19] == "Z"  # type: ignore[arg-type]


class _DayBuilder:
    """Grouped rows -> one :class:`ObjectUsage` per day partition."""

    def __init__(self, normalizer: Normalizer, keys: dict[date, str], versions: dict[date, str]) -> None:
        self.normalizer = normalizer
        self.days = {d: ObjectUsage(key=keys[d], size=0, etag=versions[d]) for d in keys}
        self.rows = 0

    def add(self, row: dict) -> None:
        self.rows += 1
        log_date = row.get("log_date")
        try:
            out = self.days.get(day_of(log_date)) if log_date else None
        except (ValueError, TypeError, AttributeError):
            out = None
        if out is None:
            raise _RowRefused(f"a row for partition {log_date!r}, which the query did not ask for")
        calls = calls_of(row)
        out.size += calls
        raw = event_of(row)
        try:
            rec = self.normalizer.normalize(raw)
        except Exception:  # a normalizer bug must not stop the run: counted, never silent
            out.skip("normalize_error", calls)
            return
        if isinstance(rec, Skip):
            out.skip(rec.reason, calls)
            return
        if rec.denied and row.get("denied_event_id") is None:
            # the query grouped calls the normalizer calls denied: their event IDs are lost
            raise _RowRefused(f"denied calls ({rec.error_code}) grouped without their event IDs")
        out.add_calls(rec, calls, self._last(raw, row.get("last_time"), rec))

    def _last(self, raw: dict, last: object, rec: CallRecord) -> str:
        if last is None or last == raw.get("eventTime"):
            return rec.event_time
        if _canonical_time(last):
            return str(last)
        again = self.normalizer.normalize({**raw, "eventTime": last})
        return again.event_time if isinstance(again, CallRecord) else rec.event_time


def _batches(days: list[date], size: int) -> Iterable[list[date]]:
    for i in range(0, len(days), max(1, size)):
        yield days[i:i + max(1, size)]


def ingest_sql(engine: QueryEngine, index: UsageIndex, *, source: str, days: Sequence[date],
               query_for: Callable[[list[date]], str], versions: DayVersions, days_per_query: int = 1,
               progress: Progress | None = None) -> SqlIngestReport:
    """Query every day of ``days`` not yet final in ``index`` and store each as one object.

    ``source`` names the object keys (``<source>/<YYYY-MM-DD>``); ``query_for(days)`` builds the SQL for a
    batch of days (at most ``days_per_query``).
    """
    started = time.perf_counter()
    report = SqlIngestReport(source=source)
    todo: list[date] = []
    keys: dict[date, str] = {}
    etags: dict[date, str] = {}
    for day in sorted(set(days)):
        report.days_seen += 1
        key = f"{source}/{day.isoformat()}"
        etag, final = versions.version(day)
        old = index.ingested_version(key)
        if final and old is not None and old[1] == etag:
            report.days_already_ingested += 1
            continue
        todo.append(day)
        keys[day] = key
        etags[day] = etag
    normalizer = Normalizer()
    principals: set[str] = set()
    done = 0
    if progress:
        progress(0, len(todo))
    for batch in _batches(todo, days_per_query):
        builder = _DayBuilder(normalizer, {d: keys[d] for d in batch}, {d: etags[d] for d in batch})
        report.queries += 1
        try:
            result = engine.run(query_for(batch))
            for row in result.rows:
                builder.add(dict(row))
        except (QueryFailed, _RowRefused) as exc:
            for day in batch:
                report.errors[keys[day]] = str(exc)
                index.record_error(keys[day], str(exc), kind=OBJECT)
        else:
            report.bytes_scanned += result.stats.bytes_scanned
            report.cost_usd += result.stats.cost_usd
            report.rows += builder.rows
            objects = list(builder.days.values())
            for obj in objects:
                report.days_read += 1
                report.events += obj.size
                report.records += obj.events
                report.usage_events += obj.usage_events
                report.denied += obj.denied
                report.skipped.update(obj.skipped)
                principals.update(obj.principals)
            index.record_objects(objects)
        done += len(batch)
        if progress:
            progress(done, len(todo))
    report.principals = len(principals)
    report.seconds = time.perf_counter() - started
    return report


def window(since: date | None, until: date | None, *, lookback_days: int, today: date | None = None) -> list[date]:
    """Every UTC day from ``since`` (default: ``lookback_days`` before today) to ``until`` (default today)."""
    today = today or datetime.now(UTC).date()
    last = min(until or today, today)
    first = since or (today - timedelta(days=lookback_days))
    if first > last:
        return []
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def local_source_name(spec: str) -> str:
    """Key prefix of a local run's day objects: ``duckdb:<absolute path or s3 URL>``."""
    import os

    return "duckdb:" + (spec if spec.startswith("s3://") else os.path.abspath(spec)).rstrip("/")


def ingest_local(spec: str, index: UsageIndex, *, grouping: str = "projected", since: date | None = None,
                 until: date | None = None, s3_client: object = None,
                 progress: Progress | None = None) -> SqlIngestReport:
    """The SQL ingest over local (or S3) log files, run by DuckDB (:class:`bot.trail.sql.local.LocalTrail`).

    One query covers every day found; each day is versioned by the digest of the files read, so unchanged
    files are not queried again. Records the reader could not use are kept in one more object
    (``<source>/files``), as the file ingest keeps them per file; unreadable files go to the index's ingest
    errors. Raises :class:`bot.trail.sql.local.EngineMissing` without duckdb/sqlglot.
    """
    from bot.trail.sql.local import LocalTrail

    trail = LocalTrail(spec, since=since, until=until, s3_client=s3_client)
    source = local_source_name(spec)
    try:
        days = trail.log_dates()
        report = ingest_sql(trail, index, source=source, days=days,
                            query_for=lambda batch: usage_query("cloudtrail", batch, grouping=grouping),
                            versions=DayVersions(fixed=trail.version()), days_per_query=max(1, len(days)),
                            progress=progress)
        files = ObjectUsage(key=f"{source}/files", size=trail.events, etag=trail.version())
        files.skipped.update(trail.skipped)
        index.record_objects([files])
        report.skipped.update(trail.skipped)
        for key, why in trail.errors.items():
            index.record_error(key, why, kind=OBJECT)
            report.errors[key] = why
        for key, why in trail.unreadable.items():
            index.record_error(key, why, kind=ENTRY)
            report.unreadable[key] = why
    finally:
        trail.close()
    return report
