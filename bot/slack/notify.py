"""Messages the bot posts on its own (used by the worker and by listeners after a decision).

Every method returns True when Slack accepted the message, False otherwise (after the WebClient's retries
for 429/5xx). A failure never changes a proposal's state: an unposted proposal stays pending and
``post_proposal`` can simply be called again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from bot.policy.allowlist import exact_resource
from bot.slack import blocks as b
from bot.slack.approvals import approval_gate
from bot.slack.context import AppContext
from bot.slack.escaping import plain
from bot.slack.iac_blocks import file_name
from bot.slack.review import details_text, review_message
from bot.slack.templating import who
from bot.store.proposals import Proposal

log = logging.getLogger(__name__)

SLACK_FAILURES = (SlackApiError, SlackRequestError, URLError, OSError, TimeoutError)


def _error(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return f"{exc.response.status_code} {exc.response.get('error')}"
    return type(exc).__name__


class Notifier:
    def __init__(self, client: WebClient, ctx: AppContext) -> None:
        self.client = client
        self.ctx = ctx

    # -- the review message ---------------------------------------------------------------------------
    def post_proposal(self, proposal_id: str) -> bool:
        """Post the review message in the account's channel, then the full policy and diff in its thread.

        Already posted -> the message is refreshed in place instead of posted twice."""
        proposal = self.ctx.proposals.get(proposal_id)
        if proposal is None:
            log.warning("post_proposal: unknown proposal %s", proposal_id)
            return False
        if proposal.channel and proposal.message_ts:
            return self.update_decision(proposal_id)
        channel = self.ctx.config.channel_for(proposal.account)
        if not channel:
            self.ctx.count("slack.no_channel")
            log.error("no review channel configured for account %s", proposal.account)
            return False
        message = self.review(proposal)
        try:
            posted = self.client.chat_postMessage(channel=channel, text=message.text, blocks=message.blocks,
                                                  unfurl_links=False)
        except SLACK_FAILURES as exc:
            self.ctx.count("slack.post_failed")
            log.warning("could not post proposal %s: %s (it stays pending)", proposal_id, _error(exc))
            return False
        channel_id, ts = posted["channel"], posted["ts"]
        self.ctx.proposals.update(proposal_id, channel=channel_id, message_ts=ts)
        self._upload_details(proposal, channel_id, ts)
        return True

    def review(self, proposal: Proposal) -> b.Message:
        """The review message, with who may approve it from the config."""
        return review_message(proposal, approval_gate(self.ctx.config, proposal))

    def _upload_details(self, p: Proposal, channel: str, ts: str) -> bool:
        name, role = file_name(p.role_name), plain(p.role_name)
        uploads = [{"filename": f"{name}-proposed-policy.json", "title": f"Proposed policy for {role}",
                    "content": json.dumps(p.documents if len(p.documents) != 1 else p.documents[0], indent=2)}]
        details = details_text(p)
        if details:
            uploads.append({"filename": f"{name}-diff.txt", "title": f"Full diff, notes and escalation paths for {role}",
                            "content": details})
        try:
            self.client.files_upload_v2(file_uploads=uploads, channel=channel, thread_ts=ts,
                                        initial_comment="Full proposed policy and diff.")
        except SLACK_FAILURES as exc:
            self.ctx.count("slack.upload_failed")
            log.warning("could not upload details of %s: %s", p.id, _error(exc))
            self._post(channel, b.info(":warning: The full policy could not be uploaded here; use *View policy* "
                                       "or `tighten` CLI to read it."), thread_ts=ts)
            return False
        return True

    def update_decision(self, proposal_id: str) -> bool:
        """Re-render the review message from the proposal's current state (who decided, when; buttons gone)."""
        proposal = self.ctx.proposals.get(proposal_id)
        if proposal is None or not proposal.channel or not proposal.message_ts:
            return False
        message = self.review(proposal)
        try:
            self.client.chat_update(channel=proposal.channel, ts=proposal.message_ts, text=message.text,
                                    blocks=message.blocks)
        except SLACK_FAILURES as exc:
            self.ctx.count("slack.update_failed")
            log.warning("could not update review message of %s: %s", proposal_id, _error(exc))
            return False
        return True

    # -- thread messages ------------------------------------------------------------------------------
    def post_apply_result(self, proposal_id: str, change_id: str | None, ok: bool, detail: str) -> bool:
        proposal = self.ctx.proposals.get(proposal_id)
        if proposal is None:
            return False
        sent = self._in_thread(proposal, b.apply_result_message(proposal, change_id, ok, detail))
        self.update_decision(proposal_id)
        return sent

    def post_rollback_result(self, proposal_id: str | None, change_id: str, ok: bool, detail: str,
                             requested_by: str | None = None, conflicts: Sequence[str] = ()) -> bool:
        if proposal_id is None:
            change = self.ctx.changes.get(change_id)
            proposal_id = change.proposal_id if change else None
        proposal = self.ctx.proposals.get(proposal_id) if proposal_id else None
        if proposal is None:
            log.warning("rollback result for change %s has no proposal to thread under", change_id)
            return False
        sent = self._in_thread(proposal, b.rollback_result_message(proposal, change_id, ok, detail, requested_by,
                                                                   conflicts))
        self.update_decision(proposal.id)
        return sent

    def post_denial_alert(self, proposal_id: str, change_id: str,
                          denials: Sequence[tuple[str, str, str, str]] | Sequence[b.Denial]) -> bool:
        """Denials after an apply: ``(action, resource, error_code, event_time)`` each; Roll back, and an Allow
        button per denial whose exact action and resource an allowlist entry can hold. What the button would
        allow is stored first (:class:`bot.store.allowances.AllowanceStore`); the button carries only its id."""
        proposal = self.ctx.proposals.get(proposal_id)
        if proposal is None:
            return False
        rows: list[b.Denial] = []
        seen: set[tuple[str, str]] = set()
        for d in denials:
            denial = d if isinstance(d, b.Denial) else b.Denial(*d)
            if (denial.action, denial.resource) in seen:
                continue
            seen.add((denial.action, denial.resource))
            resource = exact_resource(denial.action, denial.resource)
            offer_id = None
            if resource is not None:
                offer_id = self.ctx.allowances.offer(
                    change_id=change_id, proposal_id=proposal.id, account=proposal.account,
                    principal_arn=proposal.principal_arn, action=denial.action, resource=resource).id
            rows.append(b.Denial(denial.action, denial.resource, denial.error_code, denial.event_time, offer_id))
        return self._in_thread(proposal, b.denial_alert_message(proposal, change_id, rows), broadcast=True)

    def post_applied_via_code(self, proposal_id: str, *, confirmed: bool) -> bool:
        """In the proposal's thread: closed or confirmed as applied via code; the review message is refreshed."""
        from bot.slack.iac_blocks import applied_via_code_message

        proposal = self.ctx.proposals.get(proposal_id)
        if proposal is None:
            return False
        sent = self._in_thread(proposal, applied_via_code_message(proposal, confirmed=confirmed))
        self.update_decision(proposal_id)
        return sent

    def post_drift_back(self, proposal_id: str, change_id: str) -> bool:
        """In the channel (a thread reply broadcast to it): the role is back to its old permissions."""
        from bot.slack.iac_blocks import drift_back_message

        proposal = self.ctx.proposals.get(proposal_id)
        if proposal is None:
            return False
        return self._in_thread(proposal, drift_back_message(proposal, change_id), broadcast=True)

    def upload_snippet(self, proposal_id: str, fmt: str, requested_by: str | None = None) -> bool:
        """The proposal as Terraform or CloudFormation, uploaded as a file in its thread."""
        from bot.slack.iac_blocks import TOOL_NAMES, snippet

        proposal = self.ctx.proposals.get(proposal_id)
        if proposal is None or not proposal.channel or not proposal.message_ts:
            return False
        upload = snippet(proposal, fmt, self.ctx.config.managed_policy_prefix)
        asked = f", asked for by {who(requested_by)}" if requested_by else ""
        try:
            self.client.files_upload_v2(channel=proposal.channel, thread_ts=proposal.message_ts,
                                        content=upload["content"], filename=upload["filename"],
                                        title=upload["title"],
                                        initial_comment=f"{TOOL_NAMES.get(fmt, fmt)} for proposal `{proposal.id}`"
                                                        f"{asked}.")
        except SLACK_FAILURES as exc:
            self.ctx.count("slack.upload_failed")
            log.warning("could not upload the %s snippet of %s: %s", fmt, proposal_id, _error(exc))
            return False
        return True

    def post_digest(self, channel: str, text: str, blocks: list[dict[str, Any]] | None,
                    png: bytes | None = None) -> bool:
        from bot.slack.limits import fit_blocks

        message = b.Message(text=text, blocks=fit_blocks(blocks or [b.mrkdwn(text)]))
        ts = self._post(channel, message)
        if ts is None:
            return False
        if png:
            try:
                self.client.files_upload_v2(channel=channel, thread_ts=ts, content=png, filename="tighten-digest.png",
                                            title="Permissions removed over time")
            except SLACK_FAILURES as exc:
                self.ctx.count("slack.upload_failed")
                log.warning("could not upload digest chart: %s", _error(exc))
                return False
        return True

    # -- internals ------------------------------------------------------------------------------------
    def _in_thread(self, proposal: Proposal, message: b.Message, broadcast: bool = False) -> bool:
        channel = proposal.channel or self.ctx.config.channel_for(proposal.account)
        if not channel:
            self.ctx.count("slack.no_channel")
            return False
        return self._post(channel, message, thread_ts=proposal.message_ts, broadcast=broadcast) is not None

    def _post(self, channel: str, message: b.Message, thread_ts: str | None = None,
              broadcast: bool = False) -> str | None:
        kwargs: dict[str, Any] = {"channel": channel, "text": message.text, "blocks": message.blocks,
                                  "unfurl_links": False}
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
            if broadcast:
                kwargs["reply_broadcast"] = True
        try:
            return str(self.client.chat_postMessage(**kwargs)["ts"])
        except SLACK_FAILURES as exc:
            self.ctx.count("slack.post_failed")
            log.warning("could not post to %s: %s", channel, _error(exc))
            return None
