"""Containment: do the proposed identity policies allow anything the current ones do not? (Like AWS's
``CheckNoNewAccess``, offline.)

:func:`check_no_new_access` answers for every request -- every action (including ones the catalog does not
know yet), every resource, every request context -- with the same permissions boundary on both sides. It is
sound: it says PASS only with a proof; where it cannot decide it reports "cannot prove" (a FAIL).

The proof, statement by statement:

1. Every proposed ``Allow`` statement is cut into cells (one ``Action`` pattern x one ``Resource`` pattern;
   a ``NotAction``/``NotResource`` list stays whole). A cell that a proposed or boundary ``Deny`` removes
   entirely, or that no boundary ``Allow`` can reach, allows nothing and is skipped. With a boundary, each
   cell is taken together with each boundary ``Allow`` it may overlap (the request must pass both).
2. Each cell must lie inside one current ``Allow`` statement: its actions within the statement's actions,
   its resources within the statement's resources, and its Condition at least as strict (every conjunct of
   the current Condition implied by the cell's, :mod:`bot.policy.conditions`). For an intersection of two
   statements (cell and boundary) it suffices that either one lies inside, dimension by dimension.
3. Every current ``Deny`` that may overlap the cell must still apply there: some proposed or boundary
   ``Deny`` must cover it (the current Deny, the cell or the boundary statement within it, dimension by
   dimension, and its Condition implied). A current Deny that cannot touch anything the proposal allows may
   go.

If every cell passes, any request the proposal allows is allowed by a current statement (2) and denied by no
current Deny (3), with the same boundary: nothing new. Pattern containment and overlap are exact
(:mod:`bot.policy.patterns`); coverage by a union of several current statements is not attempted (a cell
needing it FAILs), which keeps the proof simple and can only err towards FAIL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.policy.conditions import Conjunct, condition_text, conjuncts, implies
from bot.policy.model import Policy, Statement
from bot.policy.patterns import (
    ACTION,
    NO,
    RESOURCE,
    UNKNOWN,
    YES,
    covers,
    disjoint,
    has_variable,
    is_universal,
)

# Finding kinds.
WIDENING = "widening"  # the proposal allows actions or resources the current policies do not
CONDITION_LOST = "condition-lost"  # allowed today only under a Condition the proposal drops or loosens
DENY_LOST = "deny-lost"  # a current Deny no longer applies to something the proposal allows
CANNOT_PROVE = "cannot-prove"  # undecided (an operator not modelled, a policy variable): FAIL all the same

DEFAULT_MAX_FINDINGS = 200


@dataclass(frozen=True, slots=True)
class Side:
    """One dimension of a statement: ``Action``/``NotAction`` or ``Resource``/``NotResource``."""

    patterns: tuple[str, ...]
    negated: bool

    def text(self, noun: str) -> str:
        shown = ", ".join(self.patterns)
        return f"Not{noun} [{shown}]" if self.negated else shown


@dataclass(frozen=True, slots=True)
class Region:
    """A statement (or one cell of it) as the set of requests it matches."""

    actions: Side
    resources: Side
    conditions: tuple[Conjunct, ...]
    label: str  # "policy-name statement 2 (Sid)"
    deny: bool = False

    def describe(self) -> str:
        text = f"{self.label}: {'Deny' if self.deny else 'Allow'} {self.actions.text('Action')} on " \
               f"{self.resources.text('Resource')}"
        if self.conditions:
            text += f" when {condition_text(self.conditions)}"
        return text


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    action: str  # the proposed action pattern ("s3:GetObject", "NotAction [iam:*]")
    resource: str  # the proposed resource pattern
    detail: str  # what was lost or why it cannot be proved

    def line(self) -> str:
        prefix = "cannot prove: " if self.kind == CANNOT_PROVE else ""
        return f"{prefix}{self.action} on {self.resource}: {self.detail}"

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "action": self.action, "resource": self.resource, "detail": self.detail}


@dataclass(frozen=True)
class ContainmentResult:
    findings: tuple[Finding, ...]
    more: int = 0  # findings left out past the cap
    cells: int = 0  # proposed cells proven (or refuted)
    current_denies: int = 0
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.findings and not self.more

    @property
    def result(self) -> str:
        return "pass" if self.passed else "fail"

    def reason(self) -> str:
        """One line for a scan record or a Slack message."""
        if self.passed:
            return "grants nothing new: every proposed statement lies inside a current one and every current Deny " \
                   "that could apply still applies"
        total = len(self.findings) + self.more
        first: dict[str, Finding] = {}
        for f in self.findings:
            first.setdefault(f.kind, f)
        examples = "; ".join(f.line() for f in first.values())
        return f"would grant more than the role has today ({total} finding(s): {', '.join(first)}): {examples}"

    def lines(self) -> list[str]:
        out = [f.line() for f in self.findings]
        if self.more:
            out.append(f"... and {self.more} more")
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"result": self.result, "cells": self.cells, "current_denies": self.current_denies}
        if not self.passed:
            out["reason"] = self.reason()
            out["findings"] = [f.to_json() for f in self.findings]
            out["more_findings"] = self.more
        return out


# --------------------------------------------------------------------------------------------
def _literal_dollars(policy: Policy, text: str) -> str:
    """Version 2008-10-17 has no policy variables: its ``${...}`` is plain text."""
    return text.replace("$", "${$}") if policy.version == "2008-10-17" else text


def regions(policies: Iterable[Policy]) -> tuple[list[Region], list[Region]]:
    """(allows, denies) of the policies as regions."""
    allows: list[Region] = []
    denies: list[Region] = []
    for p_index, policy in enumerate(policies):
        name = policy.name or f"policy {p_index + 1}"
        for i, st in enumerate(policy.statements):
            region = _region(policy, st, f"{name} statement {i + 1}" + (f" ({st.sid})" if st.sid else ""))
            (allows if st.is_allow else denies).append(region)
    return allows, denies


def _region(policy: Policy, st: Statement, label: str) -> Region:
    conds = conjuncts(st.conditions)
    if policy.version == "2008-10-17":
        conds = tuple(Conjunct(c.operator, c.key, tuple(_literal_dollars(policy, v) for v in c.values))
                      for c in conds)
    return Region(
        actions=Side(st.action_patterns, st.actions is None),
        resources=Side(tuple(_literal_dollars(policy, r) for r in st.resource_patterns), st.resources is None),
        conditions=conds, label=label, deny=not st.is_allow)


def cells(region: Region) -> list[Region]:
    """One region per (Action pattern, Resource pattern); a negated side stays whole."""
    action_sides = [region.actions] if region.actions.negated else [
        Side((a,), False) for a in dict.fromkeys(region.actions.patterns)]
    resource_sides = [region.resources] if region.resources.negated else [
        Side((r,), False) for r in dict.fromkeys(region.resources.patterns)]
    return [Region(a, r, region.conditions, region.label, region.deny) for a in action_sides for r in resource_sides]


# --------------------------------------------------------------------------------------------
# one dimension
def side_inside(inner: Side, outer: Side, kind: str) -> int:
    """Is every value of ``inner`` a value of ``outer``? YES, NO, or UNKNOWN (a policy variable decides)."""
    if not inner.negated and not outer.negated:
        result = YES
        for p in inner.patterns:
            best = max((covers(q, p, kind) for q in outer.patterns), default=NO)
            result = min(result, best)
            if result == NO:
                break
        return result
    if not inner.negated:  # p within "everything but N": p must miss every n
        result = YES
        for p in inner.patterns:
            for n in outer.patterns:
                if not disjoint(p, n, kind):
                    result = min(result, UNKNOWN if (has_variable(p) or has_variable(n)) else NO)
        return result
    if not outer.negated:  # "everything but M" within a list: only a universal pattern holds it
        return YES if any(is_universal(q, kind) for q in outer.patterns) else NO
    # "everything but M" within "everything but N": every n must lie inside some m
    result = YES
    for n in outer.patterns:
        result = min(result, max((covers(m, n, kind) for m in inner.patterns), default=NO))
    return result


def side_may_overlap(a: Side, b: Side, kind: str) -> bool:
    """False only when no value lies in both."""
    if not a.negated and not b.negated:
        return any(not disjoint(p, q, kind) for p in a.patterns for q in b.patterns)
    if not a.negated:
        return any(not any(covers(n, p, kind) == YES for n in b.patterns) for p in a.patterns)
    if not b.negated:
        return side_may_overlap(b, a, kind)
    return True


def _inside(parts: Sequence[Region], outer: Region, kind: str) -> int:
    """The intersection of ``parts`` lies inside ``outer`` along one dimension when any part does."""
    best = NO
    for part in parts:
        side = part.actions if kind == ACTION else part.resources
        best = max(best, side_inside(side, outer.actions if kind == ACTION else outer.resources, kind))
        if best == YES:
            break
    return best


def _premises(parts: Sequence[Region]) -> list[Conjunct]:
    return [c for part in parts for c in part.conditions]


def _may_overlap(parts: Sequence[Region], other: Region) -> bool:
    return all(side_may_overlap(p.actions, other.actions, ACTION)
               and side_may_overlap(p.resources, other.resources, RESOURCE) for p in parts)


def _region_covers(parts: Sequence[Region], outer: Region) -> bool:
    """Is every request in the intersection of ``parts`` matched by ``outer`` (conditions included)?"""
    return (_inside(parts, outer, ACTION) == YES and _inside(parts, outer, RESOURCE) == YES
            and implies(_premises(parts), outer.conditions).result == YES)


# --------------------------------------------------------------------------------------------
class _Check:
    def __init__(self, current: Sequence[Policy], proposed: Sequence[Policy], boundary: Policy | None,
                 max_findings: int) -> None:
        self.current_allows, self.current_denies = regions(current)
        self.proposed_allows, proposed_denies = regions(proposed)
        boundary_allows, boundary_denies = regions([boundary]) if boundary is not None else ([], [])
        self.keeping_denies = proposed_denies + boundary_denies  # what still denies after the change
        self.contexts: list[Region | None] = list(boundary_allows) if boundary is not None else [None]
        self.max_findings = max_findings
        self.findings: dict[tuple[str, str, str, str], Finding] = {}
        self.more = 0
        self.cells = 0

    def add(self, finding: Finding) -> None:
        key = (finding.kind, finding.action, finding.resource, finding.detail)
        if key in self.findings:
            return
        if len(self.findings) >= self.max_findings:
            self.more += 1
            return
        self.findings[key] = finding

    def run(self) -> ContainmentResult:
        for statement in self.proposed_allows:
            if self._whole_statement_passes(statement):
                self.cells += len(cells(statement))
                continue
            for cell in cells(statement):
                self.cells += 1
                self._check_cell(cell)
        return ContainmentResult(findings=tuple(self.findings.values()), more=self.more, cells=self.cells,
                                 current_denies=len(self.current_denies))

    def _pieces(self, cell: Region) -> list[list[Region]]:
        """The cell intersected with each boundary Allow that may reach it (the cell alone without a boundary),
        minus the pieces a Deny that stays removes entirely."""
        out = []
        for context in self.contexts:
            parts = [cell] if context is None else [cell, context]
            if context is not None and not _may_overlap([cell], context):
                continue
            if any(_region_covers(parts, d) for d in self.keeping_denies):
                continue
            out.append(parts)
        return out

    def _whole_statement_passes(self, statement: Region) -> bool:
        """Fast path: the statement as a whole inside one current Allow, and no current Deny it may meet lost."""
        for parts in self._pieces(statement):
            if not any(_region_covers(parts, s) for s in self.current_allows):
                return False
            if any(self._deny_lost(parts, d) for d in self.current_denies):
                return False
        return True

    def _deny_lost(self, parts: Sequence[Region], deny: Region) -> bool:
        if not _may_overlap(parts, deny):
            return False
        together = [*parts, deny]
        return not any(_region_covers(together, keep) for keep in self.keeping_denies)

    def _check_cell(self, cell: Region) -> None:
        action, resource = cell.actions.text("Action"), cell.resources.text("Resource")
        for parts in self._pieces(cell):
            if not any(_region_covers(parts, s) for s in self.current_allows):
                self.add(self._explain_allow(parts, action, resource))
            for deny in self.current_denies:
                if self._deny_lost(parts, deny):
                    kind = DENY_LOST
                    detail = f"DENY REMOVED: {deny.describe()} no longer applies"
                    if deny.conditions and self._deny_undecided(parts, deny):
                        kind = CANNOT_PROVE
                        detail = f"cannot show that {deny.describe()} still applies"
                    self.add(Finding(kind, action, resource, detail))

    def _deny_undecided(self, parts: Sequence[Region], deny: Region) -> bool:
        together = [*parts, deny]
        for keep in self.keeping_denies:
            if (_inside(together, keep, ACTION) == YES and _inside(together, keep, RESOURCE) == YES
                    and implies(_premises(together), keep.conditions).result == UNKNOWN):
                return True
        return False

    def _explain_allow(self, parts: Sequence[Region], action: str, resource: str) -> Finding:
        """Why no current Allow holds the piece: the closest current statement and what it has that the
        proposal lacks."""
        premises = _premises(parts)
        resource_miss: Region | None = None
        resource_unknown = False
        for s in self.current_allows:
            if _inside(parts, s, ACTION) != YES:
                continue
            r = _inside(parts, s, RESOURCE)
            if r != YES:
                if resource_miss is None:
                    resource_miss = s
                resource_unknown = resource_unknown or r == UNKNOWN
                continue
            implication = implies(premises, s.conditions)
            lost = condition_text(implication.missing)
            if implication.result == UNKNOWN:
                return Finding(CANNOT_PROVE, action, resource,
                               f"cannot show the Condition is at least as strict as {lost} of {s.label}")
            return Finding(CONDITION_LOST, action, resource, f"LOOSENED: Condition {lost} of {s.label} is lost")
        if resource_miss is None:
            for s in self.current_allows:
                if (_inside(parts, s, RESOURCE) == YES
                        and any(side_may_overlap(p.actions, s.actions, ACTION) for p in parts)):
                    return Finding(WIDENING, action, resource,
                                   f"more actions than today's ({s.describe()})")
        if resource_miss is not None:
            if resource_unknown:
                return Finding(CANNOT_PROVE, action, resource,
                               f"a policy variable decides whether it lies inside {resource_miss.describe()}")
            return Finding(WIDENING, action, resource,
                           f"broader than today's resources ({resource_miss.describe()})")
        return Finding(WIDENING, action, resource, "not allowed by any current statement")


def check_no_new_access(current: Sequence[Policy], proposed: Sequence[Policy], boundary: Policy | None = None,
                        *, max_findings: int = DEFAULT_MAX_FINDINGS) -> ContainmentResult:
    """PASS when ``proposed`` (identity policies) allows nothing ``current`` does not, for any request, both
    under ``boundary``; otherwise the findings (at most ``max_findings``, the rest counted in ``more``)."""
    return _Check(current, proposed, boundary, max_findings).run()



def dropped_denies(current: Sequence[Policy], proposed: Sequence[Policy],
                   boundary: Policy | None = None) -> list[Region]:
    """Current Deny statements no proposed (or boundary) Deny covers as a whole -- whether or not they still
    matter to what the proposal allows (:func:`check_no_new_access` says where they do)."""
    _, current_denies = regions(current)
    _, proposed_denies = regions(proposed)
    _, boundary_denies = regions([boundary]) if boundary is not None else ([], [])
    keeping = proposed_denies + boundary_denies
    return [d for d in current_denies if not any(_region_covers([d], k) for k in keeping)]
