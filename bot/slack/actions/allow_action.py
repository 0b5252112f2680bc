""""Allow <action>" button on an access-denied alert: allowlist exactly the stored action and resource the button
refers to (its value is the id of an offered allowance, never the data), and ask for a proposal that restores it
(:func:`bot.slack.operations.allow_offered`). The result is posted in the alert's thread."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack import operations
from bot.slack.blocks import info
from bot.slack.ids import ActionId
from bot.slack.listeners import action_value, app_context, message_location, tell_user
from bot.slack.templating import who

ACTION_PATTERN = re.compile(rf"^{re.escape(ActionId.ALLOW_ACTION.value)}(\.\d+)?$")


def register(app: App) -> None:
    @app.action(ACTION_PATTERN)
    def on_allow(ack: Ack, body: dict[str, Any], client: WebClient, context: Any) -> None:
        ack()
        ctx = app_context(context)
        user = body["user"]["id"]
        outcome = operations.allow_offered(ctx, client, user, action_value(body))
        if not outcome.ok:
            tell_user(client, body, info(outcome.message))
            return
        channel, ts = message_location(body)
        thread = (body.get("message") or {}).get("thread_ts") or ts
        if channel:
            message = info(f"{who(user)}: {outcome.message}")
            client.chat_postMessage(channel=channel, thread_ts=thread, text=message.text, blocks=message.blocks,
                                    unfurl_links=False)
        else:
            tell_user(client, body, info(outcome.message))
