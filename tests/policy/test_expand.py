from __future__ import annotations

from typing import Any

from bot.policy.catalog import catalog
from bot.policy.expand import effective_permissions, primary_access_level
from bot.policy.model import Policy, parse_policy


def pol(*statements: dict[str, Any]) -> Policy:
    return parse_policy({"Version": "2012-10-17", "Statement": list(statements)})


def test_administrator_access_expands_to_whole_catalog(managed: dict[str, Policy]) -> None:
    perms = effective_permissions([managed["AdministratorAccess"]])
    assert len(perms) == len(catalog().all_actions())
    assert perms.services() == frozenset(catalog().services) - {
        s for s in catalog().services if not catalog().actions_of(s)
    }
    grant = perms.get("iam:attachrolepolicy")
    assert grant is not None and grant.access_level == "Permissions management" and grant.on_any_resource
    assert not grant.conditional


def test_power_user_excludes_iam_but_keeps_listed_exceptions(managed: dict[str, Policy]) -> None:
    perms = effective_permissions([managed["PowerUserAccess"]])
    iam = {a for a in perms.actions() if a.startswith("iam:")}
    assert "iam:CreateServiceLinkedRole" in iam and "iam:ListRoles" in iam
    assert "iam:AttachRolePolicy" not in perms and "iam:PassRole" not in perms
    assert "ec2:RunInstances" in perms and "lambda:UpdateFunctionCode" in perms
    assert len(iam) < 10


def test_read_only_has_no_broad_write(managed: dict[str, Policy]) -> None:
    perms = effective_permissions([managed["ReadOnlyAccess"]])
    levels = perms.count_by_access_level()
    assert levels["Read"] + levels["List"] > 0.95 * len(perms)
    assert "s3:GetObject" in perms and "s3:PutObject" not in perms


def test_lambda_basic_execution(managed: dict[str, Policy]) -> None:
    perms = effective_permissions([managed["AWSLambdaBasicExecutionRole"]])
    assert perms.actions() == {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}


def test_wildcards_are_expanded_from_the_catalog() -> None:
    perms = effective_permissions([pol({"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"})])
    expected = {a.full_name for a in catalog().match("ec2:Describe*")}
    assert perms.actions() == expected and len(expected) > 100


def test_resources_union_and_star_absorbs() -> None:
    perms = effective_permissions(
        [
            pol(
                {
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": ["arn:aws:s3:::a/*", "arn:aws:s3:::b/*"],
                }
            ),
            pol(
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject"],
                    "Resource": "arn:aws:s3:::c/*",
                }
            ),
            pol({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}),
            pol({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::a"}),
        ]
    )
    assert perms.get("s3:GetObject").resources == ("arn:aws:s3:::a/*", "arn:aws:s3:::b/*", "arn:aws:s3:::c/*")
    assert perms.get("s3:PutObject").resources == ("arn:aws:s3:::c/*",)
    assert perms.get("s3:ListBucket").resources == ("*",)


def test_denies_remove_or_carve_out() -> None:
    perms = effective_permissions(
        [
            pol(
                {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                {"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"},
                {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::audit/*"},
                {
                    "Effect": "Deny",
                    "Action": "s3:GetObject",
                    "Resource": "*",
                    "Condition": {"Bool": {"x": "true"}},
                },
                {"Effect": "Deny", "NotAction": "s3:*", "Resource": "*"},
            )
        ]
    )
    assert "s3:DeleteBucket" not in perms
    put = perms.get("s3:PutObject")
    assert put.resources == ("*",) and put.excluded == ("arn:aws:s3:::audit/*",)
    assert perms.get("s3:GetObject").conditional
    assert not perms.get("s3:ListBucket").conditional


def test_not_resource_allow_and_not_resource_deny() -> None:
    perms = effective_permissions(
        [
            pol({"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::secret/*"}),
            pol(
                {"Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:DeleteQueue"], "Resource": "*"},
                {"Effect": "Deny", "Action": "sqs:*", "NotResource": "arn:aws:sqs:*:1:app-*"},
            ),
        ]
    )
    get = perms.get("s3:GetObject")
    assert get.resources == ("*",) and get.excluded == ("arn:aws:s3:::secret/*",)
    # Deny on everything but app-* queues leaves the '*' grant on exactly the app-* queues
    send = perms.get("sqs:SendMessage")
    assert send is not None and send.resources == ("arn:aws:sqs:*:1:app-*",) and not send.conditional


def test_boundary_intersects_actions_and_resources(managed: dict[str, Policy]) -> None:
    boundary = pol(
        {"Effect": "Allow", "Action": ["s3:*", "logs:*"], "Resource": "*"},
        {"Effect": "Allow", "Action": "sqs:*", "Resource": "arn:aws:sqs:us-east-1:1:app-*"},
    )
    perms = effective_permissions([managed["AdministratorAccess"]], boundary)
    assert perms.services() == {"s3", "logs", "sqs"}
    assert perms.get("sqs:SendMessage").resources == ("arn:aws:sqs:us-east-1:1:app-*",)
    narrow = pol(
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:us-east-1:1:app-orders"}
    )
    perms = effective_permissions([narrow], boundary)
    assert perms.get("sqs:SendMessage").resources == ("arn:aws:sqs:us-east-1:1:app-orders",)
    other = pol(
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:us-east-1:1:billing"}
    )
    assert "sqs:SendMessage" not in effective_permissions([other], boundary)


def test_unknown_action_patterns_are_reported() -> None:
    perms = effective_permissions(
        [pol({"Effect": "Allow", "Action": ["s3:GetObject", "signin:ConsoleLogin"], "Resource": "*"})]
    )
    assert perms.actions() == {"s3:GetObject"}
    assert perms.unknown_patterns == ("signin:ConsoleLogin",)


def test_primary_access_level() -> None:
    assert primary_access_level("Permissions management, Write") == "Permissions management"
    assert primary_access_level("Tagging, Write") == "Tagging"
    assert primary_access_level("List") == "List"
