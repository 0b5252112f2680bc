"""The decisions users make in Slack, shared by slash commands, buttons, modals and App Home.

Each returns an :class:`Outcome` (what to tell the user) and changes nothing when it refuses. State changes
are single atomic store transitions; work (apply, rollback, scan) is only ever *queued* here, in the same
transaction as the decision it follows (an approval and its apply item commit together or not at all).
"""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk import WebClient

from bot.policy.allowlist import AllowEntry, AllowlistError
from bot.slack.context import AppContext
from bot.slack.escaping import code
from bot.slack.listeners import MANUAL_SCAN_PRIORITY, scan_dedupe_key
from bot.slack.templating import who
from bot.store import changes as change_states
from bot.store.allowlist import AllowlistAuthors, add_entry
from bot.store.db import transaction
from bot.store.proposals import APPLIED, APPROVED, PENDING, REJECTED
from bot.store.queue import APPLY_PRIORITY, ROLLBACK_PRIORITY
from bot.util.clock import iso

__all__ = ["APPLY_PRIORITY", "ROLLBACK_PRIORITY", "Outcome", "allow_action", "approve", "can_reject", "reject",
           "request_rollback"]


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str
    work_item: int | None = None


def _refuse(ctx: AppContext, counter: str, message: str) -> Outcome:
    ctx.count(counter)
    return Outcome(False, message)


def approve(ctx: AppContext, client: WebClient, user_id: str, proposal_id: str) -> Outcome:
    """PENDING -> APPROVED (atomic, one winner) and exactly one "apply" work item."""
    proposal = ctx.proposals.get(proposal_id)
    if proposal is None:
        return _refuse(ctx, "slack.unknown_proposal", f"Unknown proposal {code(proposal_id)}.")
    if proposal.state != PENDING:
        by = f" by {who(proposal.decided_by)}" if proposal.decided_by else ""
        return _refuse(ctx, "slack.already_decided", f"Proposal {code(proposal_id)} is already {proposal.state}{by}.")
    managed = proposal.managed_as_code
    if managed and not ctx.config.direct_apply_allowed(proposal.account):
        ctx.audit.record(user_id, "proposal.approve_refused", proposal_id, reason="managed as code")
        return _refuse(ctx, "slack.managed_as_code",
                       f"{code(proposal_id)} is for a role managed as code ({code(managed.get('reason', ''))}); "
                       "Tighten does "
                       f"not change it directly (`iac.direct_apply` is off for account {proposal.account}). Use "
                       "*Open as Terraform* or *Open as CloudFormation*, deploy it, then *Mark as applied via IaC*.")
    decision = ctx.approval.can_approve(client, user_id, proposal)
    if not decision.allowed:
        ctx.audit.record(user_id, "proposal.approve_refused", proposal_id, reason=decision.reason)
        return _refuse(ctx, "slack.unauthorized", f"You cannot approve {code(proposal_id)}: {decision.reason}.")
    with transaction(ctx.db):  # the approval and its apply item commit together, or neither does
        won = ctx.proposals.transition(proposal_id, APPROVED, decided_by=user_id, decided_at=iso(ctx.clock()))
        item = None
        if won is not None:
            item, _ = ctx.queue.enqueue("apply", {"proposal_id": proposal_id, "approved_by": user_id},
                                        priority=APPLY_PRIORITY, dedupe_key=f"apply:{proposal_id}",
                                        requested_by=user_id)
            ctx.audit.record(user_id, "proposal.approve", proposal_id, work_item=item.id,
                             role=proposal.principal_arn)
    if won is None or item is None:
        current = ctx.proposals.get(proposal_id)
        state = current.state if current else "gone"
        by = f" by {who(current.decided_by)}" if current and current.decided_by else ""
        return _refuse(ctx, "slack.already_decided", f"Proposal {code(proposal_id)} was already {state}{by}.")
    return Outcome(True, f"Approved {code(proposal_id)}; the change to {code(proposal.role_name)} is queued.", item.id)


def reject(ctx: AppContext, client: WebClient, user_id: str, proposal_id: str, reason: str) -> Outcome:
    proposal = ctx.proposals.get(proposal_id)
    if proposal is None:
        return _refuse(ctx, "slack.unknown_proposal", f"Unknown proposal {code(proposal_id)}.")
    decision = ctx.approval.is_approver(client, user_id, proposal.account)
    if not decision.allowed:
        ctx.audit.record(user_id, "proposal.reject_refused", proposal_id, reason=decision.reason)
        return _refuse(ctx, "slack.unauthorized", f"You cannot reject {code(proposal_id)}: {decision.reason}.")
    done = ctx.proposals.transition(proposal_id, REJECTED, decided_by=user_id, decided_at=iso(ctx.clock()),
                                    decision_reason=reason)
    if done is None:
        current = ctx.proposals.get(proposal_id)
        return _refuse(ctx, "slack.already_decided",
                       f"Proposal {code(proposal_id)} is already {current.state if current else 'gone'}.")
    ctx.audit.record(user_id, "proposal.reject", proposal_id, reason=reason, role=proposal.principal_arn)
    return Outcome(True, f"Rejected {code(proposal_id)}; {code(proposal.role_name)} is left as it is.")


