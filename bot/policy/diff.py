"""What a proposal changes: current vs proposed effective permissions, for reviewers.

``diff_permissions`` compares two :class:`EffectivePermissions`: actions removed / kept / added (grouped by
service and access level), resource narrowing (``*`` -> ARNs) and broadening, escalation paths opened, still
open or closed (by name, with the named roles that open them; listed first in the grouped text), and IAM-admin
before/after. Effective permissions do not show Conditions and Denies, so :func:`guard_changes` reads them
from the policies themselves (through the containment check): a Condition the proposal drops or loosens
(LOOSENED), a current Deny it no longer carries (DENY REMOVED, conditional or not; marked when nothing the
proposal allows is affected); they come first in the grouped text. ``summary`` is the one-line human summary,
``render_grouped`` the plain text block for the CLI and Slack code blocks, ``unified_text_diff`` the full view
of the JSON documents.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.policy.catalog import ACCESS_LEVELS
from bot.policy.contain import (
    CONDITION_LOST,
    DENY_LOST,
    ContainmentResult,
    check_no_new_access,
    dropped_denies,
)
from bot.policy.escalation import (
    EscalationContext,
    EscalationFinding,
    can_administer_iam,
    escalation_findings,
)
from bot.policy.evaluate import pattern_covers
from bot.policy.expand import EffectivePermissions, Grant
from bot.policy.model import Policy

Grouped = dict[str, dict[str, list[str]]]  # service -> access level -> actions


@dataclass(frozen=True, slots=True)
class ResourceChange:
    action: str
    before: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def from_any(self) -> bool:
        return "*" in self.before and "*" not in self.after


@dataclass(frozen=True, slots=True)
class GuardChange:
    """A Condition or Deny of the current policies that the proposal loses or weakens."""

    kind: str  # LOOSENED | DENY_REMOVED
    text: str  # one line for reviewers
    matters: bool = True  # False: nothing the proposal still allows is affected


LOOSENED = "LOOSENED"
DENY_REMOVED = "DENY REMOVED"


def guard_changes(current: Sequence[Policy], proposed: Sequence[Policy], boundary: Policy | None = None, *,
                  containment: ContainmentResult | None = None) -> tuple[GuardChange, ...]:
    """Conditions loosened and Denies removed by going from ``current`` to ``proposed`` (same boundary).
    Pass the containment result when it was computed already."""
    result = containment or check_no_new_access(current, proposed, boundary)
    affected: dict[tuple[str, str], list[str]] = {}  # (kind, what is lost) -> proposed grants it affects
    for f in result.findings:
        if f.kind == CONDITION_LOST:
            key = (LOOSENED, f.detail.removeprefix("LOOSENED: "))
        elif f.kind == DENY_LOST:
            key = (DENY_REMOVED, f.detail.removeprefix("DENY REMOVED: "))
        else:
            continue
        affected.setdefault(key, []).append(f"{f.action} on {f.resource}")
    out = []
    for (kind, lost), grants in affected.items():
        shown = "; ".join(grants[:3]) + (f"; and {len(grants) - 3} more" if len(grants) > 3 else "")
        out.append(GuardChange(kind, f"{lost} — for {shown}"))
    reported = " ".join(lost for _, lost in affected)
    for deny in dropped_denies(current, proposed, boundary):
        if deny.describe() not in reported:
            out.append(GuardChange(DENY_REMOVED, f"{deny.describe()} (nothing the proposal allows is affected)",
                                   matters=False))
    return tuple(out)


@dataclass(frozen=True)
class PermissionDiff:
    removed: tuple[Grant, ...]  # current grants the proposal drops
    kept: tuple[Grant, ...]  # proposed grants for actions held today
    added: tuple[Grant, ...]  # proposed grants for actions not held today
    narrowed: tuple[ResourceChange, ...]  # kept actions on fewer resources
    broadened: tuple[ResourceChange, ...]  # kept actions on resources not granted today
    escalations_closed: tuple[EscalationFinding, ...]  # open today (as found today), closed by the proposal
    escalations_kept: tuple[EscalationFinding, ...]  # still open under the proposal (as found there)
    escalations_opened: tuple[EscalationFinding, ...]
    iam_admin_before: bool
    iam_admin_after: bool
    unknown_patterns: tuple[str, ...] = ()  # proposed Action patterns that match no catalog action
    guards: tuple[GuardChange, ...] = ()  # Conditions loosened and Denies removed (see guard_changes)

    @property
    def loosened(self) -> tuple[GuardChange, ...]:
        return tuple(g for g in self.guards if g.kind == LOOSENED)

    @property
    def denies_removed(self) -> tuple[GuardChange, ...]:
        return tuple(g for g in self.guards if g.kind == DENY_REMOVED)

    @staticmethod
    def group(grants: Iterable[Grant]) -> Grouped:
        out: Grouped = {}
        for g in sorted(grants, key=lambda g: g.action):
            out.setdefault(g.service, {}).setdefault(g.access_level, []).append(g.action)
        return out

    @property
    def removed_by_service(self) -> Grouped:
        return self.group(self.removed)

    @property
    def kept_by_service(self) -> Grouped:
        return self.group(self.kept)

    @property
    def added_by_service(self) -> Grouped:
        return self.group(self.added)


def _resource_change(before: Grant, after: Grant) -> tuple[str, ResourceChange] | None:
    if before.resources == after.resources:
        return None
    change = ResourceChange(after.action, before.resources, after.resources)
    inside = all(any(pattern_covers(b, a) for b in before.resources) for a in after.resources)
    return ("narrowed" if inside else "broadened"), change


def diff_permissions(current: EffectivePermissions, proposed: EffectivePermissions,
                     escalation_context: EscalationContext | None = None, *,
                     guards: Sequence[GuardChange] = ()) -> PermissionDiff:
    """Compare two permission sets; ``escalation_context`` (the principal and a lookup of named roles) lets
    the escalation paths follow PassRole / AssumeRole to the roles they name; ``guards`` (from
    :func:`guard_changes`) are the Conditions and Denies the proposal loses."""
    removed = tuple(g for name, g in sorted(current.grants.items()) if name not in proposed.grants)
    kept: list[Grant] = []
    added: list[Grant] = []
    narrowed: list[ResourceChange] = []
    broadened: list[ResourceChange] = []
    for name, grant in sorted(proposed.grants.items()):
        before = current.grants.get(name)
        if before is None:
            added.append(grant)
            continue
        kept.append(grant)
        change = _resource_change(before, grant)
        if change is not None:
            (narrowed if change[0] == "narrowed" else broadened).append(change[1])
    paths_before = {f.id: f for f in escalation_findings(current, escalation_context)}
    paths_after = {f.id: f for f in escalation_findings(proposed, escalation_context)}
    return PermissionDiff(
        removed=removed,
        kept=tuple(kept),
        added=tuple(added),
        narrowed=tuple(narrowed),
        broadened=tuple(broadened),
        escalations_closed=tuple(p for i, p in paths_before.items() if i not in paths_after),
        escalations_kept=tuple(p for i, p in paths_after.items() if i in paths_before),
        escalations_opened=tuple(p for i, p in paths_after.items() if i not in paths_before),
        iam_admin_before=can_administer_iam(current),
        iam_admin_after=can_administer_iam(proposed),
        unknown_patterns=proposed.unknown_patterns,
        guards=tuple(guards),
    )


# --------------------------------------------------------------------------------------------
def _n(count: int, word: str, plural: str | None = None) -> str:
    return f"{count:,} {word if count == 1 else (plural or word + 's')}"


def _services(grants: Sequence[Grant]) -> int:
    return len({g.service for g in grants})


#: Access levels counted as "write" in the review's table (IAM catalog access levels).
WRITE_LEVELS = ("Write", "Permissions management")


def permission_counts(perms: EffectivePermissions, prefix: str) -> dict[str, int]:
    """``{prefix}_actions``, ``{prefix}_services`` and ``{prefix}_write`` (Write and Permissions management
    actions) of ``perms``, for the review's now → proposed table."""
    grants = list(perms)
    return {f"{prefix}_actions": len(grants), f"{prefix}_services": len({g.service for g in grants}),
            f"{prefix}_write": sum(1 for g in grants if g.access_level in WRITE_LEVELS)}


