"""Roles managed as code, after each inventory: close the proposals their pipeline deployed, and report a role
that went back to its old permissions after Tighten changed it.

:func:`reconcile_role` runs with every fresh snapshot of a role (the planner's inventory, the start of a scan):

* a pending (or expired, when it is the role's newest) proposal of a role managed as code is closed as
  ``applied_via_code`` when the role now grants the same permissions as the proposal
  (:func:`bot.policy.equivalence.same_permissions`, never a text comparison); a message goes to its thread;
* a proposal an approver marked as applied via code is confirmed the same way (once, in its thread);
* a proposal Tighten applied whose role now grants the same permissions as *before* the change (a
  ``terraform apply`` or stack update put the old policies back) is reported in the channel, once per policy
  state.

Each comparison runs only when the role's policy hash differs from the one last compared for that proposal, so
an unchanged role costs nothing on later inventories.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.aws.inventory import RoleSnapshot, Scope
from bot.config import Config
from bot.jobs.context import JobContext
from bot.policy.equivalence import same_permissions
from bot.policy.model import Policy, PolicyError, parse_policy
from bot.store import changes as cs
from bot.store import proposals as ps
from bot.util.clock import iso

log = logging.getLogger(__name__)

TIGHTEN = "tighten"


def proposal_iac(config: Config, scope: Scope, snapshot: RoleSnapshot) -> dict[str, Any]:
    """The ``iac`` record of a new proposal: what the role holds by kind (for the snippets) and, when the role is
    managed as code, why and whether direct apply is allowed in its account."""
    out: dict[str, Any] = {"role_inline": sorted(snapshot.inline), "role_managed": [p.arn for p in snapshot.attached]}
    found = scope.managed_as_code(snapshot)
    if found is not None:
        out["managed"] = found.to_json()
        out["direct_apply"] = config.direct_apply_allowed(snapshot.account)
    return out


def reconcile_role(ctx: JobContext, snapshot: RoleSnapshot) -> list[str]:
    """Act on ``snapshot`` for the role's proposals (see the module docstring); returns what was done, one line
    per proposal touched (``"<id>: applied_via_code"``, ``"<id>: drift"``, ...)."""
    policy_hash = snapshot.policy_hash()
    done: list[str] = []
    holds: list[Policy] | None = None
    proposals = ctx.proposals.list(principal_arn=snapshot.arn, limit=20)
    newest = proposals[0].id if proposals else None
    for p in proposals:
        kind = _candidate(p, policy_hash, newest)
        if kind is None:
            continue
        if holds is None:
            try:
                holds = [parse_policy(doc, name) for name, doc in snapshot.identity_documents()]
            except PolicyError as exc:  # IAM accepted it, so this is a gap in the model: never act on it
                log.warning("cannot compare %s: %s", snapshot.arn, exc)
                return done
        outcome = _reconcile(ctx, p, kind, holds, policy_hash)
        if outcome:
            done.append(f"{p.id}: {outcome}")
    return done


def _candidate(p: ps.Proposal, policy_hash: str, newest: str | None) -> str | None:
    """Which check ``p`` needs for a role whose policy hash is now ``policy_hash``, or None."""
    if p.iac.get("checked_hash") == policy_hash:
        return None
    if p.managed_as_code and p.state in (ps.PENDING, ps.EXPIRED):
        if policy_hash == p.base_policy_hash or (p.state == ps.EXPIRED and p.id != newest):
            return None
        return "deployed"
    if p.state == ps.APPLIED_VIA_CODE and not p.iac.get("confirmed_at"):
        return "confirm"
    if p.state == ps.APPLIED and p.change_id:
        return "drift"
    return None


def _policies(documents: list[dict[str, Any]], name: str) -> list[Policy]:
    return [parse_policy(doc, f"{name}-{i + 1}") for i, doc in enumerate(documents)]


def _reconcile(ctx: JobContext, p: ps.Proposal, kind: str, holds: list[Policy], policy_hash: str) -> str | None:
    iac = dict(p.iac)
    iac["checked_hash"] = policy_hash
    if kind == "drift":
        change = ctx.changes.get(p.change_id or "")
        if change is None or change.state != cs.APPLIED or change.after_policy_hash == policy_hash:
            ctx.proposals.update(p.id, iac=iac)
            return None
        before = _policies([d["document"] for d in p.current_documents], "before")
        if not before or not same_permissions(holds, before, a_name="now", b_name="before").same:
            ctx.proposals.update(p.id, iac=iac)
            return None
        iac["drift"] = {"policy_hash": policy_hash, "at": iso(ctx.clock()), "change_id": change.id}
        ctx.proposals.update(p.id, iac=iac)
        ctx.audit.record(TIGHTEN, "change.drift_back", change.id, proposal_id=p.id, policy_hash=policy_hash)
        ctx.count("iac.drift_back")
        if ctx.notifier is not None:
            ctx.notifier.post_drift_back(p.id, change.id)
        return "drift"
    comparison = same_permissions(holds, _policies(p.documents, "proposed"), a_name="the role", b_name="the proposal")
    if not comparison.same:
        iac["last_difference"] = comparison.difference[:300]
        ctx.proposals.update(p.id, iac=iac)
        return None
    iac["confirmed_at"] = iso(ctx.clock())
    if kind == "confirm":
        ctx.proposals.update(p.id, iac=iac)
        ctx.audit.record(TIGHTEN, "proposal.applied_via_code_confirmed", p.id, policy_hash=policy_hash)
        if ctx.notifier is not None:
            ctx.notifier.post_applied_via_code(p.id, confirmed=True)
        return "confirmed"
    closed = ctx.proposals.transition(p.id, ps.APPLIED_VIA_CODE, iac=iac, decided_by=TIGHTEN,
                                      decided_at=iso(ctx.clock()),
                                      decision_reason="the inventory found the role holding the proposed permissions")
    if closed is None:  # decided meanwhile (marked, rejected, superseded): nothing to close
        return None
    ctx.audit.record(TIGHTEN, "proposal.applied_via_code", p.id, policy_hash=policy_hash, detected=True)
    ctx.count("iac.applied_via_code")
    if ctx.notifier is not None:
        ctx.notifier.post_applied_via_code(p.id, confirmed=True)
    return "applied_via_code"
