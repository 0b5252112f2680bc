"""``/tighten rollback <change id>``: queue a rollback of an applied change (approvers only)."""

from __future__ import annotations

from bot.slack import operations
from bot.slack.blocks import Message, info
from bot.slack.commands.base import CommandError, CommandRequest, expect_args

USAGE = "/tighten rollback <change id>"


def handle(req: CommandRequest) -> Message:
    (change_id,) = expect_args(req, 1, 1, USAGE, "change id")
    outcome = operations.request_rollback(req.ctx, req.client, req.user_id, change_id)
    if not outcome.ok:
        raise CommandError(outcome.message)
    return info(outcome.message)
