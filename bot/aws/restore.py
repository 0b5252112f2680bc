"""Rollback: undo what one change did to a role, and only that.

The change's journal says what Tighten touched: the ``tighten-*`` policies it created or gave a new default
version, the policies it attached and detached, the inline policies it deleted. For each of them the target is
read and compared with its state before and after the change (``bot.aws.apply.target_state``):

* as the change left it -> undone (re-attach, put back the inline policy's exact text, restore the policy's
  prior default version, detach and delete what Tighten created);
* as before the change -> nothing to undo (the step never ran, or someone already undid it);
* someone else changed it after the change -> a **conflict**: a ``tighten-*`` policy edited or deleted, a
  detached policy re-attached, a deleted inline policy put back (with the same or another document).

With any conflict the rollback stops before changing anything and names each one; ``force`` restores the
before-image for those targets anyway. Everything else on the role (policies someone attached or put since,
the permissions boundary) is never touched and is listed as kept. Everything a rollback deletes, detaches or
overwrites is first stored (``ChangeStore.save``) and listed in the result.

Rollback actions are journaled as ``pending`` right before their AWS call and ``done`` after it, so a rollback
resumed after a crash recognises its own earlier actions and never takes them for someone else's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from bot.aws.calls import Calls, Unfinished, code, error_text
from bot.aws.change_targets import (
    AFTER,
    BEFORE,
    OTHER,
    ChangeResult,
    RollbackIncomplete,
    describe_role,
    description,
    policy_arn,
    target_state,
)
from bot.aws.inventory import RoleSnapshot, get_role_snapshot
from bot.aws.limits import MANAGED_POLICY_MAX_VERSIONS, ROLE_MAX_MANAGED_POLICIES
from bot.store import changes as cs
from bot.store.changes import Change, ChangeStore


@dataclass
class Action:
    kind: str  # restore_version | delete_policy | detach | reattach | put_inline
    target: str  # policy name, ARN or inline policy name
    forced: bool = False  # resolves a conflict (force): what it replaces is stored first
    current_text: str | None = None  # the target's text now (inline policy, managed policy default version)


@dataclass
class RestorePlan:
    actions: list[Action] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    refusal: str | None = None
    role: RoleSnapshot | None = None  # the role as read for this plan


def plan_restore(calls: Calls, store: ChangeStore, change: Change, *, force: bool) -> RestorePlan:
    """What undoing ``change`` takes now, and what stands in the way. Reads only."""
    image = store.before_image(change.id) or {}
    before = RoleSnapshot.from_json(image["snapshot"])
    role = change.role_name
    now = calls("read role", get_role_snapshot, calls.iam, role)
    attached = [p.arn for p in now.attached]
    ours = {(s.kind, s.target) for s in store.steps(change.id, "rollback")}
    plan = RestorePlan(role=now)
    deletions: list[Action] = []
    for step in store.steps(change.id):
        journaled = step.state == cs.STEP_DONE
        state = target_state(calls, change, image, step, attached)
        if step.kind == "put_policy":
            prior = (image.get("managed_policies") or {}).get(step.target)
            if state.state == BEFORE:
                continue
            if state.state == OTHER:
                plan.conflicts.append(f"{state.detail} after the change")
                if not force:
                    continue
            action = Action("delete_policy" if prior is None else "restore_version", step.target,
                            forced=state.state == OTHER, current_text=state.text)
            (deletions if prior is None else plan.actions).append(action)
        elif step.kind == "attach":
            if state.state == AFTER:
                plan.actions.append(Action("detach", step.target))
        elif step.kind == "detach":
            if state.state == AFTER:
                plan.actions.append(Action("reattach", step.target))
            elif journaled and ("reattach", step.target) not in ours:
                plan.conflicts.append(f"{_name(step.target)} was attached to {role} again after Tighten "
                                      "detached it")
        elif step.kind == "delete_inline":
            if state.state == AFTER:
                plan.actions.append(Action("put_inline", step.target))
            elif journaled and ("put_inline", step.target) not in ours:
                how = "the same document" if state.state == BEFORE else "a different document"
                plan.conflicts.append(f"inline policy {step.target} was put on {role} again (with {how}) after "
                                      "Tighten deleted it")
                if force:
                    plan.actions.append(Action("put_inline", step.target, forced=True, current_text=state.text))
    plan.actions.extend(deletions)
    plan.kept = _others(before, now, change)
    detaching = sum(1 for a in plan.actions if a.kind == "detach")
    attaching = sum(1 for a in plan.actions if a.kind == "reattach")
    total = len(attached) - detaching + attaching
    if total > ROLE_MAX_MANAGED_POLICIES:
        plan.refusal = (f"cannot restore {role}: it would hold {total} managed policies, more than IAM allows "
                        f"({ROLE_MAX_MANAGED_POLICIES}); policies attached since: "
                        f"{', '.join(k for k in plan.kept if k.startswith('managed')) or 'none'}. Nothing was "
                        "changed")
    return plan


def run_rollback(calls: Calls, store: ChangeStore, change: Change) -> ChangeResult:
    """Run (or resume) the rollback of a change in ``rolling_back``; the caller holds the change's lease."""
    final = cs.FAILED if change.auto_rollback else cs.ROLLED_BACK
    if store.before_image(change.id) is None:
        return ChangeResult(change.id, change.state, change.role_name, "no before-image stored; cannot restore")
    force = _forced(store, change)
    try:
        plan = plan_restore(calls, store, change, force=force)
        if plan.refusal or (plan.conflicts and not force):
            return _blocked(store, change, plan)
        saved_before = len(store.saved(change.id, "rollback"))
        notes = _execute(calls, store, change, plan)
        check = plan_restore(calls, store, change, force=force)
        left = [a for a in check.actions if not (a.kind == "delete_policy" and _attached_elsewhere(calls, store, change, a))]
        if left:
            raise RollbackIncomplete(f"still to undo: {', '.join(f'{a.kind} {a.target}' for a in left)}")
    except (ClientError, Unfinished, RollbackIncomplete) as exc:
        message = (f"restoring {change.role_name} (change {change.id}) is not finished: {error_text(exc)}; "
                   "it is retried")
        store.audit.record("tighten", "change.rollback_error", change.id, error=error_text(exc))
        return ChangeResult(change.id, cs.ROLLING_BACK, change.role_name, message)
    after = check.role or calls("read role", get_role_snapshot, calls.iam, change.role_name)
    store.transition(change.id, final, after_policy_hash=after.policy_hash())
    before = RoleSnapshot.from_json((store.before_image(change.id) or {})["snapshot"])
    saved = [_saved_line(row) for row in store.saved(change.id, "rollback")[saved_before:]]
    what = "the apply could not finish; " if final == cs.FAILED else ""
    message = f"{what}role {change.role_name} restored to its before-image ({describe_role(before)})"
    if plan.kept:
        message += f"; kept what others changed since: {', '.join(plan.kept)}"
    if saved:
        message += f"; stored before removing: {', '.join(saved)}"
    if plan.conflicts:
        notes.insert(0, f"forced over: {'; '.join(plan.conflicts)}")
    return ChangeResult(change.id, final, change.role_name, message, notes, conflicts=plan.conflicts,
                        saved=saved, kept=plan.kept)


