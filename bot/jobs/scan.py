"""One scan: the role as it is now + its usage in the lookback window -> a proposal (or a reason not to).

Steps: snapshot the role (inventory) -> refuse when the usage data is incomplete (fail closed) -> read usage in
the window -> generate the least-privilege policy inside the role's current policies (local engine, or the
Access Analyzer backend when configured and its quota allows -- its output held to the current policies the
same way; otherwise the scan is deferred) -> the containment check (``bot.policy.contain``): a proposal that
would grant anything the role does not hold today is refused (result ``refused``, detail ``{"check":
"containment", "reason": ..., "findings": [...]}``), never stored or posted -> effective permissions current
vs proposed -> diff (with lost Conditions and Denies), summary, grouped and unified diffs, risk, coverage
warnings, safety checks (``proposal.checks``: ``containment``; ``escalation``, paths judged with the role
directory's stored profiles of named roles) -> ``ProposalStore.create``. A proposal that removes and narrows
nothing is not created: the scan records "already tight" and posts nothing.

Replay before posting: the window's successful calls (from the usage index) are replayed against the
proposal and the boundary (:mod:`bot.policy.replay`); if any would be denied nothing is stored or posted and the
scan settles ``refused`` with detail ``{"check": "replay", "reason": ..., "denied": [...]}``. A passing
proposal records ``checks["replay"] = {"calls": N, "days": D, "denied": 0}`` (N counts each call once per
action it needed, as the index does).

Safety net for rare jobs: IAM's service-last-accessed data (:mod:`bot.aws.last_accessed`, action level where
IAM tracks it) is read for the role; a service or action IAM says was used within
``cloudtrail.last_accessed_horizon_days`` (default 400) but that the window shows no call of is kept, where the
role holds it today, with a note "used N days ago according to IAM, outside the CloudTrail window"
(:mod:`bot.policy.rare_use`). The entries are ``KeepEntry`` items (kind ``last-accessed``) that generation
grants inside the current statements, like usage. IAM's data that cannot be read makes the scan
``incomplete``. ``checks["iam_last_accessed"]`` records what was read and kept.

Fail closed: peers have proposed stripping everything after CloudTrail throttling. A scan refuses to propose
when an ingest error is outstanding for the principal's account, when IAM says the role was used inside the
window but the index holds no call of it, or when the index holds no usage at all for the window (a role
unused for the whole window is reported, never emptied: apply refuses empty policies anyway).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bot.aws.inventory import RoleSnapshot, Scope, get_role_snapshot
from bot.aws.last_accessed import LastAccessedError, read_last_accessed
from bot.config import Config
from bot.jobs.context import JobContext
from bot.jobs.iac import proposal_iac, reconcile_role
from bot.jobs.quota import ScanDeferred, generate_with_access_analyzer
from bot.jobs.restore import RestoreCeiling, restore_ceiling
from bot.jobs.role_privilege import escalation_context
from bot.policy.allowlist import AllowEntry
from bot.policy.contain import check_no_new_access
from bot.policy.coverage import DATA_EVENT_ACTIONS, coverage_warnings
from bot.policy.diff import (
    diff_permissions,
    guard_changes,
    permission_counts,
    render_grouped,
    summary,
    unified_text_diff,
)
from bot.policy.escalation import escalation_check
from bot.policy.expand import EffectivePermissions, effective_permissions
from bot.policy.generate import generate_policy
from bot.policy.keep import KeepEntry, keep_entries_from_documents
from bot.policy.model import Policy, parse_policy
from bot.policy.rare_use import held_actions, keep_entries_for, rare_uses
from bot.policy.replay import ReplayCall, ReplayResult, replay, scope_of
from bot.policy.risk import risk_score
from bot.store import scans as sc
from bot.store.allowlist import AllowlistAuthors, load_if_present
from bot.store.proposals import Proposal
from bot.store.usage import UsageRow
from bot.trail.records import UNKNOWN_RESOURCE
from bot.util.clock import iso, parse_iso


@dataclass
class ScanOutcome:
    principal_arn: str
    result: str  # one of bot.store.scans results
    message: str
    proposal: Proposal | None = None
    risk_score: float = 0.0
    risk_tier: str = ""
    notes: list[str] = field(default_factory=list)
    retry_at: str | None = None  # deferred scans: when the quota frees up

    @property
    def proposed(self) -> bool:
        return self.result == sc.PROPOSED


def run_scan(ctx: JobContext, account: str, principal_arn: str, *, requested_by: str | None,
             work_item: int | None = None, restore: str | None = None) -> ScanOutcome:
    """Scan one role now; see the module docstring. Never raises for expected refusals (they are outcomes).
    ``work_item`` (the queue item running it) is recorded with the result so a re-run after a crash can tell
    the scan already happened. ``restore`` (a change id) makes it a restore scan (:mod:`bot.jobs.restore`): the
    proposal is built inside the role's policies before that change, and only posted when it gives something
    back."""
    now = ctx.clock()
    iam = ctx.iam(account)
    snapshot = get_role_snapshot(iam, principal_arn)
    since = iso(now - timedelta(days=ctx.config.lookback_days))
    until = iso(now)
    fingerprint = scan_fingerprint(ctx, snapshot.arn, since)
    policy_hash = snapshot.policy_hash()

    unused: int | None = None

    def settle(result: str, message: str, detail: dict[str, Any] | None = None, **kw: Any) -> ScanOutcome:
        outcome = ScanOutcome(principal_arn=snapshot.arn, result=result, message=message, **kw)
        proposal = outcome.proposal
        ctx.scans.record(snapshot.arn, account=snapshot.account, policy_hash=policy_hash,
                         usage_fingerprint=fingerprint, result=result,
                         proposal_id=proposal.id if proposal else None, risk_score=outcome.risk_score,
                         detail={"message": message, "notes": outcome.notes, "requested_by": requested_by,
                                 "work_item": work_item, "unused": unused, **(detail or {})})
        ctx.audit.record(requested_by or "tighten", f"scan.{result}", snapshot.arn, message=message,
                         proposal_id=proposal.id if proposal else None)
        ctx.count(f"scan.{result}")
        return outcome

    scope = scope_from_config(ctx.config)
    reconcile_role(ctx, snapshot)  # a proposal deployed through code closes before a new one supersedes it
    exclusion = scope.exclusion(snapshot)
    if exclusion:
        return settle(sc.EXCLUDED, f"not proposing for {snapshot.name}: out of scope ({exclusion})")

    problem = usage_incomplete(ctx, snapshot, since)
    if problem:
        return settle(sc.INCOMPLETE, f"not proposing for {snapshot.name}: {problem}", notes=[problem])

    rows = ctx.usage.usage(snapshot.arn, since=since, until=until)
    allowlist = allowlist_entries(ctx, snapshot.arn)
    boundary = parse_policy(snapshot.boundary_document, "boundary") if snapshot.boundary_document else None
    current_policies = [parse_policy(doc, name) for name, doc in snapshot.identity_documents()]
    current = effective_permissions(current_policies, boundary)
    used_actions = {r.action for r in rows}
    try:
        rare, rare_notes, rare_check = rare_use_entries(ctx, account, snapshot.arn, current, used_actions, since)
    except LastAccessedError as exc:
        reason = f"{exc}; the safety net for rare jobs is missing, so nothing is proposed"
        return settle(sc.INCOMPLETE, f"not proposing for {snapshot.name}: {reason}", notes=[reason])
    ceiling: RestoreCeiling | None = None
    if restore:
        found = restore_ceiling(ctx, restore, snapshot.arn)
        if isinstance(found, str):
            return settle(sc.REFUSED, f"not restoring access for {snapshot.name}: {found}",
                          detail={"check": "restore", "reason": found, "change_id": restore})
        ceiling = found
    # what the proposal may grant: the current policies (a restore: also those before the change it restores)
    ceiling_policies = ceiling.policies(current_policies) if ceiling else current_policies
    try:
        documents, notes, engine = _generate(ctx, snapshot, rows, allowlist, since, until, ceiling_policies, rare)
    except ScanDeferred as exc:
        return settle(sc.DEFERRED, str(exc), retry_at=exc.retry_at)
    notes = rare_notes + notes
    proposed_policies = [parse_policy(d, f"proposed-{i + 1}") for i, d in enumerate(documents)]

    # Fail closed: a proposal that would grant anything the role does not hold today is never stored.
    containment = check_no_new_access(ceiling_policies, proposed_policies, boundary)
    if not containment.passed:
        reason = containment.reason()
        return settle(sc.REFUSED, f"not proposing for {snapshot.name}: the proposal {reason}", notes=notes,
                      detail={"check": "containment", "reason": reason,
                              "findings": [f.to_json() for f in containment.findings]})

    proposed = effective_permissions(proposed_policies, boundary)
    escalation = escalation_context(ctx.roles, snapshot.arn)
    risk = risk_score(current, used_actions, last_used(snapshot.last_used, rows), now, escalation)
    unused = len(current.actions() - used_actions)

    changes = tightening(current, proposed)
    if ceiling is None and not changes["removed"] and not changes["narrowed"]:
        return settle(sc.ALREADY_TIGHT, f"{snapshot.name} is already tight: the proposal grants everything it "
                      f"holds ({len(current)} actions)", risk_score=risk.score, risk_tier=risk.tier, notes=notes)

    replayed = replay_usage(rows, documents, boundary, ceiling_policies, snapshot.arn)
    if not replayed.ok:
        first = replayed.denied[0]
        reason = (f"the proposal would deny {replayed.denied_calls} of {replayed.calls} calls the role made in the "
                  f"window (e.g. {first.action} on {first.resource})")
        return settle(sc.REFUSED, f"not proposing for {snapshot.name}: {reason}", notes=[reason],
                      risk_score=risk.score, risk_tier=risk.tier,
                      detail={"check": "replay", "reason": reason, "denied": [d.as_dict() for d in replayed.denied]})

    diff = diff_permissions(current, proposed, escalation, guards=guard_changes(
        current_policies, proposed_policies, boundary, containment=containment))
    restored = sorted({g.action for g in diff.added} | {c.action for c in diff.broadened})
    if ceiling is not None and not restored:
        return settle(sc.ALREADY_TIGHT, f"nothing to restore for {snapshot.name}: the role already holds everything "
                      f"its usage and allowlist need within its policies before change {ceiling.change.id}",
                      risk_score=risk.score, risk_tier=risk.tier, notes=notes)
    checks = {"containment": containment.to_json(),
              "escalation": escalation_check(current, proposed, escalation), "replay": replayed.as_check(),
              "iam_last_accessed": rare_check}
    if ceiling is not None:
        checks["restore"] = ceiling.check(restored)
    first_seen = _first_seen(rows)
    warnings = [{"code": w.code, "message": w.message} for w in coverage_warnings(
        window_start=since, window_end=until, principal_first_seen=first_seen,
        principal_created=snapshot.created, usage=rows,
        data_event_services_present=data_event_services_present(ctx), granted_actions=current.actions())]
    warnings.extend({"code": "role-scope", "message": w} for w in _role_warnings(ctx, snapshot))
    current_docs = [{"name": name, "document": doc} for name, doc in snapshot.identity_documents()]
    proposal = ctx.proposals.create(
        account=snapshot.account, principal_arn=snapshot.arn, role_name=snapshot.name,
        documents=documents, current_documents=current_docs, base_policy_hash=policy_hash,
        usage_fingerprint=fingerprint, window_start=since, window_end=until, summary=summary(diff),
        diff_text=render_grouped(diff),
        unified_diff=unified_text_diff(snapshot.identity_documents(),
                                       [(f"proposed-{i + 1}", d) for i, d in enumerate(documents)]),
        risk_score=risk.score, risk_reasons=list(risk.reasons), warnings=warnings,
        stats={**permission_counts(current, "current"), **permission_counts(proposed, "proposed"),
               "removed": len(changes["removed"]), "narrowed": len(changes["narrowed"]),
               "added": len(changes["added"]), "kept": len(current) - len(changes["removed"]),
               "usage_rows": len(rows), "risk_tier": risk.tier},
        notes=notes, engine=engine, requested_by=requested_by, channel=ctx.config.channel_for(snapshot.account),
        checks=checks, iac=proposal_iac(ctx.config, scope, snapshot),
        excluded_approvers=excluded_approvers(ctx, requested_by, allowlist, proposed),
    )
    return settle(sc.PROPOSED, f"proposal {proposal.id} for {snapshot.name}: {proposal.summary}",
                  proposal=proposal, risk_score=risk.score, risk_tier=risk.tier, notes=notes)


def rare_use_entries(ctx: JobContext, account: str, principal_arn: str, current: EffectivePermissions,
                     used_actions: set[str], since: str) -> tuple[list[KeepEntry], list[str], dict[str, Any]]:
    """The safety net for rare jobs (:mod:`bot.policy.rare_use`): what IAM's service-last-accessed data says the
    role used within ``last_accessed_horizon_days`` but the window does not show, as keep entries for the
    actions the role holds today (generation grants them inside the current statements). Returns (entries,
    notes, the ``checks["iam_last_accessed"]`` record). Raises :class:`LastAccessedError` when IAM's data cannot
    be read."""
    horizon = ctx.config.last_accessed_horizon_days
    if horizon <= 0:
        return [], [], {"horizon_days": 0, "read": False}
    if ctx.last_accessed_for is None:
        note = "IAM's last-accessed data was not read (no IAM client for it): rare jobs outside the window are not kept"
        return [], [note], {"horizon_days": horizon, "read": False}
    services = read_last_accessed(ctx.last_accessed_for(account), principal_arn, sleep=ctx.sleep, clock=ctx.clock)
    uses = rare_uses(services, used_actions, now=ctx.clock(), window_start=since, horizon_days=horizon)
    held = current.actions()
    notes: list[str] = []
    kept: list[str] = []
    for use in uses:
        covered = held_actions(use, held)
        if covered:
            kept.append(use.pattern)
            notes.append(f"kept {use.note}" if use.kind == "action"
                         else f"kept {len(covered)} {use.pattern.split(':', 1)[0]} action(s) the role holds: {use.note}")
    check = {"horizon_days": horizon, "read": True, "services": len(services), "kept": sorted(kept)}
    return keep_entries_for(uses, held), notes, check


def replay_usage(rows: list[UsageRow], documents: list[dict[str, Any]], boundary: Policy | None,
                 current_policies: list[Policy], principal_arn: str) -> ReplayResult:
    """Replay the window's successful calls (the usage index's rows: one per action and resource, with how
    many calls needed it) against the proposed ``documents`` and the boundary. A resource the log did not show
    is replayed as the current policy's resource patterns for the action (the call succeeded under them)."""
    partition = principal_arn.split(":")[1] if principal_arn.count(":") >= 5 else "aws"
    calls = [ReplayCall(uses=((row.action, None if row.resource == UNKNOWN_RESOURCE else row.resource),),
                        time=row.last_seen, count=row.count, account=row.account, partition=partition,
                        days=row.days)
             for row in rows]
    proposed = [parse_policy(d, f"proposed-{i + 1}") for i, d in enumerate(documents)]
    return replay(calls, proposed, boundary, unknown_scope=scope_of(current_policies))


