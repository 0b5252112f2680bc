"""Changes Tighten made (or refused to make) to IAM roles: before-images, journaled steps, retention.

A change is created together with its complete before-image and its planned steps in one transaction, so
"no before-image stored -> no apply" holds by construction. States and the only transitions allowed::

    applying ──> applied ──rollback──> rolling_back ──> rolled_back
        └──(could not finish)────────> rolling_back ──> failed      (role restored to its before-image)
                                             └──> rollback_blocked  (the restore met someone else's change to
                                                  what Tighten touched; nothing of it was changed; a forced
                                                  rollback goes back to rolling_back)
    stale    (refused: the role changed since the proposal was computed; nothing touched)
    refused  (refused: role out of scope or the proposal breaks an IAM limit; nothing touched)

Every transition is one ``UPDATE ... WHERE state IN (...)`` inside ``BEGIN IMMEDIATE``: exactly one caller wins.

Ownership: whoever runs AWS steps of a change holds its lease (``owner``, ``lease_until``), taken atomically with
:meth:`ChangeStore.acquire` (or at creation) and renewed before every AWS call; a lease is only taken over once
it has expired, so no AWS step of one change ever runs twice concurrently (worker, restarted worker, CLI).

Nothing is lost: everything apply or rollback deletes, detaches or overwrites is first stored in
``change_saved`` (the exact document text, or the attachment), and listed in the result.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlite_utils

from bot.store.db import add_missing_columns, transaction
from bot.store.proposals import AuditLog
from bot.util.clock import Clock, iso, utcnow

APPLYING = "applying"
APPLIED = "applied"
ROLLING_BACK = "rolling_back"
ROLLED_BACK = "rolled_back"
FAILED = "failed"
STALE = "stale"
REFUSED = "refused"
ROLLBACK_BLOCKED = "rollback_blocked"

INCOMPLETE_STATES = (APPLYING, ROLLING_BACK)
#: A role with a change in one of these states takes no new change.
BUSY_STATES = (APPLYING, ROLLING_BACK, ROLLBACK_BLOCKED)
TRANSITIONS: dict[str, tuple[str, ...]] = {
    APPLIED: (APPLYING,),
    ROLLING_BACK: (APPLYING, APPLIED, ROLLBACK_BLOCKED),
    ROLLED_BACK: (ROLLING_BACK,),
    FAILED: (ROLLING_BACK,),
    ROLLBACK_BLOCKED: (ROLLING_BACK,),
}

#: How long a change's lease holds without renewal (renewed before every AWS call).
CHANGE_LEASE = timedelta(seconds=120)

STEP_PENDING = "pending"
STEP_DONE = "done"


@dataclass
class Change:
    id: str
    account: str
    role_name: str
    role_arn: str
    state: str
    created_at: str
    updated_at: str
    proposal_id: str | None = None
    requested_by: str | None = None
    expected_policy_hash: str = ""
    before_policy_hash: str = ""
    after_policy_hash: str | None = None
    documents: list[dict[str, Any]] = field(default_factory=list)  # what Tighten puts on the role
    policy_names: list[str] = field(default_factory=list)  # tighten-<role>, tighten-<role>-2, ...
    reason: str | None = None  # why stale/refused/failed, or the rollback request reason
    auto_rollback: bool = False  # rolling back because the apply failed (ends in "failed")
    rolled_back_by: str | None = None
    retention_days: int = 30
    owner: str | None = None  # who runs its AWS steps now (lease)
    lease_until: str | None = None


@dataclass
class Step:
    change_id: str
    phase: str  # "apply" | "rollback"
    seq: int
    kind: str  # put_policy | attach | detach | delete_inline | put_inline | ...
    target: str  # policy name or ARN, inline policy name
    params: dict[str, Any]
    state: str
    done_at: str | None = None
    result: dict[str, Any] = field(default_factory=dict)


class ChangeStore:
    def __init__(self, db: sqlite_utils.Database, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock
        self.audit = AuditLog(db, clock)
        ensure_schema(db)

    def create(self, *, account: str, role_name: str, role_arn: str, before_image: dict[str, Any],
               before_policy_hash: str, state: str, steps: list[tuple[str, str, dict[str, Any]]],
               documents: list[dict[str, Any]], policy_names: list[str], expected_policy_hash: str,
               proposal_id: str | None, requested_by: str | None, reason: str | None = None,
               retention_days: int = 30, owner: str | None = None) -> Change:
        """Insert a change, its before-image and its planned apply steps atomically; ``owner`` holds its lease
        from the start.

        Raises :class:`ChangeInProgress` when another change of the same role is still applying, rolling
        back or blocked (checked inside the same transaction)."""
        if not before_image:
            raise ValueError("a change needs a complete before-image")
        now = iso(self.clock())
        change = Change(
            id=new_change_id(), account=account, role_name=role_name, role_arn=role_arn, state=state,
            created_at=now, updated_at=now, proposal_id=proposal_id, requested_by=requested_by,
            expected_policy_hash=expected_policy_hash, before_policy_hash=before_policy_hash,
            documents=documents, policy_names=policy_names, reason=reason, retention_days=retention_days,
            owner=owner, lease_until=iso(self.clock() + CHANGE_LEASE) if owner else None,
        )
        with transaction(self.db) as conn:
            busy = conn.execute(
                f"SELECT id FROM changes WHERE account = ? AND role_name = ? AND state IN "
                f"({', '.join('?' for _ in BUSY_STATES)})",
                [account, role_name, *BUSY_STATES],
            ).fetchone()
            if busy and state == APPLYING:
                raise ChangeInProgress(f"change {busy[0]} on role {role_name} is still in progress")
            row = _to_row(change)
            conn.execute(f"INSERT INTO changes ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                         list(row.values()))
            conn.execute(
                "INSERT INTO before_images (change_id, snapshot, policy_hash, stored_at) VALUES (?, ?, ?, ?)",
                (change.id, json.dumps(before_image), before_policy_hash, now),
            )
            for seq, (kind, target, params) in enumerate(steps):
                conn.execute(
                    "INSERT INTO change_steps (change_id, phase, seq, kind, target, params, state)"
                    " VALUES (?, 'apply', ?, ?, ?, ?, ?)",
                    (change.id, seq, kind, target, json.dumps(params, sort_keys=True), STEP_PENDING),
                )
        self.audit.record(requested_by or "tighten", f"change.{state}", change.id, role=role_arn,
                          proposal=proposal_id, reason=reason)
        return change

    def get(self, change_id: str) -> Change | None:
        rows = list(self.db.query("SELECT * FROM changes WHERE id = ?", [change_id]))
        return _from_row(rows[0]) if rows else None

    def list(self, *, states: tuple[str, ...] | None = None, role_name: str | None = None,
             limit: int = 200) -> list[Change]:
        sql, params = "SELECT * FROM changes WHERE 1=1", []
        if states:
            sql += f" AND state IN ({', '.join('?' for _ in states)})"
            params.extend(states)
        if role_name:
            sql += " AND role_name = ?"
            params.append(role_name)
        sql += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        params.append(limit)
        return [_from_row(r) for r in self.db.query(sql, params)]

    def incomplete(self) -> list[Change]:
        """Changes a crash may have interrupted, oldest first."""
        return list(reversed(self.list(states=INCOMPLETE_STATES)))

    def newer_applied(self, change: Change) -> list[Change]:
        """Changes of the same role created after ``change`` and not (yet) undone."""
        return [_from_row(r) for r in self.db.query(
            "SELECT * FROM changes WHERE account = ? AND role_name = ? AND rowid > (SELECT rowid FROM changes"
            " WHERE id = ?) AND state IN (?, ?, ?, ?)",
            [change.account, change.role_name, change.id, APPLYING, APPLIED, ROLLING_BACK, ROLLBACK_BLOCKED])]

    def transition(self, change_id: str, to_state: str, *, actor: str | None = None, **fields: Any) -> bool:
        """Move to ``to_state`` if the current state allows it; False when someone else got there first."""
        allowed = TRANSITIONS[to_state]
        sets: dict[str, Any] = {"state": to_state, "updated_at": iso(self.clock())}
        for key, value in fields.items():
            sets[key] = json.dumps(value, sort_keys=True) if key in _JSON_FIELDS else value
        with transaction(self.db) as conn:
            cur = conn.execute(
                f"UPDATE changes SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ? AND state IN"
                f" ({', '.join('?' for _ in allowed)})",
                [*sets.values(), change_id, *allowed],
            )
            won = cur.rowcount == 1
        if won:
            self.audit.record(actor or "tighten", f"change.{to_state}", change_id,
                              **{k: v for k, v in fields.items() if k in ("reason", "after_policy_hash")})
        return won

    def before_image(self, change_id: str) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT snapshot FROM before_images WHERE change_id = ?", [change_id]))
        return json.loads(rows[0]["snapshot"]) if rows else None

    def steps(self, change_id: str, phase: str = "apply") -> list[Step]:
        return [_step(r) for r in self.db.query(
            "SELECT * FROM change_steps WHERE change_id = ? AND phase = ? ORDER BY seq", [change_id, phase])]

    def mark_step_done(self, step: Step, result: dict[str, Any] | None = None) -> None:
        step.state, step.done_at, step.result = STEP_DONE, iso(self.clock()), result or {}
        self.db.conn.execute(
            "UPDATE change_steps SET state = ?, done_at = ?, result = ? WHERE change_id = ? AND phase = ?"
            " AND seq = ?",
            (STEP_DONE, step.done_at, json.dumps(step.result, sort_keys=True), step.change_id, step.phase,
             step.seq),
        )

    def record_step(self, change_id: str, phase: str, kind: str, target: str,
                    result: dict[str, Any] | None = None, *, state: str = STEP_DONE) -> Step:
        """Append a step (rollback actions are computed, then journaled as they run: ``pending`` right before
        the AWS call, ``done`` after it, so a resumed rollback recognises its own in-flight action)."""
        with transaction(self.db) as conn:
            seq = conn.execute(
                "SELECT COALESCE(MAX(seq), -1) + 1 FROM change_steps WHERE change_id = ? AND phase = ?",
                (change_id, phase)).fetchone()[0]
            done_at = iso(self.clock()) if state == STEP_DONE else None
            step = Step(change_id, phase, seq, kind, target, {}, state, done_at, result or {})
            conn.execute(
                "INSERT INTO change_steps (change_id, phase, seq, kind, target, params, state, done_at, result)"
                " VALUES (?, ?, ?, ?, ?, '{}', ?, ?, ?)",
                (change_id, phase, seq, kind, target, state, step.done_at,
                 json.dumps(step.result, sort_keys=True)),
            )
        return step

    # -- ownership (leases) -----------------------------------------------------------------------------
    def acquire(self, change_id: str, owner: str) -> bool:
        """Take (or renew) the lease of a change: succeeds when nobody holds it, ``owner`` already does, or the
        holder's lease has expired."""
        now = self.clock()
        cur = self.db.conn.execute(
            "UPDATE changes SET owner = ?, lease_until = ? WHERE id = ? AND (owner IS NULL OR owner = ?"
            " OR lease_until IS NULL OR lease_until < ?)",
            (owner, iso(now + CHANGE_LEASE), change_id, owner, iso(now)))
        return cur.rowcount == 1

    def renew(self, change_id: str, owner: str) -> bool:
        """Extend ``owner``'s lease; False when it lost the change to someone else."""
        cur = self.db.conn.execute("UPDATE changes SET lease_until = ? WHERE id = ? AND owner = ?",
                                   (iso(self.clock() + CHANGE_LEASE), change_id, owner))
        return cur.rowcount == 1

    def release(self, change_id: str, owner: str) -> None:
        self.db.conn.execute("UPDATE changes SET owner = NULL, lease_until = NULL WHERE id = ? AND owner = ?",
                             (change_id, owner))

    def holder(self, change_id: str) -> str | None:
        """Who holds a live lease on the change, or None."""
        row = self.db.conn.execute("SELECT owner, lease_until FROM changes WHERE id = ?", (change_id,)).fetchone()
        if row is None or row[0] is None or row[1] is None or row[1] < iso(self.clock()):
            return None
        return str(row[0])

    # -- nothing is lost ---------------------------------------------------------------------------------
    def save(self, change_id: str, phase: str, kind: str, target: str, document: str | None,
             detail: dict[str, Any] | None = None) -> None:
        """Store what is about to be deleted, detached or overwritten: ``kind`` is ``inline`` (an inline
        policy's exact text), ``attachment`` (a managed policy attached to the role), ``policy_version`` (a
        managed policy version's exact text)."""
        self.db.conn.execute(
            "INSERT INTO change_saved (change_id, phase, kind, target, document, detail, saved_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (change_id, phase, kind, target, document, json.dumps(detail or {}, sort_keys=True),
             iso(self.clock())))

    def saved(self, change_id: str, phase: str | None = None) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM change_saved WHERE change_id = ?", [change_id]
        if phase:
            sql += " AND phase = ?"
            params.append(phase)
        rows = list(self.db.query(sql + " ORDER BY id", params))
        for row in rows:
            row["detail"] = json.loads(row["detail"] or "{}")
        return rows

    # -- outcome posts (exactly once) --------------------------------------------------------------------
    def outcome_posted(self, change_id: str, kind: str) -> bool:
        return self.db.conn.execute("SELECT 1 FROM change_posts WHERE change_id = ? AND kind = ?",
                                    (change_id, kind)).fetchone() is not None

    def record_outcome_post(self, change_id: str, kind: str, ts: str | None = None) -> bool:
        """Remember that the outcome of ``kind`` (``apply``, ``rollback``) was posted; False if it already was."""
        cur = self.db.conn.execute(
            "INSERT OR IGNORE INTO change_posts (change_id, kind, posted_at) VALUES (?, ?, ?)",
            (change_id, kind, ts or iso(self.clock())))
        return cur.rowcount == 1

    def forget_outcome_post(self, change_id: str, kind: str) -> None:
        self.db.conn.execute("DELETE FROM change_posts WHERE change_id = ? AND kind = ?", (change_id, kind))

    def retain(self, change_id: str, policy_arn: str, retain_until: str) -> None:
        """Remember a detached customer-managed policy Tighten must not delete before ``retain_until``."""
        self.db.conn.execute(
            "INSERT OR IGNORE INTO retained_policies (change_id, policy_arn, retain_until) VALUES (?, ?, ?)",
            (change_id, policy_arn, retain_until))

    def retained(self, change_id: str | None = None) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM retained_policies", []
        if change_id:
            sql += " WHERE change_id = ?"
            params.append(change_id)
        return list(self.db.query(sql + " ORDER BY retain_until", params))


