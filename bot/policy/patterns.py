"""Wildcard patterns of IAM policies as languages: does one pattern contain another, can two overlap?

Three kinds of pattern, with the semantics of the IAM User Guide:

* ``ACTION``: ``*`` any run of characters, ``?`` one character, case-insensitive; every other character is
  literal (``[`` included: IAM has no character classes).
* ``RESOURCE`` (and ``ArnLike`` condition values): case-sensitive, ARN segments separated by ``:``. ``?`` is one
  character and ``*`` any run inside a segment; a ``*`` that ends a segment may also run past colons
  ("Using wildcards in resource ARNs"). Policy variables: ``${*}``, ``${?}`` and ``${$}`` are the literal
  characters; any other ``${...}`` takes its value from the request.
* ``STRING`` (``StringLike`` values): ``*`` and ``?`` match any characters; policy variables as for resources.

:func:`covers` decides containment (an automaton product over the finitely many character classes the two
patterns distinguish), :func:`disjoint` decides that two patterns share no string. Both are sound first:

* Where the guide leaves room -- whether a ``*`` or ``?`` inside the resource part may match a ``:`` of a
  resource id that holds colons (``log-group:g:log-stream:s``) -- the contained pattern is read in the widest
  sense (every resource wildcard may match ``:``) and the containing one in the narrowest (the segment rules
  above), so a proof holds under either reading; :func:`disjoint` reads both in the widest sense. The
  evaluator (``bot.policy.evaluate``) applies the segment rules as written.
* With a policy variable the answer must hold for every value of it: a pattern holding a variable contains
  another only when both are the same text (:data:`UNKNOWN` otherwise, never a guess), and a variable inside
  the contained pattern is read as "any text".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

ACTION, RESOURCE, STRING = "action", "resource", "string"

# Tri-state answers. UNKNOWN: neither proven nor refuted (a policy variable decides it at request time).
NO, UNKNOWN, YES = 0, 1, 2

_LITERAL_VARIABLES = {"*": "*", "?": "?", "$": "$"}
_VAR = re.compile(r"\$\{([^}]*)\}")
_SPECIAL = re.compile(r"[*?$]")

# Token kinds.
_LIT = "lit"  # one literal character
_ONE = "one"  # '?': one character (not ':' in a resource pattern)
_ONE_ANY = "one_any"  # one character, ':' included
_SEG = "seg"  # '*' inside a resource segment: any run without ':'
_ANY = "any"  # '*' that may run over anything
_VARIABLE = "var"  # ${key}: a request value

Token = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Glob:
    kind: str
    text: str
    tokens: tuple[Token, ...]
    has_variable: bool = False

    @property
    def is_literal(self) -> bool:
        """Matches exactly one string (no wildcard, no variable)."""
        return all(t[0] == _LIT for t in self.tokens)

    def literal_text(self) -> str:
        return "".join(t[1] for t in self.tokens)


def has_variable(pattern: str) -> bool:
    """Does ``pattern`` hold a request-dependent policy variable (``${aws:username}``, not ``${*}``)?"""
    return "${" in pattern and any(m.group(1) not in _LITERAL_VARIABLES for m in _VAR.finditer(pattern))


@functools.lru_cache(maxsize=32768)
def compile_glob(pattern: str, kind: str) -> Glob:
    """Tokens of ``pattern``; resource stars are marked as ending a segment or not."""
    raw: list[Token] = []
    i = 0
    variables = kind != ACTION
    while i < len(pattern):
        c = pattern[i]
        if variables and pattern.startswith("${", i):
            end = pattern.find("}", i + 2)
            if end != -1:
                name = pattern[i + 2:end]
                literal = _LITERAL_VARIABLES.get(name)
                raw.append((_LIT, literal) if literal is not None else (_VARIABLE, name))
                i = end + 1
                continue
        if c == "*":
            raw.append((_ANY, ""))
        elif c == "?":
            raw.append((_ONE_ANY, ""))
        else:
            raw.append((_LIT, c.lower() if kind == ACTION else c))
        i += 1
    if kind == RESOURCE:
        tokens: list[Token] = []
        for j, tok in enumerate(raw):
            if tok[0] == _ANY:
                ends_segment = j + 1 == len(raw) or raw[j + 1] == (_LIT, ":")
                tokens.append((_ANY if ends_segment else _SEG, ""))
            elif tok[0] == _ONE_ANY:
                tokens.append((_ONE, ""))
            else:
                tokens.append(tok)
        raw = tokens
    return Glob(kind, pattern, tuple(raw), any(t[0] == _VARIABLE for t in raw))


def _widened(glob: Glob) -> tuple[Token, ...]:
    """A superset of ``glob``'s language without variables and without segment rules: each variable becomes
    "any text", and in a resource pattern every ``*`` and ``?`` may also match ``:`` (the widest reading)."""
    if not glob.has_variable and glob.kind != RESOURCE:
        return glob.tokens
    out: list[Token] = []
    for kind, ch in glob.tokens:
        if kind in (_VARIABLE, _SEG, _ANY):
            out.append((_ANY, ""))
        elif kind in (_ONE, _ONE_ANY):
            out.append((_ONE_ANY, ""))
        else:
            out.append((kind, ch))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# automata: state i = "the first i tokens are matched"
def _closure(tokens: tuple[Token, ...], states: Iterable[int]) -> frozenset[int]:
    out: set[int] = set()
    stack = list(states)
    while stack:
        s = stack.pop()
        if s in out:
            continue
        out.add(s)
        if s < len(tokens) and tokens[s][0] in (_SEG, _ANY):
            stack.append(s + 1)
    return frozenset(out)


def _step(tokens: tuple[Token, ...], state: int, ch: str) -> tuple[int, ...]:
    if state >= len(tokens):
        return ()
    kind, lit = tokens[state]
    if kind == _LIT:
        return (state + 1,) if ch == lit else ()
    if kind == _ONE:
        return (state + 1,) if ch != ":" else ()
    if kind == _ONE_ANY:
        return (state + 1,)
    if kind == _SEG:
        return (state,) if ch != ":" else ()
    return (state,)  # _ANY


def _alphabet(*token_lists: tuple[Token, ...]) -> tuple[str, ...]:
    """One representative per class of characters the patterns tell apart: each literal, ':' and one other."""
    chars = {ch for tokens in token_lists for kind, ch in tokens if kind == _LIT}
    chars.add(":")
    other = "\x00"
    while other in chars:
        other = chr(ord(other) + 1)
    chars.add(other)
    return tuple(sorted(chars))


@functools.lru_cache(maxsize=65536)
def _contains(outer: tuple[Token, ...], inner: tuple[Token, ...]) -> bool:
    """Is every string of ``inner`` a string of ``outer``? (Neither holds variables.)"""
    alphabet = _alphabet(outer, inner)
    n_in, n_out = len(inner), len(outer)
    start_out = _closure(outer, (0,))
    seen: set[tuple[int, frozenset[int]]] = set()
    stack = [(i, start_out) for i in _closure(inner, (0,))]
    while stack:
        pair = stack.pop()
        if pair in seen:
            continue
        seen.add(pair)
        i, outs = pair
        if i == n_in and n_out not in outs:
            return False  # a string inner accepts and outer rejects
        for ch in alphabet:
            nxt_in = _step(inner, i, ch)
            if not nxt_in:
                continue
            nxt_out = _closure(outer, (t for s in outs for t in _step(outer, s, ch)))
            for j in _closure(inner, nxt_in):
                stack.append((j, nxt_out))
    return True


@functools.lru_cache(maxsize=65536)
def _intersects(a: tuple[Token, ...], b: tuple[Token, ...]) -> bool:
    alphabet = _alphabet(a, b)
    seen: set[tuple[int, int]] = set()
    stack = [(i, j) for i in _closure(a, (0,)) for j in _closure(b, (0,))]
    while stack:
        pair = stack.pop()
        if pair in seen:
            continue
        seen.add(pair)
        i, j = pair
        if i == len(a) and j == len(b):
            return True
        for ch in alphabet:
            for i2 in _closure(a, _step(a, i, ch)):
                for j2 in _closure(b, _step(b, j, ch)):
                    stack.append((i2, j2))
    return False


# --------------------------------------------------------------------------------------------
def covers(outer: str, inner: str, kind: str = RESOURCE) -> int:
    """YES when every string ``inner`` matches is matched by ``outer`` (for every value of any policy
    variable), NO when some string is not, UNKNOWN when it depends on a variable's value."""
    if outer == inner or outer == "*":
        return YES
    o = compile_glob(outer, kind)
    if o.has_variable:
        return UNKNOWN
    if not _SPECIAL.search(inner):  # a plain string (the usual ARN): one regex match
        return YES if _regex(outer, kind).fullmatch(inner) is not None else NO
    i = compile_glob(inner, kind)
    if i.is_literal:
        return YES if _regex(outer, kind).fullmatch(i.literal_text()) is not None else NO
    if _contains(o.tokens, _widened(i)):
        return YES
    if not i.has_variable:
        return NO
    # one value of the variables for which it fails settles NO; otherwise it depends on the value
    instance = tuple((_LIT, "x") if kind_ == _VARIABLE else (kind_, ch) for kind_, ch in i.tokens)
    return NO if not _contains(o.tokens, instance) else UNKNOWN