def scope_from_config(config: Config) -> Scope:
    rules = {"": config.iac_rules, **{a.id: config.iac_rules_for(a.id) for a in config.accounts}}
    return Scope(protected_role_names=config.protected_roles, protected_tags=config.protected_tags,
                 own_role_arns=config.own_role_arns, lookback_days=config.lookback_days, iac_rules=rules)


def scan_fingerprint(ctx: JobContext, principal_arn: str, since: str) -> str:
    """Everything besides the role's policies that a scan's result depends on: the principal's usage from
    ``since`` on and its allowlist entries (an "Allow <action>" click must invalidate the cache too)."""
    entries = sorted(f"{e.action} {e.resource or '*'}" for e in allowlist_entries(ctx, principal_arn))
    digest = hashlib.sha256("\n".join(entries).encode()).hexdigest()[:8] if entries else "none"
    return f"{ctx.usage.usage_fingerprint(principal_arn, since)}+{digest}"


def allowlist_entries(ctx: JobContext, principal_arn: str) -> list[AllowEntry]:
    """The principal's allowlist entries; no file configured or not created yet = none (a broken file raises)."""
    return load_if_present(ctx.config.allowlist_path).for_principal(principal_arn)


def excluded_approvers(ctx: JobContext, requested_by: str | None, allowlist: list[AllowEntry],
                       proposed: EffectivePermissions) -> list[dict[str, str]]:
    """Who may not approve the proposal (two-person rule): its requester, and whoever added an allowlist entry
    whose action the proposal grants."""
    out = [{"user": requested_by, "reason": "requested this scan"}] if requested_by else []
    granted = proposed.actions()
    return out + AllowlistAuthors(ctx.db).exclusions([e for e in allowlist if e.action in granted])


