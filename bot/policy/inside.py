"""The current policy as the frame of a proposal: through which current statement each kept action goes.

:class:`Frame` holds the current identity policies' ``Allow`` statements (each a :class:`Through`) and their
``Deny`` statements (carried over unchanged). Without a current policy the frame is one virtual statement,
``Allow * on *``: generation then prints the pure usage policy, as before there was a frame.

A grant through a statement is always inside it: the statement's Condition goes with it verbatim, and its
resource is an observed ARN the statement matches, a pattern inside the statement's resources, the statement's
own pattern, or the statement's ``NotResource`` exclusion. Policies in the old ``2008-10-17`` language have no
policy variables: their ``$`` is written ``${$}`` when copied, so it keeps meaning a plain ``$``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.policy.evaluate import NO as NO_MATCH
from bot.policy.evaluate import YES as MATCHES
from bot.policy.evaluate import CompiledStatement, compile_statement
from bot.policy.model import Policy, Statement, statement_to_dict
from bot.policy.patterns import ACTION, RESOURCE, YES, covers, disjoint, has_variable


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a grant applies: a ``Resource`` pattern, or everything but a ``NotResource`` list."""

    resource: str | None = None
    not_resources: tuple[str, ...] | None = None

    @property
    def is_exclusion(self) -> bool:
        return self.not_resources is not None

    def text(self) -> str:
        if self.not_resources is not None:
            return "* except " + ", ".join(self.not_resources)
        return self.resource or ""


@dataclass(frozen=True)
class Through:
    """A current ``Allow`` statement a grant can go through."""

    index: int
    label: str
    statement: Statement
    compiled: CompiledStatement
    virtual: bool = False

    @property
    def condition(self) -> dict[str, dict[str, list[str]]] | None:
        return self.statement.conditions

    @property
    def condition_key(self) -> str:
        """Equal for statements with the same Condition (grants through them may share a statement)."""
        return json.dumps(self.statement.conditions, sort_keys=True) if self.statement.conditions else ""

    @property
    def negated_resources(self) -> bool:
        return self.statement.resources is None

    @functools.cached_property
    def plain_resources(self) -> tuple[str, ...]:
        return tuple(q for q in self.statement.resources or () if not has_variable(q))

    @functools.cached_property
    def variable_resources(self) -> tuple[str, ...]:
        return tuple(q for q in self.statement.resources or () if has_variable(q))

    def allows_action(self, action: str) -> bool:
        hit = self.compiled.actions.matches(action.lower(), {}) == MATCHES
        return hit != (self.statement.actions is None)

    def full_scopes(self) -> list[Scope]:
        if self.statement.not_resources is not None:
            return [Scope(not_resources=tuple(sorted(self.statement.not_resources)))]
        return [Scope(resource=r) for r in self.statement.resources or ()]

    def holds(self, pattern: str) -> bool:
        """Is every resource ``pattern`` matches inside this statement's resources (for any variable value)?"""
        if self.virtual:
            return True
        if self.statement.not_resources is not None:
            return all(disjoint(pattern, n, RESOURCE) for n in self.statement.not_resources)
        return any(covers(q, pattern, RESOURCE) == YES for q in self.statement.resources or ())

    def holds_action_pattern(self, pattern: str) -> bool:
        """Is every action ``pattern`` matches allowed by this statement's ``Action``/``NotAction``?"""
        if self.statement.actions is not None:
            return any(covers(q, pattern, ACTION) == YES for q in self.statement.actions)
        return all(disjoint(pattern, n, ACTION) for n in self.statement.not_actions or ())


