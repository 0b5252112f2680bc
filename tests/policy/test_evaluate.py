from __future__ import annotations

from typing import Any

import pytest

from bot.policy.evaluate import Decision, Evaluator, arn_matches, evaluate
from bot.policy.model import Policy, parse_policy

A, ED, ID, C = Decision.ALLOWED, Decision.EXPLICIT_DENY, Decision.IMPLICIT_DENY, Decision.CONDITIONAL
BUCKET = "arn:aws:s3:::reports"


def pol(*statements: dict[str, Any]) -> Policy:
    return parse_policy({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def test_managed_policies(managed: dict[str, Policy]) -> None:
    admin, power, ro, basic = (
        managed["AdministratorAccess"],
        managed["PowerUserAccess"],
        managed["ReadOnlyAccess"],
        managed["AWSLambdaBasicExecutionRole"],
    )
    assert evaluate("iam:CreateUser", "arn:aws:iam::1:user/x", [admin]) is A
    # PowerUserAccess: NotAction iam:* ... except a few listed IAM actions
    assert evaluate("iam:AttachRolePolicy", "arn:aws:iam::1:role/r", [power]) is ID
    assert evaluate("iam:CreateServiceLinkedRole", "arn:aws:iam::1:role/r", [power]) is A
    assert evaluate("ec2:RunInstances", "*", [power]) is A
    assert evaluate("s3:GetObject", f"{BUCKET}/k", [ro]) is A
    assert evaluate("s3:PutObject", f"{BUCKET}/k", [ro]) is ID
    assert evaluate("logs:PutLogEvents", "arn:aws:logs:us-east-1:1:log-group:g:log-stream:s", [basic]) is A
    assert evaluate("s3:GetObject", f"{BUCKET}/k", [basic]) is ID
    # Two attached policies: union of allows
    assert evaluate("s3:GetObject", f"{BUCKET}/k", [basic, ro]) is A


def test_action_matching_is_case_insensitive_with_wildcards() -> None:
    p = pol(allow(["S3:get*", "ec2:Describe?nstances"]))
    assert evaluate("s3:GetObject", "*", [p]) is A
    assert evaluate("ec2:DescribeInstances", "*", [p]) is A
    assert evaluate("ec2:DescribeXXnstances", "*", [p]) is ID
    assert evaluate("s3:PutObject", "*", [p]) is ID


def test_resource_matching_is_case_sensitive_and_segment_aware() -> None:
    assert arn_matches("arn:aws:s3:::reports/*", f"{BUCKET}/a/b/c")
    assert not arn_matches("arn:aws:s3:::Reports/*", f"{BUCKET}/a")
    assert arn_matches("arn:aws:iam::*:role/app-?", "arn:aws:iam::123:role/app-1")
    assert not arn_matches("arn:aws:iam::*:role/app-?", "arn:aws:iam::123:role/app-12")
    # '*' ending a segment may run past colons, '*' inside a segment may not
    assert arn_matches("arn:aws:logs:*:*:log-group:*", "arn:aws:logs:eu-west-1:1:log-group:g:log-stream:s")
    assert not arn_matches("arn:aws:logs:us-*-1:1:x", "arn:aws:logs:us-east:z-1:1:x")
    p = pol(allow("s3:GetObject", "arn:aws:s3:::reports/*"))
    assert evaluate("s3:GetObject", f"{BUCKET}/q1.csv", [p]) is A
    assert evaluate("s3:GetObject", "arn:aws:s3:::other/q1.csv", [p]) is ID


def test_not_action_and_not_resource() -> None:
    p = pol({"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::secret/*"})
    assert evaluate("s3:GetObject", f"{BUCKET}/k", [p]) is A
    assert evaluate("s3:GetObject", "arn:aws:s3:::secret/k", [p]) is ID
    assert evaluate("IAM:PassRole", "arn:aws:iam::1:role/r", [p]) is ID


def test_explicit_deny_wins_across_policies() -> None:
    admin = pol(allow("*"))
    guard = pol(deny("s3:Delete*", f"{BUCKET}/*"))
    assert evaluate("s3:DeleteObject", f"{BUCKET}/k", [admin, guard]) is ED
    assert evaluate("s3:DeleteObject", "arn:aws:s3:::other/k", [admin, guard]) is A
    not_action_deny = pol({"Effect": "Deny", "NotAction": ["s3:Get*"], "Resource": "*"})
    assert evaluate("s3:PutObject", "x", [admin, not_action_deny]) is ED
    assert evaluate("s3:GetObject", "x", [admin, not_action_deny]) is A


def test_boundary_limits_and_can_deny() -> None:
    identity = pol(allow(["s3:*", "iam:*"]))
    boundary = pol(allow(["s3:*", "ec2:*"]), deny("s3:DeleteBucket"))
    assert evaluate("s3:GetObject", "x", [identity], boundary) is A
    assert evaluate("iam:CreateUser", "x", [identity], boundary) is ID  # boundary does not allow
    assert evaluate("ec2:RunInstances", "x", [identity], boundary) is ID  # identity does not allow
    assert evaluate("s3:DeleteBucket", BUCKET, [identity], boundary) is ED
    assert evaluate("s3:GetObject", "x", [], boundary) is ID


def test_undecidable_condition_is_conditional_never_allowed() -> None:
    p = pol(allow("s3:GetObject", "*", Condition={"StringEquals": {"aws:PrincipalTag/team": "data"}}))
    assert evaluate("s3:GetObject", "x", [p]) is C
    assert evaluate("s3:GetObject", "x", [p], context={"aws:PrincipalTag/team": "data"}) is A
    assert evaluate("s3:GetObject", "x", [p], context={"aws:principaltag/TEAM": "web"}) is ID
    # an unconditional allow next to it makes the answer definite
    assert evaluate("s3:GetObject", "x", [p, pol(allow("s3:*"))]) is A


def test_conditional_deny_that_might_apply_is_conditional() -> None:
    admin = pol(allow("*"))
    mfa = pol(deny("*", "*", Condition={"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}))
    assert evaluate("ec2:RunInstances", "*", [admin, mfa]) is C
    assert (
        evaluate("ec2:RunInstances", "*", [admin, mfa], context={"aws:MultiFactorAuthPresent": "false"}) is ED
    )
    assert (
        evaluate("ec2:RunInstances", "*", [admin, mfa], context={"aws:MultiFactorAuthPresent": "true"}) is A
    )
    # ...IfExists holds when the key is absent, so the deny applies (long-term credentials have no MFA key)
    assert evaluate("ec2:RunInstances", "*", [admin, mfa], context={"aws:MultiFactorAuthPresent": None}) is ED
    # conditional deny does not matter when nothing allows
    assert evaluate("ec2:RunInstances", "*", [mfa]) is ID


def test_conditional_in_boundary() -> None:
    identity = pol(allow("*"))
    boundary = pol(allow("*", "*", Condition={"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}))
    assert evaluate("ec2:RunInstances", "*", [identity], boundary) is C
    assert evaluate("ec2:RunInstances", "*", [identity], boundary, {"aws:RequestedRegion": "us-east-1"}) is ID


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        ({"StringLike": {"s3:prefix": "home/*"}}, {"s3:prefix": "home/ann/x"}, A),
        ({"StringNotLike": {"s3:prefix": "home/*"}}, {"s3:prefix": "home/ann/x"}, ID),
        ({"StringEqualsIgnoreCase": {"k": "ABC"}}, {"k": "abc"}, A),
        ({"StringNotEquals": {"k": ["a", "b"]}}, {"k": "c"}, A),
        ({"StringNotEquals": {"k": ["a", "b"]}}, {"k": None}, A),
        ({"StringEquals": {"k": "a"}}, {"k": None}, ID),
        ({"StringEqualsIfExists": {"k": "a"}}, {"k": None}, A),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:1:topic-*"}},
            {"aws:SourceArn": "arn:aws:sns:eu-west-1:1:topic-a"},
            A,
        ),
        (
            {"ArnNotEquals": {"aws:SourceArn": "arn:aws:sns:*:1:t"}},
            {"aws:SourceArn": "arn:aws:sns:eu-west-1:1:t"},
            ID,
        ),
        ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "TRUE"}, A),
        ({"Null": {"aws:TokenIssueTime": "true"}}, {"aws:TokenIssueTime": None}, A),
        ({"Null": {"aws:TokenIssueTime": "false"}}, {"aws:TokenIssueTime": None}, ID),
        ({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "5"}, A),
        ({"NumericGreaterThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": "5"}, ID),
        (
            {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
            {"aws:CurrentTime": "2026-05-01T00:00:00Z"},
            A,
        ),
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "10.1.2.3"}, A),
        ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "10.1.2.3"}, ID),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["env", "team"]}}, {"aws:TagKeys": ["x", "team"]}, A),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}}, {"aws:TagKeys": ["x", "team"]}, ID),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}}, {"aws:TagKeys": ["env"]}, A),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["env"]}}, {"aws:TagKeys": None}, A),
        ({"StringEquals": {"k": "${aws:username}"}}, {"k": "ann", "aws:username": "ann"}, A),
        ({"StringEquals": {"k": "${aws:username}"}}, {"k": "ann"}, C),
        ({"StringEquals": {"a": "1", "b": "2"}}, {"a": "1"}, C),  # b unknown
        ({"StringEquals": {"a": "1", "b": "2"}}, {"a": "0"}, ID),  # a decides
        ({"SomeFutureOperator": {"k": "v"}}, {"k": "v"}, C),
    ],
)
def test_condition_operators(condition: dict[str, Any], context: dict[str, Any], expected: Decision) -> None:
    p = pol(allow("s3:ListBucket", "*", Condition=condition))
    assert evaluate("s3:ListBucket", BUCKET, [p], context=context) is expected


def test_policy_variables_in_resources() -> None:
    p = pol(allow("s3:GetObject", "arn:aws:s3:::home/${aws:username}/*"))
    assert evaluate("s3:GetObject", "arn:aws:s3:::home/ann/a", [p], context={"aws:username": "ann"}) is A
    assert evaluate("s3:GetObject", "arn:aws:s3:::home/bob/a", [p], context={"aws:username": "ann"}) is ID
    assert evaluate("s3:GetObject", "arn:aws:s3:::home/bob/a", [p]) is C
    assert evaluate("s3:GetObject", "arn:aws:s3:::work/bob/a", [p]) is ID


def test_evaluator_reuses_compiled_policies(managed: dict[str, Policy]) -> None:
    ev = Evaluator([managed["AdministratorAccess"]], managed["PowerUserAccess"])
    assert ev.evaluate("iam:CreateUser", "arn:aws:iam::1:user/u") is ID
    assert ev.evaluate("s3:CreateBucket", BUCKET) is A
    assert ev.evaluate("iam:ListRoles", "*") is A
