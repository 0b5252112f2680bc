"""Jobs and roles managed as code (moto IAM, fake Slack): the worker refuses a direct apply unless
iac.direct_apply allows it; a role put back to its old permissions after a Tighten apply is reported once."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from bot.demo.fake_slack import FakeSlackApi
from bot.jobs.planner import plan_scans
from bot.jobs.scan import run_scan
from bot.jobs.worker import Worker
from bot.store import changes as cs
from bot.store import proposals as ps
from tests.jobs.conftest import ACCOUNT, APPROVER, CHANNEL, Env, attach_notifier, policy

STACK = {"Key": "aws:cloudformation:stack-name", "Value": "reporting"}


def _blocks(params: dict[str, Any]) -> str:
    blocks = params.get("blocks")
    return blocks if isinstance(blocks, str) else json.dumps(blocks)


def _approve_and_apply(env: Env, proposal_id: str) -> ps.Proposal:
    assert env.ctx.proposals.transition(proposal_id, ps.APPROVED, decided_by=APPROVER) is not None
    env.ctx.queue.enqueue("apply", {"proposal_id": proposal_id, "approved_by": APPROVER}, priority=200,
                          dedupe_key=f"apply:{proposal_id}")
    Worker(env.ctx).run_until_idle()
    proposal = env.ctx.proposals.get(proposal_id)
    assert proposal is not None
    return proposal


def test_worker_refuses_direct_apply_of_a_role_managed_as_code(env: Env, slack: FakeSlackApi) -> None:
    attach_notifier(env, slack)
    arn = env.role("reporting", policy(["s3:*"]))
    env.use(arn, "s3:ListAllMyBuckets")
    outcome = run_scan(env.ctx, ACCOUNT, arn, requested_by=None)
    assert outcome.proposal is not None and not outcome.proposal.managed_as_code
    env.ctx.notifier.post_proposal(outcome.proposal.id)  # type: ignore[union-attr]
    # the stack tag appears after the scan: the worker reads the role again and refuses
    env.iam.tag_role(RoleName="reporting", Tags=[STACK])
    p = _approve_and_apply(env, outcome.proposal.id)
    assert p.state == ps.FAILED and "managed as code" in (p.decision_reason or "")
    assert env.ctx.changes.list() == []  # nothing was attempted
    assert env.iam.get_role_policy(RoleName="reporting", PolicyName="reporting-inline")["PolicyDocument"]
    thread = [m for m in slack.posted(CHANNEL) if m.get("thread_ts") == p.message_ts]
    assert thread and "managed as code" in _blocks(thread[-1])
    assert any(e["action"] == "apply.refused_managed_as_code" for e in env.ctx.audit.entries(p.id))


def test_direct_apply_allowed_per_account(env: Env, slack: FakeSlackApi) -> None:
    account = env.ctx.config.accounts[0]
    env.ctx.config = replace(env.ctx.config, accounts=(replace(account, iac_direct_apply=True),))
    attach_notifier(env, slack)
    arn = env.role("reporting", policy(["s3:*"]))
    env.iam.tag_role(RoleName="reporting", Tags=[STACK])
    env.use(arn, "s3:ListAllMyBuckets")
    outcome = run_scan(env.ctx, ACCOUNT, arn, requested_by=None)
    p = outcome.proposal
    assert p is not None and p.managed_as_code and p.iac["direct_apply"] is True
    env.ctx.notifier.post_proposal(p.id)  # type: ignore[union-attr]
    message = slack.posted(CHANNEL)[-1]
    assert "Apply directly" in _blocks(message) and "Open as CloudFormation" in _blocks(message)
    assert _approve_and_apply(env, p.id).state == ps.APPLIED


def test_drift_back_to_the_old_permissions_is_reported_once(env: Env, slack: FakeSlackApi) -> None:
    attach_notifier(env, slack)
    old = policy(["s3:*"])
    arn = env.role("reporting", old)
    env.use(arn, "s3:ListAllMyBuckets")
    outcome = run_scan(env.ctx, ACCOUNT, arn, requested_by=None)
    assert outcome.proposal is not None
    env.ctx.notifier.post_proposal(outcome.proposal.id)  # type: ignore[union-attr]
    p = _approve_and_apply(env, outcome.proposal.id)
    assert p.state == ps.APPLIED and p.change_id

    # an inventory of the role as Tighten left it: nothing to say
    posts = len(slack.posted(CHANNEL))
    plan_scans(env.ctx)
    assert len(slack.posted(CHANNEL)) == posts

    # a pipeline puts the old policy back (same permissions, other wording) and removes Tighten's
    for attached in env.iam.list_attached_role_policies(RoleName="reporting")["AttachedPolicies"]:
        env.iam.detach_role_policy(RoleName="reporting", PolicyArn=attached["PolicyArn"])
    reworded = {"Version": "2012-10-17", "Statement": [{"Sid": "Back", "Effect": "Allow", "Action": ["s3:*"],
                                                        "Resource": ["*"]}]}
    env.iam.put_role_policy(RoleName="reporting", PolicyName="from-terraform", PolicyDocument=json.dumps(reworded))
    env.clock.advance(hours=1)
    plan_scans(env.ctx)
    alerts = [m for m in slack.posted(CHANNEL)[posts:] if "back to the permissions" in _blocks(m)]
    assert len(alerts) == 1 and alerts[0]["thread_ts"] == p.message_ts and alerts[0].get("reply_broadcast")
    assert p.change_id in _blocks(alerts[0])
    change = env.ctx.changes.get(p.change_id)
    assert change is not None and change.state == cs.APPLIED  # reported, not acted on
    # later inventories of the same state say nothing more
    env.clock.advance(hours=1)
    plan_scans(env.ctx)
    assert len([m for m in slack.posted(CHANNEL) if "back to the permissions" in _blocks(m)]) == 1


def test_a_partly_deployed_change_does_not_close_the_proposal(env: Env, slack: FakeSlackApi) -> None:
    attach_notifier(env, slack)
    arn = env.role("reporting", policy(["s3:*", "sqs:*"]))
    env.iam.tag_role(RoleName="reporting", Tags=[STACK])
    env.use(arn, "s3:ListAllMyBuckets")
    outcome = run_scan(env.ctx, ACCOUNT, arn, requested_by=None)
    p = outcome.proposal
    assert p is not None and p.managed_as_code
    # the team removed sqs:* but kept s3:*: narrower than before, wider than the proposal
    env.iam.put_role_policy(RoleName="reporting", PolicyName="reporting-inline",
                            PolicyDocument=json.dumps(policy(["s3:*"])))
    from bot.aws.inventory import get_role_snapshot
    from bot.jobs.iac import reconcile_role

    assert reconcile_role(env.ctx, get_role_snapshot(env.iam, "reporting")) == []
    stored = env.ctx.proposals.get(p.id)
    assert stored is not None and stored.state == ps.PENDING
    assert "s3:" in stored.iac.get("last_difference", "")
