"""Rollback and the automatic rollback of a failed apply undo what Tighten did, and only that; someone else's
work survives, or — where it overlaps what Tighten touched — the rollback refuses, names it and changes nothing.

The role's state is read with a separate boto3 client whose policy-document decoding is switched off, so the
exact text IAM holds is compared byte for byte, independently of how Tighten reads it."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.handlers import json_decode_policies

from bot.aws.apply import rollback_change, start_change
from bot.aws.inventory import get_role_snapshot
from bot.store import changes as cs
from bot.store.changes import ChangeStore
from tests.aws.conftest import ADMIN, INLINE, PROPOSED, TRUST

ACCOUNT = "123456789012"
PRETTY = json.dumps(INLINE, indent=4) + "\n"  # as a person writes it: indented, trailing newline
HOTFIX = '{"Version": "2012-10-17",\n "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}]}'
EXTRA = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}]}


@pytest.fixture()
def raw(moto_endpoint: str) -> Any:
    """A client that returns policy documents as the URL-encoded text IAM sends (botocore's decoding removed)."""
    client = boto3.client("iam", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.meta.events.unregister("after-call.iam", json_decode_policies)
    return client


def role_state(raw: Any, role: str) -> dict[str, Any]:
    """Everything on the role: attached ARNs, inline policy texts (exact), boundary."""
    attached = sorted(p["PolicyArn"] for p in raw.list_attached_role_policies(RoleName=role)["AttachedPolicies"])
    inline = {}
    for name in raw.list_role_policies(RoleName=role)["PolicyNames"]:
        text = raw.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        inline[name] = text if text.lstrip().startswith("{") else unquote(text)
    boundary = (raw.get_role(RoleName=role)["Role"].get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    return {"attached": attached, "inline": inline, "boundary": boundary}


def tighten_policies(raw: Any) -> list[str]:
    return sorted(p["PolicyName"] for p in raw.list_policies(Scope="Local")["Policies"]
                  if p["PolicyName"].startswith("tighten-"))


def make_role(iam: Any, name: str = "app") -> dict[str, Any]:
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))
    iam.attach_role_policy(RoleName=name, PolicyArn=ADMIN)
    iam.put_role_policy(RoleName=name, PolicyName="legacy", PolicyDocument=PRETTY)
    return {"attached": [ADMIN], "inline": {"legacy": PRETTY}, "boundary": None}


def apply(db: Any, iam: Any, role: str = "app", **kw: Any) -> Any:
    return start_change(db, iam, role_name=role, proposed_documents=[PROPOSED],
                        expected_policy_hash=get_role_snapshot(iam, role).policy_hash(), proposal_id="p-1",
                        requested_by="U1", **kw)


def test_rollback_restores_exact_text_and_keeps_what_others_added(db: Any, iam: Any, raw: Any) -> None:
    before = make_role(iam)
    result = apply(db, iam)
    assert result.state == cs.APPLIED, result.message
    # a teammate hot-fixes the role after the apply
    iam.put_role_policy(RoleName="app", PolicyName="hotfix", PolicyDocument=HOTFIX)
    extra = iam.create_policy(PolicyName="team-extra", PolicyDocument=json.dumps(EXTRA))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="app", PolicyArn=extra)

    back = rollback_change(db, iam, result.change_id, requested_by="U2")

    assert back.state == cs.ROLLED_BACK, back.message
    assert role_state(raw, "app") == {"attached": sorted([ADMIN, extra]),
                                      "inline": {"legacy": PRETTY, "hotfix": HOTFIX}, "boundary": None}
    assert role_state(raw, "app")["inline"]["legacy"].encode() == before["inline"]["legacy"].encode()
    assert tighten_policies(raw) == []
    assert "hotfix" in back.message and "team-extra" in back.message  # named as kept
    # what the rollback removed was stored first: Tighten's policy text and its attachment
    saved = ChangeStore(db).saved(result.change_id, "rollback")
    kinds = {(row["kind"], row["target"].rsplit("/", 1)[-1]) for row in saved}
    assert ("attachment", "tighten-app") in kinds and ("policy_version", "tighten-app:v1") in kinds
    version = next(r for r in saved if r["kind"] == "policy_version")
    assert json.loads(version["document"]) == PROPOSED
    assert "stored before removing" in back.message and "tighten-app" in back.message


def test_automatic_rollback_keeps_what_others_added_during_the_apply(db: Any, iam: Any, raw: Any) -> None:
    make_role(iam)
    extra = iam.create_policy(PolicyName="team-extra", PolicyDocument=json.dumps(EXTRA))["Policy"]["Arn"]
    other = boto3.client("iam", endpoint_url=iam.meta.endpoint_url, region_name="us-east-1")

    def teammate_then_refusal(model: Any, **_: Any) -> None:
        if model.name == "AttachRolePolicy" and not role_state(raw, "app")["inline"].get("hotfix"):
            # while Tighten applies, a teammate adds a policy of each kind
            other.put_role_policy(RoleName="app", PolicyName="hotfix", PolicyDocument=HOTFIX)
            other.attach_role_policy(RoleName="app", PolicyArn=extra)
        if model.name == "DeleteRolePolicy":
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, model.name)

    iam.meta.events.register("before-call.iam", teammate_then_refusal)
    result = apply(db, iam)
    iam.meta.events.unregister("before-call.iam", teammate_then_refusal)

    assert result.state == cs.FAILED, result.message
    assert role_state(raw, "app") == {"attached": sorted([ADMIN, extra]),
                                      "inline": {"legacy": PRETTY, "hotfix": HOTFIX}, "boundary": None}
    assert tighten_policies(raw) == []
    assert "AccessDenied" in result.notes[0] and "restored" in result.message


