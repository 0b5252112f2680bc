"""The review message's variant for roles managed as code, and the messages of that flow.

Kept apart from :mod:`bot.slack.blocks` so it can be carried into any layout of the review message:
:func:`managed_as_code_context` is the line saying the role is managed as code and by which stack or rule;
:func:`managed_as_code_actions` replaces the Approve/Reject/View buttons while the proposal is pending
("Open as Terraform", "Open as CloudFormation", "Mark as applied via IaC"; Approve only where
``iac.direct_apply`` allows it). Every outside string (role, stack, rule, tag values) is escaped.
"""

from __future__ import annotations

import re
from typing import Any

from bot.policy.iac import EXTENSIONS, render, target_from_record
from bot.slack import limits
from bot.slack.blocks import Block, Message, button, confirm_dialog, context, mrkdwn
from bot.slack.escaping import code, plain
from bot.slack.ids import ActionId, BlockId
from bot.slack.templating import who
from bot.store.proposals import Proposal

TOOL_NAMES = {"terraform": "Terraform", "cloudformation": "CloudFormation"}
OPEN_ACTIONS = {"terraform": ActionId.OPEN_TERRAFORM, "cloudformation": ActionId.OPEN_CLOUDFORMATION}


def _reason(p: Proposal) -> str:
    return code((p.managed_as_code or {}).get("reason", ""))


def managed_as_code_context(p: Proposal) -> Block | None:
    """One context line: managed as code, by which stack or rule, and what that means here (None otherwise)."""
    managed = p.managed_as_code
    if not managed:
        return None
    tool = TOOL_NAMES.get(str(managed.get("tool")), "code")
    if p.iac.get("direct_apply"):
        how = ("Direct apply is allowed for this account, but the next deployment of that code puts the old "
               f"permissions back: prefer changing the {tool} code.")
    else:
        how = (f"Tighten does not change it directly: open the change as {tool} (or the other format), deploy it "
               "through your pipeline, and the next inventory closes this proposal.")
    return context(f":building_construction: *Managed as code* — {_reason(p)}. {how}")


def managed_as_code_actions(p: Proposal) -> Block:
    """The pending proposal's buttons for a role managed as code."""
    managed = p.managed_as_code or {}
    first = "cloudformation" if managed.get("tool") == "cloudformation" else "terraform"
    order = [first, "terraform" if first == "cloudformation" else "cloudformation"]
    elements: list[dict[str, Any]] = [
        button(f"Open as {TOOL_NAMES[fmt]}", OPEN_ACTIONS[fmt], p.id, "primary" if fmt == first else None)
        for fmt in order]
    elements.append(button("Mark as applied via IaC", ActionId.MARK_APPLIED_VIA_CODE, p.id, None, confirm_dialog(
        "Mark as applied via IaC?",
        f"Say that the proposed policy for {code(p.role_name)} was deployed through its code. "
        "The next inventory checks that the role holds it.", "Mark as applied")))
    if p.iac.get("direct_apply"):
        elements.append(button("Apply directly", ActionId.APPROVE, p.id, "danger", confirm_dialog(
            "Apply directly?",
            f"Replace the policies of {code(p.role_name)} now. It is managed as code: the next "
            "deployment of that code puts the old permissions back.", "Apply", style="danger")))
    elements.append(button("Reject", ActionId.REJECT, p.id, "danger"))
    elements.append(button("View policy", ActionId.VIEW_POLICY, p.id))
    return {"type": "actions", "block_id": BlockId.DECISION_ACTIONS, "elements": elements}


def snippet(p: Proposal, fmt: str, policy_name_prefix: str = "tighten-") -> dict[str, str]:
    """The proposal as ``fmt`` code, ready for ``files_upload_v2``: filename, title, content."""
    target = target_from_record(role_name=p.role_name, account=p.account, proposal_id=p.id, documents=p.documents,
                                iac=p.iac, current_names=[d.get("name", "") for d in p.current_documents],
                                policy_name_prefix=policy_name_prefix)
    return {"filename": f"{file_name(p.role_name)}-{p.id}.{EXTENSIONS[fmt]}",
            "title": f"{TOOL_NAMES.get(fmt, fmt)} for {plain(p.role_name)} ({p.id})",
            "content": render(p.documents, fmt, target)}


def applied_via_code_message(p: Proposal, *, confirmed: bool) -> Message:
    """Thread message: closed (or confirmed) as applied via code."""
    role = code(p.role_name)
    if confirmed and p.decided_by == "tighten":
        text = (f":building_construction: *Applied via code*: the inventory found *{role}* holding the proposed "
                f"permissions (same effective permissions). Proposal `{p.id}` is closed.")
    elif confirmed:
        text = (f":white_check_mark: Confirmed: the inventory found *{role}* holding the proposed permissions "
                f"(marked as applied via IaC by {who(p.decided_by)}).")
    else:
        text = (f":building_construction: Marked as *applied via IaC* by {who(p.decided_by)}. The next inventory "
                f"checks that *{role}* holds the proposed permissions and says so here.")
    return Message(text=f"Applied via code: {role}", blocks=limits.fit_blocks([mrkdwn(text)]))


def drift_back_message(p: Proposal, change_id: str) -> Message:
    """Channel message: the role holds its old permissions again after a Tighten change."""
    role = code(p.role_name)
    where = f" ({_reason(p)})" if p.managed_as_code else ""
    text = (f":warning: *{role}* is back to the permissions it held before change `{change_id}` "
            f"(proposal `{p.id}`): something outside Tighten put the old policies back{where}, such as a "
            "`terraform apply` or a stack update. Change the role in its code, or roll the change back to "
            "match what is deployed.")
    return Message(text=f"{role} drifted back to its old permissions", blocks=limits.fit_blocks([mrkdwn(text)]))


def file_name(name: str) -> str:
    """A name safe in a file name (IAM names are already; anything else becomes ``_``)."""
    return re.sub(r"[^A-Za-z0-9+=,.@_-]", "_", name)[:100] or "role"
