"""The role directory: principals Tighten knows from inventory, with their scope and last policy hash.

``managed_as_code`` records whether the role is defined in Terraform or CloudFormation, and why (its stack tag
or the matching ``iac.rules`` entry). Refreshed by the scheduler's inventory step; read by Slack commands (``/tighten scan <role>`` resolves names
here), by scan planning, and by scans to judge roles a principal can pass or assume: ``privilege`` holds what
the role can do with its own permissions (``bot.policy.escalation.RoleProfile`` as JSON, with the policy hash
and escalation data version it was computed from), so that needs no AWS call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from bot.store.db import add_missing_columns
from bot.util.clock import Clock, iso, utcnow


@dataclass
class KnownRole:
    account: str
    arn: str
    name: str
    path: str = "/"
    in_scope: bool = True
    excluded_reason: str | None = None  # "service-linked", "protected", "own role", ...
    warnings: list[str] = field(default_factory=list)  # e.g. "insufficient history"
    policy_hash: str = ""
    created: str | None = None
    last_used: str | None = None
    refreshed_at: str = ""
    privilege: dict[str, Any] | None = None  # RoleProfile JSON + "policy_hash" + "data_version"
    # Managed as code, and why (``bot.aws.inventory.ManagedAsCode`` as JSON); None when not.
    managed_as_code: dict[str, Any] | None = None


class RoleDirectory:
    def __init__(self, db: sqlite_utils.Database, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock
        ensure_schema(db)

    def upsert(self, role: KnownRole) -> None:
        role.refreshed_at = role.refreshed_at or iso(self.clock())
        row: dict[str, Any] = dict(role.__dict__)
        row["in_scope"] = int(role.in_scope)
        row["warnings"] = json.dumps(role.warnings)
        row["privilege"] = json.dumps(role.privilege, sort_keys=True) if role.privilege is not None else None
        row["managed_as_code"] = (json.dumps(role.managed_as_code, sort_keys=True)
                                  if role.managed_as_code is not None else None)
        self.db["known_roles"].upsert(row, pk="arn")

    def get(self, arn: str) -> KnownRole | None:
        rows = list(self.db.query("SELECT * FROM known_roles WHERE arn = ?", [arn]))
        return _role(rows[0]) if rows else None

    def find(self, name_or_arn: str) -> list[KnownRole]:
        """Exact ARN, or role name (case-insensitive, as IAM names are), across accounts."""
        if name_or_arn.startswith("arn:"):
            found = self.get(name_or_arn)
            return [found] if found else []
        return [_role(r) for r in self.db.query(
            "SELECT * FROM known_roles WHERE lower(name) = lower(?) ORDER BY account", [name_or_arn])]

    def all(self, *, in_scope: bool | None = None, account: str | None = None) -> list[KnownRole]:
        sql, params = "SELECT * FROM known_roles WHERE 1=1", []
        if in_scope is not None:
            sql += " AND in_scope = ?"
            params.append(int(in_scope))
        if account:
            sql += " AND account = ?"
            params.append(account)
        return [_role(r) for r in self.db.query(sql + " ORDER BY account, name", params)]

    def privileges(self) -> list[dict[str, Any]]:
        """The stored ``privilege`` of every known role that has one (in scope or not: excluded roles such as
        protected admin roles are exactly the ones worth knowing)."""
        rows = self.db.conn.execute("SELECT privilege FROM known_roles WHERE privilege IS NOT NULL ORDER BY arn")
        return [json.loads(r[0]) for r in rows]


def _role(row: dict[str, Any]) -> KnownRole:
    row = dict(row)
    row["in_scope"] = bool(row["in_scope"])
    row["warnings"] = json.loads(row["warnings"] or "[]")
    row["privilege"] = json.loads(row["privilege"]) if row.get("privilege") else None
    row["managed_as_code"] = json.loads(row["managed_as_code"]) if row.get("managed_as_code") else None
    return KnownRole(**row)


def ensure_schema(db: sqlite_utils.Database) -> None:
    db.conn.execute(
        """CREATE TABLE IF NOT EXISTS known_roles (
            arn TEXT PRIMARY KEY, account TEXT NOT NULL, name TEXT NOT NULL, path TEXT, in_scope INTEGER,
            excluded_reason TEXT, warnings TEXT, policy_hash TEXT, created TEXT, last_used TEXT,
            refreshed_at TEXT, privilege TEXT, managed_as_code TEXT
        )"""
    )
    add_missing_columns(db, "known_roles", {"privilege": "TEXT", "managed_as_code": "TEXT"})
