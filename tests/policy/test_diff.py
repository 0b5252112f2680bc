from __future__ import annotations

from typing import Any

from bot.policy.diff import (
    PermissionDiff,
    diff_permissions,
    guard_changes,
    render_grouped,
    summary,
    unified_text_diff,
)
from bot.policy.evaluate import Decision, evaluate
from bot.policy.expand import EffectivePermissions, effective_permissions
from bot.policy.model import Policy, parse_policy

PROPOSED = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::reports/*"},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::reports"},
        {"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"},
    ],
}


def perms(*docs: dict[str, Any]) -> EffectivePermissions:
    return effective_permissions([parse_policy(d) for d in docs])


def test_admin_to_least_privilege(managed: dict[str, Policy]) -> None:
    current = effective_permissions([managed["AdministratorAccess"]])
    diff = diff_permissions(current, perms(PROPOSED))
    assert {g.action for g in diff.kept} == {
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListBucket",
        "logs:PutLogEvents",
    }
    assert len(diff.removed) == len(current) - 4 and not diff.added
    assert {c.action for c in diff.narrowed} == {"s3:GetObject", "s3:PutObject", "s3:ListBucket"}
    assert all(c.from_any for c in diff.narrowed) and not diff.broadened
    assert diff.iam_admin_before and not diff.iam_admin_after
    assert diff.escalations_closed and not diff.escalations_kept and not diff.escalations_opened
    assert diff.kept_by_service == {
        "logs": {"Write": ["logs:PutLogEvents"]},
        "s3": {"List": ["s3:ListBucket"], "Read": ["s3:GetObject"], "Write": ["s3:PutObject"]},
    }
    services = len(current.services())
    text = summary(diff)
    assert text.startswith(f"removes {len(current) - 4:,} actions across {services:,} services; ")
    assert "keeps 4 actions in 2 services" in text
    assert f"closes {len(diff.escalations_closed)} escalation paths" in text
    assert "narrows 3 actions from * to 2 ARNs" in text
    assert "removes IAM administration" in text


def test_added_broadened_and_opened_are_called_out() -> None:
    current = perms(
        {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::a/*"}]}
    )
    proposed = perms(
        {
            "Statement": [
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
                {"Effect": "Allow", "Action": "iam:PutRolePolicy", "Resource": "*"},
            ]
        }
    )
    diff = diff_permissions(current, proposed)
    assert [g.action for g in diff.added] == ["iam:PutRolePolicy"]
    assert [c.action for c in diff.broadened] == ["s3:GetObject"]
    assert [p.id for p in diff.escalations_opened] == ["iam-put-role-policy"]
    text = summary(diff)
    assert (
        "removes 0 actions across 0 services; keeps 1 action in 1 service; adds 1 action in 1 service" in text
    )
    assert "OPENS 1 escalation path" in text and "BROADENS resources of 1 action" in text
    assert "GRANTS IAM administration" in text


def test_power_user_to_read_only(managed: dict[str, Policy]) -> None:
    diff = diff_permissions(
        effective_permissions([managed["PowerUserAccess"]]),
        effective_permissions([managed["ReadOnlyAccess"]]),
    )
    assert not diff.iam_admin_before
    assert "lambda-update-function-code" in {p.id for p in diff.escalations_closed}
    # ReadOnlyAccess grants some iam:Get*/List* that PowerUserAccess does not
    assert {g.service for g in diff.added} <= {"iam", "organizations", "account"}


def test_render_grouped_lists_small_groups_and_counts_big_ones(managed: dict[str, Policy]) -> None:
    diff = diff_permissions(effective_permissions([managed["AdministratorAccess"]]), perms(PROPOSED))
    text = render_grouped(diff, list_up_to=5, max_services=10)
    lines = text.splitlines()
    assert lines[0] == summary(diff)
    assert "KEPT (4 actions, 2 services)" in text
    assert any(
        line.strip().startswith("s3:GetObject") and "on arn:aws:s3:::reports/*" in line for line in lines
    )
    assert any(line.startswith("  ec2 (") for line in lines)
    assert not any(line.strip().startswith("ec2:RunInstances") for line in lines)  # big group: counts only
    assert "more services" in text and "ESCALATION PATHS" in text and "closed     iam-put-role-policy" in text


def test_unified_text_diff_ignores_key_order() -> None:
    a = {"Statement": [{"Resource": "*", "Effect": "Allow", "Action": "s3:*"}], "Version": "2012-10-17"}
    b = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    assert unified_text_diff([a], [b]) == ""
    text = unified_text_diff([("inline/app", a)], [("proposed", PROPOSED)])
    assert text.startswith("--- current\n+++ proposed\n")
    assert '-      "Action": "s3:*",' in text.splitlines()
    assert "+# proposed" in text and "-# inline/app" in text


