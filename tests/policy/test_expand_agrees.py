"""``expand`` and ``evaluate`` answer the same question -- is this (action, resource) allowed? -- and must give the
same answer. The evaluator is the reference (it follows the IAM User Guide's evaluation logic request by
request); the expansion is held to it on a table of policies that exercise each Deny shape, NotResource on
both effects, boundaries and wildcards."""

from __future__ import annotations

from typing import Any

import pytest

from bot.policy.evaluate import Decision, evaluate
from bot.policy.expand import ALLOWED, CONDITIONAL, DENIED, effective_permissions
from bot.policy.model import parse_policy
from tests.policy.probes import doc

DATA = ["arn:aws:s3:::data", "arn:aws:s3:::data/*"]
TABLE: list[tuple[str, list[dict[str, Any]], dict[str, Any] | None]] = [
    ("allow all s3, deny outside one bucket (NotResource deny)",
     [doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
          {"Effect": "Deny", "Action": "s3:*", "NotResource": DATA})], None),
    ("allow with NotResource",
     [doc({"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::secret/*"})], None),
    ("NotResource deny narrower than the grant",
     [doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/*"},
          {"Effect": "Deny", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::data/public/*"})], None),
    ("resource-scoped deny carves out",
     [doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
          {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::audit/*"})], None),
    ("NotAction deny",
     [doc({"Effect": "Allow", "Action": "*", "Resource": "*"},
          {"Effect": "Deny", "NotAction": "s3:Get*", "Resource": "*"})], None),
    ("conditional deny",
     [doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
          {"Effect": "Deny", "Action": "s3:*", "Resource": "*",
           "Condition": {"StringNotEquals": {"aws:RequestedRegion": "eu-west-1"}}})], None),
    ("boundary with NotResource deny",
     [doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})],
     doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
         {"Effect": "Deny", "Action": "s3:*", "NotResource": DATA})),
    ("wildcard resources",
     [doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": ["arn:aws:s3:::data/a?", "arn:aws:s3:::logs*"]})],
     None),
]
ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteBucket", "ec2:RunInstances"]
RESOURCES = ["arn:aws:s3:::data", "arn:aws:s3:::data/a1", "arn:aws:s3:::data/public/x", "arn:aws:s3:::data/abc",
             "arn:aws:s3:::secret/k", "arn:aws:s3:::audit/k", "arn:aws:s3:::logs-2024", "arn:aws:s3:::other/k", "*"]
EXPECTED = {Decision.ALLOWED: ALLOWED, Decision.IMPLICIT_DENY: DENIED, Decision.EXPLICIT_DENY: DENIED,
            Decision.CONDITIONAL: CONDITIONAL}


@pytest.mark.parametrize(("name", "docs", "boundary"), TABLE, ids=[t[0] for t in TABLE])
def test_expand_and_evaluate_agree(name: str, docs: list[dict[str, Any]], boundary: dict[str, Any] | None) -> None:
    policies = [parse_policy(d) for d in docs]
    bound = parse_policy(boundary) if boundary else None
    perms = effective_permissions(policies, bound)
    for action in ACTIONS:
        for resource in RESOURCES:
            reference = EXPECTED[evaluate(action, resource, policies, bound)]
            assert perms.decide(action, resource) == reference, (name, action, resource)


def test_not_resource_deny_keeps_the_bucket() -> None:
    """The case that made the two disagree: Allow s3:* + Deny s3:* NotResource [data, data/*] holds s3 on
    data, so a proposal keeping s3:GetObject on data/* adds nothing."""
    perms = effective_permissions([parse_policy(TABLE[0][1][0])])
    grant = perms.get("s3:GetObject")
    assert grant is not None and grant.resources == tuple(sorted(DATA))
