"""Scan cache and history: what the last scan of each principal saw and concluded.

A scan is keyed by what it depends on: the role's policy hash (attached ARNs + default documents, inline
documents, boundary) and the fingerprint of its usage in the lookback window. While both are unchanged a new
scan would compute the same proposal, so the planner skips the principal (:meth:`ScanCache.is_fresh`). Any
policy change or new usage changes a key and invalidates the entry; a scan that failed or was deferred is never
treated as fresh.

Results: ``proposed`` (a proposal was created), ``already_tight`` (the proposal equals the current permissions),
``incomplete`` (usage data incomplete for the window: fail closed, nothing proposed), ``deferred`` (the Access
Analyzer quota was used up), ``excluded`` (the role is out of scope: service-linked, protected, Tighten's own),
``refused`` (a proposal was computed but failed a safety check run before it is stored, e.g. it would grant
something the role does not hold today or deny a call the role made: fail closed, nothing is stored or posted;
``detail`` holds the check's name and the reason), ``failed`` (an error). Every scan also appends a row to
``scan_history``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from bot.store.db import transaction
from bot.util.clock import Clock, iso, utcnow

PROPOSED = "proposed"
ALREADY_TIGHT = "already_tight"
INCOMPLETE = "incomplete"
DEFERRED = "deferred"
EXCLUDED = "excluded"
REFUSED = "refused"
FAILED = "failed"

#: Results that settle a principal until its policy or usage changes.
SETTLED_RESULTS = (PROPOSED, ALREADY_TIGHT)


@dataclass
class ScanRecord:
    principal_arn: str
    account: str
    policy_hash: str
    usage_fingerprint: str
    result: str
    at: str
    proposal_id: str | None = None
    risk_score: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)


class ScanCache:
    def __init__(self, db: sqlite_utils.Database, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock
        ensure_schema(db)

    def get(self, principal_arn: str) -> ScanRecord | None:
        row = self.db.conn.execute(
            "SELECT principal_arn, account, policy_hash, usage_fingerprint, result, at, proposal_id, risk_score,"
            " detail FROM scan_cache WHERE principal_arn = ?", [principal_arn]).fetchone()
        return _record(row) if row else None

    def is_fresh(self, principal_arn: str, policy_hash: str, usage_fingerprint: str) -> bool:
        """True when the last settled scan saw exactly this policy and this usage."""
        rec = self.get(principal_arn)
        return (rec is not None and rec.result in SETTLED_RESULTS and rec.policy_hash == policy_hash
                and rec.usage_fingerprint == usage_fingerprint)

    def record(self, principal_arn: str, *, account: str, policy_hash: str, usage_fingerprint: str, result: str,
               proposal_id: str | None = None, risk_score: float = 0.0,
               detail: dict[str, Any] | None = None) -> ScanRecord:
        rec = ScanRecord(principal_arn=principal_arn, account=account, policy_hash=policy_hash,
                         usage_fingerprint=usage_fingerprint, result=result, at=iso(self.clock()),
                         proposal_id=proposal_id, risk_score=risk_score, detail=detail or {})
        values = [rec.principal_arn, rec.account, rec.policy_hash, rec.usage_fingerprint, rec.result, rec.at,
                  rec.proposal_id, rec.risk_score, json.dumps(rec.detail, sort_keys=True, default=str)]
        with transaction(self.db) as conn:
            conn.execute(
                "INSERT INTO scan_cache (principal_arn, account, policy_hash, usage_fingerprint, result, at,"
                " proposal_id, risk_score, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(principal_arn) DO UPDATE SET account = excluded.account,"
                " policy_hash = excluded.policy_hash, usage_fingerprint = excluded.usage_fingerprint,"
                " result = excluded.result, at = excluded.at, proposal_id = excluded.proposal_id,"
                " risk_score = excluded.risk_score, detail = excluded.detail", values)
            conn.execute(
                "INSERT INTO scan_history (principal_arn, account, policy_hash, usage_fingerprint, result, at,"
                " proposal_id, risk_score, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
        return rec

    def invalidate(self, principal_arn: str) -> None:
        """Forget the cached result (e.g. after an allowlist change for this principal)."""
        self.db.conn.execute("DELETE FROM scan_cache WHERE principal_arn = ?", [principal_arn])

    def all(self) -> list[ScanRecord]:
        rows = self.db.conn.execute(
            "SELECT principal_arn, account, policy_hash, usage_fingerprint, result, at, proposal_id, risk_score,"
            " detail FROM scan_cache ORDER BY risk_score DESC, principal_arn")
        return [_record(r) for r in rows]

    def history(self, principal_arn: str | None = None, *, since: str | None = None,
                limit: int = 1000) -> list[ScanRecord]:
        sql = ("SELECT principal_arn, account, policy_hash, usage_fingerprint, result, at, proposal_id,"
               " risk_score, detail FROM scan_history WHERE 1=1")
        params: list[Any] = []
        if principal_arn:
            sql += " AND principal_arn = ?"
            params.append(principal_arn)
        if since:
            sql += " AND at >= ?"
            params.append(since)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [_record(r) for r in self.db.conn.execute(sql, params)]


def _record(row: Any) -> ScanRecord:
    return ScanRecord(principal_arn=row[0], account=row[1], policy_hash=row[2], usage_fingerprint=row[3],
                      result=row[4], at=row[5], proposal_id=row[6], risk_score=row[7] or 0.0,
                      detail=json.loads(row[8] or "{}"))


def ensure_schema(db: sqlite_utils.Database) -> None:
    db.conn.execute(
        """CREATE TABLE IF NOT EXISTS scan_cache (
            principal_arn TEXT PRIMARY KEY, account TEXT NOT NULL, policy_hash TEXT NOT NULL,
            usage_fingerprint TEXT NOT NULL, result TEXT NOT NULL, at TEXT NOT NULL, proposal_id TEXT,
            risk_score REAL, detail TEXT
        )"""
    )
    db.conn.execute(
        """CREATE TABLE IF NOT EXISTS scan_history (
            id INTEGER PRIMARY KEY AUTOINCREMENT, principal_arn TEXT NOT NULL, account TEXT NOT NULL,
            policy_hash TEXT NOT NULL, usage_fingerprint TEXT NOT NULL, result TEXT NOT NULL, at TEXT NOT NULL,
            proposal_id TEXT, risk_score REAL, detail TEXT
        )"""
    )
    db.conn.execute("CREATE INDEX IF NOT EXISTS scan_history_principal ON scan_history (principal_arn, at)")
