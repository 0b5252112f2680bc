"""Proposals: a least-privilege policy proposed for one principal, and its review life cycle.

States and the only transitions allowed (each one a single atomic ``UPDATE ... WHERE state IN (...)``, so
two approvers clicking at once produce exactly one winner)::

    pending ──approve──> approved ──apply──> applying ──> applied ──rollback──> rolled_back
       │                    │                   └──> failed   (role left as it was)
       │                    ├──refuse──> refused  (the containment check right before apply failed)
       ├──reject──> rejected└──stale──> stale   (also from applying: the apply's stale guard)
       ├──expire──> expired
       ├──supersede──> superseded   (a newer scan of the same principal)
       ├──applied via code──> applied_via_code   (role managed as code: marked, or seen by the inventory;
       │                                          also from expired)
       └──stale──> stale            (the role changed since the proposal was computed)
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from bot.store.db import add_missing_columns, transaction
from bot.util.clock import Clock, iso, utcnow

PENDING = "pending"
APPROVED = "approved"
APPLYING = "applying"
APPLIED = "applied"
FAILED = "failed"
REJECTED = "rejected"
STALE = "stale"
EXPIRED = "expired"
SUPERSEDED = "superseded"
ROLLED_BACK = "rolled_back"
ALREADY_TIGHT = "already_tight"
APPLIED_VIA_CODE = "applied_via_code"  # deployed through the role's Terraform/CloudFormation, not by Tighten
REFUSED = "refused"

OPEN_STATES = (PENDING, APPROVED, APPLYING)
TRANSITIONS: dict[str, tuple[str, ...]] = {
    APPROVED: (PENDING,),
    REJECTED: (PENDING,),
    EXPIRED: (PENDING,),
    SUPERSEDED: (PENDING,),
    STALE: (PENDING, APPROVED, APPLYING),  # APPLYING: the apply's own stale guard refused, role untouched
    APPLYING: (APPROVED,),
    APPLIED: (APPLYING,),
    ROLLED_BACK: (APPLIED,),
    # marked by an approver, or seen by the inventory (the role now holds the proposal); also after expiry,
    # since a pipeline may deploy the change late
    APPLIED_VIA_CODE: (PENDING, EXPIRED),
    # the worker refuses a direct apply of a role managed as code when iac.direct_apply is off
    FAILED: (APPLYING, APPROVED),
    REFUSED: (APPROVED,),  # it would grant more than the role holds now: never applied
}

_JSON_FIELDS = ("documents", "current_documents", "risk_reasons", "warnings", "stats", "notes", "checks", "iac",
                "excluded_approvers")
_DICT_FIELDS = ("stats", "checks", "iac")


@dataclass
class Proposal:
    id: str
    account: str
    principal_arn: str
    role_name: str
    state: str
    created_at: str
    updated_at: str
    documents: list[dict[str, Any]]  # the proposed policy (several when split)
    current_documents: list[dict[str, Any]] = field(default_factory=list)  # [{"name":..., "document":...}]
    base_policy_hash: str = ""  # role's policy hash when computed (stale guard)
    usage_fingerprint: str = ""
    window_start: str | None = None
    window_end: str | None = None
    summary: str = ""
    diff_text: str = ""  # grouped diff (plain text)
    unified_diff: str = ""
    risk_score: float = 0.0
    risk_reasons: list[str] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)  # [{"code":..., "message":...}]
    stats: dict[str, Any] = field(default_factory=dict)  # removed/kept/added counts, escalations closed...
    notes: list[str] = field(default_factory=list)
    engine: str = "local"
    requested_by: str | None = None
    decided_by: str | None = None
    decided_at: str | None = None
    decision_reason: str | None = None
    channel: str | None = None
    message_ts: str | None = None
    change_id: str | None = None
    # Results of the safety checks run before the proposal was stored, by name: {"containment": {...},
    # "replay": {...}, "escalation": {...}, ...}. Each value is a JSON-able dict owned by its check.
    checks: dict[str, Any] = field(default_factory=dict)
    # Infrastructure as code: {"managed": ManagedAsCode JSON (absent when the role is not managed as code),
    # "direct_apply": bool, "role_inline": [names], "role_managed": [ARNs] (what the role held, for the
    # snippets), "checked_hash": policy hash last compared, "confirmed_at", "drift": {...}}.
    iac: dict[str, Any] = field(default_factory=dict)
    # Who may not approve this proposal and why (two-person rule), recorded when it is created:
    # [{"user": "U123", "reason": "requested this scan"}, {"user": "U456", "reason": "added the allowlist entry
    # iam:PassRole on * that this proposal grants"}]. ``bot.slack.approvals.approval_gate`` reads it.
    excluded_approvers: list[dict[str, str]] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def managed_as_code(self) -> dict[str, Any] | None:
        """Why the role is managed as code (``tool``, ``reason``, ``stack``, ``rule``), or None."""
        return self.iac.get("managed") or None


class ProposalStore:
    def __init__(self, db: sqlite_utils.Database, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock
        ensure_schema(db)

    def create(self, proposal: Proposal | None = None, **fields: Any) -> Proposal:
        """Insert a new pending proposal; older pending proposals for the same principal are superseded."""
        now = iso(self.clock())
        if proposal is None:
            proposal = Proposal(id=new_id("p"), state=PENDING, created_at=now, updated_at=now, **fields)
        row = _to_row(proposal)
        with transaction(self.db) as conn:
            conn.execute(
                "UPDATE proposals SET state = ?, updated_at = ? WHERE account = ? AND principal_arn = ?"
                " AND state = ?",
                (SUPERSEDED, now, proposal.account, proposal.principal_arn, PENDING),
            )
            cols = list(row)
            conn.execute(
                f"INSERT INTO proposals ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                [row[c] for c in cols],
            )
        return proposal

    def get(self, proposal_id: str) -> Proposal | None:
        rows = list(self.db.query("SELECT * FROM proposals WHERE id = ?", [proposal_id]))
        return _from_row(rows[0]) if rows else None

    def transition(self, proposal_id: str, to_state: str, **fields: Any) -> Proposal | None:
        """Move to ``to_state`` if (and only if) the current state allows it; returns the updated proposal,
        or None when another actor got there first / the transition is not allowed."""
        allowed = TRANSITIONS[to_state]
        sets = {"state": to_state, "updated_at": iso(self.clock())}
        for key, value in fields.items():
            sets[key] = json.dumps(value, sort_keys=True) if key in _JSON_FIELDS else value
        assignments = ", ".join(f"{k} = ?" for k in sets)
        cur = self.db.conn.execute(
            f"UPDATE proposals SET {assignments} WHERE id = ? AND state IN ({', '.join('?' for _ in allowed)})",
            [*sets.values(), proposal_id, *allowed],
        )
        if cur.rowcount != 1:
            return None
        return self.get(proposal_id)

    def update(self, proposal_id: str, **fields: Any) -> None:
        """Set non-state fields (message ts, channel, ...)."""
        if "state" in fields:
            raise ValueError("use transition() to change state")
        sets = {k: (json.dumps(v, sort_keys=True) if k in _JSON_FIELDS else v) for k, v in fields.items()}
        sets["updated_at"] = iso(self.clock())
        self.db.conn.execute(
            f"UPDATE proposals SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?",
            [*sets.values(), proposal_id],
        )

    def list(self, *, states: tuple[str, ...] | None = None, principal_arn: str | None = None,
             account: str | None = None, limit: int = 200) -> list[Proposal]:
        sql, params = "SELECT * FROM proposals WHERE 1=1", []
        if states:
            sql += f" AND state IN ({', '.join('?' for _ in states)})"
            params.extend(states)
        if principal_arn:
            sql += " AND principal_arn = ?"
            params.append(principal_arn)
        if account:
            sql += " AND account = ?"
            params.append(account)
        sql += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        params.append(limit)
        return [_from_row(r) for r in self.db.query(sql, params)]

    def latest(self, principal_arn: str) -> Proposal | None:
        found = self.list(principal_arn=principal_arn, limit=1)
        return found[0] if found else None

    def find_by_role(self, role: str) -> list[Proposal]:
        """Proposals whose role name or principal ARN is ``role``, newest first."""
        return [_from_row(r) for r in self.db.query(
            "SELECT * FROM proposals WHERE role_name = ? OR principal_arn = ? ORDER BY created_at DESC, rowid DESC",
            [role, role])]


class AuditLog:
    """Append-only record of who did what (never tokens or credentials)."""

    def __init__(self, db: sqlite_utils.Database, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock
        ensure_schema(db)

    def record(self, actor: str, action: str, subject: str, **detail: Any) -> None:
        self.db.conn.execute(
            "INSERT INTO audit (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)",
            (iso(self.clock()), actor, action, subject, json.dumps(detail, sort_keys=True, default=str)),
        )

    def entries(self, subject: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM audit", []
        if subject:
            sql += " WHERE subject = ?"
            params.append(subject)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        out = []
        for row in self.db.query(sql, params):
            row["detail"] = json.loads(row["detail"] or "{}")
            out.append(row)
        return out


def new_id(prefix: str) -> str:
    """Short, unguessable, easy to type in Slack: ``p-3f9a2b7c``."""
    return f"{prefix}-{secrets.token_hex(4)}"


def _to_row(p: Proposal) -> dict[str, Any]:
    row = dict(p.__dict__)
    for key in _JSON_FIELDS:
        row[key] = json.dumps(row[key], sort_keys=True)
    return row


def _from_row(row: dict[str, Any]) -> Proposal:
    row = dict(row)
    for key in _JSON_FIELDS:
        row[key] = json.loads(row[key]) if row.get(key) else ({} if key in _DICT_FIELDS else [])
    return Proposal(**row)


def ensure_schema(db: sqlite_utils.Database) -> None:
    db.conn.execute(
        """CREATE TABLE IF NOT EXISTS proposals (
            id TEXT PRIMARY KEY, account TEXT NOT NULL, principal_arn TEXT NOT NULL, role_name TEXT NOT NULL,
            state TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
            documents TEXT NOT NULL, current_documents TEXT, base_policy_hash TEXT, usage_fingerprint TEXT,
            window_start TEXT, window_end TEXT, summary TEXT, diff_text TEXT, unified_diff TEXT,
            risk_score REAL, risk_reasons TEXT, warnings TEXT, stats TEXT, notes TEXT, engine TEXT,
            requested_by TEXT, decided_by TEXT, decided_at TEXT, decision_reason TEXT,
            channel TEXT, message_ts TEXT, change_id TEXT, checks TEXT, iac TEXT, excluded_approvers TEXT
        )"""
    )
    add_missing_columns(db, "proposals", {"checks": "TEXT", "iac": "TEXT", "excluded_approvers": "TEXT"})
    db.conn.execute("CREATE INDEX IF NOT EXISTS proposals_principal ON proposals (principal_arn, state)")
    db.conn.execute(
        """CREATE TABLE IF NOT EXISTS audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL,
            action TEXT NOT NULL, subject TEXT NOT NULL, detail TEXT
        )"""
    )
