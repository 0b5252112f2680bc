"""What apply and rollback share: the outcome of a change, and where one step's target stands now (as before
the step, as after it, or changed by someone else), read from AWS and compared with the before-image."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bot.aws.calls import Calls, PolicyState, same_document
from bot.aws.inventory import RoleSnapshot
from bot.store import changes as cs
from bot.store.changes import Change, Step

BEFORE, AFTER, OTHER = "before", "after", "other"


@dataclass
class ChangeResult:
    change_id: str | None
    state: str
    role_name: str
    message: str
    notes: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # someone else's changes to what Tighten touched
    saved: list[str] = field(default_factory=list)  # what was stored before being deleted or detached
    kept: list[str] = field(default_factory=list)  # someone else's additions, left in place

    @property
    def ok(self) -> bool:
        return self.state in (cs.APPLIED, cs.ROLLED_BACK)

    @property
    def stale(self) -> bool:
        return self.state == cs.STALE

    @property
    def finished(self) -> bool:
        """The change reached a state nobody needs to resume (or nothing was started)."""
        return self.state not in cs.INCOMPLETE_STATES


class RollbackIncomplete(RuntimeError):
    pass


@dataclass
class TargetState:
    """Where a step's target is now: ``before`` the step, ``after`` it, or ``other`` (someone changed it)."""

    state: str
    text: str | None = None  # inline policy: its exact text now; managed policy: its default version's text
    detail: str = ""
    policy: PolicyState | None = None  # put_policy: the policy as read


def target_state(calls: Calls, change: Change, image: dict[str, Any], step: Step,
                 attached: list[str]) -> TargetState:
    """Read the target of ``step`` and say whether it is as before the step, as after it, or neither."""
    before = RoleSnapshot.from_json(image["snapshot"])
    role = change.role_name
    if step.kind in ("attach", "detach"):
        held = step.target in attached
        return TargetState((AFTER if held else BEFORE) if step.kind == "attach" else (BEFORE if held else AFTER))
    if step.kind == "delete_inline":
        text = calls.inline_text(role, step.target)
        if text is None:
            return TargetState(AFTER)
        if same_document(json.loads(text), before.inline.get(step.target)):
            return TargetState(BEFORE, text)
        return TargetState(OTHER, text, f"inline policy {step.target} of {role} holds a different document than "
                                        "before the change")
    if step.kind == "put_policy":
        prior = (image.get("managed_policies") or {}).get(step.target)
        now = calls.policy(policy_arn(before, step.target))
        if not now.exists:
            if prior is None:
                return TargetState(BEFORE, policy=now)
            return TargetState(OTHER, None, f"policy {step.target} was deleted", now)
        if now.holds(step.params["document"]):
            return TargetState(AFTER, now.text, policy=now)
        if prior is not None and (now.default_version_id == prior["default_version_id"]
                                  or now.holds(prior["document"])):
            return TargetState(BEFORE, now.text, policy=now)
        return TargetState(OTHER, now.text, f"policy {step.target} was edited (default version "
                                            f"{now.default_version_id} holds neither Tighten's document nor the "
                                            "one before the change)", now)
    raise ValueError(f"unknown step kind {step.kind!r}")


def description(role_name: str) -> str:
    """Written on every policy Tighten creates; an existing policy without it is never overwritten (role names
    such as ``app`` and ``app-2`` could otherwise share ``tighten-app-2``)."""
    return f"Tighten least-privilege policy for role {role_name}"


def policy_arn(role: RoleSnapshot, name: str) -> str:
    partition = role.arn.split(":")[1]
    return f"arn:{partition}:iam::{role.account}:policy/{name}"


def describe_role(snapshot: RoleSnapshot) -> str:
    managed = ", ".join(p.name for p in snapshot.attached) or "no managed policies"
    inline = ", ".join(sorted(snapshot.inline)) or "none"
    boundary = snapshot.boundary_arn.rsplit("/", 1)[-1] if snapshot.boundary_arn else "none"
    return f"managed: {managed}; inline: {inline}; boundary: {boundary}"
