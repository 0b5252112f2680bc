"""The review message: where a person decides whether a proposal is applied.

Layout (every part of it bounded, so no length of diff, list or name can push a decision-critical line out):

1. Header: the role.
2. **Above the fold** (:func:`decision_section`, the first section, never cut): what the proposal is (and, for a
   restore, which change it undoes part of); the one-line summary, once; the escalation paths that stay open,
   by name, or "none stay open"; what it keeps that is high risk (admin-capable roles it can pass or assume,
   write access to IAM); roles it can pass or assume that the inventory does not know; the containment result;
   the replay result; who may approve (users and user groups, as mentions) and who may not, and why.
3. The managed-as-code line, when the role is managed as code (:mod:`bot.slack.iac_blocks`).
4. Permissions now → proposed, as a small ordered table (actions, services, write and permissions-management
   actions, escalation paths).
5. Why this role was picked; coverage warnings in plain words (never an internal code).
6. An excerpt of the diff (without the summary and the escalation list, which are above). The full diff, the
   proposed policy, the notes and every escalation path with its sources are in the thread's files.
7. The buttons while pending (or the managed-as-code variant's), the decision afterwards.

Every value that did not come from Tighten goes through :mod:`bot.slack.escaping`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.policy.coverage import lookback_days
from bot.slack import limits
from bot.slack.approvals import ApprovalGate
from bot.slack.blocks import (
    Block,
    Message,
    button,
    confirm_dialog,
    context,
    decision_text,
    header,
    mrkdwn,
)
from bot.slack.escaping import code, code_block, neutral, plain
from bot.slack.ids import ActionId, BlockId
from bot.slack.templating import count, group, is_slack_user, who
from bot.store.proposals import PENDING, Proposal

#: Budgets (UTF-16 units) of the lines above the fold; their sum, with line breaks, stays under a section's 3,000.
BUDGETS = {"what": 260, "window": 120, "summary": 520, "open": 580, "high_risk": 400, "unresolved": 260,
           "containment": 220, "replay": 160, "approvers": 420}
#: Per-section budgets below the fold, so the whole message stays far below Slack's ~12k-character ceiling.
RISK_BUDGET = 1200
WARNINGS_BUDGET = 1500
DIFF_BUDGET = limits.MAX_SECTION_TEXT

#: Plain words for every coverage warning code (``bot.policy.coverage`` and the scan's own); a code not listed
#: here is shown under "Coverage", never as the code itself.
WARNING_TITLES = {
    "window_short": "Short lookback",
    "window_shorter_than_history": "Older activity not read",
    "seen_once": "Used only once",
    "periodic": "Rare, periodic use",
    "near_window_start": "Seen only at the start of the window",
    "data_events_absent": "Data events not in the logs",
    "role-scope": "Young role",
}


# -- small pieces ---------------------------------------------------------------------------------------------
def role_label(role: dict[str, Any] | None) -> str:
    """A named role a proposal can pass or assume, from its stored profile (``RoleProfile.to_json``)."""
    if not isinstance(role, dict):
        return "any role"
    if role.get("iam_admin"):
        return f"admin role {code(role.get('name', '?'))}"
    paths = [neutral(x) for x in role.get("paths") or []]
    return f"role {code(role.get('name', '?'))} (which can escalate: {listing(paths, 120, more='', sep=', ')})"


def _more(left: int, more: str) -> str:
    return f" and {left} more{' ' + more if more else ''}" if left else ""


def listing(items: Sequence[str], budget: int, *, more: str = "in the thread", sep: str = "; ") -> str:
    """``items`` joined while they fit ``budget`` units, then "and N more <more>"."""
    reserve = limits.units(_more(len(items), more))
    shown: list[str] = []
    used = 0
    for item in items:
        cost = limits.units(item) + (len(sep) if shown else 0)
        if shown and used + cost + reserve > budget:
            break
        if not shown and cost + reserve > budget:  # one item longer than the budget: cut safely
            item = limits.clip(item, max(1, budget - reserve))
            cost = limits.units(item)
        shown.append(item)
        used += cost
    return sep.join(shown) + _more(len(items) - len(shown), more)


def _line(text: str, budget: int) -> str:
    return limits.clip(text, budget)


# -- above the fold -------------------------------------------------------------------------------------------
def _what(p: Proposal) -> str:
    restore = (p.checks or {}).get("restore")
    who_asked = f" · requested by {who(p.requested_by)}" if p.requested_by else ""
    base = f"{code(p.role_name)} in account {code(p.account)} · proposal `{p.id}`{who_asked}"
    if not restore:
        return base
    change = neutral(restore.get("change_id", "?"))
    actions = [code(a) for a in restore.get("actions") or []]
    back = f": grants back {listing(actions, 120, more='', sep=', ')}" if actions else ""
    return (f":leftwards_arrow_with_hook: *Restores access removed by change `{change}`*{back} — never more than "
            f"the role held before that change.\n{base}")


def _window(p: Proposal) -> str:
    if not (p.window_start and p.window_end):
        return ""
    try:
        days = lookback_days(p.window_start, p.window_end)
    except ValueError:
        return ""
    return (f"_Usage of the last {count(days, 'day')} ({neutral(p.window_start[:10])} → {neutral(p.window_end[:10])})"
            f" · engine: {neutral(p.engine)}_")


def _summary(p: Proposal) -> str:
    return f"*Summary:* {neutral(p.summary)}" if p.summary else "*Summary:* none was computed for this proposal."


def _path_name(path: dict[str, Any]) -> str:
    """A path's name (catalogue data) and id; the named roles that open it quoted from its stored profiles."""
    flags = [word for word, on in (("NEW", path.get("new")), ("conditional", path.get("conditional"))) if on]
    text = neutral(path.get("name") or path.get("id") or "?")
    via = [role_label(r) for r in path.get("via") or [] if isinstance(r, dict)]
    if via:
        text += " — through " + listing(via, 200, more="", sep=", ")
    return f"{text} ({neutral(path.get('id', '?'))}{', ' + ', '.join(flags) if flags else ''})"


