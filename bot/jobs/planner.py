"""Scan planning: which in-scope roles to scan, in which order, and when.

Every in-scope role of every configured account is read (``list_role_snapshots``), recorded in the role
directory (excluded roles too, each with what it could escalate to: ``bot.jobs.role_privilege``, and whether it
is managed as code), reconciled with its proposals (``bot.jobs.iac``: deployed through code, back to the old
permissions), and ranked by :func:`rank_key`: the risk score of what it holds now (roles that can administer
IAM or escalate rank first, by ``bot.policy.risk``), then the breadth of its unused grants. A role whose
policies and usage are unchanged since its last settled scan is skipped (scan cache); a role with no unused
grant gets priority 0 (it is likely already tight). Each role gets one pending ``scan`` item at most (dedupe key
``scan:<arn>``). With ``schedules.off_hours`` set, planned scans wait (``not_before``) for the next window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.aws.inventory import ManagedAsCode, RoleSnapshot, list_role_snapshots
from bot.config import OffHours
from bot.jobs.context import JobContext
from bot.jobs.iac import reconcile_role
from bot.jobs.role_privilege import role_privilege, snapshot_permissions
from bot.jobs.scan import last_used, scan_fingerprint, scope_from_config
from bot.policy.risk import risk_score
from bot.slack.listeners import MANUAL_SCAN_PRIORITY, scan_dedupe_key
from bot.store.roles import KnownRole
from bot.util.clock import iso

SCAN = "scan"

#: Planned scans take priorities 1..99 (0 for roles with no unused grant), below scans a person asked for
#: (``MANUAL_SCAN_PRIORITY`` = 100), applies (200) and rollbacks (300), which share the one queue.
PLANNED_MAX_PRIORITY = MANUAL_SCAN_PRIORITY - 1


@dataclass
class PlannedScan:
    account: str
    principal_arn: str
    role_name: str
    priority: int
    risk_score: float
    unused: int
    policy_hash: str = ""
    reasons: list[str] = field(default_factory=list)
    skipped: str | None = None  # why no scan was queued (cache fresh, already queued)
    work_item_id: int | None = None


def rank_key(plan: PlannedScan) -> tuple[int, float, int, str]:
    """Sort key, most urgent first: roles with unused grants, then risk score (IAM admin / escalation highest,
    by ``bot.policy.risk``), then the breadth of unused grants."""
    return (0 if plan.unused else 1, -plan.risk_score, -plan.unused, plan.principal_arn)


def assign_priorities(plans: list[PlannedScan]) -> None:
    """Sort ``plans`` in place and give them queue priorities: PLANNED_MAX_PRIORITY down to 1 by rank (equal
    keys share one), 0 for roles with no unused grant."""
    plans.sort(key=rank_key)
    ranked = [p for p in plans if p.unused]
    distinct = sorted({rank_key(p)[:3] for p in ranked})
    step = max(1, len(distinct))
    for plan in plans:
        if not plan.unused:
            plan.priority = 0
            continue
        position = distinct.index(rank_key(plan)[:3])
        plan.priority = PLANNED_MAX_PRIORITY - (position * (PLANNED_MAX_PRIORITY - 1)) // step


def plan_scans(ctx: JobContext, accounts: list[str] | None = None) -> list[PlannedScan]:
    """Rank every in-scope role and enqueue scans; returns the plan in priority order (skipped ones too)."""
    now = ctx.clock()
    since = iso(now - timedelta(days=ctx.config.lookback_days))
    scope = scope_from_config(ctx.config)
    not_before = next_off_hours_start(ctx.config.schedules.off_hours, now)
    plans: list[PlannedScan] = []
    for account in accounts or [a.id for a in ctx.config.accounts]:
        inventory = list_role_snapshots(ctx.iam(account), scope=scope, clock=ctx.clock)
        for excluded in inventory.excluded:
            _remember(ctx, excluded.snapshot, in_scope=False, reason=excluded.reason, warnings=[],
                      managed=inventory.managed_as_code.get(excluded.snapshot.arn))
        for snapshot in inventory.in_scope:
            _remember(ctx, snapshot, in_scope=True, reason=None, warnings=inventory.warnings.get(snapshot.arn, []),
                      managed=inventory.managed_as_code.get(snapshot.arn))
            reconcile_role(ctx, snapshot)  # before queueing: a deployed proposal closes, it is not superseded
            plans.append(_cached(ctx, snapshot, since) or _rank(ctx, snapshot, since, now))
    assign_priorities(plans)
    for plan in plans:
        if plan.skipped is not None:
            continue
        item, created = ctx.queue.enqueue(
            SCAN, {"account": plan.account, "principal_arn": plan.principal_arn}, priority=plan.priority,
            dedupe_key=scan_dedupe_key(plan.principal_arn), requested_by="scheduler",
            not_before=iso(not_before) if not_before else None)
        plan.work_item_id = item.id
        if not created:
            plan.skipped = "already queued"
    ctx.count("plan.runs")
    return plans


def enqueue_requested_scan(ctx: JobContext, account: str, principal_arn: str, requested_by: str) -> tuple[int, bool]:
    """A person asked for a scan: it goes ahead of planned ones and ignores the cache and off-hours."""
    item, created = ctx.queue.enqueue(SCAN, {"account": account, "principal_arn": principal_arn,
                                             "requested_by": requested_by},
                                      priority=MANUAL_SCAN_PRIORITY, dedupe_key=scan_dedupe_key(principal_arn),
                                      requested_by=requested_by)
    return item.id, created


def next_off_hours_start(off_hours: OffHours | None, now: datetime) -> datetime | None:
    """None when there is no window or ``now`` is inside it; else the next start of the window (UTC)."""
    if off_hours is None:
        return None
    tz = ZoneInfo(off_hours.timezone)
    local = now.astimezone(tz)
    start = time.fromisoformat(off_hours.start)
    end = time.fromisoformat(off_hours.end)
    t = local.time()
    inside = (start <= t < end) if start <= end else (t >= start or t < end)
    if inside or start == end:
        return None
    candidate = local.replace(hour=start.hour, minute=start.minute, second=0, microsecond=0)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate.astimezone(now.tzinfo)


def _cached(ctx: JobContext, snapshot: RoleSnapshot, since: str) -> PlannedScan | None:
    """The plan of a role whose last settled scan saw this very policy and usage: skipped, no ranking needed
    (expanding AdministratorAccess for every role on every plan would dominate the planner's time)."""
    policy_hash = snapshot.policy_hash()
    if not ctx.scans.is_fresh(snapshot.arn, policy_hash, scan_fingerprint(ctx, snapshot.arn, since)):
        return None
    record = ctx.scans.get(snapshot.arn)
    assert record is not None
    unused = record.detail.get("unused")
    return PlannedScan(account=snapshot.account, principal_arn=snapshot.arn, role_name=snapshot.name, priority=0,
                       risk_score=record.risk_score, unused=int(unused) if unused is not None else 0,
                       policy_hash=policy_hash, skipped="unchanged since the last scan (policy and usage)")


def _rank(ctx: JobContext, snapshot: RoleSnapshot, since: str, now: datetime) -> PlannedScan:
    perms = snapshot_permissions(snapshot)
    rows = ctx.usage.usage(snapshot.arn, since=since)
    used = {r.action for r in rows}
    risk = risk_score(perms, used, last_used(snapshot.last_used, rows), now)
    return PlannedScan(account=snapshot.account, principal_arn=snapshot.arn, role_name=snapshot.name,
                       priority=0, unused=len(perms.actions() - used), risk_score=risk.score, policy_hash=snapshot.policy_hash(),
                       reasons=list(risk.reasons))


def _remember(ctx: JobContext, snapshot: RoleSnapshot, *, in_scope: bool, reason: str | None,
              warnings: list[str], managed: ManagedAsCode | None = None) -> None:
    privilege = role_privilege(snapshot, ctx.roles.get(snapshot.arn))
    ctx.roles.upsert(KnownRole(account=snapshot.account, arn=snapshot.arn, name=snapshot.name, path=snapshot.path,
                               in_scope=in_scope, excluded_reason=reason, warnings=warnings,
                               policy_hash=snapshot.policy_hash(), created=snapshot.created,
                               last_used=snapshot.last_used, refreshed_at=iso(ctx.clock()), privilege=privilege,
                               managed_as_code=managed.to_json() if managed else None))
