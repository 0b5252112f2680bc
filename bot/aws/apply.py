"""Apply an approved proposal to a role, exactly and reversibly; roll it back; finish what a crash interrupted.

Order of an apply (each a journaled step, idempotent, so running it again after a crash changes nothing):

1. ``put_policy``: create ``tighten-<role>`` (``-2``, ``-3``... when split), or add a version to it as the new
   default (deleting the oldest non-default version first when the 5-version quota is reached);
2. ``attach`` them (old managed policies are detached first only when the 10-per-role quota forces it);
3. ``detach`` the old managed policies (customer managed ones are kept, never deleted, with a retention date);
4. ``delete_inline`` the old inline policies.

Before step 1 the complete before-image is stored in the same transaction that creates the change: the role's
snapshot, the exact text of every inline policy, of every customer managed policy it holds and of the prior
``tighten-*`` policies. Everything a step deletes or detaches is stored again right before (``change_saved``).

Each step knows the state of its target *before* and *after* it; before running a step the target is read: in
the "after" state the step already ran (a crash between the AWS call and the journal) and is only journaled; in
neither state, someone else changed it during the apply, which stops the apply and restores the before-image.
So Tighten's own partial steps never count as someone else's change, and someone else's change is never
overwritten. The final check looks only at what Tighten touched; policies someone else added meanwhile are kept
and named in the result.

A transient AWS failure (lost connection, throttling) is retried in place with backoff (``bot.aws.calls``). An
apply that cannot finish (AWS refuses a step, the failure persists, someone changed a target) restores the
before-image at once (change ``failed``). A crash leaves the change ``applying``/``rolling_back`` for
:func:`resume_incomplete` (or the worker's apply/rollback item), which finishes it. Rollback: ``bot.aws.restore``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlite_utils
from botocore.exceptions import ClientError

from bot.aws.calls import (
    Calls,
    LeaseLost,
    RetryPolicy,
    Unfinished,
    code,
    default_owner,
    error_text,
    keep_policy_text,
    same_document,
)
from bot.aws.change_targets import (
    BEFORE,
    OTHER,
    ChangeResult,
    TargetState,
    describe_role,
    description,
    policy_arn,
    target_state,
)
from bot.aws.inventory import RoleSnapshot, Scope, canonical_json, get_role_snapshot
from bot.aws.limits import (
    MANAGED_POLICY_MAX_VERSIONS,
    ROLE_MAX_MANAGED_POLICIES,
    PolicyTooLarge,
    fit_documents,
)
from bot.aws.restore import plan_restore, run_rollback
from bot.store import changes as cs
from bot.store.changes import Change, ChangeInProgress, ChangeStore, Step
from bot.util.clock import Clock, iso, utcnow

StepHook = Callable[[Step], None]
"""Called after each apply step is journaled as done (tests inject faults here)."""

class Conflict(RuntimeError):
    """Someone else changed a target of the change while Tighten was working on it."""


def managed_policy_names(prefix: str, role_name: str, count: int) -> list[str]:
    return [f"{prefix}{role_name}" if i == 0 else f"{prefix}{role_name}-{i + 1}" for i in range(count)]


def start_change(db: sqlite_utils.Database, iam: Any, *, role_name: str, proposed_documents: list[dict[str, Any]],
                 expected_policy_hash: str, proposal_id: str | None, requested_by: str | None,
                 managed_policy_prefix: str = "tighten-", retention_days: int = 30, scope: Scope | None = None,
                 max_managed_policies: int = ROLE_MAX_MANAGED_POLICIES, hook: StepHook | None = None,
                 clock: Clock = utcnow, owner: str | None = None, retry: RetryPolicy | None = None) -> ChangeResult:
    """Store the before-image, check the stale guard, then apply ``proposed_documents`` as journaled steps.

    Returns a result whose ``state`` is ``applied``, ``stale`` (role changed since the proposal: nothing
    touched), ``refused`` (out of scope / IAM limit: nothing touched), ``failed`` (the apply could not finish;
    the role was restored to its before-image), ``rollback_blocked`` (could not finish, and restoring met
    someone else's change) or ``rolling_back`` (could not finish, and the restore must be retried later)."""
    store = ChangeStore(db, clock)
    owner = owner or default_owner()
    keep_policy_text(iam)
    try:
        snapshot = get_role_snapshot(iam, role_name)
    except ClientError as exc:
        return ChangeResult(None, cs.REFUSED, role_name, f"cannot read role {role_name}: {error_text(exc)}")
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
    foreign = [n for n in names if prior.get(n) and prior[n]["description"] != description(snapshot.name)]
    if foreign:
        return _refuse(store, snapshot, prior, proposal_id, requested_by, expected_policy_hash,
                       f"policy {foreign[0]} already exists and was not created by Tighten for role "
                       f"{snapshot.name}; not overwriting it")
    exclusion = (scope or Scope()).exclusion(snapshot)
    if exclusion:
        return _refuse(store, snapshot, prior, proposal_id, requested_by, expected_policy_hash,
                       f"role {snapshot.name} is out of scope: {exclusion}")
    texts = _exact_texts(iam, snapshot)
    image = {"snapshot": snapshot.to_json(), "managed_policies": prior, **(texts or {})}
    current_hash = snapshot.policy_hash()
    if current_hash != expected_policy_hash or texts is None:
        reason = (f"role {snapshot.name} changed since the proposal was computed (policy hash "
                  f"{expected_policy_hash[:12]} then, {current_hash[:12]} now; it now holds "
                  f"{describe_role(snapshot)}); re-scan before applying")
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
                              requested_by=requested_by, retention_days=retention_days, owner=owner)
    except ChangeInProgress as exc:
        return ChangeResult(None, cs.REFUSED, snapshot.name, str(exc))
    return _finish_owned(store, iam, change, owner, retry or RetryPolicy(), hook)


