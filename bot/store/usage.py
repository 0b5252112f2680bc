"""The usage index: what every principal actually did, per day, from CloudTrail.

Tables (created by :func:`ensure_schema`):

``ingested_objects``
    One row per source object (file path or ``s3://bucket/key``) with its size and ETag, when it was read and
    what it held (events, usage events, denied, skips by reason). An object whose key, size and ETag are all
    unchanged is never read again.
``usage_days``
    ``(object_id, account, principal_arn, action, resource, invoked_by, day) -> count, first_seen, last_seen``.
    ``invoked_by`` is ``''`` for calls the principal made itself, else the AWS service that called on its behalf.
``object_principals``
    Per object and principal: kind, account, service-linked flag, events (including denied), first/last seen.
``denials``
    Every denied call (one row per action it needed) for the post-apply watch.
``ingest_errors``
    What could not be ingested, by ``kind``: ``object``, a log object that could not be used (an S3 error, a
    truncated or hostile file), cleared when the object is read successfully; ``entry``, a directory entry
    that is not a regular file (a FIFO, a device, a broken symlink), cleared when it is gone or becomes a
    readable file. Callers that must fail closed (the scan pipeline) check :meth:`UsageIndex.unread_logs`.

How duplicates are avoided: every row carries the ``object_id`` of the object it came from. When an object is
seen again with a different size or ETag, all of its old rows are deleted and its new contribution inserted in
the same transaction, so an event is never counted twice and a rewritten object never leaves stale rows.
The cost is one row per (object, principal, action, resource, day) instead of per day; queries aggregate.

Time windows (``since``/``until``) are by UTC day, both ends inclusive: ``"2024-08-01"`` or a full ISO
timestamp (only its date is used).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlite_utils

from bot.store.db import transaction
from bot.trail.records import CallRecord, Principal
from bot.util.clock import Clock, iso, utcnow

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ingested_objects (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    events INTEGER NOT NULL DEFAULT 0,
    usage_events INTEGER NOT NULL DEFAULT 0,
    denied INTEGER NOT NULL DEFAULT 0,
    skipped TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS usage_days (
    object_id INTEGER NOT NULL,
    account TEXT NOT NULL,
    principal_arn TEXT NOT NULL,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    invoked_by TEXT NOT NULL,
    day TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_days_principal ON usage_days (principal_arn, day);
CREATE INDEX IF NOT EXISTS usage_days_object ON usage_days (object_id);
CREATE TABLE IF NOT EXISTS object_principals (
    object_id INTEGER NOT NULL,
    arn TEXT NOT NULL,
    kind TEXT NOT NULL,
    account TEXT NOT NULL,
    service_linked INTEGER NOT NULL,
    events INTEGER NOT NULL,
    denied INTEGER NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS object_principals_arn ON object_principals (arn);
CREATE INDEX IF NOT EXISTS object_principals_object ON object_principals (object_id);
CREATE TABLE IF NOT EXISTS denials (
    object_id INTEGER NOT NULL,
    account TEXT NOT NULL,
    principal_arn TEXT NOT NULL,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    error_code TEXT NOT NULL,
    event_time TEXT NOT NULL,
    event_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS denials_principal ON denials (principal_arn, event_time);
CREATE INDEX IF NOT EXISTS denials_object ON denials (object_id);
CREATE TABLE IF NOT EXISTS ingest_errors (
    key TEXT PRIMARY KEY,
    error TEXT NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'object'
);
"""

#: Kinds of ``ingest_errors``: a log object that could not be used; a directory entry that is not a file.
OBJECT = "object"
ENTRY = "entry"
#: An AWS account id in an object key or path (``AWSLogs/<account>/``, ``<account>_CloudTrail_...``).
_ACCOUNT_IN_KEY = re.compile(r"(?<!\d)(\d{12})(?!\d)")


def ensure_schema(db: sqlite_utils.Database) -> None:
    db.conn.executescript(_SCHEMA)
    columns = {row[1] for row in db.conn.execute("PRAGMA table_info(ingest_errors)")}
    if "kind" not in columns:  # a store from before entries were told apart
        db.conn.execute(f"ALTER TABLE ingest_errors ADD COLUMN kind TEXT NOT NULL DEFAULT '{OBJECT}'")


#: SQLite page cache for the connection (KiB, negative = size): ingest batches touch two indexes per row;
#: the 2 MB default makes them re-read pages (measured: ~20% of the write time on the bench corpus).
CACHE_KIB = 32768


