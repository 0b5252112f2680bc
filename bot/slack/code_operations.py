"""Decisions on proposals for roles managed as code (the review message's IaC variant): open the change as
Terraform or CloudFormation, and mark it as applied through the role's code. Same contract as
:mod:`bot.slack.operations`: an :class:`~bot.slack.operations.Outcome`, nothing changed on a refusal, state
changes as single atomic store transitions, every decision audited."""

from __future__ import annotations

from slack_sdk import WebClient

from bot.policy.iac import FORMATS
from bot.slack.context import AppContext
from bot.slack.escaping import code
from bot.slack.operations import Outcome, _refuse
from bot.slack.templating import who
from bot.store.proposals import APPLIED_VIA_CODE, EXPIRED, PENDING
from bot.util.clock import iso


def can_open_as_code(ctx: AppContext, proposal_id: str, fmt: str) -> Outcome:
    """Anyone who sees the review message may open its snippet (the policy is in the thread already)."""
    if fmt not in FORMATS:
        return _refuse(ctx, "slack.bad_input", f"Unknown format {code(fmt)}.")
    proposal = ctx.proposals.get(proposal_id)
    if proposal is None:
        return _refuse(ctx, "slack.unknown_proposal", f"Unknown proposal {code(proposal_id)}.")
    if not proposal.channel or not proposal.message_ts:
        return _refuse(ctx, "slack.not_posted", f"Proposal {code(proposal_id)} has no review thread yet.")
    return Outcome(True, "")


def mark_applied_via_code(ctx: AppContext, client: WebClient, user_id: str, proposal_id: str) -> Outcome:
    """PENDING (or EXPIRED) -> APPLIED_VIA_CODE, approvers of the account only, exactly once."""
    proposal = ctx.proposals.get(proposal_id)
    if proposal is None:
        return _refuse(ctx, "slack.unknown_proposal", f"Unknown proposal {code(proposal_id)}.")
    if proposal.state not in (PENDING, EXPIRED):
        by = f" by {who(proposal.decided_by)}" if proposal.decided_by and proposal.decided_by != "tighten" else ""
        return _refuse(ctx, "slack.already_decided", f"Proposal {code(proposal_id)} is already {proposal.state}{by}.")
    decision = ctx.approval.is_approver(client, user_id, proposal.account)
    if not decision.allowed:
        ctx.audit.record(user_id, "proposal.applied_via_code_refused", proposal_id, reason=decision.reason)
        return _refuse(ctx, "slack.unauthorized",
                       f"You cannot mark {code(proposal_id)} as applied via IaC: {decision.reason}.")
    won = ctx.proposals.transition(proposal_id, APPLIED_VIA_CODE, decided_by=user_id, decided_at=iso(ctx.clock()),
                                   decision_reason="marked as applied via IaC")
    if won is None:
        current = ctx.proposals.get(proposal_id)
        return _refuse(ctx, "slack.already_decided",
                       f"Proposal {code(proposal_id)} was already {current.state if current else 'gone'}.")
    ctx.audit.record(user_id, "proposal.applied_via_code", proposal_id, role=proposal.principal_arn, detected=False)
    return Outcome(True, f"Marked {code(proposal_id)} as applied via IaC; the next inventory checks that "
                         f"{code(proposal.role_name)} holds it.")