def summary(diff: PermissionDiff) -> str:
    """One line, e.g. "removes 11,873 actions across 402 services; keeps 14 actions in 4 services; ..."."""
    parts = [
        f"removes {_n(len(diff.removed), 'action')} across {_n(_services(diff.removed), 'service')}",
        f"keeps {_n(len(diff.kept), 'action')} in {_n(_services(diff.kept), 'service')}",
    ]
    if diff.added:
        parts.append(f"adds {_n(len(diff.added), 'action')} in {_n(_services(diff.added), 'service')}")
    if diff.escalations_closed:
        parts.append(f"closes {_n(len(diff.escalations_closed), 'escalation path')}")
    if diff.escalations_opened:
        parts.append(f"OPENS {_n(len(diff.escalations_opened), 'escalation path')}")
    if diff.escalations_kept:
        parts.append(f"leaves {_n(len(diff.escalations_kept), 'escalation path')} open")
    from_any = [c for c in diff.narrowed if c.from_any]
    if from_any:
        arns = {r for c in from_any for r in c.after}
        parts.append(f"narrows {_n(len(from_any), 'action')} from * to {_n(len(arns), 'ARN')}")
    other_narrowed = len(diff.narrowed) - len(from_any)
    if other_narrowed:
        parts.append(f"narrows resources of {_n(other_narrowed, 'more action', 'more actions')}")
    if diff.broadened:
        parts.append(f"BROADENS resources of {_n(len(diff.broadened), 'action')}")
    if diff.loosened:
        parts.append(f"LOOSENS {_n(len(diff.loosened), 'Condition')}")
    harmful = [g for g in diff.denies_removed if g.matters]
    harmless = [g for g in diff.denies_removed if not g.matters]
    if harmful:
        parts.append(f"DROPS {_n(len(harmful), 'Deny', 'Denies')} that still applied")
    if harmless:
        parts.append(f"drops {_n(len(harmless), 'Deny', 'Denies')} that nothing kept needs")
    if diff.iam_admin_before and not diff.iam_admin_after:
        parts.append("removes IAM administration")
    elif diff.iam_admin_after and not diff.iam_admin_before:
        parts.append("GRANTS IAM administration")
    return "; ".join(parts)