def rollback_change(db: sqlite_utils.Database, iam: Any, change_id: str, *, requested_by: str | None,
                    force: bool = False, clock: Clock = utcnow, owner: str | None = None,
                    retry: RetryPolicy | None = None) -> ChangeResult:
    """Undo what the change did to the role, and only that (``bot.aws.restore``).

    Refused (state ``refused``, nothing changed) unless the change is ``applied`` (or ``rollback_blocked``, with
    ``force``), no newer change of the role is in effect, and — without ``force`` — nobody changed what the
    change touched (the conflicts are listed in the result)."""

    store = ChangeStore(db, clock)
    owner = owner or default_owner()
    change = store.get(change_id)
    if change is None:
        return ChangeResult(change_id, cs.REFUSED, "", f"no change {change_id!r}")
    refusal = {
        cs.ROLLED_BACK: f"change {change_id} was already rolled back (by {change.rolled_back_by or 'tighten'}, "
                        f"{change.updated_at}); nothing to do",
        cs.FAILED: f"change {change_id} failed and the role was already restored to its before-image",
        cs.STALE: f"change {change_id} was never applied (stale: {change.reason})",
        cs.REFUSED: f"change {change_id} was never applied (refused: {change.reason})",
        cs.APPLYING: f"change {change_id} is still applying; the worker finishes it first",
        cs.ROLLING_BACK: f"change {change_id} is already rolling back",
    }.get(change.state)
    if change.state == cs.ROLLBACK_BLOCKED and not force:
        refusal = (f"restoring change {change_id} stopped on someone else's changes ({change.reason}); "
                   "roll back with force to restore the before-image anyway")
    if refusal:
        return ChangeResult(change_id, cs.REFUSED, change.role_name, refusal)
    newer = store.newer_applied(change)
    if newer:
        return ChangeResult(change_id, cs.REFUSED, change.role_name,
                            f"role {change.role_name} has a newer change {newer[-1].id}; roll that back first")
    if not store.acquire(change_id, owner):
        return ChangeResult(change_id, cs.REFUSED, change.role_name,
                            f"change {change_id} is being worked on by {store.holder(change_id)}; try again later")
    try:
        result = _rollback_owned(Calls(iam, store, change_id, owner, retry or RetryPolicy()), store, change,
                                 requested_by, force)
    except LeaseLost:
        raise
    except Exception:
        store.release(change_id, owner)
        raise
    # (a process being killed releases nothing: its lease expires and the rollback is resumed after that)
    store.release(change_id, owner)
    return result