def test_edited_tighten_policy_is_a_conflict_refused_until_forced(db: Any, iam: Any, raw: Any) -> None:
    make_role(iam)
    result = apply(db, iam)
    arn = f"arn:aws:iam::{ACCOUNT}:policy/tighten-app"
    edited = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}]}
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(edited), SetAsDefault=True)
    iam.put_role_policy(RoleName="app", PolicyName="hotfix", PolicyDocument=HOTFIX)
    applied = role_state(raw, "app")

    refused = rollback_change(db, iam, result.change_id, requested_by="U2")

    assert refused.state == cs.REFUSED
    assert any("tighten-app" in c and "edited" in c for c in refused.conflicts), refused.conflicts
    assert "tighten-app" in refused.message and "Nothing was changed" in refused.message
    assert role_state(raw, "app") == applied  # nothing changed
    assert raw.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v2"
    assert ChangeStore(db).get(result.change_id).state == cs.APPLIED

    forced = rollback_change(db, iam, result.change_id, requested_by="U2", force=True)

    assert forced.state == cs.ROLLED_BACK, forced.message
    assert role_state(raw, "app") == {"attached": [ADMIN], "inline": {"legacy": PRETTY, "hotfix": HOTFIX},
                                      "boundary": None}
    saved = ChangeStore(db).saved(result.change_id, "rollback")
    assert edited in [json.loads(r["document"]) for r in saved if r["kind"] == "policy_version"]


def test_reattached_policy_is_a_conflict(db: Any, iam: Any, raw: Any) -> None:
    make_role(iam)
    result = apply(db, iam)
    iam.attach_role_policy(RoleName="app", PolicyArn=ADMIN)  # someone puts admin back by hand
    applied = role_state(raw, "app")

    refused = rollback_change(db, iam, result.change_id, requested_by="U2")

    assert refused.state == cs.REFUSED
    assert refused.conflicts == ["AdministratorAccess was attached to app again after Tighten detached it"]
    assert role_state(raw, "app") == applied and tighten_policies(raw) == ["tighten-app"]
    forced = rollback_change(db, iam, result.change_id, requested_by="U2", force=True)
    assert forced.state == cs.ROLLED_BACK, forced.message
    assert role_state(raw, "app") == {"attached": [ADMIN], "inline": {"legacy": PRETTY}, "boundary": None}


def test_inline_policy_put_back_with_other_text_is_a_conflict_and_force_stores_it(db: Any, iam: Any,
                                                                                  raw: Any) -> None:
    make_role(iam)
    result = apply(db, iam)
    iam.put_role_policy(RoleName="app", PolicyName="legacy", PolicyDocument=HOTFIX)
    applied = role_state(raw, "app")

    refused = rollback_change(db, iam, result.change_id, requested_by="U2")
    assert refused.state == cs.REFUSED and "inline policy legacy" in refused.conflicts[0]
    assert role_state(raw, "app") == applied

    forced = rollback_change(db, iam, result.change_id, requested_by="U2", force=True)
    assert forced.state == cs.ROLLED_BACK, forced.message
    assert role_state(raw, "app")["inline"] == {"legacy": PRETTY}
    saved = ChangeStore(db).saved(result.change_id, "rollback")
    assert [r["document"] for r in saved if r["kind"] == "inline"] == [HOTFIX]  # their text is kept in the store


def test_a_changed_boundary_is_someone_elses_and_left_alone(db: Any, iam: Any, raw: Any) -> None:
    make_role(iam)
    result = apply(db, iam)
    readonly = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    iam.put_role_permissions_boundary(RoleName="app", PermissionsBoundary=readonly)
    back = rollback_change(db, iam, result.change_id, requested_by="U2")
    assert back.state == cs.ROLLED_BACK, back.message
    assert role_state(raw, "app") == {"attached": [ADMIN], "inline": {"legacy": PRETTY}, "boundary": readonly}
    assert "boundary" in back.message


def test_failed_apply_whose_restore_meets_a_conflict_is_blocked_until_forced(db: Any, iam: Any, raw: Any) -> None:
    make_role(iam)
    other = boto3.client("iam", endpoint_url=iam.meta.endpoint_url, region_name="us-east-1")

    def meddle_then_refuse(model: Any, **_: Any) -> None:
        if model.name == "DeleteRolePolicy":  # admin was just detached; a teammate puts it back, then IAM refuses
            other.attach_role_policy(RoleName="app", PolicyArn=ADMIN)
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, model.name)

    iam.meta.events.register("before-call.iam", meddle_then_refuse)
    result = apply(db, iam)
    iam.meta.events.unregister("before-call.iam", meddle_then_refuse)

    assert result.state == cs.ROLLBACK_BLOCKED, result.message
    assert result.conflicts == ["AdministratorAccess was attached to app again after Tighten detached it"]
    blocked = role_state(raw, "app")
    assert rollback_change(db, iam, result.change_id, requested_by="U2").state == cs.REFUSED  # needs force
    assert role_state(raw, "app") == blocked
    forced = rollback_change(db, iam, result.change_id, requested_by="U2", force=True)
    assert forced.state == cs.FAILED, forced.message  # the failed apply, now restored
    assert role_state(raw, "app") == {"attached": [ADMIN], "inline": {"legacy": PRETTY}, "boundary": None}
    assert tighten_policies(raw) == []
