"""bot.aws.last_accessed against botocore's Stubber (moto does not implement the API): the job is started at
action level, polled until it completes, read page by page; failures are one clear error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from bot.aws.last_accessed import LastAccessedError, read_last_accessed

ROLE = "arn:aws:iam::123456789012:role/reporting"
JOB = "EXAMPLE1-0000-4000-8000-000000000001"
T0 = datetime(2026, 10, 1, tzinfo=UTC)


def _page(status: str, services: list[dict[str, Any]] | None = None, *, marker: str | None = None) -> dict[str, Any]:
    # the response shape requires a completion date even while the job runs (botocore's model)
    page: dict[str, Any] = {"JobStatus": status, "JobCreationDate": T0, "JobCompletionDate": T0,
                            "ServicesLastAccessed": services or [], "IsTruncated": marker is not None}
    if marker:
        page["Marker"] = marker
    return page


@pytest.fixture()
def iam() -> Any:
    return boto3.client("iam", region_name="us-east-1")


def test_polls_until_complete_and_reads_every_page(iam: Any) -> None:
    naps: list[float] = []
    with Stubber(iam) as stub:
        stub.add_response("generate_service_last_accessed_details", {"JobId": JOB},
                          {"Arn": ROLE, "Granularity": "ACTION_LEVEL"})
        stub.add_response("get_service_last_accessed_details", _page("IN_PROGRESS"), {"JobId": JOB})
        stub.add_response("get_service_last_accessed_details", _page("COMPLETED", [
            {"ServiceName": "AWS Identity and Access Management", "ServiceNamespace": "iam",
             "LastAuthenticated": datetime(2026, 6, 3, 8, 30, tzinfo=UTC), "TotalAuthenticatedEntities": 1,
             "TrackedActionsLastAccessed": [
                 {"ActionName": "CreateRole", "LastAccessedTime": datetime(2026, 6, 3, 8, 30, tzinfo=UTC)},
                 {"ActionName": "DeleteRole"}]},  # tracked, never used
        ], marker="page-2"), {"JobId": JOB})
        stub.add_response("get_service_last_accessed_details", _page("COMPLETED", [
            {"ServiceName": "Amazon SQS", "ServiceNamespace": "sqs",
             "LastAuthenticated": datetime(2025, 12, 24, tzinfo=UTC), "TotalAuthenticatedEntities": 1},
            {"ServiceName": "Amazon EC2", "ServiceNamespace": "ec2", "TotalAuthenticatedEntities": 0},
        ]), {"JobId": JOB, "Marker": "page-2"})
        services = read_last_accessed(iam, ROLE, sleep=naps.append, clock=lambda: T0)
        stub.assert_no_pending_responses()
    assert naps == [2.0]
    by_name = {s.namespace: s for s in services}
    assert set(by_name) == {"iam", "sqs", "ec2"}
    assert by_name["iam"].action_level and [(a.action, a.last_accessed) for a in by_name["iam"].actions] == [
        ("iam:CreateRole", "2026-06-03T08:30:00Z")]
    assert by_name["sqs"].last_authenticated == "2025-12-24T00:00:00Z" and not by_name["sqs"].action_level
    assert by_name["ec2"].last_authenticated is None


def test_failed_job_is_an_error(iam: Any) -> None:
    with Stubber(iam) as stub:
        stub.add_response("generate_service_last_accessed_details", {"JobId": JOB})
        page = _page("FAILED")
        page["Error"] = {"Message": "Service unavailable", "Code": "ServiceFailure"}
        stub.add_response("get_service_last_accessed_details", page)
        with pytest.raises(LastAccessedError, match="failed: Service unavailable"):
            read_last_accessed(iam, ROLE, sleep=lambda s: None)


def test_slow_job_times_out(iam: Any) -> None:
    ticks = iter(T0 + timedelta(seconds=30 * i) for i in range(100))
    with Stubber(iam) as stub:
        stub.add_response("generate_service_last_accessed_details", {"JobId": JOB})
        for _ in range(3):
            stub.add_response("get_service_last_accessed_details", _page("IN_PROGRESS"))
        with pytest.raises(LastAccessedError, match="did not finish in 60 s"):
            read_last_accessed(iam, ROLE, sleep=lambda s: None, clock=lambda: next(ticks),
                               timeout=timedelta(seconds=60))


def test_access_denied_is_one_line(iam: Any) -> None:
    with Stubber(iam) as stub:
        stub.add_client_error("generate_service_last_accessed_details", "AccessDenied",
                              "User is not authorized to perform: iam:GenerateServiceLastAccessedDetails")
        with pytest.raises(LastAccessedError) as err:
            read_last_accessed(iam, ROLE, sleep=lambda s: None)
    assert "AccessDenied" in str(err.value) and "\n" not in str(err.value)
