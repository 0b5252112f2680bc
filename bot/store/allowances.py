"""Allowances offered in Slack: what an "Allow" button on an access-denied alert would allowlist.

A button's value is only ever the id of a stored row (``a-3f9a2b7c``), never the data itself: a denied resource
can be far longer than a button value may be (an S3 key of 1,024 bytes of emoji), and data squeezed into a
button would have to be cut or widened. The row keeps the exact action and resource; the click reads it back.
Offering the same (change, action, resource) twice returns the same id.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import sqlite_utils

from bot.util.clock import Clock, iso, utcnow


@dataclass(frozen=True)
class OfferedAllowance:
    id: str
    change_id: str
    proposal_id: str
    account: str
    principal_arn: str
    action: str
    resource: str  # exactly what the allowlist entry will hold ("*" only for actions that take no resource)
    offered_at: str
    used_by: str | None = None
    used_at: str | None = None


class AllowanceStore:
    def __init__(self, db: sqlite_utils.Database, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock
        ensure_schema(db)

    def offer(self, *, change_id: str, proposal_id: str, account: str, principal_arn: str, action: str,
              resource: str) -> OfferedAllowance:
        """Store the offer (or find the same one) and return it."""
        found = self._find(change_id, action, resource)
        if found is not None:
            return found
        offer = OfferedAllowance(id=f"a-{secrets.token_hex(4)}", change_id=change_id, proposal_id=proposal_id,
                                 account=account, principal_arn=principal_arn, action=action, resource=resource,
                                 offered_at=iso(self.clock()))
        self.db.conn.execute(
            "INSERT OR IGNORE INTO offered_allowances (id, change_id, proposal_id, account, principal_arn, action,"
            " resource, offered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (offer.id, change_id, proposal_id, account, principal_arn, action, resource, offer.offered_at))
        return self._find(change_id, action, resource) or offer

    def get(self, offer_id: str) -> OfferedAllowance | None:
        rows = list(self.db.query("SELECT * FROM offered_allowances WHERE id = ?", [offer_id]))
        return OfferedAllowance(**rows[0]) if rows else None

    def mark_used(self, offer_id: str, user: str) -> None:
        """Who clicked first (later clicks keep the first)."""
        self.db.conn.execute("UPDATE offered_allowances SET used_by = ?, used_at = ? WHERE id = ? AND used_by IS NULL",
                             (user, iso(self.clock()), offer_id))

    def _find(self, change_id: str, action: str, resource: str) -> OfferedAllowance | None:
        rows = list(self.db.query(
            "SELECT * FROM offered_allowances WHERE change_id = ? AND action = ? AND resource = ?",
            [change_id, action, resource]))
        return OfferedAllowance(**rows[0]) if rows else None


def ensure_schema(db: sqlite_utils.Database) -> None:
    db.conn.execute(
        """CREATE TABLE IF NOT EXISTS offered_allowances (
            id TEXT PRIMARY KEY, change_id TEXT NOT NULL, proposal_id TEXT NOT NULL, account TEXT NOT NULL,
            principal_arn TEXT NOT NULL, action TEXT NOT NULL, resource TEXT NOT NULL, offered_at TEXT NOT NULL,
            used_by TEXT, used_at TEXT, UNIQUE (change_id, action, resource)
        )"""
    )
