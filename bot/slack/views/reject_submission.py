"""Reject modal submitted: PENDING -> REJECTED with the reason; the review message is updated in place."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack import operations
from bot.slack.blocks import info
from bot.slack.ids import REASON_INPUT, BlockId, CallbackId
from bot.slack.listeners import app_context
from bot.slack.notify import Notifier


def register(app: App) -> None:
    @app.view(CallbackId.REJECT_MODAL.value)
    def on_reject_submit(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient,
                         context: Any) -> None:
        ctx = app_context(context)
        values = view.get("state", {}).get("values", {})
        reason = str((values.get(BlockId.REJECT_REASON.value, {}).get(REASON_INPUT) or {}).get("value") or "").strip()
        if len(reason) < 3:
            ctx.count("slack.bad_input")
            ack(response_action="errors", errors={BlockId.REJECT_REASON.value: "Say why (at least 3 characters)."})
            return
        try:
            proposal_id = str(json.loads(view.get("private_metadata") or "{}")["p"])
        except (ValueError, KeyError, TypeError):
            ctx.count("slack.bad_input")
            ack(response_action="errors", errors={BlockId.REJECT_REASON.value: "This form is broken; reopen it."})
            return
        ack()
        user = body["user"]["id"]
        outcome = operations.reject(ctx, client, user, proposal_id, reason)
        if outcome.ok:
            Notifier(client, ctx).update_decision(proposal_id)
        else:
            message = info(outcome.message)
            client.chat_postMessage(channel=user, text=message.text, blocks=message.blocks)
