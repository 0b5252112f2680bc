"""bot.trail.sources: local files and directories, and S3 trail buckets on the moto server."""

from __future__ import annotations

import gzip
import os
from datetime import date
from pathlib import Path

import boto3
import orjson
import pytest

from bot.trail.reader import iter_raw_records
from bot.trail.sources import UnreadableEntry, iter_log_objects, open_regular_file

ORG = "o-abcdef1234"


def _delivery(event_name: str = "ListBuckets") -> bytes:
    record = {"eventName": event_name, "eventSource": "s3.amazonaws.com", "eventTime": "2024-05-02T00:00:00Z"}
    return gzip.compress(orjson.dumps({"Records": [record]}))


def test_local_file_and_tree(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.json.gz").write_bytes(_delivery())
    (tmp_path / "a" / "y.jsonl").write_bytes(b'{"eventName": "A"}\n')
    (tmp_path / "a" / "notes.txt").write_text("not a log")
    (tmp_path / "CloudTrail-Digest").mkdir()
    (tmp_path / "CloudTrail-Digest" / "d.json.gz").write_bytes(_delivery())
    keys = [o.key for o in iter_log_objects(str(tmp_path))]
    assert keys == [str(tmp_path / "a" / "b" / "x.json.gz"), str(tmp_path / "a" / "y.jsonl")]
    single = list(iter_log_objects(str(tmp_path / "a" / "y.jsonl")))
    assert len(single) == 1 and single[0].read() == b'{"eventName": "A"}\n'
    st = os.stat(tmp_path / "a" / "y.jsonl")
    assert single[0].etag == f"{st.st_mtime_ns}-{st.st_size}" and single[0].size == st.st_size
    with pytest.raises(FileNotFoundError):
        list(iter_log_objects(str(tmp_path / "missing")))


def test_local_cloudtrail_names_filtered_by_date_account_region(tmp_path: Path) -> None:
    for name in ("111111111111_CloudTrail_us-east-1_20240501T0000Z_a.json.gz",
                 "111111111111_CloudTrail_eu-west-1_20240502T0000Z_b.json.gz",
                 "222222222222_CloudTrail_us-east-1_20240503T0000Z_c.json.gz"):
        (tmp_path / name).write_bytes(_delivery())
    names = lambda **kw: [Path(o.key).name[:30] for o in iter_log_objects(str(tmp_path), **kw)]  # noqa: E731
    assert len(names()) == 3
    assert names(since=date(2024, 5, 2)) == ["111111111111_CloudTrail_eu-wes", "222222222222_CloudTrail_us-eas"]
    assert names(accounts={"111111111111"}, regions={"us-east-1"}) == ["111111111111_CloudTrail_us-eas"]


@pytest.fixture()
def s3(moto_endpoint: str):  # noqa: ANN201
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="trail")
    return client


def _put_org_layout(s3, prefix: str = "") -> list[str]:  # noqa: ANN001
    keys = []
    for account in ("111111111111", "222222222222"):
        for region in ("us-east-1", "eu-west-1"):
            for day in (date(2024, 4, 30), date(2024, 5, 1), date(2024, 5, 2), date(2024, 6, 1)):
                base = f"{prefix}AWSLogs/{ORG}/{account}/CloudTrail/{region}/{day:%Y/%m/%d}/"
                key = f"{base}{account}_CloudTrail_{region}_{day:%Y%m%d}T1200Z_x.json.gz"
                s3.put_object(Bucket="trail", Key=key, Body=_delivery())
                keys.append(key)
        digest = f"{prefix}AWSLogs/{ORG}/{account}/CloudTrail-Digest/us-east-1/2024/05/01/d.json.gz"
        s3.put_object(Bucket="trail", Key=digest, Body=b"{}")
    s3.put_object(Bucket="trail", Key=f"{prefix}AWSLogs/{ORG}/111111111111/CloudTrail/us-east-1/2024/05/01/README",
                  Body=b"x")
    return sorted(keys)


def _listed_prefixes(s3) -> list[str]:  # noqa: ANN001
    seen: list[str] = []
    s3.meta.events.register("before-parameter-build.s3.ListObjectsV2",
                            lambda params, **_: seen.append(params.get("Prefix", "")))
    return seen


def test_s3_org_layout_all_objects_sorted_and_readable(s3) -> None:  # noqa: ANN001
    keys = _put_org_layout(s3)
    objects = list(iter_log_objects("s3://trail", s3_client=s3))
    assert [o.key for o in objects] == [f"s3://trail/{k}" for k in keys]
    assert all(o.etag and o.size > 0 for o in objects)
    events = list(iter_raw_records(objects[0].read(), objects[0].key))
    assert events[0]["eventName"] == "ListBuckets"


