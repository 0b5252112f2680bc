"""The two-person rule holds: whoever added an allowlist entry a proposal grants something because of cannot
approve it (the scan that follows has no requester); an entry written by hand has no author."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from bot.config import Account, Approvers
from bot.jobs.worker import Worker
from bot.slack import operations
from bot.slack.approvals import approval_gate
from bot.slack.context import AppContext
from bot.store import proposals as ps
from bot.store.allowlist import add_entry
from tests.jobs.conftest import ACCOUNT, APPROVER, CHANNEL, Env, policy

CAROL = "U0CAROL001"  # a second approver


def _two_approvers(env: Env, **kw: Any) -> AppContext:
    env.ctx.config = dataclasses.replace(
        env.ctx.config, accounts=(Account(id=ACCOUNT, name="test", channel=CHANNEL,
                                          approvers=Approvers(users=(APPROVER, CAROL))),), **kw)
    return AppContext(db_path=env.ctx.db_path, config=env.ctx.config, clock=env.clock)


def _scheduled_scan(env: Env, arn: str) -> ps.Proposal:
    env.ctx.queue.enqueue("scan", {"account": ACCOUNT, "principal_arn": arn})  # planned: nobody asked
    Worker(env.ctx).run_until_idle()
    proposal = env.ctx.proposals.latest(arn)
    assert proposal is not None and proposal.state == ps.PENDING and proposal.requested_by is None
    return proposal


def test_allowlist_author_cannot_approve_what_their_entry_grants(env: Env) -> None:
    app = _two_approvers(env)
    arn = env.role("deployer", policy(["s3:*", "iam:PassRole"]))
    env.use(arn, "s3:ListAllMyBuckets")
    added = operations.allow_action(app, None, APPROVER, account=ACCOUNT, principal_arn=arn,  # type: ignore[arg-type]
                                    action="iam:PassRole", resource=None, reason="deploys pass the task role",
                                    rescan=False)
    assert added.ok, added.message
    proposal = _scheduled_scan(env, arn)
    assert "iam:PassRole" in str(proposal.documents)

    refused = operations.approve(app, None, APPROVER, proposal.id)  # type: ignore[arg-type]

    assert not refused.ok and "allowlist entry `iam:PassRole`" in refused.message
    assert env.ctx.proposals.get(proposal.id).state == ps.PENDING  # type: ignore[union-attr]
    gate = approval_gate(app.config, proposal)
    assert [e.user for e in gate.excluded] == [APPROVER] and gate.approvers.users == (APPROVER, CAROL)
    assert operations.approve(app, None, CAROL, proposal.id).ok  # type: ignore[arg-type]


def test_self_approval_setting_lifts_the_rule(env: Env) -> None:
    app = _two_approvers(env, allow_self_approval=True)
    arn = env.role("deployer", policy(["s3:*", "iam:PassRole"]))
    env.use(arn, "s3:ListAllMyBuckets")
    assert operations.allow_action(app, None, APPROVER, account=ACCOUNT, principal_arn=arn,  # type: ignore[arg-type]
                                   action="iam:PassRole", resource=None, reason="r", rescan=False).ok
    proposal = _scheduled_scan(env, arn)
    assert operations.approve(app, None, APPROVER, proposal.id).ok  # type: ignore[arg-type]


def test_entry_written_by_hand_has_no_author(env: Env) -> None:
    app = _two_approvers(env)
    arn = env.role("deployer", policy(["s3:*", "iam:PassRole"]))
    env.use(arn, "s3:ListAllMyBuckets")
    add_entry(Path(str(env.ctx.config.allowlist_path)), arn, "iam:PassRole", None, "written in the file")
    proposal = _scheduled_scan(env, arn)
    assert proposal.excluded_approvers == []
    assert operations.approve(app, None, APPROVER, proposal.id).ok  # type: ignore[arg-type]
