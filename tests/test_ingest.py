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
from bot.trail.reader import Limits

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


def make_tree(root: Path, *, bad: bool = True) -> None:
    """Two delivery files and a JSON-lines file (one good event, one broken line, one non-event); with ``bad``
    also a truncated gzip and a file that is not JSON (objects that cannot be used at all)."""
    (root / "a").mkdir(parents=True)
    (root / "a" / "one.json.gz").write_bytes(delivery([event(i) for i in range(5)]))
    (root / "a" / "two.json.gz").write_bytes(delivery(
        [event(10, "PutObject", day="2024-08-02"), event(11, "DeleteObject", error="AccessDenied")]))
    (root / "bad").mkdir()
    (root / "bad" / "lines.jsonl").write_bytes(orjson.dumps(event(30)) + b"\n{broken\n" + orjson.dumps({"x": 1}))
    if bad:
        (root / "bad" / "truncated.json.gz").write_bytes(delivery([event(20)] * 50)[:-30])
        (root / "bad" / "invalid.json").write_bytes(b"{not json")


@pytest.fixture()
def index() -> UsageIndex:
    return UsageIndex(open_db(":memory:"))


@pytest.mark.parametrize("workers", [1, 2])
def test_local_tree_counts_and_incremental(tmp_path: Path, index: UsageIndex, workers: int) -> None:
    make_tree(tmp_path)
    seen: list[tuple[int, int]] = []
    report = ingest(str(tmp_path), index, workers=workers, progress=lambda d, t: seen.append((d, t)))
    assert (report.files_seen, report.files_read, report.files_already_ingested) == (5, 3, 0)
    assert report.usage_events == 7 and report.denied == 1 and report.principals == 1
    assert report.skipped == {"invalid_json": 1, "not_an_event": 1}  # the two bad lines of lines.jsonl
    bad = tmp_path / "bad"
    assert {k: v.split(":")[0] for k, v in report.errors.items()} == {
        str(bad / "truncated.json.gz"): "truncated_gzip", str(bad / "invalid.json"): "invalid_json"}
    assert report.error_reasons == {"truncated_gzip": 1, "invalid_json": 1} and report.unreadable == {}
    assert [e[0] for e in index.ingest_errors()] == sorted(report.errors)
    assert seen[0] == (0, 5) and seen[-1] == (5, 5)
    rows = {(r.action, r.resource): r.count for r in index.usage(ROLE_ARN)}
    assert rows[("s3:GetObject", "arn:aws:s3:::data/reports/a.csv")] == 6
    assert rows[("s3:PutObject", "arn:aws:s3:::data/reports/a.csv")] == 1
    assert [d.action for d in index.denials(ROLE_ARN)] == ["s3:DeleteObject"]
    fingerprint = index.usage_fingerprint(ROLE_ARN)

    again = ingest(str(tmp_path), index, workers=workers)  # the two unusable objects are tried again
    assert (again.files_read, again.files_already_ingested, again.events, len(again.errors)) == (0, 3, 0, 2)
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
    make_tree(tmp_path, bad=False)
    import bot.ingest

    real_open = bot.ingest.open_regular_file

    def flaky(path: str):  # noqa: ANN202
        if path.endswith("two.json.gz"):
            raise PermissionError(13, "Permission denied")
        return real_open(path)

    with monkeypatch.context() as patch:
        patch.setattr(bot.ingest, "open_regular_file", flaky)
        report = ingest(str(tmp_path), index, workers=1)
    assert report.errors == {str(tmp_path / "a" / "two.json.gz"): "read_error: PermissionError: Permission denied"}
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
    assert (report.files_read, report.usage_events, report.denied, report.workers) == (3, 7, 1, 2)
    assert [(r.action, r.count) for r in index.usage(ROLE_ARN)] == [("s3:GetObject", 6), ("s3:PutObject", 1)]


def _stray_entries(root: Path) -> dict[str, str]:
    """Entries with log names that are not regular files, and the reason each must be reported with."""
    root.mkdir(parents=True, exist_ok=True)
    os.mkfifo(root / "pipe.json")
    os.symlink(root / "loop.json", root / "loop.json")
    os.symlink(root / "gone.json.gz", root / "dangling.json.gz")
    os.symlink("/dev/zero", root / "zero.json")
    return {"pipe.json": "not_a_regular_file", "loop.json": "symlink_loop", "dangling.json.gz": "dangling_symlink",
            "zero.json": "not_a_regular_file"}


