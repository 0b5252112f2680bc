"""bot.trail.reader: delivery files, arrays, JSON lines; objects that cannot be used raise Unreadable with a
reason; the limits hold on the whole-document path and on the streaming path alike."""

from __future__ import annotations

import gzip
import io
import zlib

import orjson
import pytest

from bot.trail.normalize import Skip
from bot.trail.reader import DEFAULT_LIMITS, Limits, Unreadable, _fits_in_memory, iter_raw_records

EVENT = {"eventVersion": "1.08", "eventName": "GetObject", "eventSource": "s3.amazonaws.com"}
#: Forces the streaming path for anything longer than a few bytes.
STREAM = Limits(whole_document_bytes=16)


def _events(n: int) -> list[dict]:
    return [dict(EVENT, eventID=f"id-{i}", requestParameters={"key": f"k{i}", "list": [{"a": i}, {"b": "},{"}]})
            for i in range(n)]


def _split(items: list) -> tuple[list[dict], list[Skip]]:
    return [i for i in items if isinstance(i, dict)], [i for i in items if isinstance(i, Skip)]


def _reason(data: bytes, limits: Limits = DEFAULT_LIMITS) -> str:
    with pytest.raises(Unreadable) as err:
        list(iter_raw_records(data, "obj", limits))
    return err.value.reason


@pytest.mark.parametrize("limits", [Limits(), STREAM], ids=["whole", "streamed"])
def test_delivery_file_plain_gzip_and_stream(limits: Limits) -> None:
    events = _events(40)
    doc = orjson.dumps({"Records": events})
    for data in (doc, gzip.compress(doc)):
        assert list(iter_raw_records(data, "f", limits)) == events
        assert list(iter_raw_records(io.BytesIO(data), "f", limits)) == events  # a stream, read in chunks


@pytest.mark.parametrize("limits", [Limits(), STREAM], ids=["whole", "streamed"])
def test_every_shape_gives_the_same_records_whole_or_streamed(limits: Limits) -> None:
    events = _events(30)
    pretty = orjson.dumps({"Records": events}, option=orjson.OPT_INDENT_2)  # first line is "{": not JSON lines
    assert pretty.startswith(b"{\n")
    shapes = {
        "pretty": pretty,
        "array": orjson.dumps(events),
        "lines": b"\n".join(orjson.dumps(e) for e in events) + b"\n",
        "wrapped lines": b"\n".join(orjson.dumps({"event": e, "_panther_rule": "x"}) for e in events),
        "records after other keys": orjson.dumps({"x": [1, 2], "Records": events}),
    }
    for name, data in shapes.items():
        assert list(iter_raw_records(data, name, limits)) == events, name
        assert list(iter_raw_records(gzip.compress(data), name, limits)) == events, name


@pytest.mark.parametrize("limits", [Limits(), STREAM], ids=["whole", "streamed"])
def test_non_events_inside_a_log_are_skipped_one_by_one(limits: Limits) -> None:
    out = list(iter_raw_records(orjson.dumps([EVENT, EVENT, 3, {"x": 1}]), "a", limits))
    assert out == [EVENT, EVENT, Skip("not_an_event", "int"),
                   Skip("not_an_event", "object without CloudTrail event fields")]


def test_single_event_object() -> None:
    assert list(iter_raw_records(orjson.dumps(EVENT), "e")) == [EVENT]


@pytest.mark.parametrize("limits", [Limits(), STREAM], ids=["whole", "streamed"])
def test_json_that_is_not_cloudtrail_is_an_object_error(limits: Limits) -> None:
    policy = orjson.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*"}]})
    assert _reason(policy, limits) == "not_cloudtrail"
    assert _reason(orjson.dumps([1, 2, 3]), limits) == "not_cloudtrail"
    assert _reason(orjson.dumps([{"a": 1}, {"b": 2}]), limits) == "not_cloudtrail"
    assert _reason(b"\n".join([b'{"a": 1}', b'{"b": 2}']), limits) == "not_cloudtrail"
    assert _reason(b"", limits) == "not_cloudtrail"
    assert _reason(b"  \n ", limits) == "not_cloudtrail"
    assert _reason(gzip.compress(b""), limits) == "not_cloudtrail"


def test_empty_delivery_and_empty_array_are_cloudtrail_with_no_events() -> None:
    assert list(iter_raw_records(orjson.dumps({"Records": []}), "empty")) == []
    assert list(iter_raw_records(b"[]", "empty")) == []


@pytest.mark.parametrize("limits", [Limits(), STREAM], ids=["whole", "streamed"])
def test_json_lines_with_wrapper_and_bad_lines(limits: Limits) -> None:
    lines = b"\n".join([orjson.dumps({"event": EVENT, "_panther_rule": "x"}), b"{not json", orjson.dumps(EVENT),
                        b""])
    assert list(iter_raw_records(lines, "x.jsonl", limits)) == [EVENT, Skip("invalid_json", "x.jsonl:2"), EVENT]
    first_bad = b"\n".join([b"garbage", orjson.dumps(EVENT), orjson.dumps(EVENT)])
    assert list(iter_raw_records(first_bad, "x.jsonl")) == [Skip("invalid_json", "x.jsonl:1"), EVENT, EVENT]


@pytest.mark.parametrize("limits", [Limits(), STREAM], ids=["whole", "streamed"])
def test_invalid_json_and_random_bytes(limits: Limits) -> None:
    assert _reason(b'{"Records": [\n{"eventName": \n', limits) == "invalid_json"
    assert _reason(orjson.dumps({"Records": _events(20)})[:-40], limits) == "invalid_json"  # cut off, not gzip
    noise = bytes((i * 7919 + 13) % 251 for i in range(5000))
    assert _reason(noise, limits) == "invalid_json"