class ChangeInProgress(RuntimeError):
    pass


_JSON_FIELDS = ("documents", "policy_names")


def new_change_id() -> str:
    return f"c-{secrets.token_hex(4)}"


def _to_row(change: Change) -> dict[str, Any]:
    row = dict(change.__dict__)
    for key in _JSON_FIELDS:
        row[key] = json.dumps(row[key], sort_keys=True)
    row["auto_rollback"] = int(change.auto_rollback)
    return row


def _from_row(row: dict[str, Any]) -> Change:
    row = dict(row)
    for key in _JSON_FIELDS:
        row[key] = json.loads(row[key]) if row.get(key) else []
    row["auto_rollback"] = bool(row["auto_rollback"])
    return Change(**row)


def _step(row: dict[str, Any]) -> Step:
    row = dict(row)
    row["params"] = json.loads(row["params"] or "{}")
    row["result"] = json.loads(row["result"] or "{}")
    return Step(**row)


def ensure_schema(db: sqlite_utils.Database) -> None:
    db.conn.execute(
        """CREATE TABLE IF NOT EXISTS changes (
            id TEXT PRIMARY KEY, account TEXT NOT NULL, role_name TEXT NOT NULL, role_arn TEXT NOT NULL,
            state TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, proposal_id TEXT,
            requested_by TEXT, expected_policy_hash TEXT, before_policy_hash TEXT, after_policy_hash TEXT,
            documents TEXT, policy_names TEXT, reason TEXT, auto_rollback INTEGER NOT NULL DEFAULT 0,
            rolled_back_by TEXT, retention_days INTEGER, owner TEXT, lease_until TEXT
        )"""
    )
    add_missing_columns(db, "changes", {"owner": "TEXT", "lease_until": "TEXT"})  # stores from before leases
    db.conn.execute("CREATE INDEX IF NOT EXISTS changes_role ON changes (account, role_name, state)")
    db.conn.execute(
        """CREATE TABLE IF NOT EXISTS before_images (
            change_id TEXT PRIMARY KEY REFERENCES changes(id), snapshot TEXT NOT NULL,
            policy_hash TEXT NOT NULL, stored_at TEXT NOT NULL
        )"""
    )
    db.conn.execute(
        """CREATE TABLE IF NOT EXISTS change_steps (
            change_id TEXT NOT NULL REFERENCES changes(id), phase TEXT NOT NULL, seq INTEGER NOT NULL,
            kind TEXT NOT NULL, target TEXT NOT NULL, params TEXT, state TEXT NOT NULL, done_at TEXT,
            result TEXT, PRIMARY KEY (change_id, phase, seq)
        )"""
    )
    db.conn.execute(
        """CREATE TABLE IF NOT EXISTS retained_policies (
            change_id TEXT NOT NULL REFERENCES changes(id), policy_arn TEXT NOT NULL,
            retain_until TEXT NOT NULL, PRIMARY KEY (change_id, policy_arn)
        )"""
    )
    db.conn.execute(
        """CREATE TABLE IF NOT EXISTS change_saved (
            id INTEGER PRIMARY KEY AUTOINCREMENT, change_id TEXT NOT NULL REFERENCES changes(id),
            phase TEXT NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL, document TEXT, detail TEXT,
            saved_at TEXT NOT NULL
        )"""
    )
    db.conn.execute("CREATE INDEX IF NOT EXISTS change_saved_change ON change_saved (change_id)")
    db.conn.execute(
        """CREATE TABLE IF NOT EXISTS change_posts (
            change_id TEXT NOT NULL, kind TEXT NOT NULL, posted_at TEXT NOT NULL, PRIMARY KEY (change_id, kind)
        )"""
    )