def _execute(calls: Calls, store: ChangeStore, change: Change, plan: RestorePlan) -> list[str]:
    iam, role = calls.iam, change.role_name
    image = store.before_image(change.id) or {}
    before = RoleSnapshot.from_json(image["snapshot"])
    notes: list[str] = []

    def journaled(action: Action, fn: Any) -> None:
        step = store.record_step(change.id, "rollback", action.kind, action.target, state=cs.STEP_PENDING)
        result = fn() or {}
        store.mark_step_done(step, result)

    attached_now = len(calls.attached(role))
    room = max(0, ROLE_MAX_MANAGED_POLICIES - attached_now)
    reattach = [a for a in plan.actions if a.kind == "reattach"]
    for action in [a for a in plan.actions if a.kind == "restore_version"]:
        journaled(action, lambda a=action: _restore_version(calls, store, change, image, a))
    for action in reattach[:room]:
        journaled(action, lambda a=action: _reattach(calls, change, before, image, a, notes))
    for action in [a for a in plan.actions if a.kind == "detach"]:
        store.save(change.id, "rollback", "attachment", action.target, None, {"role": role})
        journaled(action, lambda a=action: _detach(calls, role, a.target))
    for action in reattach[room:]:
        journaled(action, lambda a=action: _reattach(calls, change, before, image, a, notes))
    for action in [a for a in plan.actions if a.kind == "put_inline"]:
        if action.forced:
            store.save(change.id, "rollback", "inline", action.target, action.current_text, {"role": role})
        text = _inline_text(image, before, action.target)
        journaled(action, lambda a=action, t=text: calls(
            f"put inline {a.target}", iam.put_role_policy, RoleName=role, PolicyName=a.target, PolicyDocument=t))
        if calls.inline_text(role, action.target) != text:
            notes.append(f"IAM returned inline policy {action.target} with a different text than was put back")
    for action in [a for a in plan.actions if a.kind == "delete_policy"]:
        journaled(action, lambda a=action: _delete_policy(calls, store, change, before, a, notes))
    return notes


