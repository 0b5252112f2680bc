"""Apply through the worker, post-apply denial alert in the thread (FakeSlackApi), digest from a seeded store."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from bot.demo.fake_slack import FakeSlackApi
from bot.jobs.digest import build_digest, removed_chart_png, render_digest, send_digest
from bot.jobs.scan import run_scan
from bot.jobs.watch import watch_applied_changes
from bot.jobs.worker import Worker, expire_proposals
from bot.store import changes as cs
from bot.store import proposals as ps
from bot.store import scans as sc
from bot.store.roles import KnownRole
from bot.util.clock import iso
from tests.jobs.conftest import ACCOUNT, APPROVER, CHANNEL, DIGEST_CHANNEL, Env, attach_notifier, policy


def _blocks(params: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = params.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else blocks


def _buttons(params: dict[str, Any]) -> list[str]:
    """Button labels: Allow buttons sit beside their denial (section accessories), then the actions blocks."""
    blocks = _blocks(params)
    beside = [b["accessory"]["text"]["text"] for b in blocks if b.get("accessory", {}).get("type") == "button"]
    return [e["text"]["text"] for b in blocks if b.get("type") == "actions" for e in b["elements"]] + beside


def _applied_change(env: Env, slack: FakeSlackApi) -> tuple[str, str, str]:
    attach_notifier(env, slack)
    arn = env.role("reporting", policy(["s3:*"]))
    env.use(arn, "s3:ListAllMyBuckets")
    env.ctx.queue.enqueue("scan", {"account": ACCOUNT, "principal_arn": arn, "requested_by": APPROVER})
    Worker(env.ctx).run_until_idle()
    proposal = env.ctx.proposals.latest(arn)
    assert proposal is not None and proposal.message_ts  # posted for review
    assert env.ctx.proposals.transition(proposal.id, ps.APPROVED, decided_by=APPROVER) is not None
    env.ctx.queue.enqueue("apply", {"proposal_id": proposal.id, "approved_by": APPROVER}, priority=200,
                          dedupe_key=f"apply:{proposal.id}")
    Worker(env.ctx).run_until_idle()
    proposal = env.ctx.proposals.get(proposal.id)
    assert proposal is not None and proposal.state == ps.APPLIED and proposal.change_id
    change = env.ctx.changes.get(proposal.change_id)
    assert change is not None and change.state == cs.APPLIED
    return arn, proposal.id, proposal.change_id


def test_denial_after_apply_posts_thread_message_with_both_buttons_once(env: Env, slack: FakeSlackApi) -> None:
    arn, proposal_id, change_id = _applied_change(env, slack)
    proposal = env.ctx.proposals.get(proposal_id)
    assert proposal is not None
    applied = [p for p in slack.posted(CHANNEL) if p.get("thread_ts") == proposal.message_ts]
    assert applied and "Roll back" in _buttons(applied[-1])  # apply result in the thread

    env.clock.advance(hours=2)
    env.deny(arn, "s3:GetObject", "arn:aws:s3:::reports/2026/q1.csv", event_id="ev-1")
    env.deny(arn, "ec2:RunInstances", "?", event_id="ev-2")  # the old policy never allowed it: not ours
    before = len(slack.posted(CHANNEL))
    alerts = watch_applied_changes(env.ctx)
    assert len(alerts) == 1 and alerts[0].posted
    assert [d.action for d in alerts[0].denials] == ["s3:GetObject"]
    new = slack.posted(CHANNEL)[before:]
    assert len(new) == 1
    message = new[0]
    assert message["thread_ts"] == proposal.message_ts
    assert _buttons(message) == ["Roll back", "Allow s3:GetObject"]
    assert "s3:GetObject" in json.dumps(_blocks(message))

    # each denial reported once; a new one later is reported on its own
    env.clock.advance(minutes=10)
    assert watch_applied_changes(env.ctx) == []
    env.deny(arn, "s3:PutObject", "arn:aws:s3:::reports/out.csv", event_id="ev-3")
    alerts = watch_applied_changes(env.ctx)
    assert [d.action for d in alerts[0].denials] == ["s3:PutObject"]
    assert len(slack.posted(CHANNEL)) == before + 2

    # past the watch window nothing is checked any more
    env.clock.advance(days=env.ctx.config.watch_days + 1)
    env.deny(arn, "s3:DeleteObject", "arn:aws:s3:::reports/old.csv", event_id="ev-4")
    assert watch_applied_changes(env.ctx) == []

    # rollback through the worker restores the role and moves the proposal
    env.ctx.queue.enqueue("rollback", {"change_id": change_id, "requested_by": APPROVER}, priority=300)
    Worker(env.ctx).run_until_idle()
    assert env.ctx.changes.get(change_id).state == cs.ROLLED_BACK  # type: ignore[union-attr]
    assert env.ctx.proposals.get(proposal_id).state == ps.ROLLED_BACK  # type: ignore[union-attr]
    assert env.iam.get_role_policy(RoleName="reporting", PolicyName="reporting-inline")["PolicyDocument"]


def test_stale_apply_is_refused_and_rescanned(env: Env, slack: FakeSlackApi) -> None:
    attach_notifier(env, slack)
    arn = env.role("builder", policy(["s3:*"]))
    env.use(arn, "s3:ListAllMyBuckets")
    outcome = run_scan(env.ctx, ACCOUNT, arn, requested_by=APPROVER)
    assert outcome.proposal is not None and env.ctx.notifier is not None
    assert env.ctx.notifier.post_proposal(outcome.proposal.id)
    env.ctx.proposals.transition(outcome.proposal.id, ps.APPROVED, decided_by=APPROVER)
    env.iam.put_role_policy(RoleName="builder", PolicyName="late", PolicyDocument=json.dumps(policy("sqs:*")))
    env.ctx.queue.enqueue("apply", {"proposal_id": outcome.proposal.id, "approved_by": APPROVER}, priority=200)
    Worker(env.ctx).run_until_idle()
    p = env.ctx.proposals.get(outcome.proposal.id)
    assert p is not None and p.state == ps.STALE and "changed since the proposal" in (p.decision_reason or "")
    assert env.iam.get_role_policy(RoleName="builder", PolicyName="late")  # untouched
    assert env.ctx.changes.list() == []  # nothing was attempted
    assert p.message_ts
    thread = [m for m in slack.posted(CHANNEL) if m.get("thread_ts") == p.message_ts]
    assert thread and "changed since the proposal" in json.dumps(thread[-1])
    # a fresh scan was queued and ran: a new pending proposal that includes the new policy
    fresh = env.ctx.proposals.latest(arn)
    assert fresh is not None and fresh.id != p.id and fresh.state == ps.PENDING
    assert "sqs" in fresh.diff_text


def _seed(env: Env) -> dict[str, str]:
    now = env.clock()
    props, changes = env.ctx.proposals, env.ctx.changes
    ids: dict[str, str] = {}

    def proposal(name: str, removed: int, risk: float) -> str:
        p = props.create(account=ACCOUNT, principal_arn=f"arn:aws:iam::{ACCOUNT}:role/{name}", role_name=name,
                         documents=[policy("s3:ListAllMyBuckets")], stats={"removed": removed}, risk_score=risk)
        return p.id

    def applied(name: str, removed: int) -> str:
        pid = proposal(name, removed, 10.0)
        props.transition(pid, ps.APPROVED, decided_by=APPROVER)
        props.transition(pid, ps.APPLYING)
        change = changes.create(account=ACCOUNT, role_name=name, role_arn=f"arn:aws:iam::{ACCOUNT}:role/{name}",
                                before_image={"snapshot": {}}, before_policy_hash="h", state=cs.APPLYING, steps=[],
                                documents=[], policy_names=[], expected_policy_hash="h", proposal_id=pid,
                                requested_by=APPROVER)
        changes.transition(change.id, cs.APPLIED)
        props.transition(pid, ps.APPLIED, change_id=change.id)
        return change.id

    env.clock.now = now - timedelta(days=3)
    ids["old-waiting"] = proposal("old-waiting", 40, 80.0)
    env.clock.now = now - timedelta(days=20)
    ids["applied-long-ago"] = applied("applied-long-ago", 1000)
    env.clock.now = now - timedelta(hours=5)
    ids["applied-today"] = applied("applied-today", 120)
    ids["rolled-back"] = applied("rolled-back", 30)
    env.clock.now = now - timedelta(hours=2)
    changes.transition(ids["rolled-back"], cs.ROLLING_BACK)
    changes.transition(ids["rolled-back"], cs.ROLLED_BACK, rolled_back_by=APPROVER)
    env.clock.now = now - timedelta(hours=1)
    ids["new-waiting"] = proposal("new-waiting", 7, 45.0)
    env.clock.now = now
    scans = env.ctx.scans
    scans.record(f"arn:aws:iam::{ACCOUNT}:role/old-waiting", account=ACCOUNT, policy_hash="a", usage_fingerprint="b",
                 result=sc.PROPOSED, proposal_id=ids["old-waiting"], risk_score=80.0)
    scans.record(f"arn:aws:iam::{ACCOUNT}:role/new-waiting", account=ACCOUNT, policy_hash="a", usage_fingerprint="b",
                 result=sc.PROPOSED, proposal_id=ids["new-waiting"], risk_score=45.0)
    scans.record(f"arn:aws:iam::{ACCOUNT}:role/applied-today", account=ACCOUNT, policy_hash="a",
                 usage_fingerprint="b", result=sc.PROPOSED, risk_score=95.0)
    scans.record(f"arn:aws:iam::{ACCOUNT}:role/quiet", account=ACCOUNT, policy_hash="a", usage_fingerprint="b",
                 result=sc.ALREADY_TIGHT, risk_score=99.0)
    scans.record(f"arn:aws:iam::{ACCOUNT}:role/throttled", account=ACCOUNT, policy_hash="a", usage_fingerprint="b",
                 result=sc.INCOMPLETE, risk_score=60.0, detail={"notes": ["2 CloudTrail object(s) could not be read"]})
    env.ctx.roles.upsert(KnownRole(account=ACCOUNT, arn=f"arn:aws:iam::{ACCOUNT}:role/newbie", name="newbie",
                                   warnings=["insufficient history: role is 3 days old, lookback is 30 days"]))
    return ids


def test_digest_content_from_seeded_store(env: Env, slack: FakeSlackApi) -> None:
    ids = _seed(env)
    d = build_digest(env.ctx, "daily")
    assert [(w.role_name, w.waiting_text) for w in d.waiting] == [("old-waiting", "3 days"),
                                                                    ("new-waiting", "1 hour")]
    assert sorted(c.role_name for c in d.applied) == ["applied-today", "rolled-back"]
    assert d.actions_removed == 150
    assert [c.id for c in d.rolled_back] == [ids["rolled-back"]]
    assert [r.name for r in d.riskiest] == ["old-waiting", "throttled", "new-waiting"]  # applied/tight left out
    assert "waiting for review" in d.riskiest[0].status
    assert dict(d.insufficient_history) == {
        "newbie": "insufficient history: role is 3 days old, lookback is 30 days",
        "throttled": "2 CloudTrail object(s) could not be read"}
    # cumulative removed over time: 1000 twenty days ago, +150 today, -30 rolled back today
    by_day = dict(d.removed_by_day)
    assert by_day[iso(env.clock() - timedelta(days=20))[:10]] == 1000
    assert by_day[iso(env.clock())[:10]] == 1120

    weekly = build_digest(env.ctx, "weekly")
    assert weekly.actions_removed == 150 and len(weekly.waiting) == 2

    text, blocks = render_digest(d)
    body = json.dumps(blocks)
    assert "2 proposals waiting" in text and "150 actions removed" in text
    for needle in ("old-waiting", "waiting 3 days", "applied-today", "rolled-back", "newbie", "throttled"):
        assert needle in body
    assert removed_chart_png(d).startswith(b"\x89PNG")

    attach_notifier(env, slack)
    assert send_digest(env.ctx, DIGEST_CHANNEL, "daily", chart=True)
    assert any(png.startswith(b"\x89PNG") for png in slack.uploads.values())
    posted = slack.posted(DIGEST_CHANNEL)
    assert len(posted) == 1 and "Tighten daily digest" in posted[0]["text"]
    assert any(b.get("type") == "header" for b in _blocks(posted[0]))


def test_expire_stale_proposals(env: Env) -> None:
    old = env.ctx.proposals.create(account=ACCOUNT, principal_arn=f"arn:aws:iam::{ACCOUNT}:role/a", role_name="a",
                                   documents=[])
    env.clock.advance(days=env.ctx.config.proposal_ttl_days + 1)
    young = env.ctx.proposals.create(account=ACCOUNT, principal_arn=f"arn:aws:iam::{ACCOUNT}:role/b",
                                     role_name="b", documents=[])
    assert expire_proposals(env.ctx) == [old.id]
    assert env.ctx.proposals.get(young.id).state == ps.PENDING  # type: ignore[union-attr]
