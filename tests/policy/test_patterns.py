"""Wildcard pattern containment and overlap (bot.policy.patterns).

Two oracles, both independent of the module's automaton: tables written from the IAM User Guide ("Using
wildcards in resource ARNs", "IAM JSON policy elements: Action", "Policy variables: special characters"), and a
deliberately simple recursive matcher that enumerates strings of the contained pattern's language.
"""

from __future__ import annotations

import functools
import itertools
import random

import pytest

from bot.policy.patterns import (
    ACTION,
    NO,
    RESOURCE,
    STRING,
    UNKNOWN,
    YES,
    covers,
    disjoint,
    is_universal,
    matches,
)

# (outer, inner, expected) for resources: does every ARN `inner` matches also match `outer`?
RESOURCE_CONTAINMENT = [
    ("arn:aws:s3:::b/*", "arn:aws:s3:::b/x/*", YES),  # a deeper path is inside
    ("arn:aws:s3:::b/x/*", "arn:aws:s3:::b/*", NO),
    ("arn:aws:s3:::b/a?", "arn:aws:s3:::b/a*", NO),  # '*' matches "a", "abc": more than one character
    ("arn:aws:s3:::b/a*", "arn:aws:s3:::b/a?", YES),
    ("arn:aws:s3:::b/a*", "arn:aws:s3:::b/a", YES),  # '*' may match nothing
    ("arn:aws:s3:::b/a?", "arn:aws:s3:::b/a", NO),  # '?' needs exactly one character
    ("*", "arn:aws:s3:::anything/at/all", YES),
    ("*", "arn:aws:iam::*:role/*", YES),
    ("arn:aws:s3:::*", "*", NO),
    ("arn:aws:s3:::Reports/*", "arn:aws:s3:::reports/*", NO),  # resources are case-sensitive
    # '*' ending a segment may run past ':'; '*' inside a segment may not
    ("arn:aws:logs:*:*:log-group:*", "arn:aws:logs:eu-west-1:1:log-group:g:log-stream:s", YES),
    ("arn:aws:logs:us-*-1:1:x", "arn:aws:logs:us-east-1:1:x", YES),
    ("arn:aws:logs:us-*-1:1:x", "arn:aws:logs:us-east:z-1:1:x", NO),
    ("arn:aws:iam::*:role/a*b", "arn:aws:iam::1:role/a:b", NO),  # in-segment '*' cannot match ':'
    ("arn:aws:iam::*:role/a*", "arn:aws:iam::1:role/a:b", YES),  # segment-final '*' can
    ("arn:aws:iam::*:role/*", "arn:aws:iam::123456789012:role/app-?", YES),
    ("arn:aws:iam::123456789012:role/*", "arn:aws:iam::*:role/app", NO),  # the account widened
    # ${*}, ${?} and ${$} are the literal characters
    ("arn:aws:s3:::b/*", "arn:aws:s3:::b/${*}", YES),
    ("arn:aws:s3:::b/${*}", "arn:aws:s3:::b/x", NO),
    ("arn:aws:s3:::b/${*}", "arn:aws:s3:::b/*", NO),
    ("arn:aws:s3:::b/${?}", "arn:aws:s3:::b/?", NO),
    ("arn:aws:s3:::b/${$}x", "arn:aws:s3:::b/$x", YES),
    # a policy variable takes its value from the request
    ("arn:aws:s3:::b/${aws:username}/*", "arn:aws:s3:::b/${aws:username}/*", YES),
    ("arn:aws:s3:::b/${aws:username}/*", "arn:aws:s3:::b/alice/*", UNKNOWN),  # true only for alice
    ("arn:aws:s3:::b/*", "arn:aws:s3:::b/${aws:username}/*", YES),  # whatever the value
    ("arn:aws:s3:::c/*", "arn:aws:s3:::b/${aws:username}", NO),
]

ACTION_CONTAINMENT = [
    ("s3:*", "s3:GetObject", YES),
    ("S3:get*", "s3:GetObjectAcl", YES),  # actions are case-insensitive
    ("s3:GetObject", "s3:*", NO),  # a wildcard is wider than any list, also for actions to come
    ("s3:Get*", "s3:Get?bject", YES),
    ("*", "iam:PassRole", YES),
    ("s3:*", "*", NO),
    ("s3:Get[O]bject", "s3:GetObject", NO),  # '[' is a literal character, no character class
    ("s3:Get[O]bject", "s3:get[o]bject", YES),
    ("s?:*", "s3:GetObject", YES),
]


@pytest.mark.parametrize(("outer", "inner", "expected"), RESOURCE_CONTAINMENT)
def test_resource_containment_table(outer: str, inner: str, expected: int) -> None:
    assert covers(outer, inner, RESOURCE) == expected


@pytest.mark.parametrize(("outer", "inner", "expected"), ACTION_CONTAINMENT)
def test_action_containment_table(outer: str, inner: str, expected: int) -> None:
    assert covers(outer, inner, ACTION) == expected