@pytest.mark.parametrize("limits", [Limits(), STREAM], ids=["whole", "streamed"])
def test_truncated_or_corrupt_gzip_is_an_object_error(limits: Limits) -> None:
    packed = gzip.compress(orjson.dumps({"Records": _events(500)}))
    assert _reason(packed[:-30], limits) == "truncated_gzip"
    assert _reason(packed[: len(packed) // 2], limits) == "truncated_gzip"
    lines = gzip.compress(b"\n".join(orjson.dumps(e) for e in _events(2000)))
    assert _reason(lines[: len(lines) // 2], limits) == "truncated_gzip"  # whole or nothing, even for lines
    assert _reason(b"\x1f\x8b\x08\x00garbage", limits) == "truncated_gzip"
    corrupt = bytearray(packed)
    corrupt[len(corrupt) // 2] ^= 0xFF
    assert _reason(bytes(corrupt), limits) in ("truncated_gzip", "invalid_json")


def test_multi_member_gzip_and_trailing_padding() -> None:
    one, two = _events(2), _events(3)
    members = gzip.compress(b"\n".join(orjson.dumps(e) for e in one) + b"\n") + gzip.compress(
        b"\n".join(orjson.dumps(e) for e in two))
    assert list(iter_raw_records(members, "m.jsonl.gz")) == one + two
    padded = gzip.compress(orjson.dumps({"Records": one})) + b"\x00" * 512
    assert list(iter_raw_records(padded, "p.json.gz")) == one


def test_too_large_plain_and_gzip() -> None:
    doc = orjson.dumps({"Records": _events(200)})
    small = Limits(max_bytes=len(doc) - 1, whole_document_bytes=len(doc) // 3)
    assert _reason(doc, small) == "too_large"
    assert _reason(gzip.compress(doc), small) == "too_large"
    assert list(iter_raw_records(doc, "ok", Limits(max_bytes=len(doc)))) == _events(200)


def _bomb(inflated: int, members: int = 1) -> bytes:
    """``members`` gzip members, each of ``inflated`` bytes of JSON whitespace (valid inside an array)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    member = comp.compress(b" " * inflated) + comp.flush()
    head = gzip.compress(b'{"Records": [')
    return head + member * members


def test_decompression_bomb_stops_at_the_ratio() -> None:
    bomb = _bomb(64 << 20, members=32)  # ~2 MB of gzip inflating to 2 GiB
    assert len(bomb) < 3 << 20
    with pytest.raises(Unreadable) as err:
        list(iter_raw_records(bomb, "bomb.json.gz"))
    assert err.value.reason == "compression_ratio" and "100 times" in err.value.detail


def test_ratio_is_checked_only_past_its_floor() -> None:
    events = _events(5)
    padded = gzip.compress(orjson.dumps({"Records": events}) + b" " * (2 << 20))  # ratio ~1000, but only 2 MiB
    assert list(iter_raw_records(padded, "p")) == events
    assert _reason(padded, Limits(ratio_after=1 << 20)) == "compression_ratio"


@pytest.mark.parametrize("limits", [Limits(max_records=10), Limits(max_records=10, whole_document_bytes=16)],
                         ids=["whole", "streamed"])
def test_too_many_records(limits: Limits) -> None:
    assert _reason(orjson.dumps({"Records": _events(11)}), limits) == "too_many_records"
    assert _reason(b"\n".join(orjson.dumps(e) for e in _events(11)), limits) == "too_many_records"
    assert len(list(iter_raw_records(orjson.dumps({"Records": _events(10)}), "ten", limits))) == 10


def test_one_endless_record_is_refused_while_streaming() -> None:
    limits = Limits(max_record_bytes=100_000, whole_document_bytes=1000)
    huge = dict(EVENT, requestParameters={"x": "a" * 300_000})
    assert _reason(orjson.dumps({"Records": [EVENT, huge]}), limits) == "record_too_large"
    assert _reason(orjson.dumps(EVENT) + b"\n" + orjson.dumps(huge) + b"\n", limits) == "record_too_large"
    assert _reason(orjson.dumps(EVENT) + b"\n" + b"x" * 300_000, limits) == "record_too_large"  # no newline
    assert _reason(b"[" + b" " * 300_000 + b"]", limits) == "record_too_large"  # whitespace is no record


def test_the_memory_estimate_is_exact_at_its_bound() -> None:
    """The estimate (4 bytes per byte, 72 per container, 29 per quote) decides at exactly its value, counted
    here with bytes.count."""
    doc = orjson.dumps({"Records": _events(20_000) + [{}, [], {"k": [{}, {"a": ""}]}] * 50_000})
    assert len(doc) > 4 << 20
    estimate = 4 * len(doc) + 72 * (doc.count(b"{") + doc.count(b"[")) + 29 * doc.count(b'"')
    assert _fits_in_memory(doc, Limits(whole_document_memory=estimate))
    assert not _fits_in_memory(doc, Limits(whole_document_memory=estimate - 1))


def test_a_document_whose_objects_would_not_fit_is_streamed() -> None:
    empties = b"[" + b"{}," * 1_500_000 + b"{}]"  # 4.5 MB of JSON, ~108 MB as Python dicts
    assert not _fits_in_memory(empties, Limits(whole_document_memory=64 << 20))
    assert _fits_in_memory(orjson.dumps({"Records": _events(3000)}), Limits(whole_document_memory=1))  # small
    events = _events(27_000)
    doc = orjson.dumps({"Records": events})
    assert len(doc) > 4 << 20 and _fits_in_memory(doc, Limits())
    assert list(iter_raw_records(doc, "d", Limits(whole_document_memory=1))) == events
