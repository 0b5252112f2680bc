"""Mark as applied via IaC button: an approver says the proposal was deployed through the role's code
(exactly once, audited); the review message and its thread say so, and the next inventory confirms it."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack.blocks import info
from bot.slack.code_operations import mark_applied_via_code
from bot.slack.ids import ActionId
from bot.slack.listeners import action_value, app_context, tell_user
from bot.slack.notify import Notifier


def register(app: App) -> None:
    @app.action(ActionId.MARK_APPLIED_VIA_CODE.value)
    def on_mark_applied_via_code(ack: Ack, body: dict[str, Any], client: WebClient, context: Any) -> None:
        ack()
        ctx = app_context(context)
        outcome = mark_applied_via_code(ctx, client, body["user"]["id"], action_value(body))
        if outcome.ok:
            Notifier(client, ctx).post_applied_via_code(action_value(body), confirmed=False)
        else:
            tell_user(client, body, info(outcome.message))
