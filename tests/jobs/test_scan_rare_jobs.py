"""The scan's safety net for rare jobs: IAM's service-last-accessed data (through botocore's Stubber: moto does not
implement the API) keeps what the role used outside the CloudTrail window, where it holds it today; an IAM
error makes the scan incomplete. Roles, policies and usage are real (moto IAM, the real store)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3
from botocore.stub import Stubber

from bot.jobs.scan import run_scan
from bot.slack.review import review_message
from bot.store import scans as sc
from tests.jobs.conftest import ACCOUNT, Env, policy

JOB = "EXAMPLE1-0000-4000-8000-000000000002"


def _stubbed(env: Env, role_arn: str, services: list[dict[str, Any]] | None, error: str | None = None) -> Stubber:
    client = boto3.client("iam", region_name="us-east-1")
    stub = Stubber(client)
    if error:
        stub.add_client_error("generate_service_last_accessed_details", "AccessDenied", error)
    else:
        stub.add_response("generate_service_last_accessed_details", {"JobId": JOB},
                          {"Arn": role_arn, "Granularity": "ACTION_LEVEL"})
        now = env.clock()
        stub.add_response("get_service_last_accessed_details", {
            "JobStatus": "COMPLETED", "JobCreationDate": now, "JobCompletionDate": now,
            "ServicesLastAccessed": services or [], "IsTruncated": False}, {"JobId": JOB})
    stub.activate()
    env.ctx.last_accessed_for = lambda account: client
    return stub


def test_rare_jobs_are_kept_where_the_role_holds_them(env: Env) -> None:
    arn = env.role("reporting", policy(["s3:GetObject", "s3:ListBucket", "iam:CreateRole", "iam:GetRole",
                                        "sqs:SendMessage"]))
    env.use(arn, "s3:GetObject", "arn:aws:s3:::reports/q3.csv")
    ago = lambda days: env.clock() - timedelta(days=days)  # noqa: E731
    stub = _stubbed(env, arn, [
        {"ServiceName": "AWS Identity and Access Management", "ServiceNamespace": "iam", "LastAuthenticated": ago(120),
         "TrackedActionsLastAccessed": [{"ActionName": "CreateRole", "LastAccessedTime": ago(120)},
                                        {"ActionName": "GetRole"}]},
        {"ServiceName": "Amazon SQS", "ServiceNamespace": "sqs", "LastAuthenticated": ago(300)},
        {"ServiceName": "Amazon S3", "ServiceNamespace": "s3", "LastAuthenticated": ago(1)},
        {"ServiceName": "Amazon EC2", "ServiceNamespace": "ec2", "LastAuthenticated": ago(500)},  # beyond 400 days
    ])
    outcome = run_scan(env.ctx, ACCOUNT, arn, requested_by="U0ALICE001")
    stub.assert_no_pending_responses()
    assert outcome.result == sc.PROPOSED, outcome.message
    proposal = outcome.proposal
    assert proposal is not None
    granted = {a for doc in proposal.documents for st in doc["Statement"]
               for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])}
    assert granted == {"s3:GetObject", "iam:CreateRole", "sqs:SendMessage"}  # not ListBucket, not GetRole
    assert "kept iam:CreateRole: used 120 days ago according to IAM, outside the CloudTrail window" in proposal.notes
    assert any(n.startswith("kept 1 sqs action(s) the role holds: sqs:*: used 300 days ago according to IAM")
               for n in proposal.notes)
    assert proposal.checks["iam_last_accessed"] == {"horizon_days": 400, "read": True, "services": 4,
                                                    "kept": ["iam:CreateRole", "sqs:*"]}
    assert proposal.checks["replay"]["denied"] == 0
    assert "replayed 3 calls from 1 day: all allowed" in json.dumps(review_message(proposal).blocks)


def test_iam_data_that_cannot_be_read_makes_the_scan_incomplete(env: Env) -> None:
    arn = env.role("builder", policy(["s3:*"]))
    env.use(arn, "s3:GetObject", "arn:aws:s3:::reports/q3.csv")
    _stubbed(env, arn, None, error="not authorized to perform: iam:GenerateServiceLastAccessedDetails")
    outcome = run_scan(env.ctx, ACCOUNT, arn, requested_by=None)
    assert outcome.result == sc.INCOMPLETE and outcome.proposal is None
    assert "AccessDenied" in outcome.message and "safety net for rare jobs is missing" in outcome.message
    assert env.ctx.proposals.latest(arn) is None


def test_without_a_client_the_scan_says_the_net_was_not_read(env: Env) -> None:
    arn = env.role("plain", policy(["s3:*"]))
    env.use(arn, "s3:GetObject", "arn:aws:s3:::reports/q3.csv")
    outcome = run_scan(env.ctx, ACCOUNT, arn, requested_by=None)
    assert outcome.result == sc.PROPOSED and outcome.proposal is not None
    assert any("IAM's last-accessed data was not read" in n for n in outcome.proposal.notes)
    assert outcome.proposal.checks["iam_last_accessed"] == {"horizon_days": 400, "read": False}
