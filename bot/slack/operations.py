"""The decisions users make in Slack, shared by slash commands, buttons, modals and App Home.

Each returns an :class:`Outcome` (what to tell the user) and changes nothing when it refuses. State changes
are single atomic store transitions; work (apply, rollback, scan) is only ever *queued* here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from slack_sdk import WebClient

from bot.policy.allowlist import AllowEntry, AllowlistError, load_allowlist
from bot.slack.context import AppContext
from bot.slack.limits import escape
from bot.slack.listeners import MANUAL_SCAN_PRIORITY, scan_dedupe_key
from bot.store import changes as change_states
from bot.store.proposals import APPLIED, APPROVED, PENDING, REJECTED
from bot.util.clock import iso

#: Applies and rollbacks run before scans.
APPLY_PRIORITY = 200
ROLLBACK_PRIORITY = 300

_allowlist_lock = threading.Lock()  # read-modify-write of the allowlist file within this process


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
        return _refuse(ctx, "slack.unknown_proposal", f"Unknown proposal `{proposal_id}`.")
    if proposal.state != PENDING:
        who = f" by <@{proposal.decided_by}>" if proposal.decided_by else ""
        return _refuse(ctx, "slack.already_decided", f"Proposal `{proposal_id}` is already {proposal.state}{who}.")
    managed = proposal.managed_as_code
    if managed and not ctx.config.direct_apply_allowed(proposal.account):
        ctx.audit.record(user_id, "proposal.approve_refused", proposal_id, reason="managed as code")
        return _refuse(ctx, "slack.managed_as_code",
                       f"`{proposal_id}` is for a role managed as code ({escape(str(managed.get('reason', '')))}); "
                       "Tighten does "
                       f"not change it directly (`iac.direct_apply` is off for account {proposal.account}). Use "
                       "*Open as Terraform* or *Open as CloudFormation*, deploy it, then *Mark as applied via IaC*.")
    decision = ctx.approval.can_approve(client, user_id, proposal)
    if not decision.allowed:
        ctx.audit.record(user_id, "proposal.approve_refused", proposal_id, reason=decision.reason)
        return _refuse(ctx, "slack.unauthorized", f"You cannot approve `{proposal_id}`: {decision.reason}.")
    won = ctx.proposals.transition(proposal_id, APPROVED, decided_by=user_id, decided_at=iso(ctx.clock()))
    if won is None:
        current = ctx.proposals.get(proposal_id)
        state = current.state if current else "gone"
        who = f" by <@{current.decided_by}>" if current and current.decided_by else ""
        return _refuse(ctx, "slack.already_decided", f"Proposal `{proposal_id}` was already {state}{who}.")
    item, _ = ctx.queue.enqueue("apply", {"proposal_id": proposal_id, "approved_by": user_id},
                                priority=APPLY_PRIORITY, dedupe_key=f"apply:{proposal_id}", requested_by=user_id)
    ctx.audit.record(user_id, "proposal.approve", proposal_id, work_item=item.id, role=proposal.principal_arn)
    return Outcome(True, f"Approved `{proposal_id}`; the change to *{proposal.role_name}* is queued.", item.id)


def reject(ctx: AppContext, client: WebClient, user_id: str, proposal_id: str, reason: str) -> Outcome:
    proposal = ctx.proposals.get(proposal_id)
    if proposal is None:
        return _refuse(ctx, "slack.unknown_proposal", f"Unknown proposal `{proposal_id}`.")
    decision = ctx.approval.is_approver(client, user_id, proposal.account)
    if not decision.allowed:
        ctx.audit.record(user_id, "proposal.reject_refused", proposal_id, reason=decision.reason)
        return _refuse(ctx, "slack.unauthorized", f"You cannot reject `{proposal_id}`: {decision.reason}.")
    done = ctx.proposals.transition(proposal_id, REJECTED, decided_by=user_id, decided_at=iso(ctx.clock()),
                                    decision_reason=reason)
    if done is None:
        current = ctx.proposals.get(proposal_id)
        return _refuse(ctx, "slack.already_decided",
                       f"Proposal `{proposal_id}` is already {current.state if current else 'gone'}.")
    ctx.audit.record(user_id, "proposal.reject", proposal_id, reason=reason, role=proposal.principal_arn)
    return Outcome(True, f"Rejected `{proposal_id}`; *{proposal.role_name}* is left as it is.")


def can_reject(ctx: AppContext, client: WebClient, user_id: str, proposal_id: str) -> Outcome:
    """Checked before opening the reject modal, so nobody types a reason only to be refused."""
    proposal = ctx.proposals.get(proposal_id)
    if proposal is None:
        return _refuse(ctx, "slack.unknown_proposal", f"Unknown proposal `{proposal_id}`.")
    if proposal.state != PENDING:
        return _refuse(ctx, "slack.already_decided", f"Proposal `{proposal_id}` is already {proposal.state}.")
    decision = ctx.approval.is_approver(client, user_id, proposal.account)
    if not decision.allowed:
        return _refuse(ctx, "slack.unauthorized", f"You cannot reject `{proposal_id}`: {decision.reason}.")
    return Outcome(True, "")


def request_rollback(ctx: AppContext, client: WebClient, user_id: str, change_id: str) -> Outcome:
    """Queue a rollback of an applied change (approvers of the change's account only)."""
    change = ctx.changes.get(change_id)
    if change is None:
        return _refuse(ctx, "slack.unknown_change", f"Unknown change `{change_id}` (see `/tighten status <role>`).")
    if change.state != change_states.APPLIED:
        why = {change_states.ROLLED_BACK: "it was already rolled back",
               change_states.ROLLING_BACK: "it is being rolled back right now",
               change_states.APPLYING: "it is still being applied",
               change_states.FAILED: "it failed and the role was already restored",
               change_states.STALE: "it was refused (the role had changed); nothing was touched",
               change_states.REFUSED: "it was refused; nothing was touched"}.get(change.state, change.state)
        return _refuse(ctx, "slack.not_rollbackable", f"Change `{change_id}` cannot be rolled back: {why}.")
    newer = ctx.changes.newer_applied(change)
    if newer:
        return _refuse(ctx, "slack.not_rollbackable",
                       f"Change `{change_id}` cannot be rolled back yet: newer change(s) "
                       f"{', '.join(f'`{c.id}`' for c in newer)} on *{change.role_name}* must be rolled back first.")
    decision = ctx.approval.is_approver(client, user_id, change.account)
    if not decision.allowed:
        ctx.audit.record(user_id, "change.rollback_refused", change_id, reason=decision.reason)
        return _refuse(ctx, "slack.unauthorized", f"You cannot roll back `{change_id}`: {decision.reason}.")
    item, created = ctx.queue.enqueue("rollback", {"change_id": change_id, "requested_by": user_id},
                                      priority=ROLLBACK_PRIORITY, dedupe_key=f"rollback:{change_id}",
                                      requested_by=user_id)
    if not created:
        return Outcome(True, f"A rollback of `{change_id}` is already queued.", item.id)
    ctx.audit.record(user_id, "change.rollback_request", change_id, work_item=item.id, role=change.role_arn)
    return Outcome(True, f":leftwards_arrow_with_hook: Rollback of `{change_id}` (*{change.role_name}*) queued.",
                   item.id)


def allow_action(ctx: AppContext, client: WebClient, user_id: str, *, account: str, principal_arn: str,
                 action: str, resource: str | None, reason: str, rescan: bool) -> Outcome:
    """Add an allowlist entry for one principal (approvers only); optionally queue a follow-up scan."""
    decision = ctx.approval.is_approver(client, user_id, account)
    if not decision.allowed:
        ctx.audit.record(user_id, "allowlist.add_refused", principal_arn, iam_action=action, reason=decision.reason)
        return _refuse(ctx, "slack.unauthorized", f"You cannot change the allowlist: {decision.reason}.")
    if not ctx.allowlist_path:
        return _refuse(ctx, "slack.no_allowlist",
                       "No allowlist file is configured (set `allowlist:` in the config file).")
    path = Path(ctx.allowlist_path)
    try:
        with _allowlist_lock:
            allowlist = load_allowlist(path) if path.exists() else load_allowlist(None)
            entry: AllowEntry = allowlist.add(principal_arn, action, resource, reason)
            allowlist.save(path)
    except AllowlistError as exc:
        return _refuse(ctx, "slack.bad_input", str(exc).replace("new entry: ", ""))
    ctx.audit.record(user_id, "allowlist.add", principal_arn, iam_action=entry.action, resource=entry.resource)
    text = f"Allowlisted `{entry.action}` on `{entry.resource}` for `{principal_arn}`."
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
