"""Allow after an apply: the access a Tighten change removed comes back only through a reviewed restore proposal,
for exactly the allowed action and resource, and never beyond what the role held before that change.

Real parts: moto IAM on 127.0.0.1, the worker, the watch posting its alert to the fake Slack Web API, the Allow
operation reading the stored offer the button refers to. The oracle for what a proposal grants is the policy
JSON itself, read statement by statement here (not the generator's or the containment check's view of it).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from bot.config import Account, Approvers
from bot.demo.fake_slack import FakeSlackApi
from bot.jobs.watch import watch_applied_changes
from bot.jobs.worker import Worker
from bot.slack import operations
from bot.slack.context import AppContext
from bot.store import changes as cs
from bot.store import proposals as ps
from bot.store import scans as sc
from bot.store.allowlist import add_entry
from tests.jobs.conftest import ACCOUNT, APPROVER, CHANNEL, Env, attach_notifier, policy

CAROL = "U0CAROL001"
KEY = "arn:aws:s3:::reports/2026/q1.csv"


def _grants(documents: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(action, resource) of every Allow statement, as written (strings or lists)."""
    out: set[tuple[str, str]] = set()
    for doc in documents:
        statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
        for st in statements:
            assert st["Effect"] == "Allow" and "NotAction" not in st and "NotResource" not in st
            actions = [st["Action"]] if isinstance(st["Action"], str) else st["Action"]
            resources = [st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"]
            out |= {(a.lower(), r) for a in actions for r in resources}
    return out


def _role_documents(env: Env, name: str) -> list[dict[str, Any]]:
    """The role's inline and attached policies as IAM returns them now."""
    names = env.iam.list_role_policies(RoleName=name)["PolicyNames"]
    docs = [env.iam.get_role_policy(RoleName=name, PolicyName=n)["PolicyDocument"] for n in names]
    for attached in env.iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        meta = env.iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        docs.append(env.iam.get_policy_version(PolicyArn=attached["PolicyArn"],
                                               VersionId=meta["DefaultVersionId"])["PolicyVersion"]["Document"])
    return [json.loads(d) if isinstance(d, str) else d for d in docs]


def _setup(env: Env, slack: FakeSlackApi) -> tuple[AppContext, str, str]:
    """A role that held s3:* (and no kms), tightened to what it used and applied; returns (app, arn, change id)."""
    env.ctx.config = dataclasses.replace(env.ctx.config, accounts=(Account(
        id=ACCOUNT, name="test", channel=CHANNEL, approvers=Approvers(users=(APPROVER, CAROL))),))
    attach_notifier(env, slack)
    app = AppContext(db_path=env.ctx.db_path, config=env.ctx.config, clock=env.clock)
    arn = env.role("reporting", policy(["s3:*"]))
    env.use(arn, "s3:ListAllMyBuckets")
    env.ctx.queue.enqueue("scan", {"account": ACCOUNT, "principal_arn": arn})
    Worker(env.ctx).run_until_idle()
    first = env.ctx.proposals.latest(arn)
    assert first is not None and operations.approve(app, None, APPROVER, first.id).ok  # type: ignore[arg-type]
    Worker(env.ctx).run_until_idle()
    first = env.ctx.proposals.get(first.id)
    assert first is not None and first.state == ps.APPLIED and first.change_id
    assert ("s3:getobject", KEY) not in _grants(_role_documents(env, "reporting"))
    return app, arn, first.change_id


def _allow_button(env: Env, slack: FakeSlackApi, arn: str) -> str:
    env.clock.advance(hours=1)
    env.deny(arn, "s3:GetObject", KEY, event_id="ev-1")
    (alert,) = watch_applied_changes(env.ctx)
    assert alert.posted
    message = slack.posted(CHANNEL)[-1]
    blocks = message["blocks"] if isinstance(message["blocks"], list) else json.loads(message["blocks"])
    (value,) = [b["accessory"]["value"] for b in blocks if b.get("accessory", {}).get("type") == "button"]
    return value


def test_allow_after_apply_restores_exactly_the_denied_call_through_review(env: Env, slack: FakeSlackApi) -> None:
    app, arn, change_id = _setup(env, slack)
    # an allowlist entry for something the role never held before the change: a restore must not grant it
    add_entry(env.ctx.config.allowlist_path or "", arn, "kms:Decrypt", None, "not held before")
    offer = _allow_button(env, slack, arn)

    outcome = operations.allow_offered(app, None, APPROVER, offer)  # type: ignore[arg-type]
    assert outcome.ok and "restores it" in outcome.message
    Worker(env.ctx).run_until_idle()
    restore = env.ctx.proposals.latest(arn)
    assert restore is not None and restore.state == ps.PENDING and restore.message_ts  # posted for review
    assert restore.checks["restore"] == {"change_id": change_id, "proposal_id": env.ctx.changes.get(
        change_id).proposal_id, "actions": ["s3:GetObject"]}  # type: ignore[union-attr]
    granted = _grants(restore.documents)
    before = _grants(_role_documents(env, "reporting"))
    # the denied call on exactly its object comes back; nothing else new (no bucket-wide, no kms)
    assert granted - before == {("s3:getobject", KEY)}
    assert not any(a.startswith("kms:") for a, _ in granted)

    # the review says what it restores, above the fold; whoever clicked Allow may not approve it
    review = slack.messages[(CHANNEL, restore.message_ts)]
    blocks = review["blocks"] if isinstance(review["blocks"], list) else json.loads(review["blocks"])
    first = blocks[1]["text"]["text"]
    assert f"*Restores access removed by change `{change_id}`*: grants back `s3:GetObject`" in first
    assert f"*May not:* <@{APPROVER}>" in first
    refused = operations.approve(app, None, APPROVER, restore.id)  # type: ignore[arg-type]
    assert not refused.ok and "two-person rule" in refused.message

    assert operations.approve(app, None, CAROL, restore.id).ok  # type: ignore[arg-type]
    Worker(env.ctx).run_until_idle()
    applied = env.ctx.proposals.get(restore.id)
    assert applied is not None and applied.state == ps.APPLIED, applied
    now = _grants(_role_documents(env, "reporting"))
    assert ("s3:getobject", KEY) in now and ("s3:getobject", "arn:aws:s3:::reports/*") not in now
    assert now - before == {("s3:getobject", KEY)}


def test_restore_is_refused_once_the_change_is_rolled_back_or_followed(env: Env, slack: FakeSlackApi) -> None:
    app, arn, change_id = _setup(env, slack)
    offer = _allow_button(env, slack, arn)
    # a newer applied change on the role: the restore of the older one is refused, with the reason recorded
    newer = env.ctx.changes.create(account=ACCOUNT, role_name="reporting", role_arn=arn, before_image={"test": "newer"},
                                   before_policy_hash="x", state=cs.APPLYING, steps=[], documents=[],
                                   policy_names=[], expected_policy_hash="x", proposal_id=None,
                                   requested_by=CAROL, reason="test")
    env.ctx.changes.transition(newer.id, cs.APPLIED)
    env.ctx.queue.enqueue("scan", {"account": ACCOUNT, "principal_arn": arn, "restore": change_id})
    Worker(env.ctx).run_until_idle()
    record = env.ctx.scans.get(arn)
    assert record is not None and record.result == sc.REFUSED and record.detail["check"] == "restore"
    assert newer.id in record.detail["reason"]
    env.ctx.changes.transition(newer.id, cs.ROLLING_BACK)
    env.ctx.changes.transition(newer.id, cs.ROLLED_BACK)

    # rolled back: the role holds its earlier policy again, so Allow only records the entry
    env.ctx.changes.transition(change_id, cs.ROLLING_BACK)
    env.ctx.changes.transition(change_id, cs.ROLLED_BACK)
    outcome = operations.allow_offered(app, None, APPROVER, offer)  # type: ignore[arg-type]
    assert outcome.ok and "nothing to restore" in outcome.message and outcome.work_item is None
    env.ctx.queue.enqueue("scan", {"account": ACCOUNT, "principal_arn": arn, "restore": change_id})
    Worker(env.ctx).run_until_idle()
    record = env.ctx.scans.get(arn)
    assert record is not None and record.result == sc.REFUSED and "rolled_back" in record.detail["reason"]
    # an unknown change id, and a change of another role
    other = env.ctx.changes.create(account=ACCOUNT, role_name="other", role_arn=arn + "-other",
                                   before_image={"test": "other"}, before_policy_hash="x", state=cs.APPLYING,
                                   steps=[], documents=[], policy_names=[], expected_policy_hash="x",
                                   proposal_id=None, requested_by=CAROL, reason="test")
    env.ctx.changes.transition(other.id, cs.APPLIED)
    for bogus, why in (("c-00000000", "unknown"), (other.id, "not " + arn)):
        env.ctx.queue.enqueue("scan", {"account": ACCOUNT, "principal_arn": arn, "restore": bogus})
        Worker(env.ctx).run_until_idle()
        record = env.ctx.scans.get(arn)
        assert record is not None and record.result == sc.REFUSED and why in record.detail["reason"]
