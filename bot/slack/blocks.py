"""Block Kit builders (plain Python dicts). Text comes from Jinja2 templates; every builder's output goes
through :func:`bot.slack.limits.fit_blocks`, so no message or view can break a Slack limit.

Rules every builder keeps: a value that did not come from Tighten goes through :mod:`bot.slack.escaping` (the
``esc`` filter in templates); a button's value is the id of a stored row (:func:`button` refuses anything
else), never data that might not fit. The review message itself is :mod:`bot.slack.review`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.slack import limits
from bot.slack.escaping import code, code_block, neutral, plain
from bot.slack.ids import REASON_INPUT, ActionId, BlockId, CallbackId
from bot.slack.templating import count, render
from bot.store.proposals import Proposal
from bot.util.clock import parse_iso

Block = dict[str, Any]

#: A button value: the id of a stored row (``p-3f9a2b7c``, ``c-…``, ``a-…``) or a fixed word (``home``).
BUTTON_VALUE = re.compile(r"^[a-z]{1,20}(-[0-9a-f]{8,32})?$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_MESSAGE_TS = re.compile(r"^\d{1,12}\.\d{1,9}$")


class ButtonValueError(ValueError):
    """A button value that is not a stored row's id."""


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
    offer_id: str | None = None  # the stored allowance its Allow button refers to; None: no button


# -- primitives ---------------------------------------------------------------------------------------
def mrkdwn(text: str, limit: int = limits.MAX_SECTION_TEXT) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": limits.clip(text, limit, limits.TRUNCATED),
                                        "verbatim": True}}


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": limits.clip(text, limits.MAX_HEADER_TEXT),
                                       "emoji": True}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": limits.clip(text, limits.MAX_CONTEXT_TEXT),
                                             "verbatim": True}]}


def button(text: str, action_id: str, value: str, style: str | None = None,
           confirm: dict[str, Any] | None = None) -> dict[str, Any]:
    """A button whose ``value`` is a stored row's id (:data:`BUTTON_VALUE`); anything else is refused."""
    if not BUTTON_VALUE.match(value):
        raise ButtonValueError(f"a button value must be a stored row's id, not {value[:40]!r}")
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
    return {"title": {"type": "plain_text", "text": limits.clip(title, limits.MAX_CONFIRM_TITLE)},
            "text": {"type": "mrkdwn", "text": limits.clip(text, limits.MAX_CONFIRM_TEXT), "verbatim": True},
            "confirm": {"type": "plain_text", "text": yes}, "deny": {"type": "plain_text", "text": no},
            "style": style}


def slack_date(iso_text: str | None) -> str:
    """A date Slack renders in the reader's time zone, with the UTC ISO text as fallback; a text that is not a
    time is quoted as it is."""
    if not iso_text:
        return ""
    try:
        when = parse_iso(iso_text)
    except (ValueError, TypeError, OverflowError):
        return code(iso_text)
    fallback = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def permalink(channel: str | None, ts: str | None) -> str | None:
    """A link to a message, only for a channel id and timestamp of Slack's shape (they go inside ``<…|…>``)."""
    if not channel or not ts or not _CHANNEL_ID.match(channel) or not _MESSAGE_TS.match(ts):
        return None
    return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"


def ephemeral(problem: str, usage: str | None = None) -> Message:
    """A problem (Tighten's text, outside values already escaped) and the command's usage."""
    text = problem if usage is None else f"{problem}\nUsage: `{neutral(usage)}`"
    return Message(text=limits.clip(text, limits.MAX_NOTIFICATION_TEXT), blocks=limits.fit_blocks([mrkdwn(text)]))


def info(text: str) -> Message:
    """Tighten's text (outside values already escaped) as one section."""
    return Message(text=limits.clip(text, limits.MAX_NOTIFICATION_TEXT), blocks=limits.fit_blocks([mrkdwn(text)]))


# -- after a decision -----------------------------------------------------------------------------------------
def decision_text(p: Proposal) -> str:
    return render("review_decision.j2", p=p, when=slack_date(p.decided_at or p.updated_at))


def apply_result_message(p: Proposal, change_id: str | None, ok: bool, detail: str) -> Message:
    body = render("review_apply_result.j2", p=p, change_id=change_id, ok=ok, detail=detail)
    blocks = [mrkdwn(body)]
    if ok and change_id:
        blocks.append(rollback_actions(change_id, p.role_name))
    verb = "Applied" if ok else "Apply failed"
    return Message(text=f"{verb}: {code(p.role_name)}", blocks=limits.fit_blocks(blocks))