def _escape_2008(policy: Policy, statement: Statement) -> Statement:
    """The same statement with ``$`` made literal, for a policy in the 2008-10-17 language."""
    if policy.version != "2008-10-17":
        return statement

    def esc(values: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if values is None else tuple(v.replace("$", "${$}") for v in values)

    conditions = None
    if statement.conditions is not None:
        conditions = {op: {k: [v.replace("$", "${$}") for v in vs] for k, vs in block.items()}
                      for op, block in statement.conditions.items()}
    return Statement(sid=statement.sid, effect=statement.effect, actions=statement.actions,
                     not_actions=statement.not_actions, resources=esc(statement.resources),
                     not_resources=esc(statement.not_resources), conditions=conditions)


_EVERYTHING = Statement(sid=None, effect="Allow", actions=("*",), not_actions=None, resources=("*",),
                        not_resources=None)


class Frame:
    """The current Allow statements a grant may go through, and the Denies a proposal carries over."""

    def __init__(self, current: Sequence[Policy] | None) -> None:
        self.inside = current is not None
        self._allowing: dict[str, list[Through]] = {}
        self.throughs: list[Through] = []
        self.denies: list[Statement] = []
        if current is None:
            self.throughs.append(Through(0, "no current policy", _EVERYTHING, compile_statement(_EVERYTHING),
                                         virtual=True))
            return
        seen: set[str] = set()
        for p_index, policy in enumerate(current):
            name = policy.name or f"policy {p_index + 1}"
            for i, raw in enumerate(policy.statements):
                st = _escape_2008(policy, raw)
                if st.is_allow:
                    label = f"{name} statement {i + 1}" + (f" ({st.sid})" if st.sid else "")
                    self.throughs.append(Through(len(self.throughs), label, st, compile_statement(st)))
                    continue
                key = json.dumps({k: v for k, v in statement_to_dict(st).items() if k != "Sid"}, sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    self.denies.append(st)

    # -- which statements allow what -------------------------------------------------------------------
    def allowing(self, action: str) -> list[Through]:
        found = self._allowing.get(action)
        if found is None:
            found = self._allowing[action] = [t for t in self.throughs if t.allows_action(action)]
        return found

    def grants_for_arn(self, action: str, arn: str) -> list[tuple[Through, Scope]]:
        """Grants for a call on one observed resource: the ARN itself through each statement that matches it,
        or the statement's own pattern where only a policy variable in it may match."""
        out: list[tuple[Through, Scope]] = []
        for t in self.allowing(action):
            st = t.statement
            if st.not_resources is not None:
                if t.compiled.resources.matches(arn, {}) == NO_MATCH:  # no exclusion matches, whatever variables hold
                    out.append((t, Scope(resource=arn)))
                continue
            if any(covers(q, arn, RESOURCE) == YES for q in t.plain_resources):
                out.append((t, Scope(resource=arn)))
                continue
            out.extend((t, Scope(resource=q)) for q in t.variable_resources if not disjoint(q, arn, RESOURCE))
        return _without_redundant(out)

    def grants_for_no_resource(self, action: str) -> list[tuple[Through, Scope]]:
        """Grants for an action that takes no resource type (the request's resource is ``*``)."""
        out: list[tuple[Through, Scope]] = []
        for t in self.allowing(action):
            st = t.statement
            if st.not_resources is not None:
                if t.compiled.resources.matches("*", {}) == NO_MATCH:
                    out.append((t, Scope(not_resources=tuple(sorted(st.not_resources)))))
                continue
            out.extend((t, Scope(resource=q)) for q in st.resources or () if covers(q, "*", RESOURCE) == YES)
        return _without_redundant(out)

    def grants_within(self, action: str, wanted: str) -> tuple[list[tuple[Through, Scope]], list[str]]:
        """Grants for an unknown resource, scoped no wider than ``wanted`` where the statement allows
        (``*`` for a resource the logs do not show): per statement pattern q, ``wanted`` when it lies inside
        q, q when it lies inside ``wanted``, q when they overlap otherwise (inside the statement, with a
        note). With ``NotResource``: ``wanted`` when it misses every exclusion, the exclusion itself when
        ``wanted`` is ``*``. Returns (grants, notes)."""
        out: list[tuple[Through, Scope]] = []
        notes: list[str] = []
        for t in self.allowing(action):
            st = t.statement
            if st.not_resources is not None:
                if t.virtual or all(disjoint(wanted, n, RESOURCE) for n in st.not_resources):
                    out.append((t, Scope(resource=wanted)))
                elif wanted == "*":
                    out.append((t, Scope(not_resources=tuple(sorted(st.not_resources)))))
                else:
                    notes.append(f"{action} on {wanted}: overlaps the exclusions of {t.label}; not granted there")
                continue
            for q in st.resources or ():
                if covers(q, wanted, RESOURCE) == YES:
                    out.append((t, Scope(resource=wanted)))
                elif covers(wanted, q, RESOURCE) == YES:
                    out.append((t, Scope(resource=q)))
                elif not disjoint(wanted, q, RESOURCE):
                    out.append((t, Scope(resource=q)))
                    notes.append(f"{action} on {wanted}: granted on {q}, the overlapping resources of {t.label}")
        return _without_redundant(out), notes

    # -- writing grants back as the statement's own patterns --------------------------------------------
    def compactions(self, through: Through, fully_granted: Iterable[str], catalog_match: Any,
                    takes_resources: Any) -> list[tuple[str, list[str]]]:
        """(pattern, actions it stands for): wildcard Action patterns of ``through`` (or a whole service
        ``svc:*`` inside it) whose every catalog action is granted through it on its full scope -- or cannot
        be granted through it at all (an action taking no resource type, under a statement whose resources
        do not match ``*``). Only inside a current policy; the result is part of the statement's own action
        set with its own scope and Condition, so it adds nothing."""
        if not self.inside or through.virtual:
            return []
        remaining = set(fully_granted)
        st = through.statement
        star_reachable = st.not_resources is not None or any(
            covers(q, "*", RESOURCE) == YES for q in st.resources or ())
        out: list[tuple[str, list[str]]] = []
        services = sorted({a.split(":", 1)[0] for a in remaining})
        candidates = [f"{svc}:*" for svc in services]
        candidates += sorted(p for p in through.statement.actions or () if ("*" in p or "?" in p) and p != "*")
        for pattern in candidates:
            if not through.holds_action_pattern(pattern):
                continue
            members = [a.full_name for a in catalog_match(pattern)]
            granted = [m for m in members if m in remaining]
            inert = [m for m in members if m not in remaining and not star_reachable and not takes_resources(m)]
            if len(granted) > 1 and len(granted) + len(inert) == len(members):
                out.append((pattern, sorted(granted)))
                remaining.difference_update(granted)
        return out

    def deny_documents(self) -> list[dict[str, Any]]:
        return [statement_to_dict(st) for st in self.denies]


def _without_redundant(grants: list[tuple[Through, Scope]]) -> list[tuple[Through, Scope]]:
    """Drop conditional grants an unconditional one makes redundant (same scope, or ``*``)."""
    if len(grants) < 2 or all(not t.condition for t, _ in grants):
        return grants
    unconditional = {scope for t, scope in grants if not t.condition}
    if not unconditional:
        return grants
    star = Scope(resource="*") in unconditional
    return [(t, scope) for t, scope in grants
            if not t.condition or (scope not in unconditional and not star)]