# -- query results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrincipalSummary:
    arn: str
    kind: str
    account: str
    service_linked: bool
    first_seen: str
    last_seen: str
    events: int  # all calls seen, denied included
    denied: int
    distinct_actions: int  # distinct actions used successfully (or attempted, e.g. throttled)


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Aggregated usage of one (account, principal, action, resource, invoked_by) over a window."""

    account: str
    principal_arn: str
    action: str
    resource: str
    invoked_by: str | None
    count: int
    first_seen: str
    last_seen: str
    days: tuple[str, ...]  # sorted distinct UTC days with at least one call

    @property
    def days_seen(self) -> int:
        return len(self.days)


@dataclass(frozen=True, slots=True)
class DenialRow:
    account: str
    principal_arn: str
    action: str
    resource: str
    error_code: str
    event_time: str
    event_id: str


# -- per-object aggregation (built by the ingest workers, written by the single writer) ------------


@dataclass
class ObjectUsage:
    """Everything one source object contributes to the index, aggregated in memory.

    Plain data (picklable) so a worker process can build it and the writer process store it.
    """

    key: str
    size: int
    etag: str
    events: int = 0
    usage_events: int = 0
    denied: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    # derived ARNs the normalizer refused (stored as the unknown resource), by lint reason
    unknown_resources: Counter[str] = field(default_factory=Counter)
    # (account, principal, action, resource, invoked_by, day) -> [count, first, last]
    usage: dict[tuple[str, str, str, str, str, str], list[Any]] = field(default_factory=dict)
    # principal arn -> [kind, account, service_linked, events, denied, first, last]
    principals: dict[str, list[Any]] = field(default_factory=dict)
    denials: list[tuple[str, str, str, str, str, str, str]] = field(default_factory=list)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] += n

    def add(self, rec: CallRecord) -> None:
        self.events += 1
        pr = rec.principal
        t = rec.event_time
        denied = rec.denied
        arn = pr.arn
        p = self.principals.get(arn)
        if p is None:
            self.principals[arn] = [pr.kind, pr.account, pr.service_linked, 1, 1 if denied else 0, t, t]
        else:
            p[3] += 1
            if denied:
                p[4] += 1
            if t > p[6]:  # events come mostly in time order
                p[6] = t
            elif t < p[5]:
                p[5] = t
            if pr.kind != p[0] or pr.account != p[1] or pr.service_linked != p[2]:
                _widen(p, pr)
        if denied:
            self.denied += 1
            code = rec.error_code or "AccessDenied"
            for use in rec.actions:
                if use.rejected:
                    self.unknown_resources[use.rejected] += 1
                self.denials.append((rec.account, pr.arn, use.action, use.resource, code, t, rec.event_id))
            return
        if not rec.actions:
            return
        self.usage_events += 1
        day = t[:10]
        inv = rec.invoked_by or ""
        account = rec.account
        usage = self.usage
        for use in rec.actions:
            if use.rejected:
                self.unknown_resources[use.rejected] += 1
            k = (account, arn, use.action, use.resource, inv, day)
            u = usage.get(k)
            if u is None:
                usage[k] = [1, t, t]
            else:
                u[0] += 1
                if t > u[2]:
                    u[2] = t
                elif t < u[1]:
                    u[1] = t

    def add_calls(self, rec: CallRecord, count: int, last: str) -> None:
        """``count`` calls identical to ``rec``, the first at ``rec.event_time`` and the last at ``last``, all
        on ``rec.day`` (one grouped row of a SQL source). Same result as :meth:`add` on each call."""
        if count < 1:
            return
        self.events += count
        pr = rec.principal
        first = rec.event_time
        last = max(first, last)
        denied = count if rec.denied else 0
        p = self.principals.get(pr.arn)
        if p is None:
            self.principals[pr.arn] = [pr.kind, pr.account, pr.service_linked, count, denied, first, last]
        else:
            p[3] += count
            p[4] += denied
            p[5] = min(p[5], first)
            p[6] = max(p[6], last)
            if pr.kind != p[0] or pr.account != p[1] or pr.service_linked != p[2]:
                _widen(p, pr)
        if rec.denied:
            self.denied += count
            code = rec.error_code or "AccessDenied"
            for _ in range(count):  # one row per call, as the file ingest stores them
                for use in rec.actions:
                    self.denials.append((rec.account, pr.arn, use.action, use.resource, code, first, rec.event_id))
            return
        if not rec.actions:
            return
        self.usage_events += count
        day = first[:10]
        inv = rec.invoked_by or ""
        for use in rec.actions:
            k = (rec.account, pr.arn, use.action, use.resource, inv, day)
            u = self.usage.get(k)
            if u is None:
                self.usage[k] = [count, first, last]
            else:
                u[0] += count
                u[1] = min(u[1], first)
                u[2] = max(u[2], last)


def _widen(p: list[Any], pr: Principal) -> None:
    """One ARN seen with several kinds or accounts (inconsistent logs): keep the greatest of each, as
    :meth:`UsageIndex.principals` does across objects, so the result never depends on the order of events."""
    p[0] = max(p[0], pr.kind)
    p[1] = max(p[1], pr.account)
    p[2] = p[2] or pr.service_linked


# -- the index -------------------------------------------------------------------------------------


def _day(value: str | None) -> str | None:
    return value[:10] if value else None


class UsageIndex:
    def __init__(self, db: sqlite_utils.Database, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock
        ensure_schema(db)
        db.conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")

    # -- ingest bookkeeping ------------------------------------------------------------------------
    def ingested(self) -> dict[str, tuple[int, str]]:
        """Every ingested object key -> (size, etag)."""
        return {r[0]: (r[1], r[2]) for r in self.db.conn.execute("SELECT key, size, etag FROM ingested_objects")}

    def ingested_version(self, key: str) -> tuple[int, str] | None:
        """(size, etag) of ``key`` when it was ingested, else None. An indexed lookup: ingest asks per listed
        object instead of loading every key (an organization trail holds millions)."""
        row = self.db.conn.execute("SELECT size, etag FROM ingested_objects WHERE key = ?", [key]).fetchone()
        return (row[0], row[1]) if row else None

    def needs_ingest(self, key: str, size: int, etag: str) -> bool:
        return self.ingested_version(key) != (size, etag)

    def record_objects(self, objects: Iterable[ObjectUsage]) -> None:
        """Store the contributions of several objects atomically, replacing older versions of them."""
        now = iso(self.clock())
        with transaction(self.db) as conn:
            for obj in objects:
                old = conn.execute("SELECT id FROM ingested_objects WHERE key = ?", [obj.key]).fetchone()
                if old is not None:
                    for table in ("usage_days", "object_principals", "denials"):
                        conn.execute(f"DELETE FROM {table} WHERE object_id = ?", [old[0]])
                    conn.execute("DELETE FROM ingested_objects WHERE id = ?", [old[0]])
                cur = conn.execute(
                    "INSERT INTO ingested_objects (key, size, etag, ingested_at, events, usage_events, denied, "
                    "skipped) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [obj.key, obj.size, obj.etag, now, obj.events, obj.usage_events, obj.denied,
                     orjson.dumps(dict(sorted(obj.skipped.items()))).decode()],
                )
                oid = cur.lastrowid
                conn.executemany(
                    "INSERT INTO usage_days VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(oid, *k, *v) for k, v in obj.usage.items()],
                )
                conn.executemany(
                    "INSERT INTO object_principals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(oid, arn, p[0], p[1], int(p[2]), p[3], p[4], p[5], p[6]) for arn, p in obj.principals.items()],
                )
                conn.executemany("INSERT INTO denials VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [(oid, *d) for d in obj.denials])
                conn.execute("DELETE FROM ingest_errors WHERE key = ?", [obj.key])

    def object_count(self) -> int:
        """How many log objects have been ingested (0: no data at all, so nothing can be proposed)."""
        return int(self.db.conn.execute("SELECT COUNT(*) FROM ingested_objects").fetchone()[0])

    def record_error(self, key: str, error: str, *, kind: str = OBJECT) -> None:
        """Remember that ``key`` could not be ingested (it stays un-ingested and is retried next time)."""
        self.db.conn.execute(
            "INSERT INTO ingest_errors (key, error, at, kind) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET error = excluded.error, at = excluded.at, kind = excluded.kind",
            [key, error[:500], iso(self.clock()), kind],
        )

    def clear_error(self, key: str) -> None:
        self.db.conn.execute("DELETE FROM ingest_errors WHERE key = ?", [key])

    def ingest_errors(self, kind: str = OBJECT) -> list[tuple[str, str, str]]:
        """What failed to ingest and has not been read successfully since, of one kind: (key, error, at)."""
        return [tuple(r) for r in self.db.conn.execute(
            "SELECT key, error, at FROM ingest_errors WHERE kind = ? ORDER BY key", [kind])]

    def unread_logs(self, account: str | None = None) -> list[tuple[str, str]]:
        """(key, error) of everything not ingested that makes ``account``'s usage incomplete: log objects that
        may hold its calls (a key naming no account may hold any account's), and unreadable directory entries
        whose path names it (one naming no account blocks nothing). ``account=None``: any account."""
        out: list[tuple[str, str]] = []
        for key, error, kind in self.db.conn.execute("SELECT key, error, kind FROM ingest_errors ORDER BY key"):
            named = _ACCOUNT_IN_KEY.findall(key)
            if kind == ENTRY:
                if named and (account is None or account in named):
                    out.append((key, error))
            elif not named or account is None or account in named:
                out.append((key, error))
        return out

    def skipped_totals(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for (raw,) in self.db.conn.execute("SELECT skipped FROM ingested_objects"):
            totals.update(orjson.loads(raw))
        return dict(sorted(totals.items()))

    # -- queries -----------------------------------------------------------------------------------
    def principals(self) -> list[PrincipalSummary]:
        conn = self.db.conn
        actions = dict(conn.execute(
            "SELECT principal_arn, COUNT(DISTINCT action) FROM usage_days GROUP BY principal_arn"))
        rows = conn.execute(
            "SELECT arn, MAX(kind), MAX(account), MAX(service_linked), MIN(first_seen), MAX(last_seen), "
            "SUM(events), SUM(denied) FROM object_principals GROUP BY arn ORDER BY arn"
        )
        return [
            PrincipalSummary(arn=r[0], kind=r[1], account=r[2], service_linked=bool(r[3]), first_seen=r[4],
                             last_seen=r[5], events=r[6], denied=r[7], distinct_actions=actions.get(r[0], 0))
            for r in rows
        ]

    def principal(self, arn: str) -> PrincipalSummary | None:
        return next((p for p in self.principals() if p.arn == arn), None)

    def usage(self, principal_arn: str, since: str | None = None, until: str | None = None,
              include_invoked_by: bool = True) -> list[UsageRow]:
        sql = ("SELECT account, action, resource, invoked_by, SUM(count), MIN(first_seen), MAX(last_seen), "
               "GROUP_CONCAT(DISTINCT day) FROM usage_days WHERE principal_arn = ?")
        params: list[Any] = [principal_arn]
        if since:
            sql += " AND day >= ?"
            params.append(_day(since))
        if until:
            sql += " AND day <= ?"
            params.append(_day(until))
        if not include_invoked_by:
            sql += " AND invoked_by = ''"
        sql += " GROUP BY account, action, resource, invoked_by ORDER BY action, resource, account, invoked_by"
        return [
            UsageRow(account=r[0], principal_arn=principal_arn, action=r[1], resource=r[2], invoked_by=r[3] or None,
                     count=r[4], first_seen=r[5], last_seen=r[6], days=tuple(sorted(r[7].split(","))))
            for r in self.db.conn.execute(sql, params)
        ]

    def denials(self, principal_arn: str, since: str | None = None) -> list[DenialRow]:
        """Denied calls of ``principal_arn`` at or after ``since`` (a full timestamp here, not only a day)."""
        sql = ("SELECT DISTINCT account, principal_arn, action, resource, error_code, event_time, event_id "
               "FROM denials WHERE principal_arn = ?")
        params: list[Any] = [principal_arn]
        if since:
            sql += " AND event_time >= ?"
            params.append(since)
        sql += " ORDER BY event_time, event_id, action, resource"
        return [DenialRow(*r) for r in self.db.conn.execute(sql, params)]

    def last_activity(self, principal_arn: str) -> str | None:
        """Time of the principal's latest call of any kind (denied included); None when never seen."""
        row = self.db.conn.execute(
            "SELECT MAX(last_seen) FROM object_principals WHERE arn = ?", [principal_arn]).fetchone()
        return row[0] if row else None

    def usage_fingerprint(self, principal_arn: str, since: str | None = None) -> str:
        """A digest of the principal's usage from ``since`` on: changes whenever that usage changes."""
        h = hashlib.sha256()
        for row in self.usage(principal_arn, since=since):
            h.update(orjson.dumps([row.account, row.action, row.resource, row.invoked_by, row.count,
                                   row.first_seen, row.last_seen, row.days]))
            h.update(b"\n")
        return h.hexdigest()[:32]
