"""Apply and rollback against the moto server: exact, reversible, resumable."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.aws.apply import resume_incomplete, rollback_change, start_change
from bot.aws.inventory import Scope, get_role_snapshot
from bot.store import changes as cs
from bot.store.changes import ChangeStore, Step
from tests.aws.conftest import ADMIN, INLINE, PROPOSED, make_role


class Crash(Exception):
    """Stands for the process dying: apply code must not catch it."""


def _state(iam: Any, role: str) -> tuple[list[str], dict[str, Any], str | None]:
    snap = get_role_snapshot(iam, role)
    return sorted(p.arn for p in snap.attached), snap.inline, snap.boundary_arn


def _apply(db: Any, iam: Any, role: str = "app", docs: list[dict[str, Any]] | None = None, **kw: Any) -> Any:
    snap = get_role_snapshot(iam, role)
    return start_change(db, iam, role_name=role, proposed_documents=docs or [PROPOSED],
                        expected_policy_hash=snap.policy_hash(), proposal_id="p-1", requested_by="U1", **kw)


def _assert_applied(iam: Any, role: str = "app") -> None:
    snap = get_role_snapshot(iam, role)
    assert [p.arn for p in snap.attached] == [f"arn:aws:iam::123456789012:policy/tighten-{role}"]
    assert snap.attached[0].document == PROPOSED
    assert snap.inline == {}


def test_apply_then_rollback_restores_role_exactly(db: Any, iam: Any) -> None:
    make_role(iam)
    iam.put_role_permissions_boundary(RoleName="app", PermissionsBoundary=ADMIN)
    before = _state(iam, "app")
    before_raw = iam.get_role_policy(RoleName="app", PolicyName="legacy")["PolicyDocument"]

    result = _apply(db, iam)
    assert result.state == cs.APPLIED, result.message
    _assert_applied(iam)
    store = ChangeStore(db)
    image = store.before_image(result.change_id)
    assert image and image["snapshot"]["inline"] == {"legacy": INLINE}

    back = rollback_change(db, iam, result.change_id, requested_by="U2")
    assert back.state == cs.ROLLED_BACK, back.message
    assert _state(iam, "app") == before
    assert iam.get_role_policy(RoleName="app", PolicyName="legacy")["PolicyDocument"] == before_raw
    assert json.dumps(_state(iam, "app")[1]["legacy"]) == json.dumps(INLINE)
    # the policy Tighten created is gone again
    assert not [p for p in iam.list_policies(Scope="Local")["Policies"] if p["PolicyName"].startswith("tighten-")]

    again = rollback_change(db, iam, result.change_id, requested_by="U2")
    assert again.state == cs.REFUSED and "already rolled back" in again.message
    assert store.get(result.change_id).state == cs.ROLLED_BACK
    actions = [e["action"] for e in store.audit.entries(result.change_id)]
    assert "change.applied" in actions and "change.rolled_back" in actions


def test_apply_twice_is_a_noop_and_keeps_customer_policies(db: Any, iam: Any) -> None:
    make_role(iam)
    custom = iam.create_policy(PolicyName="team-extra", PolicyDocument=json.dumps(INLINE))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="app", PolicyArn=custom)
    result = _apply(db, iam)
    assert result.state == cs.APPLIED
    retained = ChangeStore(db).retained(result.change_id)
    assert [r["policy_arn"] for r in retained] == [custom]
    assert iam.get_policy(PolicyArn=custom)["Policy"]["AttachmentCount"] == 0  # detached, not deleted
    assert resume_incomplete(db, iam) == []
    second = _apply(db, iam)  # same proposal again: the policy already holds it
    assert second.state == cs.APPLIED
    versions = iam.list_policy_versions(PolicyArn="arn:aws:iam::123456789012:policy/tighten-app")["Versions"]
    assert len(versions) == 1


@pytest.mark.parametrize("crash_after", [0, 1, 2, 3])
def test_crash_between_steps_then_resume_completes(db: Any, iam: Any, crash_after: int) -> None:
    make_role(iam)
    seen: list[Step] = []

    def hook(step: Step) -> None:
        seen.append(step)
        if len(seen) == crash_after + 1:
            raise Crash(step.kind)

    with pytest.raises(Crash):
        _apply(db, iam, hook=hook)
    store = ChangeStore(db)
    [change] = store.incomplete()
    assert change.state == cs.APPLYING
    assert store.before_image(change.id)["snapshot"]["inline"] == {"legacy": INLINE}
    [result] = resume_incomplete(db, iam)
    assert result.state == cs.APPLIED, result.message
    _assert_applied(iam)
    assert resume_incomplete(db, iam) == []
    assert store.before_image(change.id) is not None
    back = rollback_change(db, iam, change.id, requested_by="U2")
    assert back.state == cs.ROLLED_BACK
    assert _state(iam, "app") == ([ADMIN], {"legacy": INLINE}, None)


@pytest.mark.parametrize("crash_on_call", [1, 2, 3, 4])
def test_crash_after_aws_call_before_journal(db: Any, iam: Any, crash_on_call: int) -> None:
    """The worst spot: AWS did the step, the journal does not know yet. Resume must redo it harmlessly."""
    make_role(iam)
    writes = ("CreatePolicy", "AttachRolePolicy", "DetachRolePolicy", "DeleteRolePolicy")
    count = {"n": 0}

    def after_call(model: Any, **_: Any) -> None:
        if model.name in writes:
            count["n"] += 1
            if count["n"] == crash_on_call:
                raise Crash(model.name)

    iam.meta.events.register("after-call.iam", after_call)
    with pytest.raises(Crash):
        _apply(db, iam)
    iam.meta.events.unregister("after-call.iam", after_call)
    [result] = resume_incomplete(db, iam)
    assert result.state == cs.APPLIED, result.message
    _assert_applied(iam)


def test_crash_during_rollback_then_resume_restores(db: Any, iam: Any) -> None:
    make_role(iam)
    result = _apply(db, iam)

    def after_call(model: Any, **_: Any) -> None:
        if model.name == "AttachRolePolicy":
            raise Crash(model.name)

    iam.meta.events.register("after-call.iam", after_call)
    with pytest.raises(Crash):
        rollback_change(db, iam, result.change_id, requested_by="U2")
    iam.meta.events.unregister("after-call.iam", after_call)
    assert ChangeStore(db).get(result.change_id).state == cs.ROLLING_BACK
    [resumed] = resume_incomplete(db, iam)
    assert resumed.state == cs.ROLLED_BACK, resumed.message
    assert _state(iam, "app") == ([ADMIN], {"legacy": INLINE}, None)


def test_aws_refusal_rolls_back_and_fails(db: Any, iam: Any) -> None:
    make_role(iam)

    def refuse(model: Any, **_: Any) -> None:
        if model.name == "DeleteRolePolicy":
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, model.name)

    iam.meta.events.register("before-call.iam", refuse)
    result = _apply(db, iam)
    iam.meta.events.unregister("before-call.iam", refuse)
    assert result.state == cs.FAILED
    assert "AccessDenied" in result.notes[0]
    assert _state(iam, "app") == ([ADMIN], {"legacy": INLINE}, None)
    assert "failed" in rollback_change(db, iam, result.change_id, requested_by="U2").message


def test_stale_guard_refuses_and_touches_nothing(db: Any, iam: Any) -> None:
    make_role(iam)
    expected = get_role_snapshot(iam, "app").policy_hash()
    iam.put_role_policy(RoleName="app", PolicyName="added-later", PolicyDocument=json.dumps(INLINE))
    result = start_change(db, iam, role_name="app", proposed_documents=[PROPOSED], expected_policy_hash=expected,
                          proposal_id="p-1", requested_by="U1")
    assert result.stale and result.state == cs.STALE
    assert "changed since the proposal" in result.message and "added-later" in result.message
    assert sorted(_state(iam, "app")[1]) == ["added-later", "legacy"]
    assert ChangeStore(db).steps(result.change_id) == []


def test_protected_and_service_linked_roles_are_refused(db: Any, iam: Any) -> None:
    make_role(iam, "breakglass", tags={"tighten:protected": "true"})
    result = _apply(db, iam, "breakglass")
    assert result.state == cs.REFUSED and "protected tag" in result.message
    make_role(iam, "ops-admin")
    result = _apply(db, iam, "ops-admin", scope=Scope(protected_role_names=("ops-*",)))
    assert result.state == cs.REFUSED and "protected role" in result.message
    make_role(iam, "AWSServiceRoleForX", path="/aws-service-role/x.amazonaws.com/")
    result = _apply(db, iam, "AWSServiceRoleForX")
    assert result.state == cs.REFUSED and "service-linked" in result.message
    assert _state(iam, "breakglass")[0] == [ADMIN]


def test_five_version_limit_deletes_oldest_non_default(db: Any, iam: Any) -> None:
    make_role(iam, inline=None)
    arn = "arn:aws:iam::123456789012:policy/tighten-app"
    docs = []
    for i in range(6):
        doc = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::bucket-{i}/*"}]}
        docs.append(doc)
        result = _apply(db, iam, docs=[doc])
        assert result.state == cs.APPLIED, result.message
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    assert len(versions) == 5
    assert "v1" not in {v["VersionId"] for v in versions}
    assert any("5-version quota" in n for n in result.notes)
    _assert_doc = get_role_snapshot(iam, "app").attached[0].document
    assert _assert_doc == docs[-1]
    # rolling back the newest change restores the previous default version
    back = rollback_change(db, iam, result.change_id, requested_by="U2")
    assert back.state == cs.ROLLED_BACK, back.message
    assert get_role_snapshot(iam, "app").attached[0].document == docs[-2]


def test_older_change_cannot_be_rolled_back_over_a_newer_one(db: Any, iam: Any) -> None:
    make_role(iam)
    first = _apply(db, iam)
    second = _apply(db, iam, docs=[INLINE])
    refused = rollback_change(db, iam, first.change_id, requested_by="U2")
    assert refused.state == cs.REFUSED and second.change_id in refused.message
    assert rollback_change(db, iam, second.change_id, requested_by="U2").state == cs.ROLLED_BACK
    assert rollback_change(db, iam, first.change_id, requested_by="U2").state == cs.ROLLED_BACK
    assert _state(iam, "app") == ([ADMIN], {"legacy": INLINE}, None)


def test_oversized_proposal_is_split_into_several_policies(db: Any, iam: Any) -> None:
    make_role(iam)
    statements = [{"Sid": f"S{i}", "Effect": "Allow", "Action": "s3:GetObject",
                   "Resource": f"arn:aws:s3:::a-rather-long-bucket-name-number-{i:04d}/*"} for i in range(200)]
    result = _apply(db, iam, docs=[{"Version": "2012-10-17", "Statement": statements}])
    assert result.state == cs.APPLIED, result.message
    names = sorted(p.name for p in get_role_snapshot(iam, "app").attached)
    assert names[:2] == ["tighten-app", "tighten-app-2"] and len(names) >= 3
    held = [s for p in get_role_snapshot(iam, "app").attached for s in p.document["Statement"]]
    assert sorted(s["Sid"] for s in held) == sorted(s["Sid"] for s in statements)
    assert rollback_change(db, iam, result.change_id, requested_by="U2").state == cs.ROLLED_BACK
    assert _state(iam, "app") == ([ADMIN], {"legacy": INLINE}, None)


def test_unknown_change_and_missing_role_are_refused(db: Any, iam: Any) -> None:
    assert "no change" in rollback_change(db, iam, "c-nothere", requested_by="U2").message
    result = start_change(db, iam, role_name="ghost", proposed_documents=[PROPOSED], expected_policy_hash="x",
                          proposal_id=None, requested_by="U1")
    assert result.state == cs.REFUSED and "NoSuchEntity" in result.message and result.change_id is None


def test_policy_not_created_by_tighten_for_this_role_is_never_overwritten(db: Any, iam: Any) -> None:
    make_role(iam)
    iam.create_policy(PolicyName="tighten-app", PolicyDocument=json.dumps(INLINE), Description="someone's")
    result = _apply(db, iam)
    assert result.state == cs.REFUSED and "not overwriting" in result.message
    assert _state(iam, "app") == ([ADMIN], {"legacy": INLINE}, None)
