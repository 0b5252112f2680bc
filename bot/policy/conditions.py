"""Does one IAM Condition block imply another, for every request? Proven conservatively, per operator.

A Condition block is a conjunction: every (operator, key) pair must hold, and inside one pair the values are
ORed (NORed for a negated operator) -- IAM User Guide, "Conditions with multiple context keys or values". So
a set of premises implies a block when each of the block's conjuncts follows from one premise conjunct on the
same key. One conjunct follows from another when

* they are the same text (same operator, key, values), or
* both use the same set qualifier (none, ``ForAnyValue:``, ``ForAllValues:``), the premise is false whenever
  the key is absent unless the target is true then too (:func:`bot.policy.evaluate.when_key_absent`), and
  the values relate: for a positive operator every premise value matches no more than some target value
  (``StringEquals a`` within ``StringLike a*``; ``IpAddress 10.0.1.0/24`` within ``10.0.0.0/16``;
  ``NumericLessThan 5`` within ``NumericLessThanEquals 10``; ``ArnLike`` by ARN pattern containment); for a
  negated operator the other way round (``StringNotEquals [a, b]`` implies ``StringNotEquals a``).

Anything else -- an operator this module does not model, a policy variable in only one of two values, a
value that does not parse -- is :data:`UNKNOWN`: the caller says "cannot prove", never "implied".
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.policy.evaluate import (
    literal_value,
    operator_negated,
    parse_date,
    parse_number,
    split_operator,
    when_key_absent,
)
from bot.policy.patterns import (
    NO,
    RESOURCE,
    STRING,
    UNKNOWN,
    YES,
    covers,
    has_variable,
    is_universal,
    matches,
)


@dataclass(frozen=True, slots=True)
class Conjunct:
    """One (operator, key) pair of a Condition block, with its values."""

    operator: str  # as written, e.g. "ForAnyValue:StringLikeIfExists"
    key: str  # as written; compared case-insensitively (condition keys are case-insensitive)
    values: tuple[str, ...]

    def text(self) -> str:
        shown = self.values[0] if len(self.values) == 1 else "[" + ", ".join(self.values) + "]"
        return f"{self.operator} {self.key} {shown}"


def conjuncts(conditions: Mapping[str, Mapping[str, Sequence[str]]] | None) -> tuple[Conjunct, ...]:
    if not conditions:
        return ()
    return tuple(Conjunct(op, key, (values,) if isinstance(values, str) else tuple(values))
                 for op, block in conditions.items() for key, values in block.items())


def condition_text(conditions: Sequence[Conjunct]) -> str:
    return " and ".join(c.text() for c in conditions) if conditions else "(none)"


@dataclass(frozen=True)
class Implication:
    result: int  # YES, NO or UNKNOWN
    missing: tuple[Conjunct, ...] = ()  # target conjuncts not implied
    undecided: tuple[Conjunct, ...] = ()  # ...of which it could not decide (UNKNOWN)


def implies(premises: Sequence[Conjunct], target: Sequence[Conjunct]) -> Implication:
    """Do the premises (ANDed) imply every conjunct of ``target`` for every request context?"""
    missing: list[Conjunct] = []
    undecided: list[Conjunct] = []
    for t in target:
        best = NO
        for p in premises:
            best = max(best, implies_one(p, t))
            if best == YES:
                break
        if best != YES:
            missing.append(t)
            if best == UNKNOWN:
                undecided.append(t)
    if not missing:
        return Implication(YES)
    return Implication(UNKNOWN if len(undecided) == len(missing) else NO, tuple(missing), tuple(undecided))


# --------------------------------------------------------------------------------------------
_POSITIVE_OF = {
    "StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals", "DateNotEquals": "DateEquals", "NotIpAddress": "IpAddress",
}
_ORDERED = ("Equals", "LessThan", "LessThanEquals", "GreaterThan", "GreaterThanEquals")


def implies_one(p: Conjunct, t: Conjunct) -> int:
    """Does conjunct ``p`` imply conjunct ``t``? YES, NO (not by this premise) or UNKNOWN."""
    if p.key.lower() != t.key.lower():
        return NO
    if p.operator == t.operator and sorted(p.values) == sorted(t.values):
        return YES
    p_set, p_base, _ = split_operator(p.operator)
    t_set, t_base, _ = split_operator(t.operator)
    if p_set != t_set:
        return UNKNOWN
    p_absent, t_absent = when_key_absent(p.operator, p.values), when_key_absent(t.operator, t.values)
    if p_absent is None or t_absent is None:
        return UNKNOWN
    if p_absent and not t_absent:
        return NO  # a request without the key satisfies p but not t
    if p_base == "Null" or t_base == "Null":
        if p_base != t_base or p_set:
            return UNKNOWN
        # with the key present, Null holds when it allows "false"
        return YES if ("false" not in _lower(p.values) or "false" in _lower(t.values)) else NO
    p_neg, t_neg = operator_negated(p_base), operator_negated(t_base)
    if p_neg is None or t_neg is None or p_neg != t_neg:
        return UNKNOWN
    if not p_neg:
        # every request value matching some premise value must match some target value
        return _all_within(p_base, p.values, t_base, t.values)
    # negated: "matches none of P" implies "matches none of T" when every T value matches within a P value
    return _all_within(_POSITIVE_OF[t_base], t.values, _POSITIVE_OF[p_base], p.values)


def _lower(values: Sequence[str]) -> set[str]:
    return {v.lower() for v in values}


def _all_within(op_a: str, values_a: Sequence[str], op_b: str, values_b: Sequence[str]) -> int:
    """min over a in values_a of max over b in values_b of within(a, b)."""
    result = YES
    for a in values_a:
        best = NO
        for b in values_b:
            best = max(best, within(op_a, a, op_b, b))
            if best == YES:
                break
        result = min(result, best)
        if result == NO:
            return NO
    return result


def within(op_a: str, a: str, op_b: str, b: str) -> int:
    """Is every request value that (positive operator) ``op_a`` matches with policy value ``a`` also matched
    by ``op_b`` with ``b``?"""
    if has_variable(a) or has_variable(b):
        same_family = _family(op_a) == _family(op_b)
        return YES if (same_family and a == b) else UNKNOWN
    fa, fb = _family(op_a), _family(op_b)
    if fa is None or fb is None:
        return UNKNOWN
    if fa in ("string", "istring", "like") and fb in ("string", "istring", "like"):
        return _string_within(fa, literal_value(a) if fa != "like" else a, fb,
                              literal_value(b) if fb != "like" else b, a, b)
    if fa != fb:
        return UNKNOWN
    if fa == "arn":
        return covers(b, a, RESOURCE)
    if fa == "bool":
        return YES if literal_value(a).lower() == literal_value(b).lower() else NO
    if fa == "binary":
        return YES if literal_value(a) == literal_value(b) else NO
    if fa == "ip":
        return _ip_within(literal_value(a), literal_value(b))
    if fa in ("number", "date"):
        return _range_within(op_a, literal_value(a), op_b, literal_value(b), fa)
    return UNKNOWN


def _family(op: str) -> str | None:
    if op == "StringEquals":
        return "string"
    if op == "StringEqualsIgnoreCase":
        return "istring"
    if op == "StringLike":
        return "like"
    if op in ("ArnEquals", "ArnLike"):  # ArnEquals takes wildcards too
        return "arn"
    if op == "Bool":
        return "bool"
    if op == "BinaryEquals":
        return "binary"
    if op == "IpAddress":
        return "ip"
    for family, prefix in (("number", "Numeric"), ("date", "Date")):
        if op.startswith(prefix) and op[len(prefix):] in _ORDERED:
            return family
    return None


def _string_within(fa: str, a: str, fb: str, b: str, raw_a: str, raw_b: str) -> int:
    if fb == "like" and is_universal(raw_b, STRING):
        return YES
    if fa == "string":
        if fb == "string":
            return YES if a == b else NO
        if fb == "istring":
            return YES if a.lower() == b.lower() else NO
        return YES if matches(raw_b, a, STRING) else NO
    if fa == "istring":
        # every case variant of a: within b only if b is the same text ignoring case
        if fb == "istring":
            return YES if a.lower() == b.lower() else NO
        if fb == "string":
            return YES if a == b and a.lower() == a.upper() else NO
        return UNKNOWN
    # fa == "like": a wildcard pattern
    if fb == "like":
        return covers(raw_b, raw_a, STRING)
    literal = "*" not in raw_a.replace("${*}", "") and "?" not in raw_a.replace("${?}", "")
    if not literal:
        return NO
    text = literal_value(raw_a)
    if fb == "string":
        return YES if text == b else NO
    return YES if text.lower() == b.lower() else NO


def _ip_within(a: str, b: str) -> int:
    try:
        na, nb = ipaddress.ip_network(a, strict=False), ipaddress.ip_network(b, strict=False)
    except ValueError:
        return UNKNOWN
    if na.version != nb.version:
        return NO
    return YES if na.subnet_of(nb) else NO  # type: ignore[arg-type]


_INF = float("inf")


def _interval(op: str, value: float) -> tuple[float, bool, float, bool]:
    """(low, low included, high, high included) of the values ``op value`` accepts."""
    suffix = op.removeprefix("Numeric").removeprefix("Date")
    if suffix == "Equals":
        return value, True, value, True
    if suffix == "LessThan":
        return -_INF, False, value, False
    if suffix == "LessThanEquals":
        return -_INF, False, value, True
    if suffix == "GreaterThan":
        return value, False, _INF, False
    return value, True, _INF, False  # GreaterThanEquals


def _range_within(op_a: str, a: str, op_b: str, b: str, family: str) -> int:
    va, vb = _number(a, family), _number(b, family)
    if va is None or vb is None:
        return UNKNOWN
    alo, alo_in, ahi, ahi_in = _interval(op_a, va)
    blo, blo_in, bhi, bhi_in = _interval(op_b, vb)
    low_ok = blo < alo or (blo == alo and (blo_in or not alo_in))
    high_ok = bhi > ahi or (bhi == ahi and (bhi_in or not ahi_in))
    return YES if low_ok and high_ok else NO


def _number(text: str, family: str) -> float | None:
    if family == "number":
        return parse_number(text)
    parsed: datetime | None = parse_date(text)
    return parsed.timestamp() if parsed is not None else None
