"""bot.trail.reader: delivery files, arrays, JSON lines, and bad input counted as Skips."""

from __future__ import annotations

import gzip

import orjson

from bot.trail.normalize import Skip
from bot.trail.reader import iter_raw_records

EVENT = {"eventVersion": "1.08", "eventName": "GetObject", "eventSource": "s3.amazonaws.com"}


def _split(items: list) -> tuple[list[dict], list[Skip]]:
    return [i for i in items if isinstance(i, dict)], [i for i in items if isinstance(i, Skip)]


def test_delivery_file_plain_and_gzip() -> None:
    doc = orjson.dumps({"Records": [EVENT, EVENT]})
    for data in (doc, gzip.compress(doc)):
        events, skips = _split(list(iter_raw_records(data, "f")))
        assert len(events) == 2 and not skips


def test_bare_array_and_single_event_and_non_event_object() -> None:
    assert list(iter_raw_records(orjson.dumps([EVENT, EVENT, 3]), "a")) == [EVENT, EVENT, Skip("not_an_event", "int")]
    assert list(iter_raw_records(orjson.dumps(EVENT), "e")) == [EVENT]
    policy = orjson.dumps({"Version": "2012-10-17", "Statement": []})
    assert [s.reason for s in iter_raw_records(policy, "p")] == ["not_an_event"]


def test_json_lines_with_wrapper_and_one_bad_line() -> None:
    lines = b"\n".join([orjson.dumps({"event": EVENT, "_panther_rule": "x"}), b"{not json", orjson.dumps(EVENT), b""])
    events, skips = _split(list(iter_raw_records(lines, "x.jsonl")))
    assert events == [EVENT, EVENT]
    assert skips == [Skip("invalid_json", "x.jsonl:2")]


def test_invalid_json_file_is_one_skip() -> None:
    out = list(iter_raw_records(b'{"Records": [\n{"eventName": \n', "bad.json"))
    assert out == [Skip("invalid_json", "bad.json")]


def test_truncated_gzip_keeps_complete_lines_and_counts_once() -> None:
    body = b"\n".join(orjson.dumps(dict(EVENT, eventID=str(i))) for i in range(2000))
    packed = gzip.compress(body)
    cut = packed[: len(packed) // 2]
    events, skips = _split(list(iter_raw_records(cut, "cut.jsonl.gz")))
    assert 0 < len(events) < 2000
    assert [e["eventID"] for e in events] == [str(i) for i in range(len(events))]
    assert skips == [Skip("truncated_gzip", "cut.jsonl.gz")]


def test_truncated_gzip_delivery_file() -> None:
    packed = gzip.compress(orjson.dumps({"Records": [EVENT] * 500}))
    out = list(iter_raw_records(packed[:-30], "cut.json.gz"))
    assert out == [Skip("truncated_gzip", "cut.json.gz")]


def test_corrupt_gzip_and_empty_input() -> None:
    assert [s.reason for s in iter_raw_records(b"\x1f\x8b\x08\x00garbage", "g")] == ["truncated_gzip"]
    assert list(iter_raw_records(b"", "empty")) == []


def test_json_lines_with_bad_first_line() -> None:
    lines = b"\n".join([b"garbage", orjson.dumps(EVENT), orjson.dumps(EVENT)])
    events, skips = _split(list(iter_raw_records(lines, "x.jsonl")))
    assert events == [EVENT, EVENT] and skips == [Skip("invalid_json", "x.jsonl:1")]
