"""Rare jobs: what IAM's service-last-accessed data says to keep beyond the CloudTrail window (pure: no I/O).

A quarterly report, a yearly key rotation, a disaster-recovery drill: a role may use a service once in a long
while, outside the CloudTrail window a proposal is built from. IAM's service-last-accessed data
(:mod:`bot.aws.last_accessed`) remembers 400 days. :func:`rare_uses` turns it into *rare uses*:

* an **action** IAM tracks at action level, used within ``horizon_days`` and not among the window's actions,
  is kept (``kind="action"``, ``pattern="iam:CreateRole"``);
* a **service** used within the horizon that the window has no call of at all, and whose last use no tracked
  action explains (S3 data calls, for instance, are not tracked at action level), is kept as a whole
  (``kind="service"``, ``pattern="sqs:*"``).

Each entry carries a note for the reviewer: "used N days ago according to IAM, outside the CloudTrail window"
(or "..., but not in the CloudTrail logs" when IAM's date falls inside the window: data events the trail does
not record). :func:`keep_entries_for` turns them into :class:`bot.policy.keep.KeepEntry` items (kind
``last-accessed``) for the actions the role holds today, without a resource: generation grants each inside the
current statement that allows it, with that statement's scope and Condition, so nothing is ever widened;
anything the role does not hold is not kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.policy.keep import KeepEntry
from bot.util.clock import parse_iso

#: ``KeepEntry.kind`` of what this module keeps.
KIND = "last-accessed"


@dataclass(frozen=True, slots=True)
class RareUse:
    pattern: str  # "iam:CreateRole" (kind "action") or "sqs:*" (kind "service")
    kind: str  # "action" | "service"
    note: str
    last_used: str  # ISO-8601 UTC, per IAM
    days_ago: int


def rare_uses(services: Iterable[Any], used_actions: Iterable[str], *, now: datetime, window_start: str,
              horizon_days: int) -> list[RareUse]:
    """Rare uses from IAM's last-accessed ``services`` (objects with ``namespace``, ``last_authenticated``,
    ``actions`` of (``action``, ``last_accessed``) and ``action_level``) for usage ``used_actions``."""
    if horizon_days <= 0:
        return []
    used = {a.lower() for a in used_actions}
    used_services = {a.split(":", 1)[0] for a in used}
    start = parse_iso(window_start)
    out: list[RareUse] = []
    for service in sorted(services, key=lambda s: s.namespace):
        if not service.last_authenticated:
            continue
        latest = parse_iso(service.last_authenticated)
        if (now - latest).days > horizon_days:
            continue
        explained = False
        for tracked in sorted(service.actions, key=lambda a: a.action):
            when = parse_iso(tracked.last_accessed)
            explained = explained or when >= latest
            if (now - when).days <= horizon_days and tracked.action.lower() not in used:
                out.append(_entry(tracked.action, "action", when, now, start))
        if service.namespace not in used_services and not explained:
            out.append(_entry(f"{service.namespace}:*", "service", latest, now, start))
    return out


def _entry(pattern: str, kind: str, when: datetime, now: datetime, start: datetime) -> RareUse:
    days = max(0, (now - when).days)
    ago = "today" if days == 0 else ("1 day ago" if days == 1 else f"{days} days ago")
    where = "outside the CloudTrail window" if when < start else "but not in the CloudTrail logs"
    return RareUse(pattern=pattern, kind=kind, note=f"{pattern}: used {ago} according to IAM, {where}",
                   last_used=when.strftime("%Y-%m-%dT%H:%M:%SZ"), days_ago=days)


def held_actions(use: RareUse, held: Iterable[str]) -> list[str]:
    """The actions of ``held`` (canonical names the role holds today) that a rare use covers."""
    if use.kind == "service":
        prefix = use.pattern.split(":", 1)[0].lower() + ":"
        return sorted(a for a in held if a.lower().startswith(prefix))
    return sorted(a for a in held if a.lower() == use.pattern.lower())


def keep_entries_for(uses: Sequence[RareUse], held: Iterable[str]) -> list[KeepEntry]:
    """One :class:`KeepEntry` per held action a rare use covers (no resource: the current statement's scope).
    A service use becomes its held actions only, so nothing outside what the role holds is even asked for."""
    held = list(held)
    out: dict[str, KeepEntry] = {}
    for use in uses:
        for action in held_actions(use, held):
            out.setdefault(action, KeepEntry(action=action, resource=None, kind=KIND, note=use.note))
    return [out[a] for a in sorted(out)]
