"""Who may approve what: approvers from config (Slack users or user groups, per account), the
self-approval rule, and a short-lived cache of user-group membership (``usergroups.users.list``)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import Config
from bot.store.proposals import Proposal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


class GroupMembers:
    """Members of Slack user groups, cached for ``ttl`` seconds (thread-safe)."""

    def __init__(self, ttl: float = 60.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.monotonic = monotonic
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def members(self, client: WebClient, group_id: str) -> frozenset[str] | None:
        """The group's user IDs, or None when Slack could not tell us (never treated as membership)."""
        now = self.monotonic()
        with self._lock:
            hit = self._cache.get(group_id)
            if hit and now - hit[0] < self.ttl:
                return hit[1]
        try:
            users = frozenset(client.usergroups_users_list(usergroup=group_id).get("users") or [])
        except SlackApiError as exc:
            log.warning("usergroups.users.list failed for %s: %s", group_id, exc.response.get("error"))
            return None
        with self._lock:
            self._cache[group_id] = (now, users)
        return users


class ApprovalPolicy:
    def __init__(self, config: Config, groups: GroupMembers) -> None:
        self.config = config
        self.groups = groups

    def is_approver(self, client: WebClient, user_id: str, account: str) -> Decision:
        approvers = self.config.approvers_for(account)
        if not approvers:
            return Decision(False, f"no approvers are configured for account {account}")
        if user_id in approvers.users:
            return Decision(True)
        unknown = 0
        for group in approvers.groups:
            members = self.groups.members(client, group)
            if members is None:
                unknown += 1
            elif user_id in members:
                return Decision(True)
        who = ", ".join([f"<@{u}>" for u in approvers.users] + [f"<!subteam^{g}>" for g in approvers.groups])
        reason = f"you are not an approver for account {account} (approvers: {who})"
        if unknown:
            reason += f"; {unknown} user group(s) could not be checked right now"
        return Decision(False, reason)

    def can_approve(self, client: WebClient, user_id: str, proposal: Proposal) -> Decision:
        decision = self.is_approver(client, user_id, proposal.account)
        if not decision.allowed:
            return decision
        if proposal.requested_by == user_id and not self.config.allow_self_approval:
            return Decision(False, "you requested this scan, so someone else must approve it "
                                   "(approval.allow_self_approval is off)")
        return Decision(True)
