"""Who may approve what: approvers from config (Slack users or user groups, per account), the two-person rule,
and a short-lived cache of user-group membership (``usergroups.users.list``).

Two-person rule (unless ``approval.allow_self_approval``): nobody approves a proposal they brought about — the
person who requested its scan, and everyone who added (``/tighten allow``, the Allow button) an allowlist entry the
proposal grants something because of. The scan records them on the proposal (``Proposal.excluded_approvers``);
:func:`approval_gate` says who may approve and who may not, and why."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import Approvers, Config
from bot.slack.escaping import code, neutral
from bot.slack.templating import count, who
from bot.slack.templating import group as group_mention
from bot.store.proposals import Proposal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


@dataclass(frozen=True)
class Exclusion:
    user: str
    reason: str
    action: str | None = None  # the allowlist entry they added, when that is the reason
    resource: str | None = None

    @property
    def text(self) -> str:
        """The reason as mrkdwn, outside values quoted."""
        if self.action is not None:
            return f"added the allowlist entry {code(self.action)} on {code(self.resource or '*')} that it grants"
        return neutral(self.reason)


@dataclass(frozen=True)
class ApprovalGate:
    """Who may approve a proposal: the account's approvers, less ``excluded`` (each with its reason)."""

    approvers: Approvers
    excluded: tuple[Exclusion, ...]
    self_approval_allowed: bool = False  # approval.allow_self_approval

    def exclusion_of(self, user_id: str) -> Exclusion | None:
        return next((e for e in self.excluded if e.user == user_id), None)


def approval_gate(config: Config, proposal: Proposal) -> ApprovalGate:
    """The approvers of ``proposal`` and the people the two-person rule excludes (none when
    ``approval.allow_self_approval`` is set). Proposals stored before exclusions were recorded exclude their
    requester."""
    excluded: list[Exclusion] = []
    if not config.allow_self_approval:
        recorded = [Exclusion(str(e.get("user")), str(e.get("reason") or ""),
                              str(e["action"]) if e.get("action") else None,
                              str(e["resource"]) if e.get("resource") else None)
                    for e in proposal.excluded_approvers if isinstance(e, dict) and e.get("user")]
        if proposal.requested_by and not any(e.user == proposal.requested_by for e in recorded):
            recorded.insert(0, Exclusion(proposal.requested_by, "requested this scan"))
        seen: set[tuple[str, str]] = set()
        for e in recorded:
            if (e.user, e.text) not in seen:
                seen.add((e.user, e.text))
                excluded.append(e)
    return ApprovalGate(config.approvers_for(proposal.account), tuple(excluded), config.allow_self_approval)


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
            return Decision(False, f"no approvers are configured for account {code(account)}")
        if user_id in approvers.users:
            return Decision(True)
        unknown = 0
        for group_id in approvers.groups:
            members = self.groups.members(client, group_id)
            if members is None:
                unknown += 1
            elif user_id in members:
                return Decision(True)
        names = ", ".join([who(u) for u in approvers.users] + [group_mention(g) for g in approvers.groups])
        reason = f"you are not an approver for account {code(account)} (approvers: {names})"
        if unknown:
            reason += f"; {count(unknown, 'user group')} could not be checked right now"
        return Decision(False, reason)

    def can_approve(self, client: WebClient, user_id: str, proposal: Proposal) -> Decision:
        decision = self.is_approver(client, user_id, proposal.account)
        if not decision.allowed:
            return decision
        gate = approval_gate(self.config, proposal)
        reasons = [e.text for e in gate.excluded if e.user == user_id]
        if reasons:
            return Decision(False, f"you {' and '.join(reasons)}, so someone else must approve it "
                                   "(two-person rule; approval.allow_self_approval is off)")
        return Decision(True)
