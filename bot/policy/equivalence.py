"""Do two sets of identity policies grant the same permissions? (For "the role now holds the proposal" and
"the role is back to what it held before", never a text comparison.) Pure: no I/O.

Two policy sets are judged the same when both of these hold:

1. **Unconditional Allows**: the ``Allow`` statements without a Condition, expanded through the catalog
   (:func:`bot.policy.expand.effective_permissions`), give the same grant for every action: the same resource
   patterns, the same carved-out resources (``NotResource``), and the same action patterns unknown to the
   catalog. Comparing the expansions both ways (every grant of one is a grant of the other) is what makes the
   order of statements, their grouping into documents, Sids and the split into several documents irrelevant.
2. **Denies and conditional Allows**: for every catalog action, the ``Deny`` statements and the ``Allow``
   statements with a Condition that match it carry the same (effect, resources or ``NotResource``, Condition)
   triples. Conditions are compared as sets of values per operator and key (IAM ORs the values of one key),
   keys case-insensitively (IAM's condition keys are). A Deny counts even where nothing is allowed: an explicit
   deny also overrides what a resource-based policy of the same account would grant.

Sound in one direction only, by design: "same" is said only when the two sets decide every request alike;
policies that are equivalent through a different wording of a pattern or a condition are reported as
different (then the proposal is not closed automatically, and an approver can still mark it applied).
Both sides are taken with the same permissions boundary (the role's), which therefore need not be compared.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.policy.expand import EffectivePermissions, Grant, effective_permissions, expand_actions
from bot.policy.model import Policy, Statement

ConditionKey = tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...]


@dataclass(frozen=True)
class Comparison:
    same: bool
    difference: str = ""  # the first difference found, one line (empty when same)


def _statements(policies: Sequence[Policy]) -> list[str]:
    from bot.policy.model import statement_to_dict

    return sorted(json.dumps({**statement_to_dict(st), "Sid": None}, sort_keys=True)
                  for p in policies for st in p.statements)


def _unconditional_allows(policies: Sequence[Policy]) -> list[Policy]:
    return [replace(p, statements=tuple(st for st in p.statements if st.conditions is None and st.is_allow))
            for p in policies]


def _condition_key(st: Statement) -> ConditionKey:
    blocks = []
    for operator, block in (st.conditions or {}).items():
        keys = tuple(sorted((key.lower(), tuple(sorted(set(values)))) for key, values in block.items()))
        blocks.append((operator, keys))
    return tuple(sorted(blocks))


def _structural(policies: Sequence[Policy]) -> dict[str, frozenset[tuple[object, ...]]]:
    """Action -> the (effect, resource side, Condition) of every Deny and every conditional Allow matching it."""
    out: dict[str, set[tuple[object, ...]]] = {}
    for policy in policies:
        for st in policy.statements:
            if st.conditions is None and st.is_allow:
                continue
            side = (("Resource", tuple(sorted(set(st.resources)))) if st.resources is not None
                    else ("NotResource", tuple(sorted(set(st.not_resources or ())))))
            triple = (st.effect, side, _condition_key(st))
            for action in expand_actions(st.action_patterns, st.actions is None):
                out.setdefault(action.full_name, set()).add(triple)
    return {k: frozenset(v) for k, v in out.items()}


def _grant_text(grant: Grant | None) -> str:
    if grant is None:
        return "not granted"
    text = ", ".join(grant.resources)
    return text + (f" except {', '.join(grant.excluded)}" if grant.excluded else "")


def _compare_grants(a: EffectivePermissions, b: EffectivePermissions, a_name: str, b_name: str) -> str:
    for action in sorted(a.actions() | b.actions()):
        left, right = a.grants.get(action), b.grants.get(action)
        if left is None or right is None or (left.resources, left.excluded) != (right.resources, right.excluded):
            return f"{action}: {a_name} {_grant_text(left)}; {b_name} {_grant_text(right)}"
    if set(a.unknown_patterns) != set(b.unknown_patterns):
        only = sorted(set(a.unknown_patterns) ^ set(b.unknown_patterns))
        return f"action patterns unknown to the catalog differ: {', '.join(only)}"
    return ""


def same_permissions(a: Sequence[Policy], b: Sequence[Policy], *, a_name: str = "first",
                     b_name: str = "second") -> Comparison:
    """Whether ``a`` and ``b`` grant the same permissions (see the module docstring)."""
    if _statements(a) == _statements(b):  # the same statements, however grouped: no expansion needed
        return Comparison(True)
    difference = _compare_grants(effective_permissions(_unconditional_allows(a)),
                                 effective_permissions(_unconditional_allows(b)), a_name, b_name)
    if difference:
        return Comparison(False, difference)
    ca, cb = _structural(a), _structural(b)
    for action in sorted(set(ca) | set(cb)):
        if ca.get(action, frozenset()) != cb.get(action, frozenset()):
            return Comparison(False, f"{action}: the Denies or the Allows with a Condition differ")
    return Comparison(True)