def _rollback_owned(calls: Calls, store: ChangeStore, change: Change, requested_by: str | None,
                    force: bool) -> ChangeResult:

    change_id = change.id
    try:
        plan = plan_restore(calls, store, change, force=force)
    except (ClientError, Unfinished) as exc:
        return ChangeResult(change_id, cs.REFUSED, change.role_name,
                            f"cannot read role {change.role_name} to roll back: {error_text(exc)}; nothing "
                            "was changed")
    if plan.refusal or (plan.conflicts and not force):
        message = plan.refusal or _conflict_message(change, plan.conflicts)
        store.audit.record(requested_by or "tighten", "change.rollback_refused", change_id, reason=message)
        return ChangeResult(change_id, cs.REFUSED, change.role_name, message, conflicts=plan.conflicts,
                            kept=plan.kept)
    store.record_step(change_id, "rollback", "request", requested_by or "tighten", {"force": force})
    if not store.transition(change_id, cs.ROLLING_BACK, actor=requested_by, rolled_back_by=requested_by,
                            reason=f"rollback requested by {requested_by or 'tighten'}"
                                   + (" (forced)" if force else "")):
        return ChangeResult(change_id, cs.REFUSED, change.role_name,
                            f"change {change_id} is being rolled back by someone else")
    return run_rollback(calls, store, store.get(change_id) or change)


def resume_change(db: sqlite_utils.Database, iam: Any, change_id: str, *, hook: StepHook | None = None,
                  clock: Clock = utcnow, owner: str | None = None, retry: RetryPolicy | None = None
                  ) -> ChangeResult | None:
    """Finish one interrupted change (apply continues from its journal; rollback runs again: it is declarative).
    None when someone else holds the change's lease (it is being worked on) or it needs nothing."""
    store = ChangeStore(db, clock)
    owner = owner or default_owner()
    change = store.get(change_id)
    if change is None or change.state not in cs.INCOMPLETE_STATES or not store.acquire(change_id, owner):
        return None
    return _finish_owned(store, iam, store.get(change_id) or change, owner, retry or RetryPolicy(), hook)


def resume_incomplete(db: sqlite_utils.Database, iam: Any, *, account: str | None = None,
                      hook: StepHook | None = None, clock: Clock = utcnow, owner: str | None = None,
                      retry: RetryPolicy | None = None) -> list[ChangeResult]:
    """Finish every change a crash interrupted whose lease has expired (a change someone is working on is left
    to them). Running it twice changes nothing the second time."""
    store = ChangeStore(db, clock)
    results = []
    for change in store.incomplete():
        if account and change.account != account:
            continue
        result = resume_change(db, iam, change.id, hook=hook, clock=clock, owner=owner, retry=retry)
        if result is not None:
            results.append(result)
    return results


def _finish_owned(store: ChangeStore, iam: Any, change: Change, owner: str, retry: RetryPolicy,
                  hook: StepHook | None) -> ChangeResult:
    """Run (or resume) ``change`` while holding its lease; the lease is released at the end, unless lost."""

    calls = Calls(iam, store, change.id, owner, retry)
    try:
        if change.state == cs.APPLYING:
            result = _run_apply(calls, store, change, hook=hook)
        else:
            result = run_rollback(calls, store, change)
    except LeaseLost:
        raise
    except Exception:
        store.release(change.id, owner)  # an unexpected error: the next run may resume at once
        raise
    # (a process being killed releases nothing: its lease expires and the change is resumed after that)
    store.release(change.id, owner)
    return result


# --- apply -------------------------------------------------------------------------------------------------

def _plan(snapshot: RoleSnapshot, documents: list[dict[str, Any]], names: list[str],
          max_managed: int) -> list[tuple[str, str, dict[str, Any]]]:
    new_arns = [policy_arn(snapshot, name) for name in names]
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


