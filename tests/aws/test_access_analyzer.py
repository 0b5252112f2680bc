"""Access Analyzer backend with botocore's Stubber (no emulator implements this API)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from bot.aws.access_analyzer import (
    AccessAnalyzerQuota,
    GenerationFailed,
    QuotaExhausted,
    convert_generated,
    generate_policy,
)
from bot.store.db import open_db
from bot.util.clock import FakeClock

ROLE = "arn:aws:iam::123456789012:role/app"
TRAIL = "arn:aws:cloudtrail:us-east-1:123456789012:trail/main"
ACCESS = "arn:aws:iam::123456789012:role/AccessAnalyzerTrailReader"
START = datetime(2026, 8, 1, tzinfo=UTC)
GENERATED = {"Version": "2012-10-17", "Statement": [
    {"Sid": "SupportedServiceSid0", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
     "Resource": "arn:${Partition}:s3:::${BucketName}/${ObjectName}"},
    {"Sid": "SupportedServiceSid1", "Effect": "Allow", "Action": "dynamodb:GetItem",
     "Resource": "arn:${Partition}:dynamodb:${Region}:${Account}:table/${TableName}"},
    {"Sid": "SupportedServiceSid2", "Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"},
    {"Sid": "ServiceLevelSid0", "Effect": "Allow", "Action": "kinesis:*", "Resource": "*"},
]}


def _job(status: str, *, policy: dict[str, Any] | None = None, complete: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "jobDetails": {"jobId": "job-1", "status": status, "startedOn": START},
        "generatedPolicyResult": {"properties": {"principalArn": ROLE, "isComplete": complete}},
    }
    if policy is not None:
        out["generatedPolicyResult"]["generatedPolicies"] = [{"policy": json.dumps(policy)}]
    if status == "FAILED":
        out["jobDetails"]["jobError"] = {"code": "AUTHORIZATION_ERROR", "message": "cannot read trail bucket"}
    return out


@pytest.fixture()
def client() -> Any:
    return boto3.client("accessanalyzer", region_name="us-east-1")


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock(START + timedelta(days=90))


def _run(client: Any, quota: AccessAnalyzerQuota, clock: FakeClock, sleeps: list[float], **kw: Any) -> Any:
    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds=seconds)

    return generate_policy(client, quota, principal_arn=ROLE, trail_arn=TRAIL, access_role_arn=ACCESS,
                           start=START, end=START + timedelta(days=90), sleep=sleep, clock=clock, **kw)


def test_generation_polls_with_backoff_and_converts(client: Any, clock: FakeClock) -> None:
    quota = AccessAnalyzerQuota(open_db(":memory:"), clock=clock)
    stub = Stubber(client)
    stub.add_response("start_policy_generation", {"jobId": "job-1"}, {
        "policyGenerationDetails": {"principalArn": ROLE},
        "cloudTrailDetails": {"trails": [{"cloudTrailArn": TRAIL, "allRegions": True}], "accessRole": ACCESS,
                              "startTime": START, "endTime": START + timedelta(days=90)}})
    wanted = {"jobId": "job-1", "includeResourcePlaceholders": True, "includeServiceLevelTemplate": True}
    for _ in range(3):
        stub.add_response("get_generated_policy", _job("IN_PROGRESS"), wanted)
    stub.add_response("get_generated_policy", _job("SUCCEEDED", policy=GENERATED, complete=False), wanted)
    sleeps: list[float] = []
    with stub:
        result = _run(client, quota, clock, sleeps, first_delay=30, max_delay=100)
    stub.assert_no_pending_responses()
    assert sleeps == [30, 60, 100, 100]
    [doc] = result.documents
    assert doc["Statement"][0]["Resource"] == "arn:aws:s3:::*/*"
    assert doc["Statement"][1]["Resource"] == "arn:aws:dynamodb:*:123456789012:table/*"
    assert set(result.unresolved) == {"BucketName", "ObjectName", "Region", "TableName"}
    assert result.service_level == ["kinesis"]
    assert not result.is_complete
    text = "\n".join(result.notes)
    assert "isComplete=false" in text and "${BucketName}" in text and "iam:PassRole" in text
    assert "kinesis:*" in text
    assert quota.usage("123456789012") == {"running": 0, "last_24h": 1, "concurrent_limit": 1,
                                           "daily_limit": 50}


def test_failed_job_releases_the_slot(client: Any, clock: FakeClock) -> None:
    quota = AccessAnalyzerQuota(open_db(":memory:"), clock=clock)
    stub = Stubber(client)
    stub.add_response("start_policy_generation", {"jobId": "job-1"})
    stub.add_response("get_generated_policy", _job("FAILED"))
    with stub, pytest.raises(GenerationFailed, match="AUTHORIZATION_ERROR"):
        _run(client, quota, clock, [])
    assert quota.usage("123456789012")["running"] == 0


def test_timeout_cancels_the_job(client: Any, clock: FakeClock) -> None:
    quota = AccessAnalyzerQuota(open_db(":memory:"), clock=clock)
    stub = Stubber(client)
    stub.add_response("start_policy_generation", {"jobId": "job-1"})
    stub.add_response("get_generated_policy", _job("IN_PROGRESS"))
    stub.add_response("get_generated_policy", _job("IN_PROGRESS"))
    stub.add_response("cancel_policy_generation", {}, {"jobId": "job-1"})
    with stub, pytest.raises(GenerationFailed, match="cancelled"):
        _run(client, quota, clock, [], first_delay=600, timeout=timedelta(minutes=15))
    stub.assert_no_pending_responses()
    assert quota.usage("123456789012") == {"running": 0, "last_24h": 1, "concurrent_limit": 1,
                                           "daily_limit": 50}


def test_quota_blocks_before_calling_aws(clock: FakeClock) -> None:
    db = open_db(":memory:")
    quota = AccessAnalyzerQuota(db, concurrent=1, per_day=3, clock=clock)
    slot = quota.acquire("123456789012", ROLE)
    with pytest.raises(QuotaExhausted, match="running") as running:
        quota.acquire("123456789012", ROLE)
    assert running.value.retry_at is None
    quota.acquire("210987654321", ROLE)  # another account has its own quota
    quota.release(slot, "SUCCEEDED")
    for _ in range(2):
        quota.release(quota.acquire("123456789012", ROLE), "CANCELED")  # cancelled jobs count too
        clock.advance(hours=1)
    with pytest.raises(QuotaExhausted, match="last 24 hours") as daily:
        AccessAnalyzerQuota(db, concurrent=1, per_day=3, clock=clock).acquire("123456789012", ROLE)
    assert daily.value.retry_at == START + timedelta(days=91)
    clock.advance(hours=23)
    quota.acquire("123456789012", ROLE)  # the first one of the window has aged out


def test_crashed_slot_stops_blocking_after_stale_period(clock: FakeClock) -> None:
    quota = AccessAnalyzerQuota(open_db(":memory:"), clock=clock, stale_after=timedelta(hours=2))
    quota.acquire("123456789012", ROLE)  # never released: the process died
    clock.advance(hours=3)
    quota.acquire("123456789012", ROLE)


def test_quota_refusal_from_aws_is_reported(client: Any, clock: FakeClock) -> None:
    quota = AccessAnalyzerQuota(open_db(":memory:"), clock=clock)
    stub = Stubber(client)
    stub.add_client_error("start_policy_generation", service_error_code="ServiceQuotaExceededException",
                          http_status_code=402)
    with stub, pytest.raises(QuotaExhausted):
        _run(client, quota, clock, [])
    assert quota.usage("123456789012")["running"] == 0


def test_convert_plain_policy_has_no_unresolved_notes() -> None:
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["ec2:DescribeInstances"], "Resource": "*"}]}
    result = convert_generated(_job("SUCCEEDED", policy=policy), ROLE)
    assert result.documents == [policy] and result.unresolved == {} and result.is_complete
