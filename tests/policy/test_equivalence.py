"""same_permissions: "the role now holds the proposal" is judged on permissions, never on text. Cases from the
IAM User Guide's evaluation rules; every verdict is checked against the offline evaluator on probe requests
(for "different", at least one probe must tell the two sides apart)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.policy.equivalence import same_permissions
from bot.policy.evaluate import Evaluator
from bot.policy.model import parse_policy

B = "arn:aws:s3:::reports"


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(actions: Any, resources: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources, **extra}


TLS = {"Bool": {"aws:SecureTransport": "true"}}
PROPOSAL = [doc(allow(["s3:GetObject", "s3:PutObject"], f"{B}/*"),
                allow("s3:ListBucket", B, Condition={"StringLike": {"s3:prefix": ["a/*", "b/*"]}}),
                {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"})]

#: Probes: (action, resource, context).
PROBES = [(a, r, c) for a in ("s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteObject", "ec2:RunInstances")
          for r in (f"{B}/x", B, "arn:aws:s3:::other/x")
          for c in ({}, {"s3:prefix": "a/1", "aws:SecureTransport": "true"}, {"s3:prefix": "c/1",
                                                                             "aws:SecureTransport": "false"})]


def policies(docs: list[dict[str, Any]]) -> list[Any]:
    return [parse_policy(d, f"d{i}") for i, d in enumerate(docs)]


def decisions(docs: list[dict[str, Any]]) -> list[Any]:
    ev = Evaluator(policies(docs))
    return [ev.evaluate(a, r, c) for a, r, c in PROBES]


SAME = {
    "split into two documents, other Sids, other order": [
        doc({"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"},
            allow("s3:PutObject", [f"{B}/*"], Sid="Put")),
        doc(allow("s3:listbucket", B, Sid="List", Condition={"StringLike": {"S3:Prefix": ["b/*", "a/*"]}}),
            allow(["s3:GetObject"], f"{B}/*"))],
    "duplicate statements": [PROPOSAL[0], doc(allow("s3:GetObject", f"{B}/*"))],
}

DIFFERENT = {
    "a condition dropped": [doc(allow(["s3:GetObject", "s3:PutObject"], f"{B}/*"), allow("s3:ListBucket", B),
                                {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"})],
    "a condition value more": [doc(allow(["s3:GetObject", "s3:PutObject"], f"{B}/*"),
                                   allow("s3:ListBucket", B, Condition={"StringLike": {"s3:prefix": ["a/*", "b/*",
                                                                                                     "c/*"]}}),
                                   {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"})],
    "the Deny gone": [doc(allow(["s3:GetObject", "s3:PutObject"], f"{B}/*"),
                          allow("s3:ListBucket", B, Condition={"StringLike": {"s3:prefix": ["a/*", "b/*"]}}))],
    "an unconditional grant beside the conditional one": [
        PROPOSAL[0], doc(allow("s3:ListBucket", B))],
    "a wider resource": [doc(allow(["s3:GetObject", "s3:PutObject"], "arn:aws:s3:::*"),
                             allow("s3:ListBucket", B, Condition={"StringLike": {"s3:prefix": ["a/*", "b/*"]}}),
                             {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"})],
    "everything (the old policy)": [doc(allow("*"))],
}


@pytest.mark.parametrize("name", sorted(SAME))
def test_same_permissions(name: str) -> None:
    other = SAME[name]
    assert same_permissions(policies(other), policies(PROPOSAL)).same, name
    assert same_permissions(policies(PROPOSAL), policies(other)).same, name
    assert decisions(other) == decisions(PROPOSAL)


@pytest.mark.parametrize("name", sorted(DIFFERENT))
def test_different_permissions(name: str) -> None:
    other = DIFFERENT[name]
    result = same_permissions(policies(other), policies(PROPOSAL), a_name="now", b_name="proposal")
    assert not result.same and result.difference, name
    assert not same_permissions(policies(PROPOSAL), policies(other)).same
    assert decisions(other) != decisions(PROPOSAL), f"{name}: no probe tells them apart"


def test_a_condition_moved_to_another_resource_is_different() -> None:
    """Same actions, same resources, same Condition, same conditional flags: only which resource the Condition
    guards differs. The expansion alone would call these equal."""
    a = [doc(allow("s3:GetObject", "arn:aws:s3:::one/*", Condition=TLS), allow("s3:GetObject", "arn:aws:s3:::two/*"))]
    b = [doc(allow("s3:GetObject", "arn:aws:s3:::one/*"), allow("s3:GetObject", "arn:aws:s3:::two/*", Condition=TLS))]
    assert not same_permissions(policies(a), policies(b)).same
    ea, eb = Evaluator(policies(a)), Evaluator(policies(b))
    assert ea.evaluate("s3:GetObject", "arn:aws:s3:::one/k", {"aws:SecureTransport": "false"}) != \
        eb.evaluate("s3:GetObject", "arn:aws:s3:::one/k", {"aws:SecureTransport": "false"})


def test_policy_variables_compare_as_written() -> None:
    a = [doc(allow("s3:GetObject", "arn:aws:s3:::b/${aws:username}/*"))]
    b = [doc(allow(["s3:GetObject"], ["arn:aws:s3:::b/${aws:username}/*"], Sid="Own"))]
    c = [doc(allow("s3:GetObject", "arn:aws:s3:::b/*"))]
    assert same_permissions(policies(a), policies(b)).same
    assert not same_permissions(policies(a), policies(c)).same
