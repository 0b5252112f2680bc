"""``/tighten help``."""

from __future__ import annotations

from bot.slack.blocks import Message, info
from bot.slack.commands.base import CommandRequest
from bot.slack.templating import render

USAGE = "/tighten help"


def handle(req: CommandRequest) -> Message:
    return info(render("help.j2"))
