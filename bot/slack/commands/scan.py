"""``/tighten scan <role name or ARN>``: queue a scan and answer with the position in the queue."""

from __future__ import annotations

from bot.slack.blocks import Message, info
from bot.slack.commands.base import CommandError, CommandRequest, expect_args, resolve_role
from bot.slack.escaping import code, neutral
from bot.slack.listeners import MANUAL_SCAN_PRIORITY, scan_dedupe_key

USAGE = "/tighten scan <role name or ARN>"


def handle(req: CommandRequest) -> Message:
    (name,) = expect_args(req, 1, 1, USAGE, "role name or ARN")
    role = resolve_role(req, name, USAGE)
    if not role.in_scope:
        raise CommandError(f"{code(role.name)} is out of scope ({code(role.excluded_reason or 'excluded')}); "
                           "Tighten never changes it.")
    ctx = req.ctx
    item, created = ctx.queue.enqueue(
        "scan", {"account": role.account, "principal_arn": role.arn, "requested_by": req.user_id},
        priority=MANUAL_SCAN_PRIORITY, dedupe_key=scan_dedupe_key(role.arn), requested_by=req.user_id)
    position = ctx.queue.position(item.id)
    where = "running now" if position == 0 else f"position {position} in the queue"
    if created:
        ctx.audit.record(req.user_id, "scan.request", role.arn, work_item=item.id)
        text = f":mag: Scan of {code(role.name)} queued ({where}). The proposal will be posted for review."
    else:
        text = f"A scan of {code(role.name)} is already queued ({where}); not queued twice."
    for warning in role.warnings:
        text += f"\n:warning: {neutral(warning)}"
    return info(text)