def tightening(current: EffectivePermissions, proposed: EffectivePermissions) -> dict[str, list[str]]:
    """Actions the proposal removes, those whose resources change, and those it adds (allowlist)."""
    cur, prop = current.actions(), proposed.actions()
    narrowed = sorted(a for a in cur & prop
                      if (current.grants[a].resources, current.grants[a].excluded)
                      != (proposed.grants[a].resources, proposed.grants[a].excluded))
    return {"removed": sorted(cur - prop), "narrowed": narrowed, "added": sorted(prop - cur)}


def usage_incomplete(ctx: JobContext, snapshot: RoleSnapshot, since: str) -> str | None:
    """Why the usage data cannot be trusted for this role's window, or None when it can."""
    errors = [key for key, _ in ctx.usage.unread_logs(snapshot.account)]
    if errors:
        return (f"{len(errors)} CloudTrail object(s) could not be read (e.g. {errors[0]}); usage would be "
                "undercounted, so nothing is proposed until they are ingested")
    if ctx.usage.db.conn.execute("SELECT 1 FROM ingested_objects LIMIT 1").fetchone() is None:
        return "no CloudTrail logs have been ingested yet"
    last_activity = ctx.usage.last_activity(snapshot.arn)
    if snapshot.last_used and snapshot.last_used >= since and not last_activity:
        return (f"IAM reports the role was last used at {snapshot.last_used}, inside the window, but the logs "
                "hold no call of it (missing or throttled CloudTrail delivery?)")
    if not ctx.usage.usage(snapshot.arn, since=since):
        return ("no successful call in the window: the role looks unused; Tighten does not propose an empty "
                "policy (review or delete the role instead)")
    return None


