"""Roles managed as code, end to end: the real planner and scan against moto, the review message posted through
the fake Slack Web API, signed clicks to the Bolt app (Open as CloudFormation / Terraform, Mark as applied via
IaC, a refused Approve), the snippet deployed the way its own tool would, and the next inventory closing the
proposal."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from bot.config import Account, Approvers, Config, IacRule
from bot.demo.fake_slack import FakeSlackApi
from bot.jobs.context import JobContext
from bot.jobs.planner import plan_scans
from bot.jobs.worker import Worker
from bot.slack.app import make_client
from bot.slack.ids import ActionId
from bot.slack.notify import Notifier
from bot.store.proposals import APPLIED_VIA_CODE, PENDING
from bot.store.usage import ObjectUsage
from bot.util.clock import iso, utcnow
from tests.policy.iac_readback import cloudformation_policies, terraform_policies
from tests.policy.test_iac import cfn_lint, normal
from tests.slack.conftest import (
    ALICE,
    BOB,
    CHANNEL,
    GROUP,
    MALLORY,
    Harness,
    _harness,
    action_ids,
    wait_until,
)

ACCOUNT = "123456789012"  # moto's account
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                 "Action": "sts:AssumeRole"}]}
BROAD = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*", "dynamodb:*"], "Resource": "*"}]}


@pytest.fixture()
def flow(tmp_path: Path, fake: FakeSlackApi, moto_endpoint: str) -> Iterator[tuple[Harness, JobContext, Any]]:
    config = Config(db_path=str(tmp_path / "tighten.db"), lookback_days=30,
                    accounts=(Account(id=ACCOUNT, name="prod", channel=CHANNEL,
                                      approvers=Approvers(users=(ALICE,), groups=(GROUP,))),),
                    iac_rules=(IacRule(tool="terraform", tag="ManagedBy=terraform", where="iac.rules[0]"),))
    iam = boto3.client("iam", endpoint_url=moto_endpoint, region_name="us-east-1")
    for h in _harness(tmp_path, fake, config):
        jobs = JobContext(db_path=h.ctx.db_path, config=config, iam_for=lambda account: iam)
        jobs.notifier = Notifier(make_client("xoxb-test", base_url=fake.base_url, wait_scale=0.0, backoff=0.001),
                                 h.ctx)
        yield h, jobs, iam
        jobs.close()


def _role(jobs: JobContext, iam: Any, name: str, tags: dict[str, str]) -> str:
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST),
                          Tags=[{"Key": k, "Value": v} for k, v in tags.items()])["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName=f"{name}-inline", PolicyDocument=json.dumps(BROAD))
    now = utcnow()
    obj = ObjectUsage(key=f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/{name}.json.gz", size=1, etag=name, events=2,
                      usage_events=2)
    t = iso(now.replace(microsecond=0) - __import__("datetime").timedelta(days=1))
    for action, resource in (("s3:GetObject", "arn:aws:s3:::orders-data/in/1.json"),
                             ("dynamodb:Query", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders")):
        obj.usage[(ACCOUNT, arn, action, resource, "", t[:10])] = [3, t, t]
    obj.principals[arn] = ["role", ACCOUNT, False, 6, 0, t, t]
    jobs.usage.record_objects([obj])
    return arn


def _scan(jobs: JobContext, arn: str) -> Any:
    plan_scans(jobs)
    Worker(jobs, kinds=("scan",)).run_until_idle()
    (proposal,) = jobs.proposals.list(principal_arn=arn)
    assert proposal.state == PENDING and proposal.message_ts
    return proposal


def _uploaded(fake: FakeSlackApi, count: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(title, content, completeUploadExternal params) of the files of the first ``count`` upload calls."""
    fake.wait_for("files.completeUploadExternal", count)
    out = []
    for call in fake.calls_to("files.completeUploadExternal")[:count]:
        files = call.params["files"]
        files = json.loads(files) if isinstance(files, str) else files
        for f in files:
            out.append((f.get("title", ""), fake.uploads[f["id"]].decode(), call.params))
    return out


def _deploy(iam: Any, role: str, policies: list[dict[str, Any]]) -> None:
    """What the role's own tool does with the snippet: the old inline policy removed, the new ones put."""
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        iam.delete_role_policy(RoleName=role, PolicyName=name)
    for p in policies:
        assert p["kind"] == "inline" and p["role"] == role
        iam.put_role_policy(RoleName=role, PolicyName=p["name"], PolicyDocument=json.dumps(p["document"]))