def _escalation(p: Proposal) -> str:
    check = (p.checks or {}).get("escalation")
    if not isinstance(check, dict):
        return ":grey_question: *Escalation paths:* not checked for this proposal."
    open_paths = [x for x in check.get("open") or [] if isinstance(x, dict)]
    closed = int((check.get("counts") or {}).get("closed", len(check.get("closed") or [])))
    closes = f" (it closes {count(closed, 'path')})" if closed else ""
    if not open_paths:
        return f":white_check_mark: *Escalation paths:* none stay open{closes}."
    names = [_path_name(x) for x in open_paths]
    title = f"*{count(len(open_paths), 'escalation path')} stay{'s' if len(open_paths) == 1 else ''} open*"
    return f":rotating_light: {title}{closes}: " + listing(names, BUDGETS["open"] - 120)


def _high_risk(p: Proposal) -> str:
    check = (p.checks or {}).get("escalation")
    if not isinstance(check, dict):
        return ""
    items = [_kept_item(x) for x in check.get("high_risk_kept") or [] if isinstance(x, dict)]
    if (check.get("iam_admin") or {}).get("after"):
        items.insert(0, "keeps IAM administration (permissions management on wildcard resources)")
    if not items:
        return "*Kept high risk:* nothing (no admin-capable role to pass or assume, no write access to IAM)."
    return ":warning: *Kept high risk:* " + listing(items, BUDGETS["high_risk"] - 40)


def _kept_item(item: dict[str, Any]) -> str:
    """One ``high_risk_kept`` item, from its structure (``bot.policy.escalation.high_risk_kept``)."""
    kind = str(item.get("kind", ""))
    conditional = " (conditional)" if item.get("conditional") else ""
    if kind in ("pass-role", "assume-role"):
        return f"can {kind.split('-')[0]} {role_label(item.get('role'))}{conditional}"
    if kind == "iam-write":
        actions = [code(a) for a in item.get("actions") or []]
        return f"keeps write access to IAM ({count(len(actions), 'action')}: {listing(actions, 160, more='', sep=', ')})"
    return neutral(item.get("text", ""))


def _unresolved(p: Proposal) -> str:
    check = (p.checks or {}).get("escalation")
    roles = list((check or {}).get("unresolved_roles") or []) if isinstance(check, dict) else []
    if not roles:
        return ""
    return (f":grey_question: *{count(len(roles), 'role')} it can pass or assume that the inventory does not "
            "know* (check what they can do): " + listing([code(r) for r in roles], BUDGETS["unresolved"] - 140,
                                                          sep=", "))


def _containment(p: Proposal) -> str:
    result = ((p.checks or {}).get("containment") or {}).get("result")
    restore = (p.checks or {}).get("restore")
    if result == "pass" and restore:
        return (":lock: *Containment:* grants nothing the role did not hold before change "
                f"`{neutral(restore.get('change_id', '?'))}` (checked against that change's before-image).")
    if result == "pass":
        return (":lock: *Containment:* grants nothing new — every proposed statement lies inside a current one; "
                "every current Deny that could apply still applies.")
    if result:
        return f":x: *Containment:* {neutral(result)}."
    return ":grey_question: *Containment:* not checked for this proposal."


