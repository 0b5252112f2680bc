"""Coverage warnings attached to a proposal: where the logs may not show everything the principal needs.

* ``window_short``: the lookback window is shorter than 30 days.
* ``window_shorter_than_history``: the principal existed (created, or already active) before the window
  started, so older, rarer activity is not in view.
* ``seen_once``: actions used a single time in the window (one-off or rare; easy to miss next time).
* ``periodic``: actions that recur with a long period (>= 20 days between uses, e.g. monthly jobs) so the
  window holds fewer than 3 occurrences; ``near_window_start``: actions seen only in the first week of the
  window, which a slightly shorter window would have missed.
* ``data_events_absent``: services whose data events (S3 object calls, Lambda Invoke, DynamoDB item calls)
  are not in the logs at all; CloudTrail logs them only when the trail enables them (CloudTrail User Guide,
  "Logging data events"), so those actions cannot be inferred from the logs. Given ``granted_actions`` (what
  the principal holds today), only for services whose data-event actions it holds: a role without any Lambda
  permission gets no warning about Lambda data events.

The window's length (:func:`lookback_days`) is the same number everywhere it is shown: whole days between two
timestamps (a 30-day lookback is 30 days), or the calendar days both ends included when only dates are given.

Usage rows may be mappings or objects with ``action``, ``count``, ``days`` (ISO dates), ``first_seen`` and
``last_seen``.
"""

from __future__ import annotations

import statistics
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

MIN_WINDOW_DAYS = 30
PERIODIC_MIN_GAP_DAYS = 20
PERIODIC_MIN_OCCURRENCES = 3
EDGE_DAYS = 7
#: Services whose most common actions are data events (CloudTrail User Guide, "Logging data events").
DATA_EVENT_SERVICES = frozenset({"s3", "lambda", "dynamodb"})
#: CloudTrail data events of Lambda and DynamoDB (CloudTrail User Guide, "Logging data events": Lambda
#: ``Invoke``, DynamoDB item-level calls). S3's data events are its object-level calls: the S3 actions that act on
#: the ``object`` resource type in the IAM catalog. Used to tell whether a trail records a service's data events
#: and whether a principal holds any, never to grant anything.
DATA_EVENT_ACTIONS = {
    "lambda": ("lambda:InvokeFunction",),
    "dynamodb": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                 "dynamodb:Query", "dynamodb:Scan", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"),
}
_EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class CoverageWarning:
    code: str
    message: str
    actions: tuple[str, ...] = ()  # the actions concerned, when the warning is about actions


def holds_data_events(service: str, granted_actions: Iterable[str]) -> bool:
    """Does the principal hold any data-event action of ``service``?"""
    service = service.lower()
    if service == "s3":
        from bot.policy.catalog import catalog

        cat = catalog()
        return any(a.lower().startswith("s3:") and any(rt.key == "object" for rt in cat.arn_formats(a))
                   for a in granted_actions)
    wanted = {a.lower() for a in DATA_EVENT_ACTIONS.get(service, ())}
    prefix = service + ":"
    return any(a.lower() in wanted if wanted else a.lower().startswith(prefix) for a in granted_actions)


