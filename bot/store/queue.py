"""The work queue: scans, applies, rollbacks and other jobs as rows in our own SQLite table.

Not APScheduler's job store: APScheduler only *triggers*; work lives here with explicit states
(``pending`` -> ``running`` -> ``done`` | ``failed``; ``cancelled``) and is claimed atomically with
``UPDATE ... RETURNING``, so two workers never run the same item.

Leases: a claimed item has an owner (``claimed_by``) and a lease (``lease_until``, ``LEASE`` from the claim). The
owner renews it with :meth:`WorkQueue.heartbeat` while it works (the worker does so every ``LEASE / 6``). A process
killed mid-item stops renewing; once the lease has expired, :meth:`WorkQueue.recover` puts the item back to
``pending`` (handlers are idempotent: apply is journaled, a scan overwrites its own proposal), so nothing is lost
and nothing that finished runs again. An item whose lease is still live is never taken from its owner, so two
processes on one store (``tighten serve`` and a ``tighten worker`` from cron, or a rolling restart) never run the
same item at once. Finishing an item (:meth:`complete`, :meth:`fail`) only counts for its current owner.
Clocks of processes sharing a store must agree to well within ``LEASE`` (NTP).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlite_utils

from bot.store.db import add_missing_columns, transaction
from bot.util.clock import Clock, iso, utcnow

PENDING, RUNNING, DONE, FAILED, CANCELLED = "pending", "running", "done", "failed", "cancelled"

#: How long a claim holds without a heartbeat. Long enough to ride out a stalled SQLite writer or a slow AWS call
#: between two heartbeats (every LEASE / 6 = 20 s), short enough that a dead process's item is taken over quickly.
LEASE = timedelta(seconds=120)

#: Applies and rollbacks run before scans (a person is waiting, and a half-done change must finish first).
APPLY_PRIORITY = 200
ROLLBACK_PRIORITY = 300


@dataclass(frozen=True)
class WorkItem:
    id: int
    kind: str
    payload: dict[str, Any]
    state: str
    priority: int
    dedupe_key: str | None
    requested_by: str | None
    created_at: str
    not_before: str | None
    attempts: int
    claimed_by: str | None
    error: str | None
    result: dict[str, Any] | None
    lease_until: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> WorkItem:
        return cls(
            id=row["id"], kind=row["kind"], payload=json.loads(row["payload"] or "{}"), state=row["state"],
            priority=row["priority"], dedupe_key=row["dedupe_key"], requested_by=row["requested_by"],
            created_at=row["created_at"], not_before=row["not_before"], attempts=row["attempts"],
            claimed_by=row["claimed_by"], error=row["error"],
            result=json.loads(row["result"]) if row["result"] else None, lease_until=row.get("lease_until"),
        )


class WorkQueue:
    def __init__(self, db: sqlite_utils.Database, clock: Clock = utcnow, max_attempts: int = 3,
                 lease: timedelta = LEASE) -> None:
        self.db = db
        self.clock = clock
        self.max_attempts = max_attempts
        self.lease = lease
        ensure_schema(db)

    # -- producing ------------------------------------------------------------------------
    def enqueue(self, kind: str, payload: dict[str, Any] | None = None, *, priority: int = 0,
                dedupe_key: str | None = None, requested_by: str | None = None,
                not_before: str | None = None) -> tuple[WorkItem, bool]:
        """Add an item; with ``dedupe_key``, an item with that key still pending or running is returned
        instead (``created`` False). Higher ``priority`` runs first."""
        with transaction(self.db) as conn:
            if dedupe_key is not None:
                row = conn.execute(
                    "SELECT * FROM work_items WHERE dedupe_key = ? AND state IN (?, ?) ORDER BY id LIMIT 1",
                    (dedupe_key, PENDING, RUNNING),
                ).fetchone()
                if row is not None:
                    # The same work asked for again: it keeps its place in line and is raised to the higher
                    # priority. Its requester never changes once set (the two-person rule must see the first
                    # person who asked); a person asking for an item nobody asked for (a scheduled scan)
                    # becomes its requester.
                    existing = self._item(row)
                    merged = dict(existing.payload)
                    asked = (payload or {}).get("requested_by")
                    if asked is not None and merged.get("requested_by") is None:
                        merged["requested_by"] = asked
                    conn.execute(
                        "UPDATE work_items SET priority = MAX(priority, ?), requested_by = COALESCE(requested_by, ?),"
                        " payload = ? WHERE id = ?",
                        (priority, requested_by, json.dumps(merged, sort_keys=True), existing.id),
                    )
                    return self.get(existing.id), False
            cur = conn.execute(
                "INSERT INTO work_items (kind, payload, state, priority, dedupe_key, requested_by, created_at,"
                " not_before, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
                (kind, json.dumps(payload or {}, sort_keys=True), PENDING, priority, dedupe_key, requested_by,
                 iso(self.clock()), not_before),
            )
            item_id = cur.lastrowid
        return self.get(int(item_id)), True  # type: ignore[arg-type]

    # -- consuming ------------------------------------------------------------------------
    def claim(self, worker: str, kinds: list[str] | None = None) -> WorkItem | None:
        """Atomically take the highest-priority due pending item (oldest first among equals), with a lease."""
        now = self.clock()
        kind_sql, params = "", [PENDING, iso(now)]
        if kinds:
            kind_sql = f" AND kind IN ({', '.join('?' for _ in kinds)})"
            params.extend(kinds)
        row = self.db.conn.execute(
            "UPDATE work_items SET state = ?, claimed_by = ?, claimed_at = ?, lease_until = ?,"
            " attempts = attempts + 1"
            " WHERE id = (SELECT id FROM work_items WHERE state = ? AND (not_before IS NULL OR not_before <= ?)"
            f"{kind_sql} ORDER BY priority DESC, id LIMIT 1) AND state = ? RETURNING *",
            [RUNNING, worker, iso(now), iso(now + self.lease), *params, PENDING],
        ).fetchone()
        return self._item(row) if row is not None else None

    def heartbeat(self, item_id: int, worker: str) -> bool:
        """Renew the lease of an item ``worker`` is running; False when it is no longer its owner (the lease
        expired and someone else took the item over, or it was finished)."""
        cur = self.db.conn.execute(
            "UPDATE work_items SET lease_until = ? WHERE id = ? AND state = ? AND claimed_by = ?",
            (iso(self.clock() + self.lease), item_id, RUNNING, worker),
        )
        return cur.rowcount == 1

    def complete(self, item_id: int, result: dict[str, Any] | None = None, *, worker: str | None = None) -> bool:
        return self._finish(item_id, DONE, result=result, worker=worker)

    def fail(self, item_id: int, error: str, *, retry: bool = False, not_before: str | None = None,
             worker: str | None = None) -> bool:
        """Record a failure; with ``retry`` and attempts left the item goes back to pending."""
        item = self.get(item_id)
        if retry and item.attempts < self.max_attempts:
            owner_sql, params = _owner(worker)
            cur = self.db.conn.execute(
                "UPDATE work_items SET state = ?, error = ?, not_before = ?, claimed_by = NULL, lease_until = NULL"
                f" WHERE id = ? AND state = ?{owner_sql}",
                (PENDING, error[:2000], not_before, item_id, RUNNING, *params),
            )
            return cur.rowcount == 1
        return self._finish(item_id, FAILED, error=error, worker=worker)

    def cancel(self, item_id: int) -> bool:
        cur = self.db.conn.execute(
            "UPDATE work_items SET state = ?, finished_at = ? WHERE id = ? AND state = ?",
            (CANCELLED, iso(self.clock()), item_id, PENDING),
        )
        return cur.rowcount == 1

    def recover(self, worker: str | None = None) -> int:
        """Items whose owner is gone go back to ``pending``. Without ``worker``: every running item whose lease
        has expired (items of older stores without a lease count as expired). With ``worker``: that worker's own
        items (a clean shutdown releasing what it still holds). Returns the count."""
        sql = "UPDATE work_items SET state = ?, claimed_by = NULL, lease_until = NULL WHERE state = ?"
        params: list[Any] = [PENDING, RUNNING]
        if worker is not None:
            sql += " AND claimed_by = ?"
            params.append(worker)
        else:
            sql += " AND (lease_until IS NULL OR lease_until < ?)"
            params.append(iso(self.clock()))
        return self.db.conn.execute(sql, params).rowcount

    def active(self, kind: str, dedupe_key: str) -> WorkItem | None:
        """The pending or running item of ``kind`` with ``dedupe_key``, if any."""
        row = self.db.conn.execute(
            "SELECT * FROM work_items WHERE kind = ? AND dedupe_key = ? AND state IN (?, ?) ORDER BY id LIMIT 1",
            (kind, dedupe_key, PENDING, RUNNING)).fetchone()
        return self._item(row) if row is not None else None

    # -- reading --------------------------------------------------------------------------
    def get(self, item_id: int) -> WorkItem:
        row = self.db.conn.execute("SELECT * FROM work_items WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            raise KeyError(f"no work item {item_id}")
        return self._item(row)

    def pending(self, kind: str | None = None) -> list[WorkItem]:
        """Pending and running items in the order they will run."""
        sql = "SELECT * FROM work_items WHERE state IN (?, ?)"
        params: list[Any] = [PENDING, RUNNING]
        if kind:
            sql += " AND kind = ?"
            params.append(kind)
        sql += " ORDER BY state = 'pending', priority DESC, id"
        return [self._item(r) for r in self.db.conn.execute(sql, params)]

    def position(self, item_id: int) -> int:
        """1-based position among pending items of the same kind (0 when running or finished)."""
        item = self.get(item_id)
        if item.state != PENDING:
            return 0
        row = self.db.conn.execute(
            "SELECT COUNT(*) FROM work_items WHERE state = ? AND kind = ? AND"
            " (priority > ? OR (priority = ? AND id <= ?))",
            (PENDING, item.kind, item.priority, item.priority, item.id),
        ).fetchone()
        return int(row[0])

    def items(self, *, state: str | None = None, kind: str | None = None, limit: int = 100) -> list[WorkItem]:
        sql, params = "SELECT * FROM work_items WHERE 1=1", []
        if state:
            sql += " AND state = ?"
            params.append(state)
        if kind:
            sql += " AND kind = ?"
            params.append(kind)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [self._item(r) for r in self.db.conn.execute(sql, params)]

    # -- internals ------------------------------------------------------------------------
    def _finish(self, item_id: int, state: str, *, result: dict[str, Any] | None = None,
                error: str | None = None, worker: str | None = None) -> bool:
        owner_sql, params = _owner(worker)
        cur = self.db.conn.execute(
            "UPDATE work_items SET state = ?, result = ?, error = ?, finished_at = ?, lease_until = NULL"
            f" WHERE id = ? AND state = ?{owner_sql}",
            (state, json.dumps(result, sort_keys=True) if result is not None else None,
             error[:2000] if error else None, iso(self.clock()), item_id, RUNNING, *params),
        )
        return cur.rowcount == 1

    def _item(self, row: Any) -> WorkItem:
        return WorkItem.from_row(dict(zip(self._columns, row, strict=True)))

    @property
    def _columns(self) -> list[str]:
        if not hasattr(self, "_cols"):
            self._cols = [d[0] for d in self.db.conn.execute("SELECT * FROM work_items LIMIT 0").description]
        return self._cols


def _owner(worker: str | None) -> tuple[str, tuple[str, ...]]:
    return (" AND claimed_by = ?", (worker,)) if worker is not None else ("", ())


def ensure_schema(db: sqlite_utils.Database) -> None:
    db.conn.execute(
        """CREATE TABLE IF NOT EXISTS work_items (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL DEFAULT '{}',
            state TEXT NOT NULL,
            priority INTEGER NOT NULL DEFAULT 0,
            dedupe_key TEXT,
            requested_by TEXT,
            created_at TEXT NOT NULL,
            not_before TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            claimed_by TEXT,
            claimed_at TEXT,
            finished_at TEXT,
            result TEXT,
            error TEXT,
            lease_until TEXT
        )"""
    )
    add_missing_columns(db, "work_items", {"lease_until": "TEXT"})  # stores created before leases
    db.conn.execute("CREATE INDEX IF NOT EXISTS work_items_state ON work_items (state, kind, priority, id)")
    db.conn.execute("CREATE INDEX IF NOT EXISTS work_items_dedupe ON work_items (dedupe_key, state)")
