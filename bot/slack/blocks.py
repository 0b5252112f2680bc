"""Block Kit builders (plain Python dicts). Text comes from Jinja2 templates; every builder's output goes
through :func:`bot.slack.limits.fit_blocks`, so no message or view can break a Slack limit."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.slack import limits
from bot.slack.ids import REASON_INPUT, ActionId, BlockId, CallbackId
from bot.slack.templating import render
from bot.store.proposals import PENDING, Proposal
from bot.util.clock import parse_iso

Block = dict[str, Any]

#: Per-section budgets for the review message, so the whole stays far below Slack's ~12k-character ceiling.
SUMMARY_BUDGET = 2000
REASONS_BUDGET = 1200
WARNINGS_BUDGET = 1500
DIFF_BUDGET = limits.MAX_SECTION_TEXT


@dataclass(frozen=True)
class Message:
    text: str  # notification / fallback text
    blocks: list[Block]


@dataclass(frozen=True)
class Denial:
    action: str
    resource: str
    error_code: str
    event_time: str


# -- primitives ---------------------------------------------------------------------------------------
def mrkdwn(text: str, limit: int = limits.MAX_SECTION_TEXT) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": limits.clip(text, limit, limits.TRUNCATED)}}


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": limits.clip(text, limits.MAX_HEADER_TEXT),
                                       "emoji": True}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": limits.clip(text, limits.MAX_CONTEXT_TEXT)}]}


def button(text: str, action_id: str, value: str, style: str | None = None,
           confirm: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "button", "action_id": action_id,
                           "text": {"type": "plain_text", "text": limits.clip(text, limits.MAX_BUTTON_TEXT),
                                    "emoji": True},
                           "value": limits.check_button_value(value)}
    if style:
        out["style"] = style
    if confirm:
        out["confirm"] = confirm
    return out


def confirm_dialog(title: str, text: str, yes: str, no: str = "Cancel", style: str = "primary") -> dict[str, Any]:
    return {"title": {"type": "plain_text", "text": limits.clip(title, 100)},
            "text": {"type": "mrkdwn", "text": limits.clip(text, 300)},
            "confirm": {"type": "plain_text", "text": yes}, "deny": {"type": "plain_text", "text": no},
            "style": style}


def slack_date(iso_text: str | None) -> str:
    """A date Slack renders in the reader's time zone, with the UTC ISO text as fallback."""
    if not iso_text:
        return ""
    epoch = int(parse_iso(iso_text).timestamp())
    return f"<!date^{epoch}^{{date_short_pretty}} at {{time}}|{iso_text}>"


def permalink(channel: str | None, ts: str | None) -> str | None:
    if not channel or not ts:
        return None
    return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"


def ephemeral(problem: str, usage: str | None = None) -> Message:
    text = problem if usage is None else f"{problem}\nUsage: `{usage}`"
    return Message(text=limits.clip(text, 3000), blocks=limits.fit_blocks([mrkdwn(text)]))


def info(text: str) -> Message:
    return Message(text=limits.clip(text, 3000), blocks=limits.fit_blocks([mrkdwn(text)]))


# -- the review message -------------------------------------------------------------------------------
def normalized_warnings(p: Proposal) -> list[dict[str, str]]:
    out = []
    for w in p.warnings:
        if isinstance(w, dict):
            out.append({"code": str(w.get("code", "")), "message": str(w.get("message", ""))})
        else:
            out.append({"code": "", "message": str(w)})
    return out


def _view(p: Proposal) -> dict[str, Any]:
    """The proposal as template values (warnings normalized)."""
    values = dict(p.__dict__)
    values["warnings"] = normalized_warnings(p)
    return values


def stats_fields(stats: dict[str, Any]) -> list[dict[str, str]]:
    fields = []
    for key, value in stats.items():
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            continue
        label = key.replace("_", " ").capitalize()
        shown = f"{value:,}" if isinstance(value, int) else str(value)
        fields.append({"type": "mrkdwn", "text": limits.clip(f"*{limits.escape(label)}*\n{limits.escape(shown)}", 2000)})
    return fields[:10]


def diff_head(p: Proposal) -> str:
    return p.diff_text or p.unified_diff or "(no diff was computed)"


def decision_text(p: Proposal) -> str:
    return render("review_decision.j2", p=p, when=slack_date(p.decided_at or p.updated_at))


