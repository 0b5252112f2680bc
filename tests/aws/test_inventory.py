"""Inventory against the moto server: snapshots, scope rules, insufficient-history warnings."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.stub import Stubber

from bot.aws.inventory import RoleSnapshot, Scope, get_role_snapshot, list_role_snapshots
from bot.util.clock import utcnow
from tests.aws.conftest import ADMIN, INLINE, make_role


def test_snapshot_from_account_details_matches_per_role_reads(iam: Any) -> None:
    make_role(iam, "app", tags={"team": "payments"})
    custom = iam.create_policy(PolicyName="extra", PolicyDocument=json.dumps(INLINE))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="app", PolicyArn=custom)
    iam.put_role_permissions_boundary(RoleName="app", PermissionsBoundary=ADMIN)
    listed = {s.name: s for s in list_role_snapshots(iam).all}
    single = get_role_snapshot(iam, "arn:aws:iam::123456789012:role/app")
    assert listed["app"].policy_hash() == single.policy_hash()
    assert single.tags == {"team": "payments"}
    assert {p.arn: p.aws_managed for p in single.attached} == {ADMIN: True, custom: False}
    assert single.boundary_arn == ADMIN and single.boundary_document is not None
    assert [name for name, _ in single.identity_documents()] == ["AdministratorAccess", "extra", "legacy"]
    assert RoleSnapshot.from_json(json.loads(json.dumps(single.to_json()))) == single


def test_policy_hash_changes_with_any_policy_change(iam: Any) -> None:
    make_role(iam)
    first = get_role_snapshot(iam, "app").policy_hash()
    assert get_role_snapshot(iam, "app").policy_hash() == first
    iam.put_role_policy(RoleName="app", PolicyName="legacy", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    second = get_role_snapshot(iam, "app").policy_hash()
    assert second != first
    iam.tag_role(RoleName="app", Tags=[{"Key": "x", "Value": "y"}])  # tags are not policies
    assert get_role_snapshot(iam, "app").policy_hash() == second


def test_scope_excludes_service_linked_own_and_protected_roles(iam: Any) -> None:
    make_role(iam, "app")
    make_role(iam, "AWSServiceRoleForSupport", path="/aws-service-role/support.amazonaws.com/")
    make_role(iam, "TightenApplier", path="/tighten/")
    make_role(iam, "BreakGlass-Admin")
    make_role(iam, "vault", tags={"tighten:protected": "yes"})
    make_role(iam, "db", tags={"tier": "critical"})
    make_role(iam, "web", tags={"tier": "web"})
    scope = Scope(protected_role_names=("breakglass-*",), protected_tags=("tighten:protected", "tier=critical"),
                  own_role_arns=("arn:aws:iam::123456789012:role/TightenApplier",), lookback_days=90)
    result = list_role_snapshots(iam, scope=scope, clock=lambda: utcnow() + timedelta(days=120))
    assert [s.name for s in result.in_scope] == ["app", "web"]
    reasons = {e.snapshot.name: e.reason for e in result.excluded}
    assert reasons["AWSServiceRoleForSupport"] == "service-linked role"
    assert reasons["TightenApplier"] == "Tighten's own role"
    assert reasons["BreakGlass-Admin"].startswith("protected role")
    assert reasons["vault"] == "protected tag 'tighten:protected'"
    assert reasons["db"] == "protected tag 'tier=critical'"
    assert result.warnings == {}
    assert result.account == "123456789012"


def test_young_roles_are_in_scope_with_insufficient_history_warning(iam: Any) -> None:
    make_role(iam, "fresh")
    result = list_role_snapshots(iam, scope=Scope(lookback_days=90))
    assert [s.name for s in result.in_scope] == ["fresh"]
    [warning] = result.warnings["arn:aws:iam::123456789012:role/fresh"]
    assert warning.startswith("insufficient history")


def test_inventory_follows_markers() -> None:
    """moto returns one page whatever MaxItems says, so pagination is checked with botocore's Stubber."""
    client = boto3.client("iam", region_name="us-east-1")
    stub = Stubber(client)
    created = datetime(2020, 1, 1, tzinfo=UTC)

    def role(name: str) -> dict[str, Any]:
        return {"RoleName": name, "RoleId": "AROA" + name.upper().ljust(16, "X"), "Path": "/",
                "Arn": f"arn:aws:iam::123456789012:role/{name}", "CreateDate": created,
                "AssumeRolePolicyDocument": "%7B%7D", "RolePolicyList": [], "AttachedManagedPolicies": []}

    wanted = {"Filter": ["Role", "LocalManagedPolicy"]}
    stub.add_response("get_account_authorization_details",
                      {"RoleDetailList": [role("a")], "IsTruncated": True, "Marker": "m1"}, wanted)
    stub.add_response("get_account_authorization_details",
                      {"RoleDetailList": [role("b")], "IsTruncated": False}, {**wanted, "Marker": "m1"})
    with stub:
        result = list_role_snapshots(client, clock=lambda: created + timedelta(days=365))
    stub.assert_no_pending_responses()
    assert [s.name for s in result.in_scope] == ["a", "b"]
