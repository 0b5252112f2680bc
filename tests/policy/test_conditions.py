"""Condition implication (bot.policy.conditions), per operator, checked two ways: a table of cases reasoned from
the IAM User Guide's operator definitions, and a brute-force oracle -- the evaluator run on many concrete
request contexts: whenever ``implies`` says YES, no context may satisfy the premise and not the target."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from bot.policy.conditions import Conjunct, implies
from bot.policy.conditions import conjuncts as _conjuncts
from bot.policy.evaluate import evaluate_conditions as _evaluate_conditions
from bot.policy.model import parse_policy
from bot.policy.patterns import NO, UNKNOWN, YES


def normalized(condition: dict[str, Any]) -> dict[str, dict[str, list[str]]] | None:
    """The Condition block as the policy model stores it (values as lists of strings)."""
    if not condition:
        return None
    doc = {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": condition}]}
    return parse_policy(doc).statements[0].conditions


def conjuncts(condition: dict[str, Any]) -> tuple[Conjunct, ...]:
    return _conjuncts(normalized(condition))


def evaluate_conditions(condition: dict[str, Any], ctx: dict[str, Any]) -> int:
    values = {k: ([v] if isinstance(v, str) else v) for k, v in ctx.items()}
    return _evaluate_conditions(normalized(condition), values)

MFA = "aws:MultiFactorAuthPresent"
IP = "aws:SourceIp"
VIA = "kms:ViaService"
REGION = "aws:RequestedRegion"

# (premise Condition, target Condition, expected)
TABLE: list[tuple[dict[str, Any], dict[str, Any], int]] = [
    ({"Bool": {MFA: "true"}}, {"Bool": {MFA: "true"}}, YES),
    ({"Bool": {MFA: "true"}}, {"Bool": {"aws:multifactorauthpresent": "TRUE"}}, YES),  # keys, Bool: no case
    ({}, {"Bool": {MFA: "true"}}, NO),  # the condition is gone
    ({"BoolIfExists": {MFA: "true"}}, {"Bool": {MFA: "true"}}, NO),  # absent key: premise true, target false
    ({"Bool": {MFA: "true"}}, {"BoolIfExists": {MFA: "true"}}, YES),
    ({"IpAddress": {IP: "10.0.1.0/24"}}, {"IpAddress": {IP: "10.0.0.0/16"}}, YES),
    ({"IpAddress": {IP: "10.0.0.0/16"}}, {"IpAddress": {IP: "10.0.1.0/24"}}, NO),
    ({"IpAddress": {IP: ["10.0.1.0/24", "192.0.2.0/24"]}}, {"IpAddress": {IP: "10.0.0.0/16"}}, NO),
    ({"NotIpAddress": {IP: ["10.0.0.0/8"]}}, {"NotIpAddress": {IP: "10.1.0.0/16"}}, YES),
    ({"NotIpAddress": {IP: ["10.1.0.0/16"]}}, {"NotIpAddress": {IP: "10.0.0.0/8"}}, NO),
    ({"StringEquals": {VIA: "s3.us-east-1.amazonaws.com"}},
     {"StringEquals": {VIA: ["s3.us-east-1.amazonaws.com", "s3.eu-west-1.amazonaws.com"]}}, YES),
    ({"StringEquals": {VIA: ["s3.us-east-1.amazonaws.com", "ec2.us-east-1.amazonaws.com"]}},
     {"StringEquals": {VIA: "s3.us-east-1.amazonaws.com"}}, NO),
    ({"StringEquals": {VIA: "s3.us-east-1.amazonaws.com"}}, {"StringLike": {VIA: "s3.*.amazonaws.com"}}, YES),
    ({"StringLike": {VIA: "s3.*.amazonaws.com"}}, {"StringEquals": {VIA: "s3.us-east-1.amazonaws.com"}}, NO),
    ({"StringLike": {VIA: "s3.us-*.amazonaws.com"}}, {"StringLike": {VIA: "s3.*"}}, YES),
    ({"StringEquals": {VIA: "S3.us-east-1.amazonaws.com"}},
     {"StringEquals": {VIA: "s3.us-east-1.amazonaws.com"}}, NO),  # values are case-sensitive
    ({"StringEquals": {VIA: "S3.US-EAST-1.amazonaws.com"}},
     {"StringEqualsIgnoreCase": {VIA: "s3.us-east-1.amazonaws.com"}}, YES),
    ({"StringNotEquals": {REGION: ["eu-west-1", "eu-central-1"]}}, {"StringNotEquals": {REGION: "eu-west-1"}},
     YES),
    ({"StringNotEquals": {REGION: "eu-west-1"}}, {"StringNotEquals": {REGION: ["eu-west-1", "eu-central-1"]}},
     NO),
    ({"StringEquals": {REGION: "eu-west-1"}}, {"StringNotEquals": {REGION: "us-east-1"}}, UNKNOWN),
    ({"NumericLessThan": {"s3:max-keys": "5"}}, {"NumericLessThanEquals": {"s3:max-keys": "10"}}, YES),
    ({"NumericLessThanEquals": {"s3:max-keys": "10"}}, {"NumericLessThan": {"s3:max-keys": "10"}}, NO),
    ({"NumericEquals": {"s3:max-keys": "7"}}, {"NumericLessThan": {"s3:max-keys": "10"}}, YES),
    ({"DateGreaterThan": {"aws:CurrentTime": "2024-06-01T00:00:00Z"}},
     {"DateGreaterThan": {"aws:CurrentTime": "2024-01-01T00:00:00Z"}}, YES),
    ({"DateLessThan": {"aws:CurrentTime": "2024-06-01T00:00:00Z"}},
     {"DateLessThan": {"aws:CurrentTime": "2024-01-01T00:00:00Z"}}, NO),
    ({"ArnLike": {"aws:SourceArn": "arn:aws:sns:us-east-1:1:topic-a"}},
     {"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:1:*"}}, YES),
    ({"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:1:*"}},
     {"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:1:*"}}, NO),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}, {"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}},
     YES),
    ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}, {"StringEquals": {"aws:TagKeys": ["a"]}}, UNKNOWN),
    ({"Null": {"aws:TokenIssueTime": "false"}}, {"Null": {"aws:TokenIssueTime": "false"}}, YES),
    ({"Null": {"aws:TokenIssueTime": "true"}}, {"Null": {"aws:TokenIssueTime": "false"}}, NO),
    ({"StringEquals": {"aws:username": "${aws:username}"}}, {"StringEquals": {"aws:username": "${aws:username}"}},
     YES),
    ({"StringEquals": {"s3:prefix": "home/alice"}}, {"StringLike": {"s3:prefix": "home/${aws:username}"}}, UNKNOWN),
    ({"SomeFutureOperator": {VIA: "x"}}, {"StringEquals": {VIA: "x"}}, UNKNOWN),
    # several conjuncts: every target conjunct must follow from one premise
    ({"Bool": {MFA: "true"}, "IpAddress": {IP: "10.0.1.0/24"}}, {"IpAddress": {IP: "10.0.0.0/8"}}, YES),
    ({"Bool": {MFA: "true"}}, {"Bool": {MFA: "true"}, "IpAddress": {IP: "10.0.0.0/8"}}, NO),
]


@pytest.mark.parametrize(("premise", "target", "expected"), TABLE)
def test_implication_table(premise: dict[str, Any], target: dict[str, Any], expected: int) -> None:
    assert implies(conjuncts(premise), conjuncts(target)).result == expected


# Values the brute-force oracle tries for each key (None = the key is absent from the request).
CONTEXT_VALUES: dict[str, list[Any]] = {
    MFA.lower(): [None, "true", "false"],
    IP.lower(): [None, "10.0.1.5", "10.0.200.1", "10.1.0.1", "192.0.2.9", "172.16.0.1"],
    VIA.lower(): [None, "s3.us-east-1.amazonaws.com", "s3.eu-west-1.amazonaws.com", "ec2.us-east-1.amazonaws.com",
                  "S3.US-EAST-1.amazonaws.com", "S3.us-east-1.amazonaws.com", "s3.x"],
    REGION.lower(): [None, "eu-west-1", "eu-central-1", "us-east-1"],
    "s3:max-keys": [None, "4", "5", "7", "10", "11"],
    "aws:currenttime": [None, "2023-12-31T00:00:00Z", "2024-03-01T00:00:00Z", "2024-07-01T00:00:00Z"],
    "aws:sourcearn": [None, "arn:aws:sns:us-east-1:1:topic-a", "arn:aws:sns:eu-west-1:1:x",
                      "arn:aws:sns:us-east-1:2:topic-a"],
    "aws:tagkeys": [None, ["a"], ["a", "b"], ["b"], ["c"]],
    "aws:tokenissuetime": [None, "2024-01-01T00:00:00Z"],
}


def test_yes_is_never_contradicted_by_a_concrete_context() -> None:
    for premise, target, _ in TABLE:
        if implies(conjuncts(premise), conjuncts(target)).result != YES:
            continue
        keys = sorted({c.key.lower() for c in conjuncts(premise) + conjuncts(target)})
        if any(k not in CONTEXT_VALUES for k in keys):
            continue
        for values in itertools.product(*(CONTEXT_VALUES[k] for k in keys)):
            ctx = dict(zip(keys, values, strict=True))
            if evaluate_conditions(premise, ctx) == 2:  # the premise holds
                assert evaluate_conditions(target, ctx) == 2, (premise, target, ctx)


def test_no_cases_have_a_witness() -> None:
    """Where the table says NO, the oracle finds a context that satisfies the premise and not the target."""
    for premise, target, expected in TABLE:
        keys = sorted({c.key.lower() for c in conjuncts(premise) + conjuncts(target)})
        if expected != NO or any(k not in CONTEXT_VALUES for k in keys):
            continue
        witnesses = [ctx for values in itertools.product(*(CONTEXT_VALUES[k] for k in keys))
                     if evaluate_conditions(premise, ctx := dict(zip(keys, values, strict=True))) == 2
                     and evaluate_conditions(target, ctx) == 0]
        assert witnesses, (premise, target)