def _run_apply(calls: Calls, store: ChangeStore, change: Change, *, hook: StepHook | None) -> ChangeResult:

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
            attached = calls.attached(change.role_name) if step.kind in ("attach", "detach") else []
            now = target_state(calls, change, image, step, attached)
            if now.state == OTHER:
                raise Conflict(f"{now.detail} while the change was being applied")
            if now.state == BEFORE:
                result = _execute(calls, before, step, store, change, retain_until, now)
            else:  # the step ran before a crash, the journal did not know yet
                result = {"already_done": True}
            store.mark_step_done(step, result)
            if result.get("note"):
                notes.append(result["note"])
            if hook:
                hook(step)
        after = calls("read role", get_role_snapshot, calls.iam, change.role_name)
        problem = _apply_mismatch(before, after, change)
        if problem:
            raise Conflict(problem)
    except (ClientError, Conflict, Unfinished) as exc:
        reason = f"apply could not finish: {error_text(exc)}; restoring the before-image"
        store.transition(change.id, cs.ROLLING_BACK, reason=reason[:1000], auto_rollback=True)
        result = run_rollback(calls, store, store.get(change.id) or change)
        result.notes.insert(0, reason)
        return result
    store.transition(change.id, cs.APPLIED, after_policy_hash=after.policy_hash())
    retained = [r["policy_arn"] for r in store.retained(change.id)]
    if retained:
        notes.append(f"detached customer managed policies kept until {retain_until}: {', '.join(retained)}")
    kept = _others_additions(before, after, change)
    if kept:
        notes.append(f"also on the role, added by someone else during the apply and kept: {', '.join(kept)}")
    return ChangeResult(change.id, cs.APPLIED, change.role_name,
                        f"role {change.role_name} now holds {', '.join(change.policy_names)}", notes, kept=kept)


def _execute(calls: Calls, before: RoleSnapshot, step: Step, store: ChangeStore, change: Change,
             retain_until: str, now: TargetState) -> dict[str, Any]:
    role = change.role_name
    iam = calls.iam
    if step.kind == "put_policy":
        return _put_managed_policy(calls, store, change, before, step.target, step.params["document"], now)
    if step.kind == "attach":
        calls(f"attach {step.target}", iam.attach_role_policy, RoleName=role, PolicyArn=step.target)
        return {}
    if step.kind == "detach":
        store.save(change.id, "apply", "attachment", step.target, None, {"role": role})
        try:
            calls(f"detach {step.target}", iam.detach_role_policy, RoleName=role, PolicyArn=step.target)
        except ClientError as exc:
            if code(exc) != "NoSuchEntity":
                raise
        if ":aws:policy/" not in step.target:
            store.retain(change.id, step.target, retain_until)
        return {}
    if step.kind == "delete_inline":
        store.save(change.id, "apply", "inline", step.target, now.text, {"role": role})
        try:
            calls(f"delete inline {step.target}", iam.delete_role_policy, RoleName=role, PolicyName=step.target)
        except ClientError as exc:
            if code(exc) != "NoSuchEntity":
                raise
        return {}
    raise ValueError(f"unknown step kind {step.kind!r}")