def rollback_actions(change_id: str, role_name: str) -> Block:
    return {"type": "actions", "block_id": BlockId.ROLLBACK_ACTIONS, "elements": [
        button("Roll back", ActionId.ROLLBACK, change_id, "danger", confirm_dialog(
            "Roll back this change?", f"Restore the previous policies of {code(role_name)} "
            f"(change `{neutral(change_id)}`).", "Roll back", style="danger"))]}


def rollback_result_message(p: Proposal, change_id: str, ok: bool, detail: str,
                            requested_by: str | None = None, conflicts: Sequence[str] = ()) -> Message:
    body = render("review_rollback_result.j2", p=p, change_id=change_id, ok=ok, detail=detail,
                  requested_by=requested_by, conflicts=list(conflicts))
    blocks = [mrkdwn(body)]
    if conflicts and not ok:
        blocks.append(force_rollback_actions(change_id, p.role_name))
    verb = "Rolled back" if ok else ("Rollback stopped" if conflicts else "Rollback failed")
    return Message(text=f"{verb}: {code(p.role_name)}", blocks=limits.fit_blocks(blocks))


def force_rollback_actions(change_id: str, role_name: str) -> Block:
    return {"type": "actions", "block_id": BlockId.ROLLBACK_ACTIONS, "elements": [
        button("Roll back anyway", ActionId.ROLLBACK_FORCE, change_id, "danger", confirm_dialog(
            "Overwrite their changes?", f"Restore {code(role_name)} to its state before change "
            f"`{neutral(change_id)}`, over the changes listed. What it replaces is stored first.",
            "Roll back anyway", style="danger"))]}


#: Denied calls listed in one alert, and the room each line may take (the rest are counted, not listed).
DENIAL_LINES = 20
DENIAL_LINE_BUDGET = 450


def denial_alert_message(p: Proposal, change_id: str, denials: Sequence[Denial]) -> Message:
    """Denied calls after a change: one line per denial, each with an Allow button when an allowance for exactly
    its action and resource was stored (``offer_id``); Roll back below."""
    blocks: list[Block] = [mrkdwn(render("review_denials.j2", p=p, change_id=change_id, denials=denials))]
    for d in denials[:DENIAL_LINES]:
        line = mrkdwn(render("review_denial_line.j2", d=d, when=slack_date(d.event_time)), DENIAL_LINE_BUDGET)
        if d.offer_id:
            line["accessory"] = button(f"Allow {plain(d.action)}", f"{ActionId.ALLOW_ACTION}.{len(blocks)}",
                                       d.offer_id)
        blocks.append(line)
    if len(denials) > DENIAL_LINES:
        blocks.append(context(f"… and {count(len(denials) - DENIAL_LINES, 'more denied call')} in the next alert."))
    blocks.append({"type": "actions", "block_id": BlockId.DENIAL_ACTIONS, "elements": [
        button("Roll back", ActionId.ROLLBACK, change_id, "danger", confirm_dialog(
            "Roll back this change?", f"Restore the previous policies of {code(p.role_name)}.", "Roll back",
            style="danger"))]})
    return Message(text=f"Access denied for {code(p.role_name)} after change `{neutral(change_id)}`",
                   blocks=limits.fit_blocks(blocks))


# -- modals ---------------------------------------------------------------------------------------------
def chunk_lines(text: str, size: int) -> list[str]:
    """Split ``text`` into pieces of at most ``size`` UTF-16 units, at line ends when possible (a longer line is
    cut on a safe boundary, never inside an entity or a surrogate pair)."""
    chunks: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while limits.units(line) > size:
            if current:
                chunks.append(current)
                current = ""
            piece = limits.safe_prefix(line, size) or line[:1]
            chunks.append(piece)
            line = line[len(piece):]
        if limits.units(current) + limits.units(line) > size:
            chunks.append(current)
            current = ""
        current += line
    if current:
        chunks.append(current)
    return [c.rstrip("\n") for c in chunks]


