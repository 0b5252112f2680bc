"""``/tighten rollback <change id> [force]``: queue a rollback of an applied change (approvers only).

Without ``force`` the rollback stops, changing nothing, when someone else changed what the change touched (and
says what); ``force`` restores the before-image anyway (what it replaces is stored first)."""

from __future__ import annotations

from bot.slack import operations
from bot.slack.blocks import Message, info
from bot.slack.commands.base import CommandError, CommandRequest, expect_args
from bot.slack.escaping import code

USAGE = "/tighten rollback <change id> [force]"


def handle(req: CommandRequest) -> Message:
    args = expect_args(req, 1, 2, USAGE, "change id")
    if len(args) == 2 and args[1].lower() not in ("force", "--force"):
        raise CommandError(f"Unknown option {code(args[1])}: the only option is `force`.", USAGE)
    outcome = operations.request_rollback(req.ctx, req.client, req.user_id, args[0], force=len(args) == 2)
    if not outcome.ok:
        raise CommandError(outcome.message)
    return info(outcome.message)
