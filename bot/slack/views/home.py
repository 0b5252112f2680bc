"""App Home: proposals waiting for the viewer's approval, recent changes with Roll back, the scan queue."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.blocks import home_view
from bot.slack.commands.queue import queue_lines
from bot.slack.context import AppContext
from bot.slack.listeners import app_context
from bot.store.proposals import PENDING

log = logging.getLogger(__name__)
RECENT_CHANGES = 10


def home_for(ctx: AppContext, client: WebClient, user_id: str) -> dict[str, Any]:
    pending = []
    verdicts: dict[str, bool] = {}
    for proposal in ctx.proposals.list(states=(PENDING,)):
        if proposal.account not in verdicts:
            verdicts[proposal.account] = ctx.approval.is_approver(client, user_id, proposal.account).allowed
        if verdicts[proposal.account] and (proposal.requested_by != user_id or ctx.config.allow_self_approval):
            pending.append(proposal)
    changes = ctx.changes.list(limit=RECENT_CHANGES)
    return home_view(user_id, pending, changes, queue_lines(ctx.queue.pending()))


def publish_home(ctx: AppContext, client: WebClient, user_id: str) -> bool:
    try:
        client.views_publish(user_id=user_id, view=home_for(ctx, client, user_id))
    except SlackApiError as exc:
        ctx.count("slack.home_failed")
        log.warning("views.publish failed for %s: %s", user_id, exc.response.get("error"))
        return False
    return True


def register(app: App) -> None:
    @app.event("app_home_opened")
    def on_home_opened(event: dict[str, Any], client: WebClient, context: Any) -> None:
        if event.get("tab", "home") != "home":
            return
        publish_home(app_context(context), client, event["user"])
