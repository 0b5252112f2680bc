from __future__ import annotations

from typing import Any

from bot.policy.escalation import (
    ESCALATION_PATHS,
    can_administer_iam,
    escalation_findings,
    escalation_paths,
    unknown_path_actions,
)
from bot.policy.expand import EffectivePermissions, effective_permissions
from bot.policy.model import Policy, parse_policy


def perms_of(*statements: dict[str, Any]) -> EffectivePermissions:
    return effective_permissions([parse_policy({"Version": "2012-10-17", "Statement": list(statements)})])


def ids(perms: EffectivePermissions) -> set[str]:
    return {p.id for p in escalation_paths(perms)}


def test_path_list_is_well_formed() -> None:
    assert unknown_path_actions() == []
    assert len({p.id for p in ESCALATION_PATHS}) == len(ESCALATION_PATHS)
    assert all(p.source.startswith("https://") and p.required for p in ESCALATION_PATHS)


def test_administrator_has_every_path_and_is_iam_admin(managed: dict[str, Policy]) -> None:
    perms = effective_permissions([managed["AdministratorAccess"]])
    assert ids(perms) == {p.id for p in ESCALATION_PATHS}
    assert can_administer_iam(perms)


def test_iam_full_access_is_iam_admin(managed: dict[str, Policy]) -> None:
    perms = effective_permissions([managed["IAMFullAccess"]])
    assert can_administer_iam(perms)
    assert "iam-attach-role-policy" in ids(perms) and "passrole-ec2" not in ids(perms)


def test_power_user_is_not_iam_admin_but_can_escalate(managed: dict[str, Policy]) -> None:
    perms = effective_permissions([managed["PowerUserAccess"]])
    assert not can_administer_iam(perms)
    found = ids(perms)
    assert "lambda-update-function-code" in found and "ssm-send-command" in found
    assert not any(p.startswith("iam-") or p.startswith("passrole-") for p in found)


def test_read_only_and_lambda_basic_have_no_paths(managed: dict[str, Policy]) -> None:
    for name in ("ReadOnlyAccess", "AWSLambdaBasicExecutionRole", "AmazonS3FullAccess"):
        perms = effective_permissions([managed[name]])
        assert ids(perms) == set(), name
        assert not can_administer_iam(perms), name


def test_passrole_needs_wildcard_role_and_the_compute_action() -> None:
    specific = perms_of(
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/app-fn"},
        {"Effect": "Allow", "Action": ["lambda:CreateFunction", "lambda:InvokeFunction"], "Resource": "*"},
    )
    assert "passrole-lambda-invoke" not in ids(specific)
    broad = perms_of(
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/*"},
        {"Effect": "Allow", "Action": ["lambda:CreateFunction", "lambda:InvokeFunction"], "Resource": "*"},
    )
    assert "passrole-lambda-invoke" in ids(broad)
    assert "passrole-ec2" not in ids(broad)


def test_assume_role_on_star_only() -> None:
    assert "sts-assume-any-role" in ids(
        perms_of({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"})
    )
    one = perms_of({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "arn:aws:iam::1:role/reader"})
    assert "sts-assume-any-role" not in ids(one)


def test_conditional_grant_gives_conditional_finding() -> None:
    perms = perms_of(
        {
            "Effect": "Allow",
            "Action": "iam:PutRolePolicy",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}},
        }
    )
    (finding,) = escalation_findings(perms)
    assert finding.path.id == "iam-put-role-policy" and finding.conditional
    assert can_administer_iam(perms)


def test_scoped_iam_permission_management_is_not_admin() -> None:
    perms = perms_of(
        {"Effect": "Allow", "Action": "iam:PutRolePolicy", "Resource": "arn:aws:iam::1:role/app"}
    )
    assert not can_administer_iam(perms)
    assert "iam-put-role-policy" in ids(perms)  # it can still change that role's policy