@pytest.mark.parametrize("workers", [1, 2])
def test_entries_that_are_not_files_are_counted_and_the_good_files_ingested(tmp_path: Path, index: UsageIndex,
                                                                          workers: int) -> None:
    make_tree(tmp_path, bad=False)
    expected = _stray_entries(tmp_path / "stray")
    account_dir = tmp_path / "AWSLogs" / ACCT / "CloudTrail" / "us-east-1"
    account_dir.mkdir(parents=True)
    os.mkfifo(account_dir / "pipe.json.gz")
    report = ingest(str(tmp_path), index, workers=workers)
    assert (report.files_seen, report.files_read, report.usage_events, report.denied) == (8, 3, 7, 1)
    assert report.errors == {}
    got = {Path(k).name: v.split(":")[0] for k, v in report.unreadable.items()}
    assert got == {**expected, "pipe.json.gz": "not_a_regular_file"}
    assert report.unreadable_reasons == {"not_a_regular_file": 3, "symlink_loop": 1, "dangling_symlink": 1}
    assert [(r.action, r.count) for r in index.usage(ROLE_ARN)] == [("s3:GetObject", 6), ("s3:PutObject", 1)]
    assert len(index.ingest_errors(kind="entry")) == 5 and index.ingest_errors() == []
    # only the entry whose path names the account makes that account's data incomplete
    assert [Path(k).name for k, _ in index.unread_logs(ACCT)] == ["pipe.json.gz"]
    assert index.unread_logs("999999999999") == []

    # gone: forgotten on the next run; a FIFO replaced by a real log file: read
    (account_dir / "pipe.json.gz").unlink()
    (account_dir / "pipe.json.gz").write_bytes(delivery([event(50)]))
    for name in expected:
        os.unlink(tmp_path / "stray" / name)
    again = ingest(str(tmp_path), index, workers=workers)
    assert (again.files_read, again.unreadable, again.errors) == (1, {}, {})
    assert index.unread_logs() == [] and index.ingest_errors(kind="entry") == []


def test_hostile_objects_are_skipped_with_a_reason_and_the_run_goes_on(tmp_path: Path, index: UsageIndex) -> None:
    import zlib

    make_tree(tmp_path, bad=False)
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    comp = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    bomb = gzip.compress(b'{"Records": [') + comp.compress(b" " * (64 << 20)) + comp.flush()
    (hostile / "bomb.json.gz").write_bytes(bomb)
    (hostile / "big.json.gz").write_bytes(delivery([event(i, key=f"k/{i}") for i in range(3000)]))
    (hostile / "huge.json").write_bytes(b" " * (2 << 20) + b"[]")
    (hostile / "many.json").write_bytes(orjson.dumps({"Records": [event(i) for i in range(30)]}))
    (hostile / "cut.json.gz").write_bytes(delivery([event(i) for i in range(30)])[:-30])
    (hostile / "noise.json").write_bytes(bytes((i * 7919 + 13) % 256 for i in range(4000)))
    (hostile / "policy.json").write_bytes(orjson.dumps({"Version": "2012-10-17", "Statement": []}))
    limits = Limits(max_records=20, max_bytes=1 << 20, ratio_after=256 << 10)
    assert len(bomb) < limits.max_bytes and (hostile / "big.json.gz").stat().st_size < limits.max_bytes
    report = ingest(str(tmp_path), index, workers=1, limits=limits)
    assert {Path(k).name: v.split(":")[0] for k, v in report.errors.items()} == {
        "bomb.json.gz": "compression_ratio", "big.json.gz": "too_large", "huge.json": "too_large",
        "many.json": "too_many_records", "cut.json.gz": "truncated_gzip", "noise.json": "invalid_json",
        "policy.json": "not_cloudtrail"}
    assert report.unreadable == {}
    assert (report.files_read, report.usage_events, report.denied) == (3, 7, 1)
    assert index.object_count() == 3 and len(index.ingest_errors()) == 7
    assert [(r.action, r.count) for r in index.usage(ROLE_ARN)] == [("s3:GetObject", 6), ("s3:PutObject", 1)]


