"""Ingest orchestration: local trees and an S3 org-trail bucket (moto), incremental re-runs, bad input."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import boto3
import orjson
import pytest

from bot.ingest import ingest
from bot.store.db import open_db
from bot.store.usage import UsageIndex

ACCT = "111122223333"
ROLE_ARN = f"arn:aws:iam::{ACCT}:role/app"


def event(i: int, name: str = "GetObject", *, day: str = "2024-08-01", error: str | None = None,
          bucket: str = "data", key: str = "reports/a.csv") -> dict:
    ev = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AssumedRole", "principalId": "AROAEXAMPLE:s1", "arn": f"arn:aws:sts::{ACCT}:assumed-role/app/s1",
            "accountId": ACCT, "accessKeyId": "ASIAEXAMPLE",
            "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE", "arn": ROLE_ARN,
                                                 "accountId": ACCT, "userName": "app"},
                               "attributes": {"creationDate": f"{day}T00:00:00Z", "mfaAuthenticated": "false"}},
        },
        "eventTime": f"{day}T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
        "eventSource": "s3.amazonaws.com", "eventName": name, "awsRegion": "us-east-1",
        "sourceIPAddress": "10.0.0.1", "userAgent": "aws-cli/2",
        "requestParameters": {"bucketName": bucket, "key": key, "Host": f"{bucket}.s3.amazonaws.com"},
        "responseElements": None, "eventID": f"00000000-0000-0000-0000-{i:012d}", "readOnly": True,
        "resources": [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
                      {"accountId": ACCT, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}],
        "eventType": "AwsApiCall", "managementEvent": False, "recipientAccountId": ACCT,
        "eventCategory": "Data",
    }
    if error:
        ev["errorCode"], ev["errorMessage"] = error, "Access Denied"
    return ev


def delivery(events: list[dict]) -> bytes:
    return gzip.compress(orjson.dumps({"Records": events}))


def make_tree(root: Path) -> None:
    (root / "a").mkdir(parents=True)
    (root / "a" / "one.json.gz").write_bytes(delivery([event(i) for i in range(5)]))
    (root / "a" / "two.json.gz").write_bytes(delivery(
        [event(10, "PutObject", day="2024-08-02"), event(11, "DeleteObject", error="AccessDenied")]))
    (root / "bad").mkdir()
    (root / "bad" / "truncated.json.gz").write_bytes(delivery([event(20)] * 50)[:-30])
    (root / "bad" / "invalid.json").write_bytes(b"{not json")
    (root / "bad" / "lines.jsonl").write_bytes(orjson.dumps(event(30)) + b"\n{broken\n" + orjson.dumps({"x": 1}))


@pytest.fixture()
def index() -> UsageIndex:
    return UsageIndex(open_db(":memory:"))


@pytest.mark.parametrize("workers", [1, 2])
def test_local_tree_counts_and_incremental(tmp_path: Path, index: UsageIndex, workers: int) -> None:
    make_tree(tmp_path)
    seen: list[tuple[int, int]] = []
    report = ingest(str(tmp_path), index, workers=workers, progress=lambda d, t: seen.append((d, t)))
    assert (report.files_seen, report.files_read, report.files_already_ingested) == (5, 5, 0)
    assert report.usage_events == 7 and report.denied == 1 and report.principals == 1
    assert report.skipped["truncated_gzip"] == 1 and report.skipped["invalid_json"] == 2
    assert report.skipped["missing_fields"] + report.skipped["not_an_event"] >= 1  # the {"x": 1} line
    assert report.errors == {}
    assert seen[0] == (0, 5) and seen[-1] == (5, 5)
    rows = {(r.action, r.resource): r.count for r in index.usage(ROLE_ARN)}
    assert rows[("s3:GetObject", "arn:aws:s3:::data/reports/a.csv")] == 6
    assert rows[("s3:PutObject", "arn:aws:s3:::data/reports/a.csv")] == 1
    assert [d.action for d in index.denials(ROLE_ARN)] == ["s3:DeleteObject"]
    fingerprint = index.usage_fingerprint(ROLE_ARN)

    again = ingest(str(tmp_path), index, workers=workers)
    assert (again.files_read, again.files_already_ingested, again.events) == (0, 5, 0)
    assert index.usage_fingerprint(ROLE_ARN) == fingerprint

    # a changed object is read again and replaces its old contribution (no double counting)
    f = tmp_path / "a" / "one.json.gz"
    f.write_bytes(delivery([event(i) for i in range(3)]))
    os.utime(f, ns=(1, 1))
    third = ingest(str(tmp_path), index, workers=workers)
    assert (third.files_read, third.files_replaced) == (1, 1)
    rows = {(r.action, r.resource): r.count for r in index.usage(ROLE_ARN)}
    assert rows[("s3:GetObject", "arn:aws:s3:::data/reports/a.csv")] == 4
    assert index.usage_fingerprint(ROLE_ARN) != fingerprint


def test_missing_source_is_a_clear_error(tmp_path: Path, index: UsageIndex) -> None:
    with pytest.raises(FileNotFoundError):
        ingest(str(tmp_path / "nope"), index)


def _put_org_trail(s3, bucket: str) -> list[str]:
    s3.create_bucket(Bucket=bucket)
    keys = []
    for day, events in (("2024/08/01", [event(i) for i in range(4)]),
                        ("2024/08/02", [event(9, "PutObject", day="2024-08-02")])):
        key = (f"AWSLogs/o-abc123def4/{ACCT}/CloudTrail/us-east-1/{day}/"
               f"{ACCT}_CloudTrail_us-east-1_{day.replace('/', '')}T1000Z_x.json.gz")
        s3.put_object(Bucket=bucket, Key=key, Body=delivery(events))
        keys.append(key)
    s3.put_object(Bucket=bucket, Key=f"AWSLogs/o-abc123def4/{ACCT}/CloudTrail-Digest/us-east-1/2024/08/01/d.json.gz",
                  Body=b"digest")
    return keys


@pytest.mark.parametrize("workers", [1, 2])
def test_s3_org_trail_then_nothing_new(moto_endpoint: str, index: UsageIndex, workers: int) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    keys = _put_org_trail(s3, "org-trail")
    report = ingest("s3://org-trail", index, s3_client=s3, workers=workers)
    assert report.workers == workers
    assert (report.files_seen, report.files_read, report.usage_events) == (2, 2, 5)
    assert set(index.ingested()) == {f"s3://org-trail/{k}" for k in keys}
    assert [(r.action, r.count, r.days) for r in index.usage(ROLE_ARN)] == [
        ("s3:GetObject", 4, ("2024-08-01",)), ("s3:PutObject", 1, ("2024-08-02",))]

    again = ingest("s3://org-trail", index, s3_client=s3)
    assert (again.files_seen, again.files_read, again.files_already_ingested) == (2, 0, 2)

    # one new object arrives: only it is read
    new_key = keys[1].replace("T1000Z_x", "T1005Z_y")
    s3.put_object(Bucket="org-trail", Key=new_key, Body=delivery([event(40, "PutObject", day="2024-08-02")]))
    third = ingest("s3://org-trail", index, s3_client=s3, since="2024-08-02")
    assert (third.files_seen, third.files_read) == (2, 1)
    assert [r.count for r in index.usage(ROLE_ARN)] == [4, 2]


def test_unreadable_object_reported_and_retried(index: UsageIndex, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path)
    from bot.trail import sources

    real_read = sources.LogObject.read

    def flaky(self: sources.LogObject) -> bytes:
        if self.key.endswith("two.json.gz"):
            raise PermissionError(13, "Permission denied")
        return real_read(self)

    with monkeypatch.context() as patch:
        patch.setattr(sources.LogObject, "read", flaky)
        report = ingest(str(tmp_path), index, workers=1)
    assert list(report.errors) == [str(tmp_path / "a" / "two.json.gz")]
    assert [e[0] for e in index.ingest_errors()] == [str(tmp_path / "a" / "two.json.gz")]
    retry = ingest(str(tmp_path), index, workers=1)
    assert (retry.files_read, retry.errors) == (1, {})
    assert index.ingest_errors() == []


def test_pool_in_a_threaded_process_uses_a_safe_start_method(tmp_path: Path, index: UsageIndex) -> None:
    import threading

    from bot.ingest import _pool_context

    make_tree(tmp_path)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        assert _pool_context().get_start_method() in ("forkserver", "spawn")
        report = ingest(str(tmp_path), index, workers=2)
    finally:
        stop.set()
        other.join()
    assert (report.files_read, report.usage_events, report.denied, report.workers) == (5, 7, 1, 2)
    assert [(r.action, r.count) for r in index.usage(ROLE_ARN)] == [("s3:GetObject", 6), ("s3:PutObject", 1)]