def test_escalation_section_names_open_and_closed_paths_first() -> None:
    from bot.policy.escalation import EscalationContext, RoleProfile, profile_lookup

    admin = "arn:aws:iam::111122223333:role/deploy-admin"
    ctx = EscalationContext("arn:aws:iam::111122223333:role/ci",
                            profile_lookup([RoleProfile(admin, "deploy-admin", iam_admin=True)]))
    current = perms({"Statement": [{"Effect": "Allow", "Action": ["iam:PassRole", "lambda:CreateFunction",
                                                                   "ssm:SendCommand"], "Resource": "*"}]})
    proposed = perms({"Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": admin},
                                    {"Effect": "Allow", "Action": "lambda:CreateFunction", "Resource": "*"}]})
    diff = diff_permissions(current, proposed, ctx)
    assert [f.id for f in diff.escalations_kept] == ["lambda-passrole-create-function"]
    assert "ssm-send-command" in [f.id for f in diff.escalations_closed]
    assert "leaves 1 escalation path open" in summary(diff)
    lines = render_grouped(diff).splitlines()
    assert lines[2] == "ESCALATION PATHS"
    assert lines[3] == ("  still open lambda-passrole-create-function: can pass admin role `deploy-admin` to Lambda"
                        " (iam:PassRole + lambda:CreateFunction)")
    assert any(line.startswith("  closed     ssm-send-command: ") for line in lines[4:])
    assert lines.index("ESCALATION PATHS") < lines.index(next(x for x in lines if x.startswith("KEPT")))


REGION_GUARD = {"Sid": "RegionGuard", "Effect": "Deny", "Action": "*", "Resource": "*",
                "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["eu-west-1"]}}}


def _guarded_diff(current_docs: list[dict[str, Any]], proposed_docs: list[dict[str, Any]]) -> PermissionDiff:
    current = [parse_policy(d) for d in current_docs]
    proposed = [parse_policy(d) for d in proposed_docs]
    return diff_permissions(effective_permissions(current), effective_permissions(proposed),
                            guards=guard_changes(current, proposed))


def test_a_dropped_deny_is_in_the_summary_and_its_own_section() -> None:
    """ec2:* with a region guard -> ec2:DescribeInstances alone: us-east-1 goes from denied to allowed."""
    current = [{"Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}, REGION_GUARD]}]
    proposed = [{"Statement": [{"Effect": "Allow", "Action": "ec2:DescribeInstances", "Resource": "*"}]}]
    us = {"aws:RequestedRegion": "us-east-1"}
    before = evaluate("ec2:DescribeInstances", "*", [parse_policy(d) for d in current], context=us)
    after = evaluate("ec2:DescribeInstances", "*", [parse_policy(d) for d in proposed], context=us)
    assert (before, after) == (Decision.EXPLICIT_DENY, Decision.ALLOWED)
    diff = _guarded_diff(current, proposed)
    assert "DROPS 1 Deny that still applied" in summary(diff)
    text = render_grouped(diff)
    section = text.split("CONDITIONS AND DENIES", 1)[1]
    assert "DENY REMOVED" in section and "RegionGuard" in section and "ec2:DescribeInstances on *" in section


def test_a_lost_condition_is_loosened() -> None:
    mfa = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    current = [{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": mfa}]}]
    proposed = [{"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}]
    diff = _guarded_diff(current, proposed)
    assert "LOOSENS 1 Condition" in summary(diff)
    assert "LOOSENED" in render_grouped(diff) and "aws:MultiFactorAuthPresent" in render_grouped(diff)
    kept = [{"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": mfa}]}]
    assert _guarded_diff(current, kept).guards == ()


def test_a_dropped_conditional_deny_that_no_longer_matters_is_still_shown() -> None:
    never_delete = {"Sid": "NeverDeleteWithoutMfa", "Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*",
                    "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}}
    current = [{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}, never_delete]}]
    proposed = [{"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}]
    diff = _guarded_diff(current, proposed)
    assert "drops 1 Deny that nothing kept needs" in summary(diff) and "DROPS" not in summary(diff)
    assert "NeverDeleteWithoutMfa" in render_grouped(diff)
    assert diff.denies_removed and not diff.denies_removed[0].matters


def test_permission_counts_by_access_level() -> None:
    from bot.policy.diff import permission_counts

    # access levels as the Service Authorization Reference lists them: GetObject Read; PutObject, PassRole,
    # PutLogEvents Write; PutRolePolicy Permissions management; ListBucket List
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
        "s3:GetObject", "s3:PutObject", "s3:ListBucket", "iam:PassRole", "iam:PutRolePolicy", "logs:PutLogEvents"]}]}
    assert permission_counts(perms(doc), "now") == {"now_actions": 6, "now_services": 3, "now_write": 4}