def review_message(p: Proposal) -> Message:
    """The review message for ``p``: buttons while pending, the decision (buttons gone) afterwards."""
    view = _view(p)
    from bot.slack import iac_blocks

    blocks: list[Block] = [header(f"Tighten: {p.role_name}"),
                           mrkdwn(render("review_summary.j2", p=view), SUMMARY_BUDGET)]
    as_code = iac_blocks.managed_as_code_context(p)
    if as_code is not None:
        blocks.append(as_code)
    fields = stats_fields(p.stats)
    if fields:
        blocks.append({"type": "section", "fields": fields})
    if p.risk_reasons:
        blocks.append(mrkdwn(render("review_risk.j2", p=view), REASONS_BUDGET))
    if view["warnings"]:
        blocks.append(mrkdwn(render("review_warnings.j2", p=view), WARNINGS_BUDGET))
    blocks.append(mrkdwn("*Proposed change*"))
    blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                               "text": limits.clip_code(limits.escape(diff_head(p)), DIFF_BUDGET)}})
    blocks.append(context("The full proposed policy and the full diff are in this message's thread."))
    if p.state == PENDING and p.managed_as_code:
        blocks.append(iac_blocks.managed_as_code_actions(p))
    elif p.state == PENDING:
        blocks.append({"type": "actions", "block_id": BlockId.DECISION_ACTIONS, "elements": [
            button("Approve", ActionId.APPROVE, p.id, "primary", confirm_dialog(
                "Apply this policy?",
                f"Replace the policies of *{limits.escape(p.role_name)}* with the proposed policy. "
                "It can be rolled back.", "Approve")),
            button("Reject", ActionId.REJECT, p.id, "danger"),
            button("View policy", ActionId.VIEW_POLICY, p.id),
        ]})
    else:
        blocks.append(mrkdwn(decision_text(p)))
    text = f"Tighten proposal for {p.role_name} ({p.state}): {p.summary or 'review needed'}"
    return Message(text=limits.clip(text, 3000), blocks=limits.fit_blocks(blocks))


def apply_result_message(p: Proposal, change_id: str | None, ok: bool, detail: str) -> Message:
    body = render("review_apply_result.j2", p=p, change_id=change_id, ok=ok, detail=detail)
    blocks = [mrkdwn(body)]
    if ok and change_id:
        blocks.append(rollback_actions(change_id, p.role_name))
    verb = "Applied" if ok else "Apply failed"
    return Message(text=f"{verb}: {p.role_name}", blocks=limits.fit_blocks(blocks))


def rollback_actions(change_id: str, role_name: str) -> Block:
    return {"type": "actions", "block_id": BlockId.ROLLBACK_ACTIONS, "elements": [
        button("Roll back", ActionId.ROLLBACK, change_id, "danger", confirm_dialog(
            "Roll back this change?", f"Restore the previous policies of *{limits.escape(role_name)}* "
            f"(change `{change_id}`).", "Roll back", style="danger"))]}


def rollback_result_message(p: Proposal, change_id: str, ok: bool, detail: str,
                            requested_by: str | None = None, conflicts: Sequence[str] = ()) -> Message:
    body = render("review_rollback_result.j2", p=p, change_id=change_id, ok=ok, detail=detail,
                  requested_by=requested_by, conflicts=list(conflicts))
    blocks = [mrkdwn(body)]
    if conflicts and not ok:
        blocks.append(force_rollback_actions(change_id, p.role_name))
    verb = "Rolled back" if ok else ("Rollback stopped" if conflicts else "Rollback failed")
    return Message(text=f"{verb}: {p.role_name}", blocks=limits.fit_blocks(blocks))


def force_rollback_actions(change_id: str, role_name: str) -> Block:
    return {"type": "actions", "block_id": BlockId.ROLLBACK_ACTIONS, "elements": [
        button("Roll back anyway", ActionId.ROLLBACK_FORCE, change_id, "danger", confirm_dialog(
            "Overwrite their changes?", f"Restore *{limits.escape(role_name)}* to its state before change "
            f"`{change_id}`, over the changes listed. What it replaces is stored first.", "Roll back anyway",
            style="danger"))]}


def allow_value(proposal_id: str, change_id: str, action: str, resource: str) -> str:
    return json.dumps({"p": proposal_id, "c": change_id, "a": action, "r": resource}, separators=(",", ":"))


def denial_alert_message(p: Proposal, change_id: str, denials: Sequence[Denial]) -> Message:
    body = render("review_denials.j2", p=p, change_id=change_id, denials=denials)
    elements = [button("Roll back", ActionId.ROLLBACK, change_id, "danger", confirm_dialog(
        "Roll back this change?", f"Restore the previous policies of *{limits.escape(p.role_name)}*.",
        "Roll back", style="danger"))]
    seen: set[str] = set()
    for d in denials:
        if d.action in seen or len(elements) >= limits.MAX_ACTIONS_ELEMENTS:
            continue
        value = allow_value(p.id, change_id, d.action, d.resource)
        if len(value) > limits.MAX_BUTTON_VALUE:
            value = allow_value(p.id, change_id, d.action, "*")
        seen.add(d.action)
        elements.append(button(f"Allow {d.action}", f"{ActionId.ALLOW_ACTION}.{len(elements)}", value))
    blocks = [mrkdwn(body), {"type": "actions", "block_id": BlockId.DENIAL_ACTIONS, "elements": elements}]
    return Message(text=f"Access denied for {p.role_name} after change {change_id}",
                   blocks=limits.fit_blocks(blocks))


