"""``/tighten queue``: work items waiting or running, in the order they will run."""

from __future__ import annotations

from bot.slack.blocks import Message, info
from bot.slack.commands.base import CommandRequest, expect_args
from bot.slack.escaping import code
from bot.slack.templating import render
from bot.store.queue import WorkItem

USAGE = "/tighten queue"
SHOWN = 20


def describe(item: WorkItem) -> str:
    """What the item works on, as mrkdwn (outside values escaped)."""
    p = item.payload
    if item.kind == "scan":
        restore = f" (restoring what change {code(p['restore'])} removed)" if p.get("restore") else ""
        return code(p.get("principal_arn", "")) + restore
    if item.kind == "apply":
        return f"proposal {code(p.get('proposal_id', '?'))}"
    if item.kind == "rollback":
        return f"change {code(p.get('change_id', '?'))}"
    return ""


def queue_lines(items: list[WorkItem], limit: int = SHOWN) -> list[str]:
    """One line per item for App Home (outside values escaped)."""
    return [f"{i}. `{it.kind}` {describe(it)} — {it.state}" for i, it in enumerate(items[:limit], 1)]


def handle(req: CommandRequest) -> Message:
    expect_args(req, 0, 0, USAGE, "")
    items = req.ctx.queue.pending()
    return info(render("status_queue.j2", items=items, shown=items[:SHOWN], describe=describe))