def _put_managed_policy(calls: Calls, store: ChangeStore, change: Change, role: RoleSnapshot, name: str,
                        document: dict[str, Any], now: TargetState) -> dict[str, Any]:
    iam = calls.iam
    arn = policy_arn(role, name)
    text = json.dumps(document)
    current = now.policy or calls.policy(arn)
    if not current.exists:
        created = calls(f"create {name}", iam.create_policy, PolicyName=name, PolicyDocument=text,
                        Description=description(change.role_name))
        return {"arn": created["Policy"]["Arn"], "version": created["Policy"]["DefaultVersionId"]}
    if current.holds(document):
        return {"arn": arn, "version": current.default_version_id, "unchanged": True}
    result: dict[str, Any] = {"arn": arn}
    versions = calls.versions(arn)
    if len(versions) >= MANAGED_POLICY_MAX_VERSIONS:
        oldest = min((v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"])
        old_text = calls.version_text(arn, oldest["VersionId"])
        store.save(change.id, "apply", "policy_version", f"{arn}:{oldest['VersionId']}", old_text)
        calls(f"delete {name} {oldest['VersionId']}", iam.delete_policy_version, PolicyArn=arn,
              VersionId=oldest["VersionId"])
        result["deleted_version"] = {"id": oldest["VersionId"], "document": json.loads(old_text)}
        result["note"] = f"{name}: deleted oldest version {oldest['VersionId']} (5-version quota; its text is stored)"
    created = calls(f"add a version to {name}", iam.create_policy_version, PolicyArn=arn, PolicyDocument=text,
                    SetAsDefault=True)
    result["version"] = created["PolicyVersion"]["VersionId"]
    return result


def _apply_mismatch(before: RoleSnapshot, after: RoleSnapshot, change: Change) -> str | None:
    """What Tighten touched is not as the change left it (someone else's additions are not checked here)."""
    wanted = {policy_arn(before, n): d for n, d in zip(change.policy_names, change.documents, strict=True)}
    held = {p.arn: p.document for p in after.attached}
    missing = sorted(set(wanted) - set(held))
    if missing:
        return f"role no longer holds {', '.join(missing)}"
    for arn, doc in wanted.items():
        if canonical_json(held[arn]) != canonical_json(doc):
            return f"{arn} does not hold the proposed document"
    old = sorted({p.arn for p in before.attached} & set(held) - set(wanted))
    if old:
        return f"role holds {', '.join(old)} again"
    back = sorted(set(before.inline) & set(after.inline))
    if back:
        return f"inline policies present again: {', '.join(back)}"
    return None


def _others_additions(before: RoleSnapshot, after: RoleSnapshot, change: Change) -> list[str]:
    ours = {policy_arn(before, n) for n in change.policy_names} | {p.arn for p in before.attached}
    added = [f"managed policy {p.name}" for p in after.attached if p.arn not in ours]
    added += [f"inline policy {n}" for n in sorted(after.inline) if n not in before.inline]
    return added


# --- helpers -----------------------------------------------------------------------------------------------

def _conflict_message(change: Change, conflicts: list[str]) -> str:
    return (f"not rolled back: someone else changed what change {change.id} touched on {change.role_name}, so "
            f"restoring it would overwrite their work: {'; '.join(conflicts)}. Nothing was changed. Roll back "
            "with force to restore the before-image anyway (what it replaces is stored first).")


def _refuse(store: ChangeStore, snapshot: RoleSnapshot, prior: dict[str, Any], proposal_id: str | None,
            requested_by: str | None, expected_hash: str, reason: str) -> ChangeResult:
    change = store.create(account=snapshot.account, role_name=snapshot.name, role_arn=snapshot.arn,
                          before_image={"snapshot": snapshot.to_json(), "managed_policies": prior},
                          before_policy_hash=snapshot.policy_hash(), state=cs.REFUSED, steps=[], documents=[],
                          policy_names=[], expected_policy_hash=expected_hash, proposal_id=proposal_id,
                          requested_by=requested_by, reason=reason)
    return ChangeResult(change.id, cs.REFUSED, snapshot.name, reason)


def _exact_texts(iam: Any, snapshot: RoleSnapshot) -> dict[str, Any] | None:
    """The exact text of every inline policy and every customer managed policy the role holds (what a rollback
    puts back); None when one changed since the snapshot was read."""
    from bot.aws.calls import document_text

    inline: dict[str, str] = {}
    for name, doc in snapshot.inline.items():
        out = iam.get_role_policy(RoleName=snapshot.name, PolicyName=name)
        text = document_text(out, "PolicyDocumentText", "PolicyDocument")
        if not same_document(json.loads(text), doc):
            return None
        inline[name] = text
    managed: dict[str, str] = {}
    for policy in snapshot.attached:
        if policy.aws_managed:
            continue
        version = iam.get_policy_version(PolicyArn=policy.arn, VersionId=policy.default_version_id)["PolicyVersion"]
        managed[policy.arn] = document_text(version, "DocumentText", "Document")
    return {"inline_text": inline, "policy_text": managed}


def _prior_managed_state(iam: Any, snapshot: RoleSnapshot, names: list[str], prefix: str) -> dict[str, Any]:
    """State of every ``tighten-*`` policy this change may write, before it writes: None = did not exist."""
    from bot.aws.calls import document_text

    names = list(dict.fromkeys([*names, *(p.name for p in snapshot.attached
                                           if not p.aws_managed and p.name.startswith(prefix))]))
    out: dict[str, Any] = {}
    for name in names:
        arn = policy_arn(snapshot, name)
        try:
            meta = iam.get_policy(PolicyArn=arn)["Policy"]
        except ClientError as exc:
            if code(exc) != "NoSuchEntity":
                raise
            out[name] = None
            continue
        version = iam.get_policy_version(PolicyArn=arn, VersionId=meta["DefaultVersionId"])["PolicyVersion"]
        text = document_text(version, "DocumentText", "Document")
        out[name] = {"arn": arn, "default_version_id": meta["DefaultVersionId"], "document": json.loads(text),
                     "text": text, "description": meta.get("Description", "")}
    return out