def _level_counts(levels: Mapping[str, list[str]]) -> str:
    order = [lvl for lvl in ACCESS_LEVELS if lvl in levels] + sorted(set(levels) - set(ACCESS_LEVELS))
    return ", ".join(f"{lvl} {len(levels[lvl])}" for lvl in order)


def _render_section(
    title: str, grants: Sequence[Grant], *, list_up_to: int, max_services: int, with_resources: bool
) -> list[str]:
    lines = [f"{title} ({_n(len(grants), 'action')}, {_n(_services(grants), 'service')})"]
    if not grants:
        return lines
    by_action = {g.action: g for g in grants}
    grouped = PermissionDiff.group(grants)
    ordered = sorted(grouped.items(), key=lambda kv: (-sum(len(v) for v in kv[1].values()), kv[0]))
    for service, levels in ordered[:max_services]:
        total = sum(len(v) for v in levels.values())
        lines.append(f"  {service} ({total}): {_level_counts(levels)}")
        if total > list_up_to:
            continue
        for lvl in [lv for lv in ACCESS_LEVELS if lv in levels] + sorted(set(levels) - set(ACCESS_LEVELS)):
            for action in levels[lvl]:
                line = f"    {action:<48} {lvl}"
                g = by_action[action]
                if with_resources:
                    line += "  on " + ", ".join(g.resources)
                    if g.excluded:
                        line += " except " + ", ".join(g.excluded)
                if g.conditional:
                    line += "  (conditional)"
                lines.append(line.rstrip())
    if len(ordered) > max_services:
        rest = ordered[max_services:]
        count = sum(sum(len(v) for v in lv.values()) for _, lv in rest)
        lines.append(f"  ... and {_n(len(rest), 'more service')} ({_n(count, 'action')})")
    return lines