def can_reject(ctx: AppContext, client: WebClient, user_id: str, proposal_id: str) -> Outcome:
    """Checked before opening the reject modal, so nobody types a reason only to be refused."""
    proposal = ctx.proposals.get(proposal_id)
    if proposal is None:
        return _refuse(ctx, "slack.unknown_proposal", f"Unknown proposal {code(proposal_id)}.")
    if proposal.state != PENDING:
        return _refuse(ctx, "slack.already_decided", f"Proposal {code(proposal_id)} is already {proposal.state}.")
    decision = ctx.approval.is_approver(client, user_id, proposal.account)
    if not decision.allowed:
        return _refuse(ctx, "slack.unauthorized", f"You cannot reject {code(proposal_id)}: {decision.reason}.")
    return Outcome(True, "")


def request_rollback(ctx: AppContext, client: WebClient, user_id: str, change_id: str, *,
                     force: bool = False) -> Outcome:
    """Queue a rollback of an applied change (approvers only). ``force``: restore the before-image even over
    someone else's later changes to what the change touched (also the way out of ``rollback_blocked``)."""
    change = ctx.changes.get(change_id)
    if change is None:
        return _refuse(ctx, "slack.unknown_change", f"Unknown change {code(change_id)} (see `/tighten status &lt;role&gt;`).")
    allowed = (change_states.APPLIED, change_states.ROLLBACK_BLOCKED) if force else (change_states.APPLIED,)
    if change.state not in allowed:
        why = {change_states.ROLLED_BACK: "it was already rolled back",
               change_states.ROLLING_BACK: "it is being rolled back right now",
               change_states.APPLYING: "it is still being applied",
               change_states.FAILED: "it failed and the role was already restored",
               change_states.STALE: "it was refused (the role had changed); nothing was touched",
               change_states.REFUSED: "it was refused; nothing was touched",
               change_states.ROLLBACK_BLOCKED: "restoring it stopped on someone else's changes "
                                               f"({code(change.reason or '')}); roll back with force to restore it anyway",
               }.get(change.state, change.state)
        return _refuse(ctx, "slack.not_rollbackable", f"Change {code(change_id)} cannot be rolled back: {why}.")
    decision = ctx.approval.is_approver(client, user_id, change.account)
    if not decision.allowed:
        ctx.audit.record(user_id, "change.rollback_refused", change_id, reason=decision.reason)
        return _refuse(ctx, "slack.unauthorized", f"You cannot roll back {code(change_id)}: {decision.reason}.")
    with transaction(ctx.db):  # the checks and the rollback item are one atomic unit
        current = ctx.changes.get(change_id)
        if current is None or current.state not in allowed:
            return _refuse(ctx, "slack.not_rollbackable",
                           f"Change {code(change_id)} cannot be rolled back: it is {current.state if current else 'gone'}.")
        newer = ctx.changes.newer_applied(current)
        if newer:
            return _refuse(ctx, "slack.not_rollbackable",
                           f"Change {code(change_id)} cannot be rolled back yet: newer "
                           f"{'change' if len(newer) == 1 else 'changes'} "
                           f"{', '.join(f'{code(c.id)}' for c in newer)} on {code(change.role_name)} must be rolled back "
                           "first.")
        payload: dict[str, object] = {"change_id": change_id, "requested_by": user_id}
        if force:
            payload["force"] = True
        item, created = ctx.queue.enqueue("rollback", payload,
                                          priority=ROLLBACK_PRIORITY, dedupe_key=f"rollback:{change_id}",
                                          requested_by=user_id)
        if created:
            ctx.audit.record(user_id, "change.rollback_request", change_id, work_item=item.id,
                             role=change.role_arn, force=force)
    if not created:
        return Outcome(True, f"A rollback of {code(change_id)} is already queued.", item.id)
    how = " with force" if force else ""
    return Outcome(True, f":leftwards_arrow_with_hook: Rollback{how} of {code(change_id)} ({code(change.role_name)}) queued.",
                   item.id)


