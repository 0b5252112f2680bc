"""An apply interrupted by AWS is finished in place by the running worker, says truthfully what happened, and
posts its outcome exactly once; an approval never exists without its apply item.

Faults are injected into the real boto3 client talking to moto_server through botocore's ``before-call`` event."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from bot.jobs.worker import Worker
from bot.slack import operations
from bot.slack.context import AppContext
from bot.store import changes as cs
from bot.store import proposals as ps
from tests.jobs.conftest import ACCOUNT, APPROVER, Env, attach_notifier, policy

ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
REPO = Path(__file__).resolve().parents[2]


class Crash(BaseException):
    """The process dies here."""


def _proposal(env: Env, name: str = "reporting") -> ps.Proposal:
    arn = env.role(name, policy("s3:*"))
    env.iam.attach_role_policy(RoleName=name, PolicyArn=ADMIN)
    env.use(arn, "s3:ListAllMyBuckets")
    env.ctx.queue.enqueue("scan", {"account": ACCOUNT, "principal_arn": arn})
    Worker(env.ctx).run_until_idle()
    proposal = env.ctx.proposals.latest(arn)
    assert proposal is not None and proposal.state == ps.PENDING
    return proposal


def _approve(env: Env, proposal: ps.Proposal) -> None:
    app = AppContext(db_path=env.ctx.db_path, config=env.ctx.config, clock=env.clock)
    outcome = operations.approve(app, None, APPROVER, proposal.id)  # type: ignore[arg-type]
    assert outcome.ok, outcome.message
    app._close_thread_stores()


def _thread_posts(slack: Any, proposal: ps.Proposal) -> list[dict[str, Any]]:
    stored = proposal
    return [c.params for c in slack.calls_to("chat.postMessage", ok_only=True)
            if c.params.get("thread_ts") == stored.message_ts
            and c.params.get("text", "").startswith(("Applied", "Apply failed"))]


def _faulty(env: Env, operation: str, times: int) -> list[str]:
    """``operation`` fails with a lost connection ``times`` times (every time: -1); returns the attempts seen."""
    seen: list[str] = []

    def fail(model: Any, **_: Any) -> None:
        if model.name == operation:
            seen.append(model.name)
            if times < 0 or len(seen) <= times:
                raise EndpointConnectionError(endpoint_url=env.iam.meta.endpoint_url)

    env.iam.meta.events.register("before-call.iam", fail)
    return seen


def test_lost_connection_mid_apply_is_retried_in_place_and_posted_once(env: Env, slack: Any) -> None:
    attach_notifier(env, slack)
    env.ctx.sleep = lambda seconds: None  # backoff without waiting
    proposal = _proposal(env)
    _approve(env, proposal)
    attempts = _faulty(env, "DetachRolePolicy", times=1)

    Worker(env.ctx).run_until_idle()  # no restart, no clock advance: the same run finishes it

    assert attempts == ["DetachRolePolicy", "DetachRolePolicy"]
    stored = env.ctx.proposals.get(proposal.id)
    assert stored is not None and stored.state == ps.APPLIED
    (change,) = env.ctx.changes.list()
    assert change.state == cs.APPLIED and stored.change_id == change.id
    attached = [p["PolicyArn"] for p in env.iam.list_attached_role_policies(RoleName="reporting")["AttachedPolicies"]]
    assert attached == [f"arn:aws:iam::{ACCOUNT}:policy/tighten-reporting"]
    (post,) = _thread_posts(slack, stored)
    blocks = json.dumps(post["blocks"])
    assert "*Applied*" in blocks and change.id in blocks and "tighten.change.rollback" in blocks
    assert "changed since the proposal" not in blocks
    Worker(env.ctx).run_until_idle()  # nothing left to do, nothing posted again
    assert len(_thread_posts(slack, stored)) == 1


def test_persistent_failure_restores_the_role_and_says_so_once(env: Env, slack: Any) -> None:
    attach_notifier(env, slack)
    env.ctx.sleep = lambda seconds: None
    proposal = _proposal(env)
    before = json.dumps(env.iam.get_role_policy(RoleName="reporting", PolicyName="reporting-inline")["PolicyDocument"])
    _approve(env, proposal)
    attempts = _faulty(env, "DeleteRolePolicy", times=-1)

    Worker(env.ctx).run_until_idle()

    assert len(attempts) == 6  # the first try and 5 retries with backoff
    stored = env.ctx.proposals.get(proposal.id)
    assert stored is not None and stored.state == ps.FAILED
    (change,) = env.ctx.changes.list()
    assert change.state == cs.FAILED
    attached = [p["PolicyArn"] for p in env.iam.list_attached_role_policies(RoleName="reporting")["AttachedPolicies"]]
    assert attached == [ADMIN]
    assert json.dumps(env.iam.get_role_policy(RoleName="reporting", PolicyName="reporting-inline")
                      ["PolicyDocument"]) == before
    (post,) = _thread_posts(slack, stored)
    text = json.dumps(post["blocks"])
    assert "*Apply failed*" in text and "EndpointConnectionError" in text and "restored" in text
    assert "tighten.change.rollback" not in text  # nothing to roll back


def test_crash_during_approval_never_leaves_an_approved_proposal_without_its_apply(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    proposal = _proposal(env)
    app = AppContext(db_path=env.ctx.db_path, config=env.ctx.config, clock=env.clock)

    def dies(*args: Any, **kwargs: Any) -> Any:
        raise Crash()

    monkeypatch.setattr(type(app.queue), "enqueue", dies)
    with pytest.raises(Crash):
        operations.approve(app, None, APPROVER, proposal.id)  # type: ignore[arg-type]
    monkeypatch.undo()
    app._close_thread_stores()

    stored = env.ctx.proposals.get(proposal.id)
    assert stored is not None and stored.state == ps.PENDING  # the approval rolled back with its missing item
    assert env.ctx.queue.active("apply", f"apply:{proposal.id}") is None


def test_approved_proposal_without_apply_item_is_queued_at_start_up(env: Env) -> None:
    proposal = _proposal(env)
    # a store written by an older version: approved, but the process died before queueing the apply
    env.ctx.proposals.transition(proposal.id, ps.APPROVED, decided_by=APPROVER)
    assert env.ctx.queue.active("apply", f"apply:{proposal.id}") is None

    worker = Worker(env.ctx)
    recovered = worker.recover()

    assert f"proposal:{proposal.id}" in recovered["queued"]
    worker.run_until_idle()
    stored = env.ctx.proposals.get(proposal.id)
    assert stored is not None and stored.state == ps.APPLIED
    assert worker.recover()["queued"] == []


def test_rollback_of_a_change_others_edited_is_refused_with_a_force_button(env: Env, slack: Any) -> None:
    attach_notifier(env, slack)
    proposal = _proposal(env)
    _approve(env, proposal)
    Worker(env.ctx).run_until_idle()
    (change,) = env.ctx.changes.list()
    env.iam.attach_role_policy(RoleName="reporting", PolicyArn=ADMIN)  # someone puts admin back
    app = AppContext(db_path=env.ctx.db_path, config=env.ctx.config, clock=env.clock)
    assert operations.request_rollback(app, None, APPROVER, change.id).ok  # type: ignore[arg-type]

    Worker(env.ctx).run_until_idle()

    assert env.ctx.changes.get(change.id).state == cs.APPLIED  # type: ignore[union-attr]
    stopped = [c.params for c in slack.calls_to("chat.postMessage", ok_only=True)
               if "Rollback stopped" in c.params.get("text", "")]
    assert len(stopped) == 1
    blocks = json.dumps(stopped[0]["blocks"])
    assert "AdministratorAccess was attached to reporting again" in blocks and "tighten.change.rollback_force" in blocks

    assert operations.request_rollback(app, None, APPROVER, change.id, force=True).ok  # type: ignore[arg-type]
    Worker(env.ctx).run_until_idle()
    assert env.ctx.changes.get(change.id).state == cs.ROLLED_BACK  # type: ignore[union-attr]
    assert env.ctx.proposals.get(proposal.id).state == ps.ROLLED_BACK  # type: ignore[union-attr]
    app._close_thread_stores()


def test_two_worker_processes_on_one_store_run_each_step_once(env: Env, slack: Any, tmp_path: Any) -> None:
    """``tighten serve`` mid-apply while a second worker (cron, a rolling restart) starts on the same store."""
    attach_notifier(env, slack)
    proposal = _proposal(env)
    _approve(env, proposal)
    env.ctx.close()
    log, hold, holding = tmp_path / "writes.log", tmp_path / "go-on", tmp_path / "holding"
    common = [sys.executable, "-m", "tests.jobs.worker_process", "--db", env.ctx.db_path,
              "--endpoint", env.iam.meta.endpoint_url, "--slack-url", slack.base_url,
              "--config-dir", str(tmp_path), "--log", str(log)]
    first = subprocess.Popen([*common, "--hold", str(hold), "--holding", str(holding)], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not holding.exists():  # the first worker is between two IAM writes of the apply
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)
        second = subprocess.run([*common, "--done", str(hold)], cwd=REPO, capture_output=True, text=True,
                                timeout=120)
        assert second.returncode == 0, second.stderr
        hold.touch()
        out, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            first.kill()
    writes = [tuple(json.loads(line)) for line in log.read_text().splitlines()]
    assert {pid for pid, _, _ in writes} == {first.pid}  # the second worker touched nothing
    steps = Counter((op, target) for _, op, target in writes)
    assert steps and all(n == 1 for n in steps.values()), steps
    assert json.loads(second.stdout)["ran"] == 0
    stored = env.ctx.proposals.get(proposal.id)
    assert stored is not None and stored.state == ps.APPLIED
    assert len(_thread_posts(slack, stored)) == 1