def _render_escalations(diff: PermissionDiff) -> list[str]:
    """The ESCALATION PATHS section (first after the summary: what stays open decides the review)."""
    if not (diff.escalations_closed or diff.escalations_kept or diff.escalations_opened):
        return []
    lines = ["ESCALATION PATHS"]
    for label, findings in (
        ("OPENED", diff.escalations_opened),
        ("still open", diff.escalations_kept),
        ("closed", diff.escalations_closed),
    ):
        for f in findings:
            conditional = " (conditional)" if f.conditional else ""
            lines.append(f"  {label:<10} {f.id}: {f.text} ({f.path.requirement_text}){conditional}")
    return lines + [""]


def _render_guards(diff: PermissionDiff) -> list[str]:
    """The CONDITIONS AND DENIES section (first: what a reviewer must not miss, before any long list)."""
    if not diff.guards:
        return []
    lines = ["CONDITIONS AND DENIES"]
    lines += [f"  LOOSENED      {g.text}" for g in diff.loosened]
    lines += [f"  DENY REMOVED  {g.text}" for g in diff.denies_removed]
    return lines + [""]


def render_grouped(diff: PermissionDiff, *, list_up_to: int = 15, max_services: int = 25) -> str:
    """Plain text grouped by service and access level (for the CLI and Slack code blocks)."""
    lines = [summary(diff), ""]
    lines += _render_guards(diff)
    lines += _render_escalations(diff)
    lines += _render_section("KEPT", diff.kept, list_up_to=10_000, max_services=10_000, with_resources=True)
    if diff.added:
        lines += [""] + _render_section(
            "ADDED", diff.added, list_up_to=10_000, max_services=10_000, with_resources=True
        )
    lines += [""] + _render_section(
        "REMOVED", diff.removed, list_up_to=list_up_to, max_services=max_services, with_resources=False
    )
    if diff.narrowed or diff.broadened:
        lines += ["", "RESOURCES"]
        for c in diff.narrowed:
            lines.append(f"  narrowed   {c.action}: {', '.join(c.before)} -> {', '.join(c.after)}")
        for c in diff.broadened:
            lines.append(f"  BROADENED  {c.action}: {', '.join(c.before)} -> {', '.join(c.after)}")
    if diff.unknown_patterns:
        lines += [
            "",
            "UNKNOWN ACTIONS in the proposal (not in the IAM catalog): " + ", ".join(diff.unknown_patterns),
        ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
NamedDocuments = Sequence[tuple[str, Mapping[str, Any]]] | Sequence[Mapping[str, Any]]


_KEY_ORDER = ("Version", "Id", "Statement", "Sid", "Effect", "Action", "NotAction", "Resource", "NotResource")


def _ordered(value: Any) -> Any:
    """Same content, keys in the conventional IAM order (so key order never shows up as a change)."""
    if isinstance(value, Mapping):
        keys = [k for k in _KEY_ORDER if k in value] + sorted(k for k in value if k not in _KEY_ORDER)
        return {k: _ordered(value[k]) for k in keys}
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


def _document_text(docs: NamedDocuments) -> list[str]:
    lines: list[str] = []
    for i, item in enumerate(docs):
        if isinstance(item, tuple):
            name, doc = item
        else:
            name, doc = f"document {i + 1}", item
        lines.append(f"# {name}")
        lines.extend(json.dumps(_ordered(doc), indent=2).splitlines())
    return lines


def unified_text_diff(
    current_docs: NamedDocuments, proposed_docs: NamedDocuments, *, context: int = 3
) -> str:
    """Unified diff of the pretty-printed JSON documents (each preceded by a ``# name`` line)."""
    return "\n".join(
        difflib.unified_diff(
            _document_text(current_docs),
            _document_text(proposed_docs),
            fromfile="current",
            tofile="proposed",
            n=context,
            lineterm="",
        )
    )