def test_s3_date_range_lists_only_days_inside(s3) -> None:  # noqa: ANN001
    _put_org_layout(s3, prefix="trails/")
    listed = _listed_prefixes(s3)
    objects = list(iter_log_objects("s3://trail/trails", since=date(2024, 5, 1), until=date(2024, 5, 1),
                                    accounts={"222222222222"}, regions={"eu-west-1"}, s3_client=s3))
    assert [o.key.rsplit("/", 1)[-1] for o in objects] == ["222222222222_CloudTrail_eu-west-1_20240501T1200Z_x.json.gz"]
    day_level = [p for p in listed if p.count("/") >= 9]  # .../CloudTrail/<region>/YYYY/MM/DD/
    assert day_level == [f"trails/AWSLogs/{ORG}/222222222222/CloudTrail/eu-west-1/2024/05/01/"]
    assert not any("111111111111" in p or "us-east-1" in p or "/06/" in p or "/04/" in p for p in listed)


def test_s3_account_layout_and_deep_prefix(s3) -> None:  # noqa: ANN001
    for day in ("2024/05/01", "2024/05/03"):
        s3.put_object(Bucket="trail", Key=f"AWSLogs/333333333333/CloudTrail/us-east-1/{day}/f.json.gz",
                      Body=_delivery())
    got = [o.key for o in iter_log_objects("s3://trail", since=date(2024, 5, 2), s3_client=s3)]
    assert got == ["s3://trail/AWSLogs/333333333333/CloudTrail/us-east-1/2024/05/03/f.json.gz"]
    got = [o.key for o in iter_log_objects("s3://trail/AWSLogs/333333333333/CloudTrail/us-east-1/2024/05/01",
                                           s3_client=s3)]
    assert got == ["s3://trail/AWSLogs/333333333333/CloudTrail/us-east-1/2024/05/01/f.json.gz"]
    got = [o.key for o in iter_log_objects("s3://trail/AWSLogs/333333333333", until=date(2024, 5, 1), s3_client=s3)]
    assert got == ["s3://trail/AWSLogs/333333333333/CloudTrail/us-east-1/2024/05/01/f.json.gz"]


def test_s3_flat_prefix_without_awslogs(s3) -> None:  # noqa: ANN001
    s3.put_object(Bucket="trail", Key="exports/b.jsonl", Body=b'{"eventName": "A"}\n')
    s3.put_object(Bucket="trail", Key="exports/a.json.gz", Body=_delivery())
    s3.put_object(Bucket="trail", Key="exports/skip.csv", Body=b"x")
    assert [o.key for o in iter_log_objects("s3://trail/exports", s3_client=s3)] == [
        "s3://trail/exports/a.json.gz", "s3://trail/exports/b.jsonl"]


def test_entries_that_are_not_regular_files_are_listed_with_their_problem(tmp_path: Path) -> None:
    good = tmp_path / "good.json.gz"
    good.write_bytes(_delivery())
    os.mkfifo(tmp_path / "pipe.json")
    os.symlink(tmp_path / "loop.json", tmp_path / "loop.json")
    os.symlink(tmp_path / "gone.json.gz", tmp_path / "dangling.json.gz")
    os.symlink("/dev/zero", tmp_path / "zero.json")
    os.symlink(good, tmp_path / "alias.json.gz")  # a symlink to a regular file is followed
    listed = {Path(o.key).name: o for o in iter_log_objects(str(tmp_path))}
    assert {name: o.entry_problem and o.entry_problem[0] for name, o in listed.items()} == {
        "alias.json.gz": None, "good.json.gz": None, "pipe.json": "not_a_regular_file",
        "loop.json": "symlink_loop", "dangling.json.gz": "dangling_symlink", "zero.json": "not_a_regular_file"}
    assert listed["zero.json"].entry_problem == ("not_a_regular_file", "a character device")
    assert listed["pipe.json"].entry_problem == ("not_a_regular_file", "a FIFO")
    assert "gone.json.gz" in listed["dangling.json.gz"].entry_problem[1]
    assert listed["alias.json.gz"].read() == good.read_bytes()
    for name in ("pipe.json", "loop.json", "dangling.json.gz", "zero.json"):
        with pytest.raises(UnreadableEntry) as err:
            listed[name].open()
        assert err.value.reason == listed[name].entry_problem[0]


def test_opening_never_waits_on_a_fifo_swapped_in_after_listing(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(b"{}")
    (obj,) = iter_log_objects(str(tmp_path))
    path.unlink()
    os.mkfifo(path)  # no writer: a blocking open would wait forever
    with pytest.raises(UnreadableEntry) as err:
        obj.open()
    assert (err.value.reason, err.value.detail) == ("not_a_regular_file", "a FIFO")
    with pytest.raises(UnreadableEntry):
        open_regular_file("/dev/zero")


def test_a_source_that_is_itself_not_a_regular_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (obj,) = iter_log_objects(str(tmp_path / "pipe"))
    assert obj.entry_problem == ("not_a_regular_file", "a FIFO")
    (zero,) = iter_log_objects("/dev/zero")
    assert zero.entry_problem == ("not_a_regular_file", "a character device")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    (dangling,) = iter_log_objects(str(tmp_path / "dangling"))
    assert dangling.entry_problem is not None and dangling.entry_problem[0] == "dangling_symlink"
