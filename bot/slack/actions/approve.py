"""Approve button: authorized approver -> atomic PENDING -> APPROVED + one "apply" work item; message updated."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack import operations
from bot.slack.blocks import info
from bot.slack.ids import ActionId
from bot.slack.listeners import action_value, app_context, tell_user
from bot.slack.notify import Notifier


def register(app: App) -> None:
    @app.action(ActionId.APPROVE.value)
    def on_approve(ack: Ack, body: dict[str, Any], client: WebClient, context: Any) -> None:
        ack()
        ctx = app_context(context)
        outcome = operations.approve(ctx, client, body["user"]["id"], action_value(body))
        if outcome.ok:
            Notifier(client, ctx).update_decision(action_value(body))
        else:
            tell_user(client, body, info(outcome.message))
