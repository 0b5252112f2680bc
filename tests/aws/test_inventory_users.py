"""User inventory (read-only): snapshots with group policies, scope rules, one listing pass for roles and users.

moto 5.2 neither stores user permissions boundaries nor returns ``PasswordLastUsed``, and it ignores
``MaxItems``; boundaries, password last use and pagination are therefore checked with botocore's Stubber.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.stub import Stubber

from bot.aws.inventory import (
    Scope,
    UserSnapshot,
    get_role_snapshot,
    get_user_snapshot,
    list_account_snapshots,
    list_role_snapshots,
    list_user_snapshots,
)
from bot.policy.evaluate import Decision, evaluate
from bot.policy.model import parse_policy
from bot.util.clock import utcnow
from tests.aws.conftest import ADMIN, INLINE, make_role
from tests.aws.test_own_permissions import CONTEXT, Recorder, _policy

ACCOUNT = "123456789012"
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
S3_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


def _make_user(iam: Any, name: str = "alice", *, tags: dict[str, str] | None = None, group: str | None = "devs"
               ) -> str:
    iam.create_user(UserName=name, Path="/people/", Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])
    iam.attach_user_policy(UserName=name, PolicyArn=READ_ONLY)
    iam.put_user_policy(UserName=name, PolicyName="legacy", PolicyDocument=json.dumps(INLINE))
    if group:
        iam.add_user_to_group(GroupName=group, UserName=name)
    return name


def _make_group(iam: Any, name: str = "devs") -> str:
    custom = iam.create_policy(PolicyName="deploy", PolicyDocument=json.dumps(S3_ALL))["Policy"]["Arn"]
    iam.create_group(GroupName=name, Path="/teams/")
    iam.attach_group_policy(GroupName=name, PolicyArn=custom)
    iam.attach_group_policy(GroupName=name, PolicyArn=ADMIN)
    iam.put_group_policy(GroupName=name, PolicyName="extra", PolicyDocument=json.dumps(S3_ALL))
    return custom


def test_user_snapshot_holds_own_and_group_policies(iam: Any) -> None:
    custom = _make_group(iam)
    _make_user(iam, tags={"team": "payments"})
    make_role(iam, "app")
    account = list_account_snapshots(iam, clock=lambda: utcnow() + timedelta(days=365))
    assert [r.name for r in account.roles.in_scope] == ["app"]
    [listed] = account.users.in_scope
    single = get_user_snapshot(iam, f"arn:aws:iam::{ACCOUNT}:user/people/alice")
    assert listed == single
    assert listed.policy_hash() == single.policy_hash()
    assert single.account == account.account == ACCOUNT and single.path == "/people/"
    assert single.tags == {"team": "payments"}
    assert [p.arn for p in single.attached] == [READ_ONLY] and single.attached[0].aws_managed
    assert single.inline == {"legacy": INLINE}
    [group] = single.groups
    assert (group.name, group.path) == ("devs", "/teams/")
    assert {p.arn: p.aws_managed for p in group.attached} == {custom: False, ADMIN: True}
    assert group.inline == {"extra": S3_ALL}
    assert [name for name, _ in single.identity_documents()] == [
        "ReadOnlyAccess", "legacy", "devs/deploy", "devs/AdministratorAccess", "devs/extra"]
    assert single.boundary_arn is None and single.boundary_document is None
    assert single.password_last_used is None and single.access_keys_last_used is None and single.last_used is None
    assert UserSnapshot.from_json(json.loads(json.dumps(single.to_json()))) == single


def test_role_and_user_listing_is_one_authorization_details_pass(iam: Any) -> None:
    _make_group(iam)
    _make_user(iam)
    make_role(iam, "app")
    operations: list[tuple[str, dict[str, Any]]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        operations.append((model.name, dict(params)))

    iam.meta.events.register("provide-client-params", record)
    try:
        account = list_account_snapshots(iam)
    finally:
        iam.meta.events.unregister("provide-client-params", record)
    details = [p for name, p in operations if name == "GetAccountAuthorizationDetails"]
    assert details == [{"Filter": ["Role", "User", "Group", "LocalManagedPolicy"]}]
    assert {name for name, _ in operations} <= {"GetAccountAuthorizationDetails", "ListUsers", "GetPolicy",
                                                "GetPolicyVersion"}
    assert [s.name for s in account.roles.all] == ["app"] and [s.name for s in account.users.all] == ["alice"]
    # the roles-only listing and the users-only listing give the same snapshots as the combined pass
    assert list_role_snapshots(iam).all == account.roles.all
    assert list_user_snapshots(iam).all == account.users.all
    assert get_role_snapshot(iam, "app").policy_hash() == account.roles.all[0].policy_hash()


def test_user_policy_hash_follows_group_policies_not_tags(iam: Any) -> None:
    _make_group(iam)
    _make_user(iam)
    first = get_user_snapshot(iam, "alice").policy_hash()
    iam.tag_user(UserName="alice", Tags=[{"Key": "x", "Value": "y"}])
    assert get_user_snapshot(iam, "alice").policy_hash() == first
    iam.put_group_policy(GroupName="devs", PolicyName="extra", PolicyDocument=json.dumps(INLINE))
    second = get_user_snapshot(iam, "alice").policy_hash()
    assert second != first
    iam.remove_user_from_group(GroupName="devs", UserName="alice")
    third = get_user_snapshot(iam, "alice")
    assert third.groups == [] and third.policy_hash() not in (first, second)
    assert [name for name, _ in third.identity_documents()] == ["ReadOnlyAccess", "legacy"]


def test_access_keys_last_use_is_read_only_when_asked(iam: Any) -> None:
    _make_user(iam, group=None)
    key_id = iam.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]
    assert get_user_snapshot(iam, "alice").access_keys_last_used is None
    single = get_user_snapshot(iam, "alice", access_keys=True)
    assert single.access_keys_last_used == {key_id: None}  # never used
    [listed] = list_user_snapshots(iam, access_keys=True).all
    assert listed == single


def test_scope_protects_users_by_name_tag_and_own_identity(iam: Any) -> None:
    _make_group(iam)
    for name in ("alice", "breakglass-ops", "TightenBot"):
        _make_user(iam, name)
    _make_user(iam, "vault", tags={"tighten:protected": "yes"})
    _make_user(iam, "db", tags={"tier": "critical"})
    scope = Scope(protected_role_names=("breakglass-*",), protected_tags=("tighten:protected", "tier=critical"),
                  own_role_arns=(f"arn:aws:iam::{ACCOUNT}:user/TightenBot", f"arn:aws:iam::{ACCOUNT}:role/alice"))
    users = list_user_snapshots(iam, scope=scope, clock=lambda: utcnow() + timedelta(days=120))
    assert [s.name for s in users.in_scope] == ["alice"]  # a role ARN named alice does not exclude user alice
    reasons = {e.snapshot.name: e.reason for e in users.excluded}
    assert reasons == {"breakglass-ops": "protected user (matches 'breakglass-*')",
                       "TightenBot": "Tighten's own user",
                       "vault": "protected tag 'tighten:protected'",
                       "db": "protected tag 'tier=critical'"}
    assert users.warnings == {}
    fresh = list_user_snapshots(iam, scope=Scope(lookback_days=90))
    [warning] = fresh.warnings[f"arn:aws:iam::{ACCOUNT}:user/people/alice"]
    assert warning.startswith("insufficient history: user is 0 days old")


def test_pagination_across_roles_and_users_with_boundary_and_password_use() -> None:
    client = boto3.client("iam", region_name="us-east-1")
    stub = Stubber(client)
    created = datetime(2020, 1, 1, tzinfo=UTC)
    used = datetime(2026, 10, 1, 8, 30, tzinfo=UTC)
    boundary = f"arn:aws:iam::{ACCOUNT}:policy/boundary"
    doc = json.dumps(S3_ALL)

    def role(name: str) -> dict[str, Any]:
        return {"RoleName": name, "RoleId": "AROA" + name.upper().ljust(16, "X"), "Path": "/",
                "Arn": f"arn:aws:iam::{ACCOUNT}:role/{name}", "CreateDate": created,
                "AssumeRolePolicyDocument": "%7B%7D", "RolePolicyList": [], "AttachedManagedPolicies": []}

    def user(name: str, **extra: Any) -> dict[str, Any]:
        return {"UserName": name, "UserId": "AIDA" + name.upper().ljust(16, "X"), "Path": "/",
                "Arn": f"arn:aws:iam::{ACCOUNT}:user/{name}", "CreateDate": created,
                "UserPolicyList": [{"PolicyName": "own", "PolicyDocument": doc}], "AttachedManagedPolicies": [],
                **extra}

    group = {"GroupName": "ops", "GroupId": "AGPAOPSXXXXXXXXXXXXX", "Path": "/", "CreateDate": created,
             "Arn": f"arn:aws:iam::{ACCOUNT}:group/ops", "AttachedManagedPolicies": [],
             "GroupPolicyList": [{"PolicyName": "g", "PolicyDocument": doc}]}
    local = {"PolicyName": "boundary", "PolicyId": "ANPABOUNDARYXXXXXXXX", "Arn": boundary, "Path": "/",
             "DefaultVersionId": "v2", "PolicyVersionList": [
                 {"Document": doc, "VersionId": "v2", "IsDefaultVersion": True},
                 {"Document": json.dumps(INLINE), "VersionId": "v1", "IsDefaultVersion": False}]}
    wanted = {"Filter": ["Role", "User", "Group", "LocalManagedPolicy"]}
    stub.add_response("get_account_authorization_details", {
        "RoleDetailList": [role("a")], "UserDetailList": [user("u1")], "IsTruncated": True, "Marker": "m1"}, wanted)
    stub.add_response("get_account_authorization_details", {
        "RoleDetailList": [role("b")], "GroupDetailList": [group], "Policies": [local],
        "UserDetailList": [user("u2", GroupList=["ops"], PermissionsBoundary={
            "PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": boundary})],
        "IsTruncated": False}, {**wanted, "Marker": "m1"})
    stub.add_response("list_users", {"Users": [
        {k: v for k, v in user("u1").items() if k in ("UserName", "UserId", "Path", "Arn", "CreateDate")},
        {**{k: v for k, v in user("u2").items() if k in ("UserName", "UserId", "Path", "Arn", "CreateDate")},
         "PasswordLastUsed": used}], "IsTruncated": False}, {})
    with stub:
        account = list_account_snapshots(client, clock=lambda: created + timedelta(days=365))
    stub.assert_no_pending_responses()
    assert [s.name for s in account.roles.in_scope] == ["a", "b"]
    assert [s.name for s in account.users.in_scope] == ["u1", "u2"]
    u1, u2 = account.users.in_scope
    assert u1.groups == [] and u1.boundary_arn is None and u1.last_used is None
    assert [g.name for g in u2.groups] == ["ops"] and u2.groups[0].inline == {"g": S3_ALL}
    assert u2.boundary_arn == boundary and u2.boundary_document == S3_ALL
    assert u2.password_last_used == u2.last_used == "2026-10-01T08:30:00Z"
    assert u2.access_keys_last_used is None
    assert [name for name, _ in u2.identity_documents()] == ["own", "ops/g"]


def test_reader_policy_allows_the_user_inventory_calls(iam: Any) -> None:
    _make_group(iam)
    _make_user(iam)
    iam.create_access_key(UserName="alice")
    recorder = Recorder()
    iam.meta.events.register("provide-client-params", recorder)
    try:
        list_account_snapshots(iam, access_keys=True)
        get_user_snapshot(iam, "alice", access_keys=True)
    finally:
        iam.meta.events.unregister("provide-client-params", recorder)
    reader, boundary = parse_policy(_policy("reader")), parse_policy(_policy("boundary"))
    refused = sorted({action for action, resource in recorder.calls
                      if evaluate(action, resource, [reader], boundary=boundary, context=CONTEXT)
                      is not Decision.ALLOWED})
    assert refused == [], ", ".join(refused)
