"""Roll back button (apply result, denial alert, App Home) and Roll back anyway (a rollback that stopped on
someone else's changes): queue a rollback (approvers only)."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack import operations
from bot.slack.blocks import info
from bot.slack.ids import ActionId
from bot.slack.listeners import action_value, app_context, tell_user


def register(app: App) -> None:
    @app.action(ActionId.ROLLBACK.value)
    def on_rollback(ack: Ack, body: dict[str, Any], client: WebClient, context: Any) -> None:
        ack()
        ctx = app_context(context)
        outcome = operations.request_rollback(ctx, client, body["user"]["id"], action_value(body))
        tell_user(client, body, info(outcome.message))

    @app.action(ActionId.ROLLBACK_FORCE.value)
    def on_rollback_force(ack: Ack, body: dict[str, Any], client: WebClient, context: Any) -> None:
        ack()
        ctx = app_context(context)
        outcome = operations.request_rollback(ctx, client, body["user"]["id"], action_value(body), force=True)
        tell_user(client, body, info(outcome.message))
