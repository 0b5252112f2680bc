"""``/tighten allow <role> <action> [resource]``: never remove this action from this role (approvers only)."""

from __future__ import annotations

from bot.policy.catalog import catalog
from bot.slack import operations
from bot.slack.blocks import Message, info
from bot.slack.commands.base import CommandError, CommandRequest, expect_args, resolve_role
from bot.slack.escaping import code

USAGE = "/tighten allow <role> <action> [resource]"


def handle(req: CommandRequest) -> Message:
    args = expect_args(req, 2, 3, USAGE, "role and action" if not req.args else "action")
    role = resolve_role(req, args[0], USAGE)
    action = catalog().canonical(args[1])
    if action is None:
        raise CommandError(f"Unknown IAM action {code(args[1])}: it is not in the IAM catalog "
                           "(write it as `service:Action`, e.g. `s3:GetObject`).", USAGE)
    resource = args[2] if len(args) == 3 else None
    outcome = operations.allow_action(req.ctx, req.client, req.user_id, account=role.account,
                                      principal_arn=role.arn, action=action, resource=resource,
                                      reason=f"added by {req.user_id} with /tighten allow", rescan=False)
    if not outcome.ok:
        raise CommandError(outcome.message, USAGE if "resource" in outcome.message else None)
    return info(outcome.message)
