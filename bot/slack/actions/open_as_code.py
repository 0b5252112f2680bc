"""Open as Terraform / Open as CloudFormation buttons: the proposal as code, uploaded as a file in its thread."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack.blocks import info
from bot.slack.code_operations import can_open_as_code
from bot.slack.ids import ActionId
from bot.slack.listeners import action_value, app_context, tell_user
from bot.slack.notify import Notifier

FORMAT_OF = {ActionId.OPEN_TERRAFORM.value: "terraform", ActionId.OPEN_CLOUDFORMATION.value: "cloudformation"}


def register(app: App) -> None:
    def on_open_as_code(ack: Ack, body: dict[str, Any], client: WebClient, context: Any) -> None:
        ack()
        ctx = app_context(context)
        action_id = str((body.get("actions") or [{}])[0].get("action_id") or "")
        fmt = FORMAT_OF.get(action_id, "")
        proposal_id = action_value(body)
        user = body["user"]["id"]
        check = can_open_as_code(ctx, proposal_id, fmt)
        if not check.ok:
            tell_user(client, body, info(check.message))
            return
        if not Notifier(client, ctx).upload_snippet(proposal_id, fmt, requested_by=user):
            tell_user(client, body, info(f"The {fmt} file could not be uploaded right now; please click again, or "
                                         f"run `tighten proposal show {proposal_id} --format {fmt}`."))
            return
        ctx.audit.record(user, "proposal.open_as_code", proposal_id, format=fmt)
        ctx.count(f"slack.open_as_{fmt}")

    for action_id in FORMAT_OF:
        app.action(action_id)(on_open_as_code)