def _restore_version(calls: Calls, store: ChangeStore, change: Change, image: dict[str, Any],
                     action: Action) -> dict[str, Any]:
    prior = image["managed_policies"][action.target]
    arn = prior["arn"]
    now = calls.policy(arn)
    if not now.exists:  # deleted by someone else (forced): recreate it with its prior text
        calls(f"recreate {action.target}", calls.iam.create_policy, PolicyName=action.target,
              PolicyDocument=prior.get("text") or json.dumps(prior["document"]),
              Description=prior.get("description") or description(change.role_name))
        return {"recreated": True}
    if now.default_version_id == prior["default_version_id"]:
        return {}
    versions = calls.versions(arn)
    if prior["default_version_id"] in {v["VersionId"] for v in versions}:
        calls(f"restore {action.target} {prior['default_version_id']}", calls.iam.set_default_policy_version,
              PolicyArn=arn, VersionId=prior["default_version_id"])
        return {"version": prior["default_version_id"]}
    if len(versions) >= MANAGED_POLICY_MAX_VERSIONS:
        oldest = min((v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"])
        store.save(change.id, "rollback", "policy_version", f"{arn}:{oldest['VersionId']}",
                   calls.version_text(arn, oldest["VersionId"]))
        calls(f"delete {action.target} {oldest['VersionId']}", calls.iam.delete_policy_version, PolicyArn=arn,
              VersionId=oldest["VersionId"])
    created = calls(f"restore {action.target}", calls.iam.create_policy_version, PolicyArn=arn,
                    PolicyDocument=prior.get("text") or json.dumps(prior["document"]), SetAsDefault=True)
    return {"version": created["PolicyVersion"]["VersionId"]}


def _reattach(calls: Calls, change: Change, before: RoleSnapshot, image: dict[str, Any], action: Action,
              notes: list[str]) -> None:
    held = next((p for p in before.attached if p.arn == action.target), None)
    if held is not None and not held.aws_managed and not calls.policy(action.target).exists:
        text = (image.get("policy_text") or {}).get(action.target) or json.dumps(held.document)
        calls(f"recreate {held.name}", calls.iam.create_policy, PolicyName=held.name, Path=held.path,
              PolicyDocument=text)
        notes.append(f"recreated deleted policy {action.target} from the before-image")
    calls(f"attach {action.target}", calls.iam.attach_role_policy, RoleName=change.role_name,
          PolicyArn=action.target)


def _detach(calls: Calls, role: str, arn: str) -> None:
    try:
        calls(f"detach {arn}", calls.iam.detach_role_policy, RoleName=role, PolicyArn=arn)
    except ClientError as exc:
        if code(exc) != "NoSuchEntity":
            raise


def _delete_policy(calls: Calls, store: ChangeStore, change: Change, before: RoleSnapshot, action: Action,
                   notes: list[str]) -> dict[str, Any]:
    arn = policy_arn(before, action.target)
    now = calls.policy(arn)
    if not now.exists:
        return {}
    if now.attachment_count:
        notes.append(f"kept {arn}: still attached elsewhere")
        return {"kept": True}
    versions = calls.versions(arn)
    for version in versions:
        text = now.text if version["VersionId"] == now.default_version_id else calls.version_text(
            arn, version["VersionId"])
        store.save(change.id, "rollback", "policy_version", f"{arn}:{version['VersionId']}", text,
                   {"default": bool(version["IsDefaultVersion"])})
    for version in versions:
        if not version["IsDefaultVersion"]:
            calls(f"delete {action.target} {version['VersionId']}", calls.iam.delete_policy_version,
                  PolicyArn=arn, VersionId=version["VersionId"])
    try:
        calls(f"delete {action.target}", calls.iam.delete_policy, PolicyArn=arn)
    except ClientError as exc:
        if code(exc) != "NoSuchEntity":
            raise
    return {}


def _attached_elsewhere(calls: Calls, store: ChangeStore, change: Change, action: Action) -> bool:
    before = RoleSnapshot.from_json((store.before_image(change.id) or {})["snapshot"])
    state = calls.policy(policy_arn(before, action.target))
    return state.exists and state.attachment_count > 0


def _blocked(store: ChangeStore, change: Change, plan: RestorePlan) -> ChangeResult:
    problem = plan.refusal or "; ".join(plan.conflicts)
    reason = f"restore stopped on someone else's changes: {problem}"
    store.transition(change.id, cs.ROLLBACK_BLOCKED, reason=reason[:1000])
    what = "the apply could not finish and " if change.auto_rollback else ""
    message = (f"{what}restoring {change.role_name} stopped: someone else changed what change {change.id} "
               f"touched: {problem}. Nothing of theirs was changed. Roll back with force to restore the "
               "before-image anyway (what it replaces is stored first).")
    return ChangeResult(change.id, cs.ROLLBACK_BLOCKED, change.role_name, message, conflicts=plan.conflicts,
                        kept=plan.kept)


def _forced(store: ChangeStore, change: Change) -> bool:
    requests = [s for s in store.steps(change.id, "rollback") if s.kind == "request"]
    return bool(requests and requests[-1].result.get("force"))


def _inline_text(image: dict[str, Any], before: RoleSnapshot, name: str) -> str:
    """The exact text the inline policy had (stores written before exact texts were kept: its JSON)."""
    text = (image.get("inline_text") or {}).get(name)
    return text if text is not None else json.dumps(before.inline[name])


def _others(before: RoleSnapshot, now: RoleSnapshot, change: Change) -> list[str]:
    """What someone else added or changed on the role that no step of the change touched (left in place)."""
    ours = {policy_arn(before, n) for n in change.policy_names} | {p.arn for p in before.attached}
    kept = [f"managed policy {p.name}" for p in now.attached if p.arn not in ours]
    kept += [f"inline policy {n}" for n in sorted(now.inline) if n not in before.inline]
    if now.boundary_arn != before.boundary_arn:
        kept.append(f"permissions boundary {_name(now.boundary_arn) if now.boundary_arn else '(removed)'}")
    return kept


def _name(arn: str | None) -> str:
    return (arn or "").rsplit("/", 1)[-1]


def _saved_line(row: dict[str, Any]) -> str:
    if row["kind"] == "attachment":
        return f"attachment of {_name(row['target'])} to {row['detail'].get('role', '?')}"
    if row["kind"] == "inline":
        return f"inline policy {row['target']} (its text)"
    arn, _, version = row["target"].rpartition(":")
    return f"{_name(arn)} version {version} (its text)"
