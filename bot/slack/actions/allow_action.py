""""Allow <action>" button on a denial alert: add the denied action to the allowlist and queue a re-scan."""

from __future__ import annotations

import json
import re
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack import operations
from bot.slack.blocks import info
from bot.slack.ids import ActionId
from bot.slack.listeners import action_value, app_context, message_location, tell_user

ACTION_PATTERN = re.compile(rf"^{re.escape(ActionId.ALLOW_ACTION.value)}(\.\d+)?$")


def register(app: App) -> None:
    @app.action(ACTION_PATTERN)
    def on_allow(ack: Ack, body: dict[str, Any], client: WebClient, context: Any) -> None:
        ack()
        ctx = app_context(context)
        user = body["user"]["id"]
        try:
            value = json.loads(action_value(body))
            proposal_id, action, resource = str(value["p"]), str(value["a"]), str(value.get("r") or "*")
        except (ValueError, KeyError, TypeError):
            ctx.count("slack.bad_input")
            tell_user(client, body, info("This button carries no valid action; nothing was changed."))
            return
        proposal = ctx.proposals.get(proposal_id)
        if proposal is None:
            ctx.count("slack.unknown_proposal")
            tell_user(client, body, info(f"Unknown proposal `{proposal_id}`; nothing was changed."))
            return
        reason = f"allowed by <@{user}> after an access denied alert"
        resource_arg = resource if resource.startswith("arn:") else None
        outcome = operations.allow_action(ctx, client, user, account=proposal.account,
                                          principal_arn=proposal.principal_arn, action=action,
                                          resource=resource_arg, reason=reason, rescan=True)
        if not outcome.ok and resource_arg and "resource" in outcome.message:
            # the denied resource does not fit the action's resource types (e.g. a bucket for an object action)
            outcome = operations.allow_action(ctx, client, user, account=proposal.account,
                                              principal_arn=proposal.principal_arn, action=action,
                                              resource=None, reason=reason, rescan=True)
        if not outcome.ok:
            tell_user(client, body, info(outcome.message))
            return
        channel, ts = message_location(body)
        thread = (body.get("message") or {}).get("thread_ts") or ts
        if channel:
            client.chat_postMessage(channel=channel, thread_ts=thread,
                                    text=f"<@{user}>: {outcome.message}")
        else:
            tell_user(client, body, info(outcome.message))