@pytest.mark.slow
def test_a_200_mb_delivery_file_is_streamed_with_default_limits(tmp_path: Path, index: UsageIndex) -> None:
    """A document far above the whole-document size goes through the streaming parser and is ingested whole
    (peak memory for this case is measured by bench/ingest_bounds.py)."""
    record = orjson.dumps(event(1))
    n = 200_000_000 // (len(record) + 1)
    with open(tmp_path / "big.json", "wb") as fh:
        fh.write(b'{"Records":[' + b",".join([record] * n) + b"]}")
    report = ingest(str(tmp_path), index, workers=1)
    assert (report.errors, report.files_read, report.usage_events) == ({}, 1, n)
    assert [(r.action, r.count) for r in index.usage(ROLE_ARN)] == [("s3:GetObject", n)]


def test_s3_objects_too_large_or_hostile_are_errors_and_large_ones_streamed(moto_endpoint: str, index: UsageIndex,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.ingest

    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    keys = _put_org_trail(s3, "hostile-trail")
    prefix = keys[0].rsplit("/", 1)[0]
    s3.put_object(Bucket="hostile-trail", Key=f"{prefix}/cut.json.gz", Body=delivery([event(1)] * 10)[:-20])
    s3.put_object(Bucket="hostile-trail", Key=f"{prefix}/big.json", Body=b" " * (64 << 10) + b"[]")
    # objects above FETCH_WHOLE_BYTES are not fetched whole but streamed in this process
    monkeypatch.setattr(bot.ingest, "FETCH_WHOLE_BYTES", 100)
    report = ingest("s3://hostile-trail", index, s3_client=s3, workers=2, limits=Limits(max_bytes=32 << 10))
    assert {k.rsplit("/", 1)[1]: v.split(":")[0] for k, v in report.errors.items()} == {
        "cut.json.gz": "truncated_gzip", "big.json": "too_large"}
    assert (report.files_read, report.usage_events) == (2, 5)
    assert [e[0].rsplit("/", 1)[1] for e in index.ingest_errors()] == ["big.json", "cut.json.gz"]


def _index_rows(index: UsageIndex) -> dict[str, list[tuple]]:
    """Every stored row, object ids replaced by object keys (ids follow the order results were collected)
    and the ingest time left out; rows of one object keep their insertion order."""
    conn = index.db.conn
    keys = dict(conn.execute("SELECT id, key FROM ingested_objects"))
    out: dict[str, list[tuple]] = {
        "ingested_objects": sorted(conn.execute(
            "SELECT key, size, etag, events, usage_events, denied, skipped FROM ingested_objects")),
        "ingest_errors": sorted(conn.execute("SELECT key, error, kind FROM ingest_errors")),
    }
    for table in ("usage_days", "object_principals", "denials"):
        rows = [(keys[r[0]], *r[1:]) for r in conn.execute(f"SELECT * FROM {table} ORDER BY rowid")]
        out[table] = sorted(rows, key=lambda r: r[0])  # stable: per object, insertion order
    return out


def test_one_process_and_a_pool_build_the_same_index(samples_dir: Path, tmp_path: Path) -> None:
    """The pool only moves work between processes: every bundled sample dataset, plus a tree with unusable
    objects, gives the same rows, row for row, and the same report with one process and with three."""
    make_tree(tmp_path / "tree")
    results = []
    for workers in (1, 3):
        index = UsageIndex(open_db(tmp_path / f"w{workers}.db"))
        reports = [ingest(str(samples_dir), index, workers=workers),
                   ingest(str(tmp_path / "tree"), index, workers=workers)]
        assert [r.workers for r in reports] == [workers, 1 if workers == 1 else workers]
        summary = [(r.files_read, r.events, r.records, r.usage_events, r.denied, r.principals, dict(r.skipped),
                    dict(r.unknown_resources), sorted(r.errors.items())) for r in reports]
        results.append((summary, _index_rows(index)))
    (summary1, rows1), (summary3, rows3) = results
    assert summary1 == summary3
    assert rows1.keys() == rows3.keys()
    for table in rows1:
        assert rows1[table] == rows3[table], table
    assert len(rows1["usage_days"]) > 500 and rows1["denials"] and rows1["ingest_errors"]