@pytest.mark.parametrize(("a", "b", "kind", "expected"), [
    ("arn:aws:s3:::a/*", "arn:aws:s3:::b/*", RESOURCE, True),
    ("arn:aws:s3:::a*", "arn:aws:s3:::ab/*", RESOURCE, False),
    ("arn:aws:s3:::data", "arn:aws:s3:::data/*", RESOURCE, True),
    ("arn:aws:iam::1:role/x?", "arn:aws:iam::1:role/*y", RESOURCE, False),
    ("s3:Get*", "s3:*Object", ACTION, False),
    ("s3:Get*", "ec2:*", ACTION, True),
    ("iam:*", "s3:GetObject", ACTION, True),
    ("arn:aws:s3:::b/${aws:username}", "arn:aws:s3:::b/alice", RESOURCE, False),  # alice may be the user
])
def test_disjoint_table(a: str, b: str, kind: str, expected: bool) -> None:
    assert disjoint(a, b, kind) is expected
    assert disjoint(b, a, kind) is expected


def test_universal_and_literal_match() -> None:
    assert is_universal("*") and is_universal("**", ACTION)
    assert not is_universal("arn:*") and not is_universal("?*")
    assert matches("a${*}", "a*", STRING) and not matches("a${*}", "ab", STRING)
    assert matches("a*", "ab", STRING)


# --------------------------------------------------------------------------------------------
# A second, deliberately naive derivation of the same semantics: recursive matching on the raw text.
def _tokens(pattern: str) -> list[str]:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("${*}", i) or pattern.startswith("${?}", i):
            out.append("\\" + pattern[i + 2])
            i += 4
        else:
            out.append(pattern[i])
            i += 1
    return out


def naive_match(pattern: str, text: str, arn: bool) -> bool:
    toks = _tokens(pattern)

    @functools.cache
    def go(i: int, j: int) -> bool:
        if i == len(toks):
            return j == len(text)
        t = toks[i]
        if t == "*":
            segment_end = i + 1 == len(toks) or toks[i + 1] == ":"
            if go(i + 1, j):
                return True
            k = j
            while k < len(text) and (not arn or segment_end or text[k] != ":"):
                k += 1
                if go(i + 1, k):
                    return True
            return False
        if t == "?":
            return j < len(text) and (not arn or text[j] != ":") and go(i + 1, j + 1)
        literal = t[1] if t.startswith("\\") else t
        return j < len(text) and text[j] == literal and go(i + 1, j + 1)

    return go(0, 0)


ALPHABET = "ab:/z"


def language_sample(pattern: str) -> set[str]:
    """Strings of the pattern's language: every '*' replaced by up to 2 characters, '?' by one."""
    choices: list[list[str]] = []
    for t in _tokens(pattern):
        if t == "*":
            choices.append(["".join(p) for n in range(3) for p in itertools.product(ALPHABET, repeat=n)])
        elif t == "?":
            choices.append(list(ALPHABET))
        else:
            choices.append([t[1] if t.startswith("\\") else t])
    return {"".join(parts) for parts in itertools.product(*choices)}


def _random_pattern(rng: random.Random) -> str:
    return "".join(rng.choice("ab:*?/") for _ in range(rng.randint(1, 4)))


@pytest.mark.parametrize("kind", [RESOURCE, STRING])
def test_containment_agrees_with_naive_enumeration(kind: str) -> None:
    """For resources the contained pattern is read in the widest sense (its wildcards may match ':') and the
    containing one with the segment rules, so that a proof holds whichever way IAM reads a colon inside the
    resource part; a YES is therefore also never contradicted under the segment rules alone."""
    rng = random.Random(20240801)
    arn = kind == RESOURCE
    for _ in range(400):
        outer, inner = _random_pattern(rng), _random_pattern(rng)
        if outer == inner:
            assert covers(outer, inner, kind) == YES  # the same text: the same set under any reading
            continue
        counterexamples = [s for s in language_sample(inner)
                           if naive_match(inner, s, False) and not naive_match(outer, s, arn)]
        verdict = covers(outer, inner, kind)
        assert (verdict == YES) == (not counterexamples), (outer, inner, counterexamples[:3])
        if verdict == YES:
            assert not [s for s in language_sample(inner)
                        if naive_match(inner, s, arn) and not naive_match(outer, s, arn)]


def test_overlap_agrees_with_naive_enumeration() -> None:
    """Disjoint only when no string matches both, under either reading of a colon in the resource part."""
    rng = random.Random(7)
    for _ in range(400):
        a, b = _random_pattern(rng), _random_pattern(rng)
        common = [s for s in language_sample(a) | language_sample(b)
                  if naive_match(a, s, False) and naive_match(b, s, False)]
        assert disjoint(a, b, RESOURCE) == (not common), (a, b, common[:3])