def policy_modal(p: Proposal) -> dict[str, Any]:
    blocks: list[Block] = [mrkdwn(f"Proposed policy for {code(p.role_name)} (`{neutral(p.id)}`, {p.state}). "
                                  f"{count(len(p.documents), 'document')}.")]
    room = limits.MAX_VIEW_BLOCKS - 2
    for i, doc in enumerate(p.documents, 1):
        text = code_block(json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False)).replace("`", "ˋ")
        if len(p.documents) > 1:
            blocks.append(context(f"Document {i} of {len(p.documents)}"))
        for piece in chunk_lines(text, limits.MAX_SECTION_TEXT - 10):
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"```\n{piece}\n```",
                                                       "verbatim": True}})
    if len(blocks) > room:
        blocks = blocks[:room] + [context("Policy too long to show here … (the full policy is in the review thread)")]
    return {"type": "modal", "callback_id": CallbackId.POLICY_MODAL,
            "title": {"type": "plain_text", "text": "Proposed policy"},
            "close": {"type": "plain_text", "text": "Close"},
            "blocks": limits.fit_blocks(blocks, limits.MAX_VIEW_BLOCKS)}


def reject_modal(p: Proposal, channel: str | None, message_ts: str | None) -> dict[str, Any]:
    """The reason form; its private metadata holds only ids (the proposal, and where its message is)."""
    where = {"c": channel, "t": message_ts} if permalink(channel, message_ts) else {}
    metadata = json.dumps({"p": p.id, **where}, separators=(",", ":"))
    if limits.units(metadata) > limits.MAX_PRIVATE_METADATA:
        raise limits.BlockLimitError("reject form metadata over its limit")
    return {"type": "modal", "callback_id": CallbackId.REJECT_MODAL,
            "private_metadata": metadata,
            "title": {"type": "plain_text", "text": "Reject proposal"},
            "submit": {"type": "plain_text", "text": "Reject"},
            "close": {"type": "plain_text", "text": "Cancel"},
            "blocks": [
                mrkdwn(f"Reject proposal `{neutral(p.id)}` for {code(p.role_name)}? The role is left as it is."),
                {"type": "input", "block_id": BlockId.REJECT_REASON,
                 "label": {"type": "plain_text", "text": "Reason"},
                 "element": {"type": "plain_text_input", "action_id": REASON_INPUT, "multiline": True,
                             "min_length": 3, "max_length": 500,
                             "placeholder": {"type": "plain_text", "text": "e.g. batch job runs monthly"}}},
            ]}


# -- App Home -----------------------------------------------------------------------------------------
HOME_SECTION_ITEMS = 15
#: The Refresh button's value (it refers to no row: the view is rebuilt for whoever clicks).
HOME_REFRESH_VALUE = "home"


def home_view(user_id: str, pending: list[Proposal], changes: Iterable[Any], queue_lines: list[str]) -> dict[str, Any]:
    """App Home. ``queue_lines`` are already escaped (:func:`bot.slack.commands.queue.queue_lines`)."""
    blocks: list[Block] = [header("Tighten"), mrkdwn(render("home_intro.j2", user=user_id, pending=pending))]
    blocks.append(header("Waiting for your approval"))
    if not pending:
        blocks.append(context("Nothing right now."))
    for p in pending[:HOME_SECTION_ITEMS]:
        link = permalink(p.channel, p.message_ts)
        where = f"<{link}|open review>" if link else "review message not posted yet"
        text = (f"{code(p.role_name)} ({code(p.account)}) · `{neutral(p.id)}` · since {slack_date(p.created_at)} · "
                f"{where}\n{neutral(p.summary or '')}")
        blocks.append({**mrkdwn(text, 1500), "accessory": button("View policy", ActionId.VIEW_POLICY, p.id)})
    if len(pending) > HOME_SECTION_ITEMS:
        blocks.append(context(f"… and {len(pending) - HOME_SECTION_ITEMS} more"))
    blocks.append(header("Recent changes"))
    changes = list(changes)
    if not changes:
        blocks.append(context("No changes yet."))
    for ch in changes[:HOME_SECTION_ITEMS]:
        text = (f"`{neutral(ch.id)}` {code(ch.role_name)} ({code(ch.account)}) — {neutral(ch.state)} · "
                f"{slack_date(ch.created_at)}")
        block = mrkdwn(text, 1000)
        if ch.state == "applied":
            block["accessory"] = button("Roll back", ActionId.ROLLBACK, ch.id, "danger", confirm_dialog(
                "Roll back this change?", f"Restore the previous policies of {code(ch.role_name)}.",
                "Roll back", style="danger"))
        blocks.append(block)
    blocks.append(header("Scan queue"))
    blocks.append(mrkdwn("\n".join(queue_lines) if queue_lines else "The queue is empty."))
    blocks.append({"type": "actions", "elements": [button("Refresh", ActionId.HOME_REFRESH, HOME_REFRESH_VALUE)]})
    return {"type": "home", "blocks": limits.fit_blocks(blocks, limits.MAX_VIEW_BLOCKS)}
