"""IAM Access Analyzer policy generation as an optional proposal backend.

``generate_policy`` starts a generation (``StartPolicyGeneration`` with the trail and the access role from
config), polls ``GetGeneratedPolicy`` with exponential backoff (injectable sleep and clock), and converts the
result into plain policy documents plus notes on what it could not resolve. ``AccessAnalyzerQuota`` keeps the
account quotas in SQLite so the scheduler never triggers a quota error: by default 1 concurrent generation and
50 per day per account and region (IAM User Guide, "IAM Access Analyzer quotas"; cancelled jobs count too, so
every started job counts here, whatever its outcome).

Known limits of the service, reported as notes on every result (IAM User Guide, "IAM Access Analyzer policy
generation"): it never includes ``iam:PassRole``; data events give only service-level detail; it reviews
denied events too, so it can grant calls that were refused.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils
from botocore.exceptions import ClientError

from bot.store.db import transaction
from bot.util.clock import Clock, iso, utcnow

DEFAULT_CONCURRENT = 1
DEFAULT_PER_DAY = 50
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
SERVICE_LIMITS_NOTES = (
    "Access Analyzer never includes iam:PassRole: check whether the role passes roles to services.",
    "Access Analyzer reviews denied events too: actions that were refused may appear as grants.",
    "Data events (S3 objects, Lambda Invoke, DynamoDB items) appear at service level only, if at all.",
)


class QuotaExhausted(RuntimeError):
    """No generation may start now; ``retry_at`` says when one may (None: when a running one finishes)."""

    def __init__(self, message: str, retry_at: datetime | None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class GenerationFailed(RuntimeError):
    pass


class AccessAnalyzerQuota:
    """Generation slots per account, persisted so several processes and restarts share one count."""

    def __init__(self, db: sqlite_utils.Database, concurrent: int = DEFAULT_CONCURRENT,
                 per_day: int = DEFAULT_PER_DAY, clock: Clock = utcnow,
                 stale_after: timedelta = timedelta(hours=2)) -> None:
        self.db = db
        self.concurrent = concurrent
        self.per_day = per_day
        self.clock = clock
        self.stale_after = stale_after  # a slot never released (crash) stops counting as running after this
        _ensure_schema(db)

    def acquire(self, account: str, principal_arn: str) -> int:
        """Reserve a slot (counted against both quotas at once) or raise :class:`QuotaExhausted`."""
        now = self.clock()
        with transaction(self.db) as conn:
            running = conn.execute(
                "SELECT COUNT(*) FROM aa_generations WHERE account = ? AND finished_at IS NULL AND started_at > ?",
                (account, iso(now - self.stale_after))).fetchone()[0]
            day = conn.execute(
                "SELECT started_at FROM aa_generations WHERE account = ? AND started_at > ? ORDER BY started_at",
                (account, iso(now - timedelta(days=1)))).fetchall()
            if len(day) >= self.per_day:
                retry = datetime.fromisoformat(day[0][0].replace("Z", "+00:00")) + timedelta(days=1)
                raise QuotaExhausted(f"{len(day)} policy generations in the last 24 hours in account {account}"
                                     f" (limit {self.per_day})", retry)
            if running >= self.concurrent:
                raise QuotaExhausted(f"{running} policy generation(s) running in account {account}"
                                     f" (limit {self.concurrent})", None)
            cur = conn.execute(
                "INSERT INTO aa_generations (account, principal_arn, started_at, status) VALUES (?, ?, ?, ?)",
                (account, principal_arn, iso(now), "starting"))
            return int(cur.lastrowid or 0)

    def started(self, slot: int, job_id: str) -> None:
        self.db.conn.execute("UPDATE aa_generations SET job_id = ?, status = 'IN_PROGRESS' WHERE id = ?",
                             (job_id, slot))

    def release(self, slot: int, status: str) -> None:
        """The job ended (any status); the slot still counts against the daily quota."""
        self.db.conn.execute("UPDATE aa_generations SET finished_at = ?, status = ? WHERE id = ?",
                             (iso(self.clock()), status, slot))

    def usage(self, account: str) -> dict[str, int]:
        now = self.clock()
        rows = self.db.conn.execute(
            "SELECT SUM(finished_at IS NULL AND started_at > ?), COUNT(*) FROM aa_generations"
            " WHERE account = ? AND started_at > ?",
            (iso(now - self.stale_after), account, iso(now - timedelta(days=1)))).fetchone()
        return {"running": int(rows[0] or 0), "last_24h": int(rows[1] or 0),
                "concurrent_limit": self.concurrent, "daily_limit": self.per_day}


@dataclass
class GeneratedPolicy:
    principal_arn: str
    job_id: str
    documents: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    unresolved: dict[str, list[str]] = field(default_factory=dict)  # placeholder -> actions it affected
    service_level: list[str] = field(default_factory=list)  # services granted as "<service>:*"
    is_complete: bool = True


def generate_policy(client: Any, quota: AccessAnalyzerQuota, *, principal_arn: str, trail_arn: str,
                    access_role_arn: str, start: datetime, end: datetime | None = None,
                    regions: list[str] | None = None, sleep: Callable[[float], None] = time.sleep,
                    clock: Clock = utcnow, first_delay: float = 30.0, max_delay: float = 300.0,
                    timeout: timedelta = timedelta(hours=1)) -> GeneratedPolicy:
    """Run one generation end to end within the quota; raises QuotaExhausted or GenerationFailed."""
    account = principal_arn.split(":")[4]
    slot = quota.acquire(account, principal_arn)
    trail: dict[str, Any] = {"cloudTrailArn": trail_arn}
    if regions:
        trail["regions"] = regions
    else:
        trail["allRegions"] = True
    details: dict[str, Any] = {"trails": [trail], "accessRole": access_role_arn, "startTime": start}
    if end is not None:
        details["endTime"] = end
    try:
        job_id = client.start_policy_generation(policyGenerationDetails={"principalArn": principal_arn},
                                                cloudTrailDetails=details)["jobId"]
    except ClientError as exc:
        quota.release(slot, "rejected")
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ServiceQuotaExceededException":
            raise QuotaExhausted(f"Access Analyzer refused: {code}", None) from exc
        raise GenerationFailed(f"StartPolicyGeneration failed: {code}") from exc
    quota.started(slot, job_id)
    deadline = clock() + timeout
    delay = first_delay
    status = "IN_PROGRESS"
    try:
        while True:
            sleep(delay)
            response = client.get_generated_policy(jobId=job_id, includeResourcePlaceholders=True,
                                                    includeServiceLevelTemplate=True)
            status = response["jobDetails"]["status"]
            if status == "SUCCEEDED":
                return convert_generated(response, principal_arn)
            if status in ("FAILED", "CANCELED"):
                error = response["jobDetails"].get("jobError") or {}
                raise GenerationFailed(f"policy generation {job_id} {status.lower()}: "
                                       f"{error.get('code', '')} {error.get('message', '')}".strip())
            if clock() >= deadline:
                client.cancel_policy_generation(jobId=job_id)
                status = "CANCELED"
                raise GenerationFailed(f"policy generation {job_id} still running after {timeout}; cancelled")
            delay = min(delay * 2, max_delay)
    finally:
        quota.release(slot, status)


def convert_generated(response: dict[str, Any], principal_arn: str) -> GeneratedPolicy:
    """Plain documents from a ``GetGeneratedPolicy`` response: account/partition placeholders filled in from
    the principal, other placeholders widened to ``*`` and listed, service-level grants listed."""
    result = response.get("generatedPolicyResult", {})
    props = result.get("properties", {})
    partition, account = principal_arn.split(":")[1], principal_arn.split(":")[4]
    known = {"Partition": partition, "Account": account, "AccountId": account}
    out = GeneratedPolicy(principal_arn=principal_arn, job_id=response.get("jobDetails", {}).get("jobId", ""),
                          documents=[], is_complete=bool(props.get("isComplete", True)))
    for item in result.get("generatedPolicies", []):
        doc = json.loads(item["policy"])
        statements = doc.get("Statement", [])
        if isinstance(statements, dict):
            statements = [statements]
        for stmt in statements:
            actions = stmt.get("Action", [])
            actions = [actions] if isinstance(actions, str) else list(actions)
            for action in actions:
                if action == "*" or action.endswith(":*"):
                    out.service_level.append(action.split(":")[0])
            resources = stmt.get("Resource")
            if resources is None:
                continue
            single = isinstance(resources, str)
            fixed = [_fill(r, known, actions, out.unresolved) for r in ([resources] if single else resources)]
            stmt["Resource"] = fixed[0] if single else list(dict.fromkeys(fixed))
        doc["Statement"] = statements
        out.documents.append(doc)
    if not out.is_complete:
        out.notes.append("Access Analyzer did not read every log file (isComplete=false): actions may be missing.")
    for name, actions in sorted(out.unresolved.items()):
        out.notes.append(f"could not resolve ${{{name}}} (used by {', '.join(sorted(set(actions)))}); "
                         f"widened to '*' in that ARN: narrow it before approving")
    if out.service_level:
        out.notes.append("service-level grants (no action-level data): "
                         + ", ".join(f"{s}:*" for s in sorted(set(out.service_level))))
    out.notes.extend(SERVICE_LIMITS_NOTES)
    return out


def _fill(resource: str, known: dict[str, str], actions: list[str], unresolved: dict[str, list[str]]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in known:
            return known[name]
        unresolved.setdefault(name, []).extend(actions)
        return "*"

    return PLACEHOLDER.sub(replace, resource)


def _ensure_schema(db: sqlite_utils.Database) -> None:
    db.conn.execute(
        """CREATE TABLE IF NOT EXISTS aa_generations (
            id INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL, principal_arn TEXT NOT NULL,
            job_id TEXT, started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL
        )"""
    )
    db.conn.execute("CREATE INDEX IF NOT EXISTS aa_generations_account ON aa_generations (account, started_at)")
