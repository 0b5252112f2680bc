"""Apply an approved proposal to a role, exactly and reversibly; roll it back; finish after a crash.

Order of an apply (each a journaled step, idempotent, so running it again after a crash changes nothing):

1. ``put_policy``: create ``tighten-<role>`` (``-2``, ``-3``... when split), or add a version to it as the new
   default (deleting the oldest non-default version first when the 5-version quota is reached);
2. ``attach`` them (old managed policies are detached first only when the 10-per-role quota forces it);
3. ``detach`` the old managed policies (customer managed ones are kept, never deleted, with a retention date);
4. ``delete_inline`` the old inline policies (their documents live on in the stored before-image).

Before step 1 the complete before-image (``RoleSnapshot`` + the prior state of the ``tighten-*`` policies) is
stored in the same transaction that creates the change. Rollback is declarative: it compares the role with
the before-image and does whatever brings it back (re-put inline documents, re-attach, detach what Tighten
attached, restore the boundary, restore or delete the ``tighten-*`` policies), then verifies.

An AWS refusal (``ClientError``) during apply rolls the role back at once (change ends ``failed``). Any other
exception (a crash, a lost connection) leaves the change ``applying``/``rolling_back`` for
``resume_incomplete``, which finishes the apply or the rollback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlite_utils
from botocore.exceptions import ClientError

from bot.aws.inventory import RoleSnapshot, Scope, as_document, canonical_json, get_role_snapshot
from bot.aws.limits import (
    MANAGED_POLICY_MAX_VERSIONS,
    ROLE_MAX_MANAGED_POLICIES,
    PolicyTooLarge,
    fit_documents,
)
from bot.store import changes as cs
from bot.store.changes import Change, ChangeInProgress, ChangeStore, Step
from bot.util.clock import Clock, iso, utcnow

StepHook = Callable[[Step], None]
"""Called after each apply step is journaled as done (tests inject faults here)."""


@dataclass
class ChangeResult:
    change_id: str | None
    state: str
    role_name: str
    message: str
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.state in (cs.APPLIED, cs.ROLLED_BACK)

    @property
    def stale(self) -> bool:
        return self.state == cs.STALE


class RollbackIncomplete(RuntimeError):
    pass


def managed_policy_names(prefix: str, role_name: str, count: int) -> list[str]:
    return [f"{prefix}{role_name}" if i == 0 else f"{prefix}{role_name}-{i + 1}" for i in range(count)]


def start_change(db: sqlite_utils.Database, iam: Any, *, role_name: str, proposed_documents: list[dict[str, Any]],
                 expected_policy_hash: str, proposal_id: str | None, requested_by: str | None,
                 managed_policy_prefix: str = "tighten-", retention_days: int = 30, scope: Scope | None = None,
                 max_managed_policies: int = ROLE_MAX_MANAGED_POLICIES, hook: StepHook | None = None,
                 clock: Clock = utcnow) -> ChangeResult:
    """Store the before-image, check the stale guard, then apply ``proposed_documents`` as journaled steps.

    Returns a result whose ``state`` is ``applied``, ``stale`` (role changed since the proposal: nothing
    touched), ``refused`` (out of scope / IAM limit: nothing touched) or ``failed`` (AWS refused a step; the
    role was restored to its before-image)."""
    store = ChangeStore(db, clock)
    try:
        snapshot = get_role_snapshot(iam, role_name)
    except ClientError as exc:
        return ChangeResult(None, cs.REFUSED, role_name, f"cannot read role {role_name}: {_error_text(exc)}")
    try:
        documents = fit_documents(proposed_documents)
    except PolicyTooLarge as exc:
        return _refuse(store, snapshot, {}, proposal_id, requested_by, expected_policy_hash, str(exc))
    names = managed_policy_names(managed_policy_prefix, snapshot.name, len(documents))
    prior = _prior_managed_state(iam, snapshot, names, managed_policy_prefix)
    if not documents:
        return _refuse(store, snapshot, prior, proposal_id, requested_by, expected_policy_hash,
                       "the proposal holds no policy document (use a deny-all or remove the role instead)")
    if len(documents) > max_managed_policies:
        return _refuse(store, snapshot, prior, proposal_id, requested_by, expected_policy_hash,
                       f"the proposal needs {len(documents)} managed policies; a role may hold "
                       f"{max_managed_policies}")
    foreign = [n for n in names if prior.get(n) and prior[n]["description"] != _description(snapshot.name)]
    if foreign:
        return _refuse(store, snapshot, prior, proposal_id, requested_by, expected_policy_hash,
                       f"policy {foreign[0]} already exists and was not created by Tighten for role "
                       f"{snapshot.name}; not overwriting it")
    exclusion = (scope or Scope()).exclusion(snapshot)
    if exclusion:
        return _refuse(store, snapshot, prior, proposal_id, requested_by, expected_policy_hash,
                       f"role {snapshot.name} is out of scope: {exclusion}")
    image = {"snapshot": snapshot.to_json(), "managed_policies": prior}
    current_hash = snapshot.policy_hash()
    if current_hash != expected_policy_hash:
        reason = (f"role {snapshot.name} changed since the proposal was computed (policy hash "
                  f"{expected_policy_hash[:12]} then, {current_hash[:12]} now; it now holds "
                  f"{_describe(snapshot)}); re-scan before applying")
        change = store.create(account=snapshot.account, role_name=snapshot.name, role_arn=snapshot.arn,
                              before_image=image, before_policy_hash=current_hash, state=cs.STALE, steps=[],
                              documents=documents, policy_names=names, expected_policy_hash=expected_policy_hash,
                              proposal_id=proposal_id, requested_by=requested_by, reason=reason)
        return ChangeResult(change.id, cs.STALE, snapshot.name, reason)

    steps = _plan(snapshot, documents, names, max_managed_policies)
    try:
        change = store.create(account=snapshot.account, role_name=snapshot.name, role_arn=snapshot.arn,
                              before_image=image, before_policy_hash=current_hash, state=cs.APPLYING,
                              steps=steps, documents=documents, policy_names=names,
                              expected_policy_hash=expected_policy_hash, proposal_id=proposal_id,
                              requested_by=requested_by, retention_days=retention_days)
    except ChangeInProgress as exc:
        return ChangeResult(None, cs.REFUSED, snapshot.name, str(exc))
    return _run_apply(store, iam, change, hook=hook)


def rollback_change(db: sqlite_utils.Database, iam: Any, change_id: str, *, requested_by: str | None,
                    clock: Clock = utcnow) -> ChangeResult:
    """Restore the role exactly to the change's before-image. Refused (result state ``refused``, the reason in
    the message; the change keeps its state) unless the change is ``applied`` and no newer change of the same
    role is still in effect."""
    store = ChangeStore(db, clock)
    change = store.get(change_id)
    if change is None:
        return ChangeResult(change_id, cs.REFUSED, "", f"no change {change_id!r}")
    refusal = {
        cs.ROLLED_BACK: f"change {change_id} was already rolled back (by {change.rolled_back_by or 'tighten'}, "
                        f"{change.updated_at}); nothing to do",
        cs.FAILED: f"change {change_id} failed and the role was already restored to its before-image",
        cs.STALE: f"change {change_id} was never applied (stale: {change.reason})",
        cs.REFUSED: f"change {change_id} was never applied (refused: {change.reason})",
        cs.APPLYING: f"change {change_id} is still applying; run resume first",
        cs.ROLLING_BACK: f"change {change_id} is already rolling back; run resume to finish it",
    }.get(change.state)
    if refusal:
        return ChangeResult(change_id, cs.REFUSED, change.role_name, refusal)
    newer = store.newer_applied(change)
    if newer:
        return ChangeResult(change_id, cs.REFUSED, change.role_name,
                            f"role {change.role_name} has a newer change {newer[-1].id}; roll that back first")
    if not store.transition(change_id, cs.ROLLING_BACK, actor=requested_by, rolled_back_by=requested_by,
                            reason=f"rollback requested by {requested_by or 'tighten'}"):
        return ChangeResult(change_id, cs.REFUSED, change.role_name,
                            f"change {change_id} is being rolled back by someone else")
    return _run_rollback(store, iam, store.get(change_id) or change)


def resume_incomplete(db: sqlite_utils.Database, iam: Any, *, account: str | None = None,
                      hook: StepHook | None = None, clock: Clock = utcnow) -> list[ChangeResult]:
    """Finish every change a crash interrupted: applies continue from the first step not journaled as done,
    rollbacks run again (they are declarative). Running it twice changes nothing the second time."""
    store = ChangeStore(db, clock)
    results = []
    for change in store.incomplete():
        if account and change.account != account:
            continue
        if change.state == cs.APPLYING:
            results.append(_run_apply(store, iam, change, hook=hook))
        else:
            results.append(_run_rollback(store, iam, change))
    return results


# --- apply -------------------------------------------------------------------------------------------------

def _plan(snapshot: RoleSnapshot, documents: list[dict[str, Any]], names: list[str],
          max_managed: int) -> list[tuple[str, str, dict[str, Any]]]:
    new_arns = [_policy_arn(snapshot, name) for name in names]
    current = [p.arn for p in snapshot.attached]
    to_attach = [a for a in new_arns if a not in current]
    to_detach = [a for a in current if a not in new_arns]
    # Attach before detaching, so the role never holds less than the proposal; only when the per-role quota
    # leaves no room are some old policies detached first.
    room = max_managed - len(current)
    early = to_detach[:max(0, len(to_attach) - room)]
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("put_policy", name, {"document": doc}) for name, doc in zip(names, documents, strict=True)]
    steps += [("detach", arn, {}) for arn in early]
    steps += [("attach", arn, {}) for arn in to_attach]
    steps += [("detach", arn, {}) for arn in to_detach if arn not in early]
    steps += [("delete_inline", name, {}) for name in sorted(snapshot.inline)]
    return steps


def _run_apply(store: ChangeStore, iam: Any, change: Change, *, hook: StepHook | None) -> ChangeResult:
    image = store.before_image(change.id)
    if image is None:  # cannot happen (created together), but never touch a role without one
        return ChangeResult(change.id, change.state, change.role_name, "no before-image stored; not applying")
    before = RoleSnapshot.from_json(image["snapshot"])
    retain_until = iso(store.clock() + timedelta(days=change.retention_days or 30))
    notes: list[str] = []
    try:
        for step in store.steps(change.id):
            if step.state == cs.STEP_DONE:
                continue
            result = _execute(iam, before, step, store, change, retain_until)
            store.mark_step_done(step, result)
            if result.get("note"):
                notes.append(result["note"])
            if hook:
                hook(step)
        after = get_role_snapshot(iam, change.role_name)
        problem = _apply_mismatch(before, after, change)
        if problem:
            raise _Mismatch(problem)
    except (ClientError, _Mismatch) as exc:
        reason = f"apply failed: {_error_text(exc)}; restoring the before-image"
        store.transition(change.id, cs.ROLLING_BACK, reason=reason, auto_rollback=True)
        result = _run_rollback(store, iam, store.get(change.id) or change)
        result.notes.insert(0, reason)
        return result
    store.transition(change.id, cs.APPLIED, after_policy_hash=after.policy_hash())
    retained = [r["policy_arn"] for r in store.retained(change.id)]
    if retained:
        notes.append(f"detached customer managed policies kept until {retain_until}: {', '.join(retained)}")
    return ChangeResult(change.id, cs.APPLIED, change.role_name,
                        f"role {change.role_name} now holds {', '.join(change.policy_names)}", notes)


def _execute(iam: Any, before: RoleSnapshot, step: Step, store: ChangeStore, change: Change,
             retain_until: str) -> dict[str, Any]:
    role = change.role_name
    if step.kind == "put_policy":
        return _put_managed_policy(iam, before, step.target, step.params["document"], role)
    if step.kind == "attach":
        iam.attach_role_policy(RoleName=role, PolicyArn=step.target)
        return {}
    if step.kind == "detach":
        try:
            iam.detach_role_policy(RoleName=role, PolicyArn=step.target)
        except ClientError as exc:
            if _code(exc) != "NoSuchEntity":
                raise
        if ":aws:policy/" not in step.target:
            store.retain(change.id, step.target, retain_until)
        return {}
    if step.kind == "delete_inline":
        try:
            iam.delete_role_policy(RoleName=role, PolicyName=step.target)
        except ClientError as exc:
            if _code(exc) != "NoSuchEntity":
                raise
        return {}
    raise ValueError(f"unknown step kind {step.kind!r}")


def _put_managed_policy(iam: Any, role: RoleSnapshot, name: str, document: dict[str, Any],
                        role_name: str) -> dict[str, Any]:
    arn = _policy_arn(role, name)
    text = json.dumps(document)
    try:
        meta = iam.get_policy(PolicyArn=arn)["Policy"]
    except ClientError as exc:
        if _code(exc) != "NoSuchEntity":
            raise
        created = iam.create_policy(PolicyName=name, PolicyDocument=text, Description=_description(role_name))
        return {"arn": created["Policy"]["Arn"], "version": created["Policy"]["DefaultVersionId"]}
    current = iam.get_policy_version(PolicyArn=arn, VersionId=meta["DefaultVersionId"])["PolicyVersion"]
    if canonical_json(as_document(current["Document"])) == canonical_json(document):
        return {"arn": arn, "version": meta["DefaultVersionId"], "unchanged": True}
    result: dict[str, Any] = {"arn": arn}
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    if len(versions) >= MANAGED_POLICY_MAX_VERSIONS:
        oldest = min((v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"])
        old_doc = iam.get_policy_version(PolicyArn=arn, VersionId=oldest["VersionId"])["PolicyVersion"]
        iam.delete_policy_version(PolicyArn=arn, VersionId=oldest["VersionId"])
        result["deleted_version"] = {"id": oldest["VersionId"], "document": as_document(old_doc["Document"])}
        result["note"] = f"{name}: deleted oldest version {oldest['VersionId']} (5-version quota)"
    created = iam.create_policy_version(PolicyArn=arn, PolicyDocument=text, SetAsDefault=True)
    result["version"] = created["PolicyVersion"]["VersionId"]
    return result


def _apply_mismatch(before: RoleSnapshot, after: RoleSnapshot, change: Change) -> str | None:
    wanted = {_policy_arn(before, n): d for n, d in zip(change.policy_names, change.documents, strict=True)}
    held = {p.arn: p.document for p in after.attached}
    if set(held) != set(wanted):
        return f"role holds {sorted(held)} instead of {sorted(wanted)}"
    for arn, doc in wanted.items():
        if canonical_json(held[arn]) != canonical_json(doc):
            return f"{arn} does not hold the proposed document"
    if after.inline:
        return f"inline policies left: {sorted(after.inline)}"
    return None


# --- rollback ----------------------------------------------------------------------------------------------

def _run_rollback(store: ChangeStore, iam: Any, change: Change) -> ChangeResult:
    image = store.before_image(change.id)
    final = cs.FAILED if change.auto_rollback else cs.ROLLED_BACK
    if image is None:
        return ChangeResult(change.id, change.state, change.role_name, "no before-image stored; cannot restore")
    before = RoleSnapshot.from_json(image["snapshot"])
    prior: dict[str, Any] = image.get("managed_policies", {})
    notes: list[str] = []
    try:
        _restore(store, iam, change, before, prior, notes)
        after = get_role_snapshot(iam, change.role_name)
        problem = _restore_mismatch(before, after)
        if problem:
            raise RollbackIncomplete(problem)
    except (ClientError, RollbackIncomplete) as exc:
        message = f"rollback of {change.id} incomplete: {_error_text(exc)}; run resume to retry"
        store.audit.record("tighten", "change.rollback_error", change.id, error=_error_text(exc))
        return ChangeResult(change.id, cs.ROLLING_BACK, change.role_name, message, notes)
    store.transition(change.id, final, after_policy_hash=after.policy_hash())
    what = "apply failed; role restored" if final == cs.FAILED else "role restored"
    return ChangeResult(change.id, final, change.role_name, f"{what} to its before-image ({_describe(before)})",
                        notes)


def _restore(store: ChangeStore, iam: Any, change: Change, before: RoleSnapshot, prior: dict[str, Any],
             notes: list[str]) -> None:
    role = change.role_name

    def did(kind: str, target: str, **result: Any) -> None:
        store.record_step(change.id, "rollback", kind, target, result)

    current = get_role_snapshot(iam, role)
    for name, doc in sorted(before.inline.items()):
        if current.inline.get(name) is None or canonical_json(current.inline[name]) != canonical_json(doc):
            iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(doc))
            did("put_inline", name)
    for state in prior.values():  # tighten-* policies that existed before: back to their old default
        if state is not None:
            _restore_default_version(iam, state, did)
    for policy in before.attached:  # customer managed policies deleted since: recreate (same name -> same ARN)
        if not policy.aws_managed and not _policy_exists(iam, policy.arn):
            iam.create_policy(PolicyName=policy.name, Path=policy.path, PolicyDocument=json.dumps(policy.document))
            did("recreate_policy", policy.arn)
            notes.append(f"recreated deleted policy {policy.arn} from the before-image")
    held = [p.arn for p in current.attached]
    wanted = [p.arn for p in before.attached]
    to_attach = [a for a in wanted if a not in held]
    to_detach = [a for a in held if a not in wanted]
    room = max(0, ROLE_MAX_MANAGED_POLICIES - len(held))
    for arn in to_attach[:room]:
        iam.attach_role_policy(RoleName=role, PolicyArn=arn)
        did("attach", arn)
    for arn in to_detach:
        iam.detach_role_policy(RoleName=role, PolicyArn=arn)
        did("detach", arn)
    for arn in to_attach[room:]:
        iam.attach_role_policy(RoleName=role, PolicyArn=arn)
        did("attach", arn)
    for name in sorted(set(current.inline) - set(before.inline)):
        iam.delete_role_policy(RoleName=role, PolicyName=name)
        did("delete_inline", name)
    if current.boundary_arn != before.boundary_arn:
        if before.boundary_arn:
            iam.put_role_permissions_boundary(RoleName=role, PermissionsBoundary=before.boundary_arn)
        else:
            iam.delete_role_permissions_boundary(RoleName=role)
        did("boundary", before.boundary_arn or "(none)")
    for name, state in prior.items():  # tighten-* policies this change created: delete when unused
        if state is None:
            _delete_if_unused(iam, _policy_arn(before, name), did, notes)


def _restore_default_version(iam: Any, state: dict[str, Any], did: Callable[..., None]) -> None:
    arn = state["arn"]
    meta = iam.get_policy(PolicyArn=arn)["Policy"]
    if meta["DefaultVersionId"] == state["default_version_id"]:
        return
    versions = {v["VersionId"] for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]}
    if state["default_version_id"] in versions:
        iam.set_default_policy_version(PolicyArn=arn, VersionId=state["default_version_id"])
    else:
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(state["document"]), SetAsDefault=True)
    did("restore_version", arn, version=state["default_version_id"])


def _delete_if_unused(iam: Any, arn: str, did: Callable[..., None], notes: list[str]) -> None:
    try:
        meta = iam.get_policy(PolicyArn=arn)["Policy"]
    except ClientError as exc:
        if _code(exc) == "NoSuchEntity":
            return
        raise
    if meta.get("AttachmentCount", 0):
        notes.append(f"kept {arn}: still attached elsewhere")
        return
    for version in iam.list_policy_versions(PolicyArn=arn)["Versions"]:
        if not version["IsDefaultVersion"]:
            iam.delete_policy_version(PolicyArn=arn, VersionId=version["VersionId"])
    iam.delete_policy(PolicyArn=arn)
    did("delete_policy", arn)


def _restore_mismatch(before: RoleSnapshot, after: RoleSnapshot) -> str | None:
    if {p.arn for p in after.attached} != {p.arn for p in before.attached}:
        return (f"attached {sorted(p.arn for p in after.attached)} instead of "
                f"{sorted(p.arn for p in before.attached)}")
    if canonical_json(after.inline) != canonical_json(before.inline):
        return "inline policies differ from the before-image"
    if after.boundary_arn != before.boundary_arn:
        return f"boundary {after.boundary_arn} instead of {before.boundary_arn}"
    return None


# --- helpers -----------------------------------------------------------------------------------------------

class _Mismatch(RuntimeError):
    pass


def _refuse(store: ChangeStore, snapshot: RoleSnapshot, prior: dict[str, Any], proposal_id: str | None,
            requested_by: str | None, expected_hash: str, reason: str) -> ChangeResult:
    change = store.create(account=snapshot.account, role_name=snapshot.name, role_arn=snapshot.arn,
                          before_image={"snapshot": snapshot.to_json(), "managed_policies": prior},
                          before_policy_hash=snapshot.policy_hash(), state=cs.REFUSED, steps=[], documents=[],
                          policy_names=[], expected_policy_hash=expected_hash, proposal_id=proposal_id,
                          requested_by=requested_by, reason=reason)
    return ChangeResult(change.id, cs.REFUSED, snapshot.name, reason)


def _prior_managed_state(iam: Any, snapshot: RoleSnapshot, names: list[str], prefix: str) -> dict[str, Any]:
    """State of every ``tighten-*`` policy this change may write, before it writes: None = did not exist."""
    names = list(dict.fromkeys([*names, *(p.name for p in snapshot.attached
                                           if not p.aws_managed and p.name.startswith(prefix))]))
    out: dict[str, Any] = {}
    for name in names:
        arn = _policy_arn(snapshot, name)
        try:
            meta = iam.get_policy(PolicyArn=arn)["Policy"]
        except ClientError as exc:
            if _code(exc) != "NoSuchEntity":
                raise
            out[name] = None
            continue
        version = iam.get_policy_version(PolicyArn=arn, VersionId=meta["DefaultVersionId"])["PolicyVersion"]
        out[name] = {"arn": arn, "default_version_id": meta["DefaultVersionId"],
                     "document": as_document(version["Document"]), "description": meta.get("Description", "")}
    return out


def _description(role_name: str) -> str:
    """Written on every policy Tighten creates; an existing policy without it is never overwritten (role names
    such as ``app`` and ``app-2`` could otherwise share ``tighten-app-2``)."""
    return f"Tighten least-privilege policy for role {role_name}"


def _policy_exists(iam: Any, arn: str) -> bool:
    try:
        iam.get_policy(PolicyArn=arn)
    except ClientError as exc:
        if _code(exc) == "NoSuchEntity":
            return False
        raise
    return True


def _policy_arn(role: RoleSnapshot, name: str) -> str:
    partition = role.arn.split(":")[1]
    return f"arn:{partition}:iam::{role.account}:policy/{name}"


def _describe(snapshot: RoleSnapshot) -> str:
    managed = ", ".join(p.name for p in snapshot.attached) or "no managed policies"
    inline = ", ".join(sorted(snapshot.inline)) or "none"
    boundary = snapshot.boundary_arn.rsplit("/", 1)[-1] if snapshot.boundary_arn else "none"
    return f"managed: {managed}; inline: {inline}; boundary: {boundary}"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'Error')}: {err.get('Message', '')}".strip()
    return str(exc)
