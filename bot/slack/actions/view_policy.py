"""View policy button: a modal with the proposed policy documents."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.blocks import info, policy_modal
from bot.slack.escaping import code
from bot.slack.ids import ActionId
from bot.slack.listeners import action_value, app_context, tell_user


def register(app: App) -> None:
    @app.action(ActionId.VIEW_POLICY.value)
    def on_view_policy(ack: Ack, body: dict[str, Any], client: WebClient, context: Any) -> None:
        ack()
        ctx = app_context(context)
        proposal = ctx.proposals.get(action_value(body))
        if proposal is None:
            ctx.count("slack.unknown_proposal")
            tell_user(client, body, info(f"Unknown proposal {code(action_value(body))}."))
            return
        try:
            client.views_open(trigger_id=body.get("trigger_id", ""), view=policy_modal(proposal))
        except SlackApiError as exc:  # e.g. the trigger expired (3 s) under load
            ctx.count("slack.modal_failed")
            tell_user(client, body, info(f"Could not open the form ({exc.response.get('error')}); please click again."))