def _replay(p: Proposal) -> str:
    replay = (p.checks or {}).get("replay")
    if not isinstance(replay, dict):
        return "*Replay:* not replayed."
    calls, days = int(replay.get("calls") or 0), int(replay.get("days") or 0)
    denied = int(replay.get("denied") or 0)
    if denied:
        return f":x: *Replay:* {count(denied, 'call')} of {count(calls, 'call')} from {count(days, 'day')} denied."
    return f":repeat: *Replay:* replayed {count(calls, 'call')} from {count(days, 'day')}: all allowed."


def _approvers(p: Proposal, gate: ApprovalGate | None) -> str:
    if gate is None:
        return ":grey_question: *Who may approve:* not known here (see the account's approvers in the config)."
    mentions = [who(u) for u in gate.approvers.users] + [group(g) for g in gate.approvers.groups]
    if not mentions:
        return (f":no_entry: *Nobody can approve:* no approvers are configured for account {code(p.account)}.")
    text = ":busts_in_silhouette: *Who may approve:* " + listing(mentions, 180, more="(see the config)", sep=", ")
    people = [e for e in gate.excluded if is_slack_user(e.user)]
    if people:
        text += ". *May not:* " + listing([f"{who(e.user)} ({e.text})" for e in people], 180,
                                          more="", sep="; ")
        text += " — someone else must approve (two-person rule)."
    elif gate.self_approval_allowed:
        text += " (self-approval is allowed: `approval.allow_self_approval`)."
    else:
        text += "."
    return text


def decision_lines(p: Proposal, gate: ApprovalGate | None) -> list[str]:
    """The lines above the fold, each within its budget (see :data:`BUDGETS`)."""
    parts = [("what", _what(p)), ("window", _window(p)), ("summary", _summary(p)), ("open", _escalation(p)),
             ("high_risk", _high_risk(p)), ("unresolved", _unresolved(p)), ("containment", _containment(p)),
             ("replay", _replay(p)), ("approvers", _approvers(p, gate))]
    return [_line(text, BUDGETS[key]) for key, text in parts if text]


def decision_section(p: Proposal, gate: ApprovalGate | None) -> Block:
    text = "\n".join(decision_lines(p, gate))
    assert limits.units(text) <= limits.MAX_SECTION_TEXT, "decision section over budget"
    return mrkdwn(text)


# -- below the fold -------------------------------------------------------------------------------------------
def stats_rows(p: Proposal) -> list[tuple[str, int, int]]:
    """(label, now, proposed) in a fixed order; rows whose numbers the proposal does not carry are left out."""
    stats = p.stats or {}
    rows: list[tuple[str, int, int]] = []
    for label, now_key, after_key in (("Actions", "current_actions", "proposed_actions"),
                                      ("Services", "current_services", "proposed_services"),
                                      ("Write and permissions-management actions", "current_write",
                                       "proposed_write")):
        if isinstance(stats.get(now_key), int) and isinstance(stats.get(after_key), int):
            rows.append((label, stats[now_key], stats[after_key]))
    counts = ((p.checks or {}).get("escalation") or {}).get("counts") or {}
    if isinstance(counts.get("open_before"), int) and isinstance(counts.get("open_after"), int):
        rows.append(("Escalation paths", counts["open_before"], counts["open_after"]))
    return rows


def stats_block(p: Proposal) -> Block | None:
    rows = stats_rows(p)
    if not rows:
        return None
    fields = [{"type": "mrkdwn", "text": f"*{label}*\n{now:,} → {after:,}"} for label, now, after in rows]
    return {"type": "section", "text": {"type": "mrkdwn", "text": "*Permissions, now → proposed*",
                                        "verbatim": True}, "fields": fields}


def risk_text(p: Proposal) -> str:
    lines = [f"*Why this role was picked* (risk {p.risk_score or 0:.1f})"]
    lines += [f"• {neutral(r)}" for r in p.risk_reasons]
    return limits.clip("\n".join(lines), RISK_BUDGET)


