"""Refresh button on App Home."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack.ids import ActionId
from bot.slack.listeners import app_context
from bot.slack.views.home import publish_home


def register(app: App) -> None:
    @app.action(ActionId.HOME_REFRESH.value)
    def on_refresh(ack: Ack, body: dict[str, Any], client: WebClient, context: Any) -> None:
        ack()
        publish_home(app_context(context), client, body["user"]["id"])
