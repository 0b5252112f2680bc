"""Offline IAM evaluation of one (action, resource) request against identity policies and a boundary.

Semantics (AWS "policy evaluation logic" for a single account, identity policies + permissions boundary):

* An explicit ``Deny`` that applies, in any identity policy or in the boundary, wins.
* Otherwise the request is allowed only when an identity ``Allow`` applies AND, when a boundary is given,
  a boundary ``Allow`` applies. Anything else is an implicit deny.
* Actions match case-insensitively with ``*`` and ``?``; ``NotAction`` applies to every other action.
* Resources match case-sensitively, segment by segment (ARN segments are separated by ``:``): ``?`` is one
  character and ``*`` any run of characters inside a segment; a ``*`` that ends a segment may also run
  past colons (IAM User Guide, "Using wildcards in resource ARNs"). ``NotResource`` applies to every
  other resource. Policy variables (``${aws:username}``) are replaced from the context (the value is matched
  literally); an unresolved variable makes the match undecided. ``${*}``, ``${?}`` and ``${$}`` are the
  literal characters, in resources and condition values alike. ``[`` is a literal character everywhere.
  The pattern semantics live in :mod:`bot.policy.patterns` (shared with the containment check).
* Conditions: with no context value for a key the condition cannot be decided offline, and a statement
  that might apply makes the answer :attr:`Decision.CONDITIONAL` -- never a silent allow. A conditional
  Deny that might apply also turns an allow into CONDITIONAL. A context value of ``None`` means "the key
  is absent from the request": then ``ForAllValues:`` holds and ``ForAnyValue:`` does not (the ``Null``
  operator included), ``...IfExists`` holds, ``Null`` holds when it asks for absence, negated operators hold
  (:func:`when_key_absent`).

Decided operators (with ``IfExists`` and ``ForAnyValue:``/``ForAllValues:`` on each): ``StringEquals``,
``StringNotEquals``, ``StringEqualsIgnoreCase``, ``StringNotEqualsIgnoreCase``, ``StringLike``,
``StringNotLike``, ``ArnEquals``, ``ArnLike``, ``ArnNotEquals``, ``ArnNotLike``, ``Bool``, ``Null``,
``Numeric*``, ``Date*``, ``IpAddress``, ``NotIpAddress``, ``BinaryEquals``. Any other operator is undecided.

Policies are compiled once (cached per policy object), so repeated checks are fast.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import re
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.policy.model import Policy, Statement
from bot.policy.patterns import ACTION, RESOURCE, STRING, covers, escape_value, has_variable, to_regex
from bot.policy.patterns import YES as PATTERN_YES

ContextValue = str | Sequence[str] | None


class Decision(enum.Enum):
    ALLOWED = "allowed"
    EXPLICIT_DENY = "explicit_deny"
    IMPLICIT_DENY = "implicit_deny"
    CONDITIONAL = "conditional"


# Tri-state truth: NO < MAYBE < YES. AND = min, OR = max, NOT = 2 - x.
NO, MAYBE, YES = 0, 1, 2

_VAR_RX = re.compile(r"\$\{([^}]+)\}")
_LITERAL_VARS = {"*": "*", "?": "?", "$": "$"}


# --------------------------------------------------------------------------------------------
# pattern compilation (semantics and regexes come from bot.policy.patterns, the one source of truth)
@functools.lru_cache(maxsize=16384)
def action_regex(pattern: str) -> re.Pattern[str]:
    """Case-insensitive regex for an IAM action pattern (``*`` any run, ``?`` one character, all else literal)."""
    return re.compile(to_regex(pattern, ACTION), re.I | re.S)


def _arn_regex_body(pattern: str) -> str:
    return to_regex(pattern, RESOURCE)


@functools.lru_cache(maxsize=16384)
def arn_regex(pattern: str) -> re.Pattern[str]:
    """Case-sensitive regex for an IAM resource pattern without request variables (see module docstring)."""
    return re.compile(_arn_regex_body(pattern), re.S)


def arn_matches(pattern: str, arn: str) -> bool:
    """Does the resource pattern match ``arn``? (``${*}`` is a literal ``*``; a pattern holding a request
    variable such as ``${aws:username}`` matches nothing here: substitute it first.)"""
    if pattern == "*":
        return True
    if has_variable(pattern):
        return False
    return arn_regex(pattern).fullmatch(arn) is not None


def pattern_covers(outer: str, inner: str) -> bool:
    """Resource pattern containment: every resource ``inner`` matches is matched by ``outer`` (exact, see
    :func:`bot.policy.patterns.covers`; False when it depends on a policy variable's value)."""
    if outer == "*" or outer == inner:
        return True
    return covers(outer, inner, RESOURCE) == PATTERN_YES


def _has_wildcard(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


# --------------------------------------------------------------------------------------------
# context
def _normalize_context(context: Mapping[str, ContextValue] | None) -> dict[str, list[str] | None]:
    out: dict[str, list[str] | None] = {}
    if not context:
        return out
    for key, value in context.items():
        if value is None:
            out[key.lower()] = None
        elif isinstance(value, str):
            out[key.lower()] = [value]
        else:
            out[key.lower()] = [str(v) for v in value]
    return out


def _substitute(text: str, ctx: dict[str, list[str] | None]) -> str | None:
    """Replace each request variable ``${key}`` with its single context value (kept literal: its ``*``, ``?``
    and ``$`` are escaped) or its default; ``${*}``, ``${?}``, ``${$}`` stay as they are (literal characters).
    The result is still pattern text; None when a variable is unresolved."""
    if "${" not in text:
        return text
    unresolved = False

    def repl(m: re.Match[str]) -> str:
        nonlocal unresolved
        name = m.group(1)
        if name in _LITERAL_VARS:
            return m.group(0)
        key, _, default = name.partition(",")
        values = ctx.get(key.strip().lower())
        if values and len(values) == 1:
            return escape_value(values[0])
        if default:
            return escape_value(default.strip().strip("'"))
        unresolved = True
        return ""

    out = _VAR_RX.sub(repl, text)
    return None if unresolved else out


def _literal(text: str) -> str:
    """Pattern text as the plain string it stands for (``${*}`` -> ``*``), for the equality operators."""
    if "${" not in text:
        return text
    return _VAR_RX.sub(lambda m: _LITERAL_VARS.get(m.group(1), m.group(0)), text)


def _vars_as_wildcards(pattern: str) -> str:
    return _VAR_RX.sub(lambda m: m.group(0) if m.group(1) in _LITERAL_VARS else "*", pattern)


# --------------------------------------------------------------------------------------------
# conditions
def parse_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def parse_date(text: str) -> datetime | None:
    try:
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return datetime.fromtimestamp(float(text), tz=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _ip_in(value: str, cidr: str) -> bool | None:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(_literal(cidr), strict=False)
    except ValueError:
        return None


@functools.lru_cache(maxsize=4096)
def _string_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(to_regex(pattern, STRING), re.S)


def _glob(pattern: str, value: str) -> bool:
    """``StringLike``: ``*`` and ``?`` are wildcards, ``${*}``/``${?}``/``${$}`` literal characters."""
    return _string_regex(pattern).fullmatch(value) is not None


def _arn_test(value: str, pattern: str) -> bool:
    return arn_matches(pattern, value)


_NUM_OPS: dict[str, Callable[[float, float], bool]] = {
    "Equals": lambda a, b: a == b,
    "NotEquals": lambda a, b: a == b,  # negated below
    "LessThan": lambda a, b: a < b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanEquals": lambda a, b: a >= b,
}

# base operator -> (negated, element test(context value, policy value) -> bool | None)
_OPERATORS: dict[str, tuple[bool, Callable[[str, str], bool | None]]] = {
    "StringEquals": (False, lambda v, p: v == _literal(p)),
    "StringNotEquals": (True, lambda v, p: v == _literal(p)),
    "StringEqualsIgnoreCase": (False, lambda v, p: v.lower() == _literal(p).lower()),
    "StringNotEqualsIgnoreCase": (True, lambda v, p: v.lower() == _literal(p).lower()),
    "StringLike": (False, lambda v, p: _glob(p, v)),
    "StringNotLike": (True, lambda v, p: _glob(p, v)),
    "ArnEquals": (False, _arn_test),
    "ArnLike": (False, _arn_test),
    "ArnNotEquals": (True, _arn_test),
    "ArnNotLike": (True, _arn_test),
    "Bool": (False, lambda v, p: v.lower() == _literal(p).lower()),
    "BinaryEquals": (False, lambda v, p: v == _literal(p)),
    "IpAddress": (False, _ip_in),
    "NotIpAddress": (True, _ip_in),
}


def operator_negated(base_operator: str) -> bool | None:
    """True for a negated matching operator (``StringNotEquals``, ``NotIpAddress``...), False for a positive one,
    None when the operator is not modelled. ``base_operator`` has no set qualifier and no ``IfExists``."""
    spec = _OPERATORS.get(base_operator)
    return None if spec is None else spec[0]


def literal_value(text: str) -> str:
    """A condition value as the plain string it stands for (``${*}`` -> ``*``)."""
    return _literal(text)


def _numeric_test(name: str) -> Callable[[str, str], bool | None]:
    op = _NUM_OPS[name]

    def test(v: str, p: str) -> bool | None:
        a, b = parse_number(v), parse_number(_literal(p))
        return None if a is None or b is None else op(a, b)

    return test


def _date_test(name: str) -> Callable[[str, str], bool | None]:
    op = _NUM_OPS[name]

    def test(v: str, p: str) -> bool | None:
        a, b = parse_date(v), parse_date(_literal(p))
        return None if a is None or b is None else op(a.timestamp(), b.timestamp())

    return test


for _name in _NUM_OPS:
    _OPERATORS[f"Numeric{_name}"] = (_name == "NotEquals", _numeric_test(_name))
    _OPERATORS[f"Date{_name}"] = (_name == "NotEquals", _date_test(_name))


def _any_policy_value(
    test: Callable[[str, str], bool | None],
    value: str,
    policy_values: list[str],
    ctx: dict[str, list[str] | None],
) -> int:
    """Does the context value match any policy value? Tri-state."""
    result = NO
    for raw in policy_values:
        p = _substitute(raw, ctx)
        if p is None:
            result = max(result, MAYBE)
            continue
        hit = test(value, p)
        if hit is None:
            result = max(result, MAYBE)
        elif hit:
            return YES
    return result


def split_operator(operator: str) -> tuple[str, str, bool]:
    """``ForAnyValue:StringLikeIfExists`` -> (``ForAnyValue``, ``StringLike``, True)."""
    set_op, op = "", operator
    for qualifier in ("ForAnyValue:", "ForAllValues:"):
        if op.startswith(qualifier):
            set_op, op = qualifier[:-1], op[len(qualifier):]
    if_exists = op.endswith("IfExists")
    if if_exists:
        op = op[: -len("IfExists")]
    return set_op, op, if_exists


def when_key_absent(operator: str, policy_values: Sequence[str]) -> bool | None:
    """What a condition on a key evaluates to when the request lacks the key (IAM User Guide, "Condition
    operators" and "Set operators for multivalued context keys"): ``ForAllValues:`` true and ``ForAnyValue:``
    false, the Null operator included; ``...IfExists`` true; ``Null`` true when it asks for absence; a negated
    operator (``StringNotEquals``, ``NotIpAddress``, ...) true; any other false. None when undecided: an
    operator not modelled, or a set operator combined with ``IfExists`` (the guide does not say which wins)."""
    set_op, op, if_exists = split_operator(operator)
    if set_op and if_exists:
        return None
    if set_op == "ForAllValues":
        return True
    if set_op == "ForAnyValue":
        return False
    if if_exists:
        return True
    if op == "Null":
        return any(p.lower() == "true" for p in policy_values)
    spec = _OPERATORS.get(op)
    return None if spec is None else spec[0]


def _condition_key(
    operator: str, key: str, policy_values: list[str], ctx: dict[str, list[str] | None]
) -> int:
    set_op, op, _ = split_operator(operator)
    lkey = key.lower()
    if lkey not in ctx:
        return MAYBE  # not decidable offline
    values = ctx[lkey]

    if values is None or len(values) == 0:  # key absent from the request
        absent = when_key_absent(operator, policy_values)
        return MAYBE if absent is None else (YES if absent else NO)

    if op == "Null":  # the key is present
        return YES if any(p.lower() == "false" for p in policy_values) else NO

    spec = _OPERATORS.get(op)
    if spec is None:
        return MAYBE
    negated, test = spec

    def element(v: str) -> int:
        hit = _any_policy_value(test, v, policy_values, ctx)
        return 2 - hit if negated else hit

    results = [element(v) for v in values]
    if set_op == "ForAllValues":
        return min(results)
    if set_op == "ForAnyValue":
        return max(results)
    if len(values) == 1:
        return results[0]
    # A multivalued value under a single-valued operator: positive -> any matches, negated -> none match.
    return min(results) if negated else max(results)


def evaluate_conditions(
    conditions: Mapping[str, Mapping[str, list[str]]] | None, ctx: dict[str, list[str] | None]
) -> int:
    """Tri-state result of a Condition block (AND over operators and keys)."""
    if not conditions:
        return YES
    result = YES
    for operator, block in conditions.items():
        for key, values in block.items():
            result = min(result, _condition_key(operator, key, values, ctx))
            if result == NO:
                return NO
    return result


# --------------------------------------------------------------------------------------------
# compiled statements and policies
class _PatternSet:
    """Matcher for a list of action or resource patterns."""

    __slots__ = ("match_all", "exact", "regex", "variable")

    def __init__(self, patterns: Sequence[str], *, actions: bool) -> None:
        self.match_all = "*" in patterns
        exact: set[str] = set()
        wild: list[str] = []
        variable: list[str] = []
        for p in patterns:
            if not actions and has_variable(p):
                variable.append(p)
            elif not _has_wildcard(p) and (actions or "${" not in p):
                exact.add(p.lower() if actions else p)
            else:
                wild.append(p)
        self.exact = frozenset(exact)
        self.variable = tuple(variable)
        if not wild:
            self.regex: re.Pattern[str] | None = None
        elif actions:
            body = "|".join(action_regex(p).pattern for p in wild)
            self.regex = re.compile(f"(?:{body})", re.I | re.S)
        else:
            body = "|".join(f"(?:{_arn_regex_body(p)})" for p in wild)
            self.regex = re.compile(body, re.S)

    def matches(self, value: str, ctx: dict[str, list[str] | None]) -> int:
        if self.match_all or value in self.exact:
            return YES
        if self.regex is not None and self.regex.fullmatch(value) is not None:
            return YES
        result = NO
        for p in self.variable:
            resolved = _substitute(p, ctx)
            if resolved is not None:
                if arn_matches(resolved, value):
                    return YES
            elif arn_matches(_vars_as_wildcards(p), value):
                result = MAYBE
        return result


@dataclass(frozen=True, slots=True)
class CompiledStatement:
    statement: Statement
    actions: _PatternSet
    action_negated: bool
    resources: _PatternSet
    resource_negated: bool

    def applies(self, action_lower: str, resource: str, ctx: dict[str, list[str] | None]) -> int:
        hit = YES if self.actions.matches(action_lower, ctx) else NO
        if self.action_negated:
            hit = 2 - hit
        if hit == NO:
            return NO
        res = self.resources.matches(resource, ctx)
        if self.resource_negated:
            res = 2 - res
        hit = min(hit, res)
        if hit == NO:
            return NO
        return min(hit, evaluate_conditions(self.statement.conditions, ctx))


def compile_statement(statement: Statement) -> CompiledStatement:
    return CompiledStatement(
        statement=statement,
        actions=_PatternSet(statement.action_patterns, actions=True),
        action_negated=statement.actions is None,
        resources=_PatternSet(statement.resource_patterns, actions=False),
        resource_negated=statement.resources is None,
    )


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    policy: Policy
    allows: tuple[CompiledStatement, ...]
    denies: tuple[CompiledStatement, ...]


_CACHE: dict[int, tuple[weakref.ref[Policy], CompiledPolicy]] = {}


def compile_policy(policy: Policy) -> CompiledPolicy:
    """Compile (once per policy object) the matchers of every statement."""
    key = id(policy)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is policy:
        return hit[1]
    compiled = [compile_statement(s) for s in policy.statements]
    result = CompiledPolicy(
        policy=policy,
        allows=tuple(c for c in compiled if c.statement.is_allow),
        denies=tuple(c for c in compiled if not c.statement.is_allow),
    )
    _CACHE[key] = (weakref.ref(policy, lambda _ref, k=key: _CACHE.pop(k, None)), result)
    return result


def _scan(policies: Sequence[CompiledPolicy], action_lower: str, resource: str, ctx: dict) -> tuple[int, int]:
    """(strongest applying allow, strongest applying deny) over ``policies``."""
    allow = deny = NO
    for cp in policies:
        for st in cp.denies:
            deny = max(deny, st.applies(action_lower, resource, ctx))
            if deny == YES:
                return allow, deny
        if allow != YES:
            for st in cp.allows:
                allow = max(allow, st.applies(action_lower, resource, ctx))
                if allow == YES:
                    break
    return allow, deny


class Evaluator:
    """Identity policies + optional boundary, compiled once; :meth:`evaluate` answers requests."""

    def __init__(self, identity_policies: Sequence[Policy], boundary: Policy | None = None) -> None:
        self.identity = tuple(compile_policy(p) for p in identity_policies)
        self.boundary = compile_policy(boundary) if boundary is not None else None

    def evaluate(
        self, action: str, resource: str, context: Mapping[str, ContextValue] | None = None
    ) -> Decision:
        ctx = _normalize_context(context)
        action_lower = action.lower()
        allow, deny = _scan(self.identity, action_lower, resource, ctx)
        if deny == YES:
            return Decision.EXPLICIT_DENY
        b_allow = YES
        if self.boundary is not None:
            b_allow, b_deny = _scan((self.boundary,), action_lower, resource, ctx)
            if b_deny == YES:
                return Decision.EXPLICIT_DENY
            deny = max(deny, b_deny)
        granted = min(allow, b_allow)
        if granted == NO:
            return Decision.IMPLICIT_DENY
        if granted == YES and deny == NO:
            return Decision.ALLOWED
        return Decision.CONDITIONAL


def evaluate(
    action: str,
    resource: str,
    identity_policies: Sequence[Policy],
    boundary: Policy | None = None,
    context: Mapping[str, ContextValue] | None = None,
) -> Decision:
    """Decide one request offline; see the module docstring for the exact rules."""
    return Evaluator(identity_policies, boundary).evaluate(action, resource, context)
