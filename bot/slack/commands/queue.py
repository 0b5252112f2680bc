"""``/tighten queue``: work items waiting or running, in the order they will run."""

from __future__ import annotations

from bot.slack.blocks import Message, info
from bot.slack.commands.base import CommandRequest, expect_args
from bot.slack.templating import render
from bot.store.queue import WorkItem

USAGE = "/tighten queue"
SHOWN = 20


def describe(item: WorkItem) -> str:
    p = item.payload
    if item.kind == "scan":
        return str(p.get("principal_arn", ""))
    if item.kind == "apply":
        return f"proposal {p.get('proposal_id', '?')}"
    if item.kind == "rollback":
        return f"change {p.get('change_id', '?')}"
    return ""


def queue_lines(items: list[WorkItem], limit: int = SHOWN) -> list[str]:
    """One line per item for App Home."""
    return [f"{i}. `{it.kind}` {describe(it)} — {it.state}" for i, it in enumerate(items[:limit], 1)]


def handle(req: CommandRequest) -> Message:
    expect_args(req, 0, 0, USAGE, "")
    items = req.ctx.queue.pending()
    return info(render("status_queue.j2", items=items, shown=items[:SHOWN], describe=describe))
