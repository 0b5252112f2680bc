"""Small helpers shared by listeners: the context, where to tell a user something, action values."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.blocks import Message
from bot.slack.context import CONTEXT_KEY, AppContext

log = logging.getLogger(__name__)

#: Priority of scans asked for in Slack: a person is waiting, so they run before planned scans.
MANUAL_SCAN_PRIORITY = 100


def app_context(context: Any) -> AppContext:
    return context[CONTEXT_KEY]


def scan_dedupe_key(principal_arn: str) -> str:
    return f"scan:{principal_arn}"


def tell_user(client: WebClient, body: dict[str, Any], message: Message) -> None:
    """An ephemeral message where the user clicked (channel), or a DM when there is no channel (App Home)."""
    user = body["user"]["id"]
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    try:
        if channel:
            client.chat_postEphemeral(channel=channel, user=user, text=message.text, blocks=message.blocks)
        else:
            client.chat_postMessage(channel=user, text=message.text, blocks=message.blocks)
    except SlackApiError as exc:
        log.warning("could not tell %s: %s", user, exc.response.get("error"))


def action_value(body: dict[str, Any]) -> str:
    actions = body.get("actions") or [{}]
    return str(actions[0].get("value") or "")


def message_location(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """(channel, ts) of the message that holds the clicked button, if any."""
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    ts = (body.get("message") or {}).get("ts") or (body.get("container") or {}).get("message_ts")
    return channel, ts