def _add_entry(ctx: AppContext, client: WebClient, user_id: str, *, account: str, principal_arn: str,
               action: str, resource: str | None, reason: str) -> AllowEntry | Outcome:
    """Add an allowlist entry for one principal (approvers only), recording its author; an Outcome on refusal."""
    decision = ctx.approval.is_approver(client, user_id, account)
    if not decision.allowed:
        ctx.audit.record(user_id, "allowlist.add_refused", principal_arn, iam_action=action, reason=decision.reason)
        return _refuse(ctx, "slack.unauthorized", f"You cannot change the allowlist: {decision.reason}.")
    if not ctx.allowlist_path:
        return _refuse(ctx, "slack.no_allowlist",
                       "No allowlist file is configured (set `allowlist:` in the config file).")
    try:
        entry: AllowEntry = add_entry(ctx.allowlist_path, principal_arn, action, resource, reason)
    except AllowlistError as exc:
        return _refuse(ctx, "slack.bad_input", f"Not added: {code(str(exc).replace('new entry: ', ''))}")
    AllowlistAuthors(ctx.db, ctx.clock).record(entry, user_id)  # the two-person rule: they may not approve it
    ctx.audit.record(user_id, "allowlist.add", principal_arn, iam_action=entry.action, resource=entry.resource)
    return entry


def allow_action(ctx: AppContext, client: WebClient, user_id: str, *, account: str, principal_arn: str,
                 action: str, resource: str | None, reason: str, rescan: bool) -> Outcome:
    """Add an allowlist entry for one principal (approvers only); optionally queue a follow-up scan."""
    entry = _add_entry(ctx, client, user_id, account=account, principal_arn=principal_arn, action=action,
                       resource=resource, reason=reason)
    if isinstance(entry, Outcome):
        return entry
    text = f"Allowlisted {code(entry.action)} on {code(entry.resource)} for {code(principal_arn)}."
    item_id = None
    latest = ctx.proposals.latest(principal_arn)
    if rescan or (latest is not None and latest.state in (PENDING, APPLIED)):
        item, _ = ctx.queue.enqueue("scan", {"account": account, "principal_arn": principal_arn,
                                             "requested_by": user_id},
                                    priority=MANUAL_SCAN_PRIORITY, dedupe_key=scan_dedupe_key(principal_arn),
                                    requested_by=user_id)
        item_id = item.id
        text += " A follow-up scan is queued so the proposal includes it."
    return Outcome(True, text, item_id)


def restore_dedupe_key(change_id: str) -> str:
    return f"restore:{change_id}"


def allow_offered(ctx: AppContext, client: WebClient, user_id: str, offer_id: str) -> Outcome:
    """The Allow button of an access-denied alert (approvers only): allowlist exactly the stored action and
    resource for the role, and, while the change that removed it is applied, queue a restore scan
    (:mod:`bot.jobs.restore`) whose proposal gives it back inside what the role held before that change; it is
    reviewed and approved like any proposal, by someone else (two-person rule)."""
    offer = ctx.allowances.get(offer_id)
    if offer is None:
        return _refuse(ctx, "slack.unknown_offer", f"This button refers to nothing Tighten knows ({code(offer_id)}); "
                                                   "nothing was changed.")
    entry = _add_entry(ctx, client, user_id, account=offer.account, principal_arn=offer.principal_arn,
                       action=offer.action, resource=offer.resource,
                       reason=f"allowed by {user_id} after an access denied alert on change {offer.change_id}")
    if isinstance(entry, Outcome):
        return entry
    ctx.allowances.mark_used(offer.id, user_id)
    text = f"Allowlisted {code(entry.action)} on {code(entry.resource)} for {code(offer.principal_arn)}."
    change = ctx.changes.get(offer.change_id)
    if change is None or change.state != change_states.APPLIED:
        state = change.state if change else "gone"
        return Outcome(True, f"{text} Change {code(offer.change_id)} is {state}, so there is nothing to restore; "
                             "the next scan keeps it.")
    payload = {"account": offer.account, "principal_arn": offer.principal_arn, "requested_by": user_id,
               "restore": offer.change_id}
    item, created = ctx.queue.enqueue("scan", payload, priority=MANUAL_SCAN_PRIORITY,
                                      dedupe_key=restore_dedupe_key(offer.change_id), requested_by=user_id)
    if created:
        ctx.audit.record(user_id, "scan.restore_request", offer.principal_arn, work_item=item.id,
                         change_id=offer.change_id, iam_action=entry.action)
    return Outcome(True, f"{text} A proposal that restores it (never more than the role held before change "
                         f"{code(offer.change_id)}) will be posted for review; someone else must approve it.", item.id)
