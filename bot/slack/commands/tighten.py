"""The ``/tighten`` slash command: ack at once, route to a subcommand handler, answer ephemerally."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.slack.blocks import Message, ephemeral
from bot.slack.commands import allow, allowlist, base, help, queue, rollback, scan, status
from bot.slack.escaping import code
from bot.slack.ids import COMMAND
from bot.slack.listeners import app_context

log = logging.getLogger(__name__)

SUBCOMMANDS: dict[str, tuple[Callable[[base.CommandRequest], Message], str]] = {
    "scan": (scan.handle, scan.USAGE),
    "status": (status.handle, status.USAGE),
    "queue": (queue.handle, queue.USAGE),
    "rollback": (rollback.handle, rollback.USAGE),
    "allow": (allow.handle, allow.USAGE),
    "allowlist": (allowlist.handle, allowlist.USAGE),
    "help": (help.handle, help.USAGE),
}
USAGE = "/tighten scan|status|queue|rollback|allow|allowlist|help …"


def run_command(req_ctx: Any, client: WebClient, user_id: str, channel_id: str | None, text: str) -> Message:
    """Parse and run one ``/tighten`` invocation; bad input becomes an ephemeral problem + usage."""
    words = text.split()
    if not words:
        words = ["help"]
    name, args = words[0].lower(), words[1:]
    if name not in SUBCOMMANDS:
        req_ctx.count("slack.bad_command")
        return ephemeral(f"Unknown subcommand {code(words[0])}.", USAGE)
    handler, _ = SUBCOMMANDS[name]
    request = base.CommandRequest(ctx=req_ctx, client=client, user_id=user_id, channel_id=channel_id, args=args)
    try:
        return handler(request)
    except base.CommandError as exc:
        req_ctx.count("slack.bad_command")
        return ephemeral(exc.problem, exc.usage)


def register(app: App) -> None:
    @app.command(COMMAND)
    def on_tighten(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient, context: Any) -> None:
        ack()
        ctx = app_context(context)
        try:
            message = run_command(ctx, client, body["user_id"], body.get("channel_id"), body.get("text") or "")
        except Exception:
            ctx.count("slack.listener_error")
            log.exception("/tighten failed")
            message = ephemeral("Something went wrong on Tighten's side (logged). Check `/tighten status` before retrying.")
        respond(text=message.text, blocks=message.blocks, response_type="ephemeral")