def test_cloudformation_role_message_snippets_refused_approve_and_auto_close(flow: Any) -> None:
    h, jobs, iam = flow
    arn = _role(jobs, iam, "orders-api", {"aws:cloudformation:stack-name": "orders<prod>",
                                          "aws:cloudformation:logical-id": "OrdersApiRole"})
    p = _scan(jobs, arn)
    assert p.managed_as_code["stack"] == "orders<prod>" and p.iac["direct_apply"] is False
    message = h.fake.messages[(CHANNEL, p.message_ts)]
    assert action_ids(message) == [ActionId.OPEN_CLOUDFORMATION, ActionId.OPEN_TERRAFORM,
                                    ActionId.MARK_APPLIED_VIA_CODE, ActionId.REJECT, ActionId.VIEW_POLICY]
    text = json.dumps(message["blocks"])
    assert "Managed as code" in text and "CloudFormation stack orders&lt;prod&gt;" in text  # escaped
    assert "orders<prod>" not in text

    status = h.command("status orders-api")
    assert "Managed as code: `CloudFormation stack orders&lt;prod&gt;" in json.dumps(status)

    # a forged Approve click (the button is not there) is refused: nothing queued
    assert h.click(ActionId.APPROVE, p.id, user=ALICE, ts=p.message_ts) == 200
    wait_until(lambda: h.fake.calls_to("chat.postEphemeral"))
    assert "managed as code" in h.fake.calls_to("chat.postEphemeral")[-1].params["text"]
    assert jobs.proposals.get(p.id).state == PENDING and not jobs.queue.pending("apply")

    # anyone in the channel may open the snippets: files in the review thread
    uploads_before = len(h.fake.calls_to("files.completeUploadExternal"))
    assert h.click(ActionId.OPEN_CLOUDFORMATION, p.id, user=MALLORY, ts=p.message_ts) == 200
    wait_until(lambda: len(h.fake.calls_to("files.completeUploadExternal")) > uploads_before)
    assert h.click(ActionId.OPEN_TERRAFORM, p.id, user=MALLORY, ts=p.message_ts) == 200
    wait_until(lambda: len(h.fake.calls_to("files.completeUploadExternal")) > uploads_before + 1)
    snippets = {title: (content, params) for title, content, params in _uploaded(h.fake, uploads_before + 2)}
    cfn, cfn_params = snippets[f"CloudFormation for orders-api ({p.id})"]
    tf, _ = snippets[f"Terraform for orders-api ({p.id})"]
    assert cfn_params["thread_ts"] == p.message_ts and cfn_params["channel_id"] == CHANNEL
    assert cfn_lint(cfn) == []
    deployed = cloudformation_policies(cfn)
    assert [normal(d["document"]) for d in deployed] == [normal(d) for d in p.documents]
    assert [normal(d["document"]) for d in terraform_policies(tf)] == [normal(d) for d in p.documents]
    assert "!Ref 'OrdersApiRole'" in cfn or "!Ref OrdersApiRole" in cfn

    # an inventory before the deployment changes nothing
    plan_scans(jobs)
    assert jobs.proposals.get(p.id).state == PENDING
    # deployed through the stack: the next inventory closes the proposal, says so in its thread
    _deploy(iam, "orders-api", deployed)
    plan_scans(jobs)
    closed = jobs.proposals.get(p.id)
    assert closed.state == APPLIED_VIA_CODE and closed.decided_by == "tighten"
    thread = [m for m in h.fake.posted(CHANNEL) if m.get("thread_ts") == p.message_ts]
    assert any("Applied via code" in json.dumps(m["blocks"]) for m in thread)
    updated = h.fake.messages[(CHANNEL, p.message_ts)]
    assert action_ids(updated) == [] and "Applied via code" in json.dumps(updated["blocks"])
    assert any(e["action"] == "proposal.applied_via_code" for e in jobs.audit.entries(p.id))
    # later inventories do not close or post it again
    posts = len(h.fake.posted(CHANNEL))
    plan_scans(jobs)
    assert len(h.fake.posted(CHANNEL)) == posts


def test_mark_as_applied_by_approvers_only_exactly_once_then_confirmed(flow: Any) -> None:
    h, jobs, iam = flow
    arn = _role(jobs, iam, "payments", {"ManagedBy": "terraform"})
    p = _scan(jobs, arn)
    assert p.managed_as_code["rule"] == "iac.rules[0]"
    message = h.fake.messages[(CHANNEL, p.message_ts)]
    assert action_ids(message)[:2] == [ActionId.OPEN_TERRAFORM, ActionId.OPEN_CLOUDFORMATION]

    assert h.click(ActionId.MARK_APPLIED_VIA_CODE, p.id, user=MALLORY, ts=p.message_ts) == 200
    wait_until(lambda: h.fake.calls_to("chat.postEphemeral"))
    assert "not an approver" in h.fake.calls_to("chat.postEphemeral")[-1].params["text"]
    assert jobs.proposals.get(p.id).state == PENDING

    clicks = [threading.Thread(target=h.click, args=(ActionId.MARK_APPLIED_VIA_CODE, p.id),
                               kwargs={"user": user, "ts": p.message_ts}) for user in (ALICE, BOB, ALICE)]
    for t in clicks:
        t.start()
    for t in clicks:
        t.join()
    wait_until(lambda: jobs.proposals.get(p.id).state == APPLIED_VIA_CODE)
    wait_until(lambda: len(h.fake.calls_to("chat.postEphemeral")) >= 3)  # the two losers are told
    marked = [e for e in jobs.audit.entries(p.id) if e["action"] == "proposal.applied_via_code"]
    assert len(marked) == 1 and marked[0]["actor"] in (ALICE, BOB)
    wait_until(lambda: "Applied via code" in json.dumps(h.fake.messages[(CHANNEL, p.message_ts)]["blocks"]))

    # deployed through Terraform: the next inventory confirms it once, in the thread
    upload_count = len(h.fake.calls_to("files.completeUploadExternal"))
    jobs.notifier.upload_snippet(p.id, "terraform")  # type: ignore[union-attr]
    (_, tf, _), = [u for u in _uploaded(h.fake, upload_count + 1) if u[0].startswith("Terraform for payments")]
    _deploy(iam, "payments", terraform_policies(tf))
    plan_scans(jobs)
    assert jobs.proposals.get(p.id).iac.get("confirmed_at")
    confirmed = [m for m in h.fake.posted(CHANNEL) if m.get("thread_ts") == p.message_ts
                 and "Confirmed" in json.dumps(m["blocks"])]
    assert len(confirmed) == 1
    plan_scans(jobs)
    assert len([m for m in h.fake.posted(CHANNEL) if "Confirmed" in json.dumps(m.get("blocks"))]) == 1