@functools.lru_cache(maxsize=32768)
def _regex(pattern: str, kind: str) -> re.Pattern[str]:
    return re.compile(to_regex(pattern, kind), re.S | (re.I if kind == ACTION else 0))


def disjoint(a: str, b: str, kind: str = RESOURCE) -> bool:
    """True only when no string matches both patterns, whatever values their variables take."""
    ga, gb = compile_glob(a, kind), compile_glob(b, kind)
    return not _intersects(_widened(ga), _widened(gb))


def matches(pattern: str, value: str, kind: str = RESOURCE) -> bool:
    """Does ``pattern`` (no request variables) match the literal string ``value``?"""
    if compile_glob(pattern, kind).has_variable:
        return False
    return _regex(pattern, kind).fullmatch(value) is not None


def is_universal(pattern: str, kind: str = RESOURCE) -> bool:
    """Does the pattern match every string (``*``, ``**``), whatever its variables hold?"""
    g = compile_glob(pattern, kind)
    return not g.has_variable and _contains(g.tokens, ((_ANY, ""),))


def to_regex(pattern: str, kind: str = RESOURCE) -> str:
    """Regex body (for ``re.fullmatch``) of a pattern without request variables; same semantics as
    :func:`covers`. Variables must be substituted first (see :func:`escape_value`)."""
    out: list[str] = []
    for tok, ch in compile_glob(pattern, kind).tokens:
        if tok == _LIT:
            out.append(re.escape(ch))
        elif tok == _ONE:
            out.append("[^:]")
        elif tok == _ONE_ANY:
            out.append(".")
        elif tok == _SEG:
            out.append("[^:]*")
        elif tok == _ANY:
            out.append(".*")
        else:
            raise ValueError(f"pattern {pattern!r} holds an unresolved policy variable")
    return "".join(out)


def escape_value(value: str) -> str:
    """A request value to put in place of a policy variable: its ``*``, ``?`` and ``$`` stay literal."""
    return value.replace("$", "${$}").replace("*", "${*}").replace("?", "${?}")