def _timestamp(value: str | date | datetime) -> datetime | None:
    """``value`` as an aware datetime when it carries a time of day, else None."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and "T" in value:
        from bot.util.clock import parse_iso

        return parse_iso(value)
    return None


def lookback_days(window_start: str | date | datetime, window_end: str | date | datetime) -> int:
    """The window's length in days, the one number shown for it: whole days between two timestamps (rounded), or
    calendar days with both ends included when either end is a date only."""
    start_ts, end_ts = _timestamp(window_start), _timestamp(window_end)
    if start_ts is not None and end_ts is not None:
        return max(1, round((end_ts - start_ts).total_seconds() / 86400))
    start, end = _as_date(window_start), _as_date(window_end)
    if start is None or end is None:
        raise ValueError(f"bad window: {window_start!r} .. {window_end!r}")
    return (end - start).days + 1


def _as_date(value: str | date | datetime | None) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _field(row: Any, name: str) -> Any:
    return row.get(name) if isinstance(row, Mapping) else getattr(row, name, None)


def _list(actions: list[str]) -> str:
    shown = ", ".join(actions[:_EXAMPLES])
    return shown + (f" and {len(actions) - _EXAMPLES} more" if len(actions) > _EXAMPLES else "")


def _count(n: int, one: str = "was", many: str = "were") -> str:
    """``1 action was`` / ``3 actions were``."""
    return f"1 action {one}" if n == 1 else f"{n} actions {many}"


def _per_action(usage: Iterable[Any]) -> dict[str, tuple[int, list[date], date | None, date | None]]:
    """Usage rows are per (action, resource): fold them per action (total count, union of days, first, last),
    so an action used on three resources counts as one action seen three times, not three actions."""
    acc: dict[str, tuple[int, set[date], date | None, date | None]] = {}
    for row in usage:
        action = str(_field(row, "action"))
        count = int(_field(row, "count") or 0)
        days = {d for d in (_as_date(x) for x in (_field(row, "days") or [])) if d is not None}
        first = _as_date(_field(row, "first_seen")) or (min(days) if days else None)
        last = _as_date(_field(row, "last_seen")) or (max(days) if days else None)
        total, all_days, first0, last0 = acc.get(action, (0, set(), None, None))
        acc[action] = (total + count, all_days | days,
                       min(x for x in (first0, first) if x is not None) if first0 or first else None,
                       max(x for x in (last0, last) if x is not None) if last0 or last else None)
    return {a: (c, sorted(d), f, la) for a, (c, d, f, la) in acc.items()}


def coverage_warnings(
    *,
    window_start: str | date | datetime,
    window_end: str | date | datetime,
    principal_first_seen: str | date | datetime | None,
    principal_created: str | date | datetime | None,
    usage: Iterable[Any],
    data_event_services_present: set[str],
    data_event_services_needed: Iterable[str] = DATA_EVENT_SERVICES,
    granted_actions: Collection[str] | None = None,
) -> list[CoverageWarning]:
    """Warnings for a proposal built from ``usage`` over [window_start, window_end]; ``granted_actions`` (what the
    principal holds today) keeps warnings to services it holds."""
    start, end = _as_date(window_start), _as_date(window_end)
    if start is None or end is None or end < start:
        raise ValueError(f"bad window: {window_start!r} .. {window_end!r}")
    window_days = lookback_days(window_start, window_end)
    out: list[CoverageWarning] = []

    if window_days < MIN_WINDOW_DAYS:
        out.append(
            CoverageWarning(
                "window_short",
                f"the lookback window is {window_days} days (< {MIN_WINDOW_DAYS}): monthly activity may be missing",
            )
        )
    created, first_seen = _as_date(principal_created), _as_date(principal_first_seen)
    if created is not None and created < start:
        out.append(
            CoverageWarning(
                "window_shorter_than_history",
                f"the principal exists since {created.isoformat()} ({(end - created).days} days) but only "
                f"the last {window_days} days of logs were read",
            )
        )
    elif created is None and first_seen is not None and first_seen <= start:
        out.append(
            CoverageWarning(
                "window_shorter_than_history",
                f"the principal was already active on {first_seen.isoformat()}, at or before the window start: "
                "its history is longer than the window",
            )
        )

    once: list[str] = []
    periodic: list[str] = []
    periodic_notes: list[str] = []
    edge: list[str] = []
    for action, (count, days, first, last) in sorted(_per_action(usage).items()):
        if count == 1:
            once.append(action)
        if len(days) >= 2:
            gaps = [(b - a).days for a, b in zip(days, days[1:], strict=False)]
            period = statistics.median(gaps)
            if period >= PERIODIC_MIN_GAP_DAYS and window_days / period < PERIODIC_MIN_OCCURRENCES:
                periodic.append(action)
                periodic_notes.append(f"{action} (~every {int(period)} days)")
                continue
        if (
            first is not None
            and last is not None
            and (last - start).days < EDGE_DAYS
            and window_days > EDGE_DAYS
        ):
            edge.append(action)

    if once:
        once.sort()
        out.append(
            CoverageWarning(
                "seen_once", f"{_count(len(once))} used only once: {_list(once)}", tuple(once)
            )
        )
    if periodic:
        order = sorted(range(len(periodic)), key=lambda i: periodic[i])
        acts = [periodic[i] for i in order]
        notes = [periodic_notes[i] for i in order]
        out.append(
            CoverageWarning(
                "periodic",
                f"{_count(len(acts), 'recurs', 'recur')} with a long period, the window holds fewer than "
                f"{PERIODIC_MIN_OCCURRENCES} occurrences: {_list(notes)}",
                tuple(acts),
            )
        )
    if edge:
        edge.sort()
        out.append(
            CoverageWarning(
                "near_window_start",
                f"{_count(len(edge))} seen only in the first {EDGE_DAYS} days of the window "
                f"(a shorter window would miss them; they may be periodic): {_list(edge)}",
                tuple(edge),
            )
        )

    present = {s.lower() for s in data_event_services_present}
    for service in sorted({s.lower() for s in data_event_services_needed} - present):
        if granted_actions is not None and not holds_data_events(service, granted_actions):
            continue
        out.append(
            CoverageWarning(
                "data_events_absent",
                f"no {service} data events in the logs (the trail may not record them): {service} data-plane "
                "actions the principal needs cannot be seen and may be missing from the proposal",
            )
        )
    return out
