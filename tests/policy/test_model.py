from __future__ import annotations

import json
from typing import Any

import pytest

from bot.policy.model import PolicyError, Statement, parse_policy, policy_to_document


def test_parses_string_and_list_forms() -> None:
    policy = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": {"Sid": "One", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
        },
        name="p",
    )
    assert policy.name == "p"
    (st,) = policy.statements
    assert st == Statement("One", "Allow", ("s3:GetObject",), None, ("*",), None, None)


def test_not_action_not_resource_and_condition_are_kept() -> None:
    doc = {
        "Statement": [
            {
                "Effect": "Deny",
                "NotAction": ["iam:*", "sts:*"],
                "NotResource": "arn:aws:s3:::b/*",
                "Condition": {
                    "Bool": {"aws:MultiFactorAuthPresent": False},
                    "StringEquals": {"k": ["a", "b"]},
                },
            }
        ]
    }
    (st,) = parse_policy(doc).statements
    assert st.not_actions == ("iam:*", "sts:*") and st.actions is None
    assert st.not_resources == ("arn:aws:s3:::b/*",) and st.resources is None
    assert st.conditions == {
        "Bool": {"aws:MultiFactorAuthPresent": ["false"]},
        "StringEquals": {"k": ["a", "b"]},
    }


def test_round_trip_through_json_text() -> None:
    doc = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::b/*"},
            {
                "Sid": "D",
                "Effect": "Deny",
                "NotAction": "s3:*",
                "NotResource": "*",
                "Condition": {"Null": {"x": "true"}},
            },
        ],
    }
    policy = parse_policy(json.dumps(doc))
    assert policy_to_document(policy) == doc
    assert parse_policy(policy_to_document(policy)) == policy
    assert hash(policy) == hash(parse_policy(doc))


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({}, "Statement: missing"),
        (
            {"Statement": [{"Effect": "Allow", "Resource": "*"}]},
            "Statement[0]: exactly one of Action or NotAction",
        ),
        ({"Statement": [{"Effect": "Allow", "Action": "*"}]}, "exactly one of Resource or NotResource"),
        ({"Statement": [{"Effect": "allow", "Action": "*", "Resource": "*"}]}, "Statement[0].Effect"),
        (
            {
                "Statement": [
                    {"Effect": "Allow", "Action": "*", "Resource": "*"},
                    {"Effect": "Allow", "Action": "s3", "Resource": "*"},
                ]
            },
            "Statement[1].Action: action 's3'",
        ),
        ({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": "*"}]}, "Principal"),
        ({"Statement": [{"Effect": "Allow", "Action": [], "Resource": "*"}]}, "empty list"),
        ({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": 3}]}, "Statement[0].Resource"),
        ({"Version": "2020-01-01", "Statement": []}, "Version"),
        ({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": []}]}, "Condition"),
        (
            {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Foo": 1}]},
            "unknown key(s) Foo",
        ),
    ],
)
def test_invalid_documents_name_the_problem(doc: dict[str, Any], fragment: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(doc)
    assert fragment in str(info.value)


def test_invalid_json_text() -> None:
    with pytest.raises(PolicyError, match="not valid JSON"):
        parse_policy("{nope")


def test_every_real_managed_policy_parses(managed_documents: dict[str, dict[str, Any]]) -> None:
    for name, doc in managed_documents.items():
        policy = parse_policy(doc, name=name)
        assert policy.statements, name
        assert parse_policy(policy_to_document(policy), name=name) == policy
