"""Identifiers shared by message builders and listeners (Dispatch style): one place, no string typos."""

from __future__ import annotations

from enum import StrEnum


class ActionId(StrEnum):
    APPROVE = "tighten.proposal.approve"
    REJECT = "tighten.proposal.reject"
    VIEW_POLICY = "tighten.proposal.view_policy"
    ROLLBACK = "tighten.change.rollback"
    ROLLBACK_FORCE = "tighten.change.rollback_force"
    ALLOW_ACTION = "tighten.denial.allow_action"
    HOME_REFRESH = "tighten.home.refresh"
    OPEN_TERRAFORM = "tighten.proposal.open_terraform"
    OPEN_CLOUDFORMATION = "tighten.proposal.open_cloudformation"
    MARK_APPLIED_VIA_CODE = "tighten.proposal.mark_applied_via_code"


class CallbackId(StrEnum):
    REJECT_MODAL = "tighten.reject_modal"
    POLICY_MODAL = "tighten.policy_modal"


class BlockId(StrEnum):
    DECISION_ACTIONS = "tighten.decision"
    REJECT_REASON = "tighten.reject_reason"
    ROLLBACK_ACTIONS = "tighten.rollback"
    DENIAL_ACTIONS = "tighten.denial"


#: action_id of the plain-text input inside the reject modal's reason block.
REASON_INPUT = "reason"
#: The slash command.
COMMAND = "/tighten"
