"""``/tighten allowlist [role]``: what is allowlisted (for one role, or everything)."""

from __future__ import annotations

from pathlib import Path

from bot.policy.allowlist import AllowlistError
from bot.slack.blocks import Message, info
from bot.slack.commands.base import CommandError, CommandRequest, expect_args, resolve_role
from bot.slack.escaping import code
from bot.slack.templating import render
from bot.store.allowlist import load_allowlist

USAGE = "/tighten allowlist [role]"
SHOWN = 30


def handle(req: CommandRequest) -> Message:
    args = expect_args(req, 0, 1, USAGE, "role")
    path = req.ctx.allowlist_path
    if not path:
        raise CommandError("No allowlist file is configured (set `allowlist:` in the config file).")
    try:
        allowlist = load_allowlist(path) if Path(path).exists() else load_allowlist(None)
    except AllowlistError as exc:
        req.ctx.count("slack.allowlist_invalid")
        raise CommandError(f"The allowlist file is invalid: {code(exc)}") from None
    role_name = None
    entries = allowlist.entries
    if args:
        role = resolve_role(req, args[0], USAGE)
        role_name = role.name
        entries = allowlist.for_principal(role.arn)
    shown = [{"action": e.action, "resource": e.resource if e.resource != "*" else "",
              "principal": e.principal or "every role", "reason": e.reason} for e in entries[:SHOWN]]
    return info(render("status_allowlist.j2", entries=entries, shown=shown, role=role_name))
