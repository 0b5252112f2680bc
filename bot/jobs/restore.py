"""Restore proposals: give back access a Tighten change removed, never more than the role held before it.

Proposals are built strictly inside the role's current policies, so allowlisting an action that a Tighten change
removed cannot bring it back by itself: the role no longer holds it. When someone clicks "Allow" on an access
denied alert after change X (``bot.slack.operations.allow_offered``), the allowlist entry is recorded and a
*restore scan* is queued (a ``scan`` work item whose payload carries ``restore: X``). That scan is an ordinary scan
(usage in the window, the allowlist, generation, containment, replay when present, escalation, review) with one
difference, its ceiling: the proposal is generated inside, and proven contained in, the role's policies *before*
change X (its before-image, stored when X was applied) together with what the role holds now (so a later edit
someone else made and the role still uses is not dropped). The same ceiling is checked again right before apply.

A restore scan proposes only when the result gives the role something it lacks now (an action, or a resource of a
kept action); otherwise it settles "already tight" with the reason. It refuses (result ``refused``, check
``restore``) when X is unknown, is for another role, is not applied any more (after a rollback the role holds
everything again), or has a newer applied change on the role (that change's own alert is the one to use).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.aws.inventory import RoleSnapshot
from bot.jobs.context import JobContext
from bot.policy.model import Policy, parse_policy
from bot.store import changes as cs
from bot.store.proposals import Proposal


@dataclass(frozen=True)
class RestoreCeiling:
    change: cs.Change
    before: list[Policy]  # the role's identity policies before the change

    def policies(self, current: list[Policy]) -> list[Policy]:
        """What a restore proposal may grant: the before-image, and what the role holds now."""
        return [*self.before, *current]

    def check(self, actions: list[str]) -> dict[str, Any]:
        """``proposal.checks["restore"]``."""
        return {"change_id": self.change.id, "proposal_id": self.change.proposal_id, "actions": actions}


def restore_ceiling(ctx: JobContext, change_id: str, role_arn: str) -> RestoreCeiling | str:
    """The before-image of ``change_id`` as a ceiling for ``role_arn``, or why it cannot be one."""
    change = ctx.changes.get(change_id)
    if change is None:
        return f"change {change_id} is unknown"
    if change.role_arn != role_arn:
        return f"change {change_id} is for {change.role_arn}, not {role_arn}"
    if change.state != cs.APPLIED:
        return (f"change {change_id} is {change.state}: there is nothing to restore (after a rollback the role holds "
                "its earlier permissions again)")
    newer = ctx.changes.newer_applied(change)
    if newer:
        return f"change {newer[0].id} was applied to the role after {change_id}; use its alert"
    image = ctx.changes.before_image(change_id)
    if image is None or "snapshot" not in image:
        return f"change {change_id} has no stored before-image"
    before = RoleSnapshot.from_json(image["snapshot"])
    return RestoreCeiling(change, [parse_policy(doc, f"before {change_id}: {name}")
                                   for name, doc in before.identity_documents()])


def proposal_ceiling(ctx: JobContext, proposal: Proposal, current: list[Policy]) -> list[Policy] | str:
    """What ``proposal`` may grant at apply time: the role's current policies, plus, for a restore proposal, the
    before-image of the change it restores (or why that is no longer available)."""
    restore = (proposal.checks or {}).get("restore")
    if not restore:
        return current
    found = ctx.changes.before_image(str(restore.get("change_id")))
    if found is None or "snapshot" not in found:
        return f"the before-image of change {restore.get('change_id')} it restores is gone"
    before = RoleSnapshot.from_json(found["snapshot"])
    return [*(parse_policy(doc, f"before: {name}") for name, doc in before.identity_documents()), *current]
