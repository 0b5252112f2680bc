"""Reject button: opens a modal asking for the reason (checked first: only approvers, only while pending)."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack import operations
from bot.slack.blocks import info, reject_modal
from bot.slack.ids import ActionId
from bot.slack.listeners import action_value, app_context, message_location, tell_user


def register(app: App) -> None:
    @app.action(ActionId.REJECT.value)
    def on_reject(ack: Ack, body: dict[str, Any], client: WebClient, context: Any) -> None:
        ack()
        ctx = app_context(context)
        proposal_id = action_value(body)
        check = operations.can_reject(ctx, client, body["user"]["id"], proposal_id)
        if not check.ok:
            tell_user(client, body, info(check.message))
            return
        proposal = ctx.proposals.get(proposal_id)
        channel, ts = message_location(body)
        try:
            client.views_open(trigger_id=body.get("trigger_id", ""), view=reject_modal(proposal, channel, ts))
        except SlackApiError as exc:  # e.g. the trigger expired (3 s) under load
            ctx.count("slack.modal_failed")
            tell_user(client, body, info(f"Could not open the form ({exc.response.get('error')}); please click again."))