def warnings_text(p: Proposal) -> str:
    lines = [":warning: *Check before approving*"]
    for w in p.warnings:
        if isinstance(w, dict):
            title = WARNING_TITLES.get(str(w.get("code") or ""), "Coverage")
            message = str(w.get("message") or "")
        else:
            title, message = "Coverage", str(w)
        message = message[:1].upper() + message[1:]
        lines.append(f"• *{title}:* {neutral(message)}")
    return limits.clip("\n".join(lines), WARNINGS_BUDGET)


def diff_excerpt(p: Proposal) -> str:
    """The grouped diff without its first line when that is the summary (shown above) and without the escalation
    list (above the fold; every path with its sources is in the thread's file)."""
    text = p.diff_text or p.unified_diff or "(no diff was computed)"
    lines = text.splitlines()
    if lines and p.summary and lines[0].strip() == p.summary.strip():
        lines = lines[1:]
        while lines and not lines[0].strip():
            lines = lines[1:]
    out: list[str] = []
    skipping = False
    for line in lines:
        if line.strip() == "ESCALATION PATHS":
            skipping = True
            continue
        if skipping and not line.strip():
            skipping = False
            continue
        if not skipping:
            out.append(line)
    return "\n".join(out).strip("\n") or "(no change listed)"


def _pending_actions(p: Proposal) -> Block:
    from bot.slack import iac_blocks

    if p.managed_as_code:
        return iac_blocks.managed_as_code_actions(p)
    return {"type": "actions", "block_id": BlockId.DECISION_ACTIONS, "elements": [
        button("Approve", ActionId.APPROVE, p.id, "primary", confirm_dialog(
            "Apply this policy?",
            f"Replace the policies of {code(p.role_name)} with the proposed policy. It can be rolled back.",
            "Approve")),
        button("Reject", ActionId.REJECT, p.id, "danger"),
        button("View policy", ActionId.VIEW_POLICY, p.id),
    ]}


def review_message(p: Proposal, gate: ApprovalGate | None = None) -> Message:
    """The review message for ``p``: buttons while pending, the decision (buttons gone) afterwards. ``gate``
    (:func:`bot.slack.approvals.approval_gate`) says who may approve; without it the message says it does not
    know."""
    from bot.slack import iac_blocks

    restore = (p.checks or {}).get("restore")
    blocks: list[Block] = [header(f"Tighten{': restore' if restore else ''}: {plain(p.role_name)}"),
                           decision_section(p, gate)]
    as_code = iac_blocks.managed_as_code_context(p)
    if as_code is not None:
        blocks.append(as_code)
    stats = stats_block(p)
    if stats is not None:
        blocks.append(stats)
    if p.risk_reasons:
        blocks.append(mrkdwn(risk_text(p)))
    if p.warnings:
        blocks.append(mrkdwn(warnings_text(p)))
    blocks.append(mrkdwn("*Proposed change* (excerpt)"))
    blocks.append(mrkdwn(limits.clip_code(code_block(diff_excerpt(p)), DIFF_BUDGET)))
    blocks.append(context("The full diff, the proposed policy, the notes and every escalation path with its sources "
                          "are in this message's thread."))
    if p.state == PENDING:
        blocks.append(_pending_actions(p))
    else:
        blocks.append(mrkdwn(decision_text(p)))
    text = f"Tighten proposal for {code(p.role_name)} ({p.state}): {neutral(p.summary or 'review needed')}"
    return Message(text=limits.clip(text, limits.MAX_NOTIFICATION_TEXT), blocks=limits.fit_blocks(blocks))


def details_text(p: Proposal) -> str:
    """The thread file beside the proposed policy: the full grouped diff, the notes, every escalation path with
    its sources, the unified diff."""
    parts = [p.diff_text]
    if p.notes:
        parts.append("NOTES\n" + "\n".join(f"  - {n}" for n in p.notes))
    check = (p.checks or {}).get("escalation")
    if isinstance(check, dict):
        lines = ["ESCALATION PATHS (with sources)"]
        for label, key in (("stays open", "open"), ("closed", "closed")):
            for path in check.get(key) or []:
                sources = ", ".join(s.get("url", "") for s in path.get("sources") or []) or path.get("source", "")
                lines.append(f"  {label:<10} {path.get('id')}: {path.get('text')} ({path.get('requires')})"
                             f"{' (conditional)' if path.get('conditional') else ''}  sources: {sources}")
        for item in check.get("high_risk_kept") or []:
            lines.append(f"  high risk  {item.get('text')}")
        for role in check.get("unresolved_roles") or []:
            lines.append(f"  unknown    {role} (not in the inventory)")
        parts.append("\n".join(lines))
    parts.append(p.unified_diff)
    return "\n\n".join(x for x in parts if x)
