"""``/tighten status [role]``: proposals waiting for review, or one role's latest proposal."""

from __future__ import annotations

from collections import Counter

from bot.slack.blocks import Message, info, permalink
from bot.slack.commands.base import CommandRequest, expect_args, resolve_role
from bot.slack.listeners import scan_dedupe_key
from bot.slack.templating import render
from bot.store.proposals import PENDING

USAGE = "/tighten status [role]"
SHOWN = 15


def handle(req: CommandRequest) -> Message:
    args = expect_args(req, 0, 1, USAGE, "role")
    ctx = req.ctx
    if args:
        role = resolve_role(req, args[0], USAGE)
        proposals = ctx.proposals.list(principal_arn=role.arn, limit=1)
        scans = [i for i in ctx.queue.pending("scan") if i.dedupe_key == scan_dedupe_key(role.arn)]
        scan = scans[0] if scans else None
        position = ctx.queue.position(scan.id) if scan else 0
        return info(render("status_role.j2", role=role, latest=proposals[0] if proposals else None, scan=scan,
                           position=position, last_scan=ctx.scans.get(role.arn)))
    pending = ctx.proposals.list(states=(PENDING,))
    shown = pending[:SHOWN]
    counts = Counter(row["state"] for row in ctx.db.query("SELECT state FROM proposals"))
    links = {p.id: permalink(p.channel, p.message_ts) for p in shown}
    return info(render("status_overview.j2", pending=pending, shown=shown, links=links,
                       counts=sorted(counts.items()), queued=len(ctx.queue.pending())))
