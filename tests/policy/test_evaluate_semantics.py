"""Evaluator semantics as tables written from the IAM User Guide.

* "IAM policy elements: Variables and tags", special characters: ``${*}``, ``${?}`` and ``${$}`` stand for the
  literal characters, in Resource and in condition values.
* "Set operators for multivalued context keys": ``ForAllValues`` returns true when the key is not in the
  request; ``ForAnyValue`` returns false. The guide's own table for a Deny with
  ``ForAllValues:StringNotLike aws:TagKeys key1*`` lists "no aws:TagKeys in the request context" as a match.
* "IAM JSON policy elements: Action": ``*`` and ``?`` are the wildcards; nothing else is (``[`` is literal).
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.policy.catalog import catalog
from bot.policy.evaluate import Decision, evaluate, when_key_absent
from bot.policy.expand import effective_permissions
from bot.policy.model import Policy, parse_policy

A, ED, ID, C = Decision.ALLOWED, Decision.EXPLICIT_DENY, Decision.IMPLICIT_DENY, Decision.CONDITIONAL


def pol(*statements: dict[str, Any]) -> Policy:
    return parse_policy({"Version": "2012-10-17", "Statement": list(statements)})


def allow_if(operator: str, key: str, values: Any) -> Policy:
    return pol({"Effect": "Allow", "Action": "iam:TagUser", "Resource": "*",
                "Condition": {operator: {key: values}}})


# (resource pattern, requested resource, expected)
LITERAL_CHARACTERS = [
    ("arn:aws:s3:::b/${*}", "arn:aws:s3:::b/*", A),  # the object literally named "*"
    ("arn:aws:s3:::b/${*}", "arn:aws:s3:::b/report.csv", ID),  # not a wildcard
    ("arn:aws:s3:::b/what${?}", "arn:aws:s3:::b/what?", A),
    ("arn:aws:s3:::b/what${?}", "arn:aws:s3:::b/whatX", ID),
    ("arn:aws:s3:::b/${$}HOME", "arn:aws:s3:::b/$HOME", A),
    ("arn:aws:s3:::b/*", "arn:aws:s3:::b/${*}", A),  # a real wildcard still matches the text "${*}"
]


@pytest.mark.parametrize(("pattern", "resource", "expected"), LITERAL_CHARACTERS)
def test_special_character_variables_are_literal_in_resources(pattern: str, resource: str,
                                                               expected: Decision) -> None:
    p = pol({"Effect": "Allow", "Action": "s3:GetObject", "Resource": pattern})
    assert evaluate("s3:GetObject", resource, [p]) is expected


@pytest.mark.parametrize(("operator", "policy_value", "request_value", "expected"), [
    ("StringLike", "team-${*}", "team-*", A),
    ("StringLike", "team-${*}", "team-red", ID),
    ("StringLike", "team-*", "team-red", A),
    ("StringEquals", "team-${*}", "team-*", A),
    ("StringEquals", "cost${$}", "cost$", A),
])
def test_special_character_variables_are_literal_in_conditions(operator: str, policy_value: str,
                                                               request_value: str, expected: Decision) -> None:
    p = allow_if(operator, "aws:PrincipalTag/team", policy_value)
    assert evaluate("iam:TagUser", "*", [p], context={"aws:PrincipalTag/team": request_value}) is expected


# (operator, policy values, decision when aws:TagKeys is absent from the request)
MISSING_KEY = [
    ("ForAllValues:StringEquals", ["a", "b"], A),  # true: no keys in the request
    ("ForAllValues:StringLike", ["key1*"], A),
    ("ForAllValues:StringNotLike", ["key1*"], A),
    ("ForAnyValue:StringEquals", ["a", "b"], ID),  # false without keys
    ("ForAnyValue:StringNotEquals", ["a"], ID),
    ("ForAllValues:Null", ["false"], A),  # the Null operator included
    ("ForAnyValue:Null", ["true"], ID),
    ("Null", ["true"], A),
    ("Null", ["false"], ID),
    ("StringEqualsIfExists", ["a"], A),
    ("StringEquals", ["a"], ID),
    ("StringNotEquals", ["a"], A),
]


@pytest.mark.parametrize(("operator", "values", "expected"), MISSING_KEY)
def test_set_operators_on_a_missing_key(operator: str, values: list[str], expected: Decision) -> None:
    p = allow_if(operator, "aws:TagKeys", values)
    assert evaluate("iam:TagUser", "*", [p], context={"aws:TagKeys": None}) is expected
    assert when_key_absent(operator, values) is (expected is A)


def test_deny_with_for_all_values_string_not_like_matches_without_tag_keys() -> None:
    """The guide's table: a Deny on ForAllValues:StringNotLike aws:TagKeys key1* matches ("denied") for
    [key2:audit] and for a request without aws:TagKeys, not for [key1:legal] or [key1:hr, key1:personnel]."""
    rules = [pol({"Effect": "Allow", "Action": "iam:Tag*", "Resource": "*"}),
             pol({"Effect": "Deny", "Action": ["iam:Tag*", "iam:UnTag*"], "Resource": "*",
                  "Condition": {"ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}}})]
    table = [(["key1:legal"], A), (["key1:hr", "key1:personnel"], A), (["key2:audit"], ED), (None, ED)]
    for keys, expected in table:
        assert evaluate("iam:TagUser", "*", rules, context={"aws:TagKeys": keys}) is expected, keys


def test_bracket_in_an_action_is_literal() -> None:
    p = pol({"Effect": "Allow", "Action": "s3:Get[O]bject", "Resource": "*"})
    assert evaluate("s3:GetObject", "*", [p]) is ID
    assert evaluate("s3:Get[O]bject", "*", [p]) is A
    assert catalog().match("s3:Get[O]bject") == [] and catalog().match("s3:[a-z]*") == []
    perms = effective_permissions([p])
    assert len(perms) == 0 and perms.unknown_patterns == ("s3:Get[O]bject",)


def test_unknown_request_context_stays_conditional() -> None:
    """Where the context does not say, the answer is conditional, never a silent allow."""
    p = allow_if("ForAllValues:StringEquals", "aws:TagKeys", ["a"])
    assert evaluate("iam:TagUser", "*", [p]) is C
    assert evaluate("iam:TagUser", "*", [p], context={"aws:TagKeys": ["a", "b"]}) is ID
    assert evaluate("iam:TagUser", "*", [p], context={"aws:TagKeys": ["a"]}) is A