# -- modals ---------------------------------------------------------------------------------------------
def chunk_lines(text: str, size: int) -> list[str]:
    """Split ``text`` into pieces of at most ``size`` characters, at line ends when possible."""
    chunks: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line) > size:
            if current:
                chunks.append(current)
                current = ""
            chunks.append(line[:size])
            line = line[size:]
        if len(current) + len(line) > size:
            chunks.append(current)
            current = ""
        current += line
    if current:
        chunks.append(current)
    return [c.rstrip("\n") for c in chunks]


def policy_modal(p: Proposal) -> dict[str, Any]:
    blocks: list[Block] = [mrkdwn(f"Proposed policy for *{limits.escape(p.role_name)}* (`{p.id}`, {p.state}). "
                                  f"{len(p.documents)} document(s).")]
    room = limits.MAX_VIEW_BLOCKS - 2
    for i, doc in enumerate(p.documents, 1):
        text = limits.escape(json.dumps(doc, indent=2, sort_keys=False))
        if len(p.documents) > 1:
            blocks.append(context(f"Document {i} of {len(p.documents)}"))
        for piece in chunk_lines(text, limits.MAX_SECTION_TEXT - 10):
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"```\n{piece}\n```"}})
    if len(blocks) > room:
        blocks = blocks[:room] + [context("Policy too long to show here … (the full policy is in the review thread)")]
    return {"type": "modal", "callback_id": CallbackId.POLICY_MODAL,
            "title": {"type": "plain_text", "text": "Proposed policy"},
            "close": {"type": "plain_text", "text": "Close"},
            "blocks": limits.fit_blocks(blocks, limits.MAX_VIEW_BLOCKS)}


def reject_modal(p: Proposal, channel: str | None, message_ts: str | None) -> dict[str, Any]:
    metadata = json.dumps({"p": p.id, "c": channel, "t": message_ts}, separators=(",", ":"))
    return {"type": "modal", "callback_id": CallbackId.REJECT_MODAL,
            "private_metadata": limits.clip(metadata, limits.MAX_PRIVATE_METADATA),
            "title": {"type": "plain_text", "text": "Reject proposal"},
            "submit": {"type": "plain_text", "text": "Reject"},
            "close": {"type": "plain_text", "text": "Cancel"},
            "blocks": [
                mrkdwn(f"Reject proposal `{p.id}` for *{limits.escape(p.role_name)}*? The role is left as it is."),
                {"type": "input", "block_id": BlockId.REJECT_REASON,
                 "label": {"type": "plain_text", "text": "Reason"},
                 "element": {"type": "plain_text_input", "action_id": REASON_INPUT, "multiline": True,
                             "min_length": 3, "max_length": 500,
                             "placeholder": {"type": "plain_text", "text": "e.g. batch job runs monthly"}}},
            ]}


# -- App Home -----------------------------------------------------------------------------------------
HOME_SECTION_ITEMS = 15


def home_view(user_id: str, pending: list[Proposal], changes: Iterable[Any], queue_lines: list[str]) -> dict[str, Any]:
    blocks: list[Block] = [header("Tighten"), mrkdwn(render("home_intro.j2", user=user_id, pending=pending))]
    blocks.append(header("Waiting for your approval"))
    if not pending:
        blocks.append(context("Nothing right now."))
    for p in pending[:HOME_SECTION_ITEMS]:
        link = permalink(p.channel, p.message_ts)
        where = f"<{link}|open review>" if link else "review message not posted yet"
        text = (f"*{limits.escape(p.role_name)}* ({p.account}) · `{p.id}` · since {slack_date(p.created_at)} · {where}\n"
                f"{limits.escape(p.summary or '')}")
        blocks.append({**mrkdwn(text, 1500), "accessory": button("View policy", ActionId.VIEW_POLICY, p.id)})
    if len(pending) > HOME_SECTION_ITEMS:
        blocks.append(context(f"… and {len(pending) - HOME_SECTION_ITEMS} more"))
    blocks.append(header("Recent changes"))
    changes = list(changes)
    if not changes:
        blocks.append(context("No changes yet."))
    for ch in changes[:HOME_SECTION_ITEMS]:
        text = f"`{ch.id}` *{limits.escape(ch.role_name)}* ({ch.account}) — {ch.state} · {slack_date(ch.created_at)}"
        block = mrkdwn(text, 1000)
        if ch.state == "applied":
            block["accessory"] = button("Roll back", ActionId.ROLLBACK, ch.id, "danger", confirm_dialog(
                "Roll back this change?", f"Restore the previous policies of *{limits.escape(ch.role_name)}*.",
                "Roll back", style="danger"))
        blocks.append(block)
    blocks.append(header("Scan queue"))
    blocks.append(mrkdwn("\n".join(queue_lines) if queue_lines else "The queue is empty."))
    blocks.append({"type": "actions", "elements": [button("Refresh", ActionId.HOME_REFRESH, "refresh")]})
    return {"type": "home", "blocks": limits.fit_blocks(blocks, limits.MAX_VIEW_BLOCKS)}
