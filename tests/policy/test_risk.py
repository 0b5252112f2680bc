from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.policy.expand import EffectivePermissions, effective_permissions
from bot.policy.model import Policy, parse_policy
from bot.policy.risk import risk_score

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def perms_of(action: Any, resource: Any = "*") -> EffectivePermissions:
    doc = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}],
    }
    return effective_permissions([parse_policy(doc)])


def test_iam_star_ranks_above_s3_star() -> None:
    iam = risk_score(perms_of("iam:*"), None, None, NOW)
    s3 = risk_score(perms_of("s3:*"), None, None, NOW)
    assert iam.score > s3.score
    assert iam.tier == "critical" and "iam_admin" in iam.parts and "escalation" in iam.parts
    assert s3.tier in ("low", "medium") and "iam_admin" not in s3.parts
    assert iam.reasons[0].startswith("can administer IAM")
    # even fully unused and stale, s3:* stays below iam:*
    s3_stale = risk_score(perms_of("s3:*"), set(), "2025-01-01T00:00:00Z", NOW)
    iam_fresh = risk_score(perms_of("iam:*"), {"iam:ListRoles"}, "2026-05-31T00:00:00Z", NOW)
    assert iam_fresh.score > s3_stale.score


def test_managed_policy_ordering(managed: dict[str, Policy]) -> None:
    scores = {
        name: risk_score(effective_permissions([managed[name]]), None, None, NOW)
        for name in (
            "AdministratorAccess",
            "PowerUserAccess",
            "ReadOnlyAccess",
            "AWSLambdaBasicExecutionRole",
        )
    }
    admin, power, ro, basic = (scores[n] for n in scores)
    assert admin.score > power.score > ro.score >= basic.score
    assert admin.tier == "critical"
    assert "iam_admin" not in power.parts and "escalation" in power.parts and power.tier == "high"
    assert any("privilege-escalation" in r for r in power.reasons)


def test_unused_and_staleness_explain_themselves() -> None:
    perms = perms_of(["s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteObject"], "arn:aws:s3:::b/*")
    fresh = risk_score(
        perms,
        {"s3:getobject", "s3:PutObject", "s3:ListBucket", "s3:DeleteObject"},
        "2026-05-31T12:00:00Z",
        NOW,
    )
    half = risk_score(perms, {"s3:GetObject", "s3:PutObject"}, "2026-04-01T00:00:00Z", NOW)
    never = risk_score(perms, set(), None, NOW)
    assert fresh.score == 0 and fresh.tier == "low" and fresh.reasons
    assert half.parts["unused"] == 5.0 and "50% of granted actions unused" in half.reasons[0]
    assert 0 < half.parts["staleness"] < 10 and "last used 61 days ago" in half.reasons
    assert never.parts == {"unused": 10.0, "staleness": 10.0} and "never used in the window" in never.reasons
    assert never.score > half.score > fresh.score


def test_deterministic() -> None:
    a = risk_score(perms_of("ec2:*"), {"ec2:DescribeInstances"}, "2026-03-01", NOW)
    b = risk_score(perms_of("ec2:*"), {"ec2:DescribeInstances"}, "2026-03-01", NOW)
    assert a == b


def test_passing_a_named_admin_role_counts_as_escalation_with_the_inventory() -> None:
    from bot.policy.escalation import EscalationContext, RoleProfile, profile_lookup

    admin = "arn:aws:iam::111122223333:role/deploy-admin"
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": admin},
        {"Effect": "Allow", "Action": "lambda:CreateFunction", "Resource": "*"}]}
    perms = effective_permissions([parse_policy(doc)])
    assert "escalation" not in risk_score(perms, None, None, NOW).parts  # a named role cannot be judged alone
    ctx = EscalationContext("arn:aws:iam::111122223333:role/ci",
                            profile_lookup([RoleProfile(admin, "deploy-admin", iam_admin=True)]))
    risk = risk_score(perms, None, None, NOW, ctx)
    assert "escalation" in risk.parts
    assert "1 privilege-escalation path open (lambda-passrole-create-function)" in risk.reasons