def _generate(ctx: JobContext, snapshot: RoleSnapshot, rows: list[UsageRow], allowlist: list[Any],
              since: str, until: str, current: list[Policy],
              extra: list[KeepEntry]) -> tuple[list[dict[str, Any]], list[str], str]:
    """The proposal's documents, built inside the current policies whatever the engine: Access Analyzer's
    output goes through the same step as usage rows (as keep entries), like ``extra`` (rare jobs)."""
    if ctx.config.backend == "access-analyzer":
        documents, notes = generate_with_access_analyzer(ctx, snapshot, since, until)
        entries = keep_entries_from_documents(documents, kind="access-analyzer",
                                              note="in the policy IAM Access Analyzer generated")
        generated = generate_policy([], allowlist, extra=entries + extra, current=current)
        return generated.documents, notes + list(generated.notes), "access-analyzer"
    generated = generate_policy(rows, allowlist, current=current, extra=extra)
    return generated.documents, list(generated.notes), "local"


def last_used(iam_last_used: str | None, rows: list[UsageRow]) -> str | None:
    """The later of IAM's RoleLastUsed and the newest call in the logs (IAM's value lags or is absent)."""
    times = [parse_iso(t) for t in [iam_last_used, *(r.last_seen for r in rows)] if t]
    return iso(max(times)) if times else None


def _first_seen(rows: list[UsageRow]) -> str | None:
    return min((r.first_seen for r in rows), default=None)


def data_event_services_present(ctx: JobContext) -> set[str]:
    """Services whose data events appear anywhere in the ingested logs (any principal)."""
    conn = ctx.usage.db.conn
    present = set()
    if conn.execute("SELECT 1 FROM usage_days WHERE action LIKE 's3:%' AND resource LIKE 'arn:aws:s3:::%/%'"
                    " LIMIT 1").fetchone():
        present.add("s3")
    for service, actions in DATA_EVENT_ACTIONS.items():
        marks = ", ".join("?" for _ in actions)
        if conn.execute(f"SELECT 1 FROM usage_days WHERE action IN ({marks}) LIMIT 1", actions).fetchone():
            present.add(service)
    return present


def _role_warnings(ctx: JobContext, snapshot: RoleSnapshot) -> list[str]:
    created = parse_iso(snapshot.created)
    age = (ctx.clock() - created).days
    if age < ctx.config.lookback_days:
        return [f"insufficient history: role is {age} days old, lookback is {ctx.config.lookback_days} days"]
    return []
