"""Raw CloudTrail records out of one log object's bytes.

Accepted shapes (after gunzip when the data starts with the gzip magic):

* CloudTrail delivery files: ``{"Records": [...]}``;
* a bare JSON array of events (stratus-red-team detonation logs);
* a single JSON object that is itself an event;
* JSON lines (``.jsonl``/``.ndjson`` exports): one event per line; a line ``{"event": {...}}`` (Panther
  test-case export) is unwrapped.

Bad input never raises. It yields :class:`~bot.trail.normalize.Skip` items instead:

* ``truncated_gzip``: the gzip stream ends early or is corrupt. Whatever decompressed cleanly before the
  damage is still parsed (for JSON lines that keeps every complete line; for a ``{"Records": [...]}``
  document a cut-off tail is no longer valid JSON, so only the ``truncated_gzip`` skip is reported).
* ``invalid_json``: the whole document is not JSON (one skip for the file), or one JSON line is not JSON
  (one skip per bad line, the other lines are kept).
* ``not_an_event``: a JSON value that is not an object where an event was expected.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

import orjson

from bot.trail.normalize import Skip

_GZIP_MAGIC = b"\x1f\x8b"
#: A lone JSON object is taken as an event when it has one of these (else: a policy, a config, ...).
_EVENT_KEYS = ("eventName", "eventSource", "eventVersion", "userIdentity", "eventTime")


def _gunzip(data: bytes) -> tuple[bytes, bool]:
    """Decompress (possibly multi-member) gzip data. Returns (bytes, complete)."""
    out: list[bytes] = []
    buf = data
    while buf:
        dec = zlib.decompressobj(zlib.MAX_WBITS | 16)
        try:
            out.append(dec.decompress(buf))
        except zlib.error:
            return b"".join(out), False
        if not dec.eof:
            # stream ended before the gzip trailer: keep what we have
            return b"".join(out), False
        buf = dec.unused_data
        if buf and not buf.startswith(_GZIP_MAGIC):
            break  # trailing garbage/padding after a complete member is ignored, as gzip(1) does
    return b"".join(out), True


def _events_of(doc: Any) -> Iterator[dict | Skip]:
    if isinstance(doc, dict):
        records = doc.get("Records")
        if isinstance(records, list):
            for rec in records:
                if isinstance(rec, dict):
                    yield rec
                else:
                    yield Skip("not_an_event", type(rec).__name__)
            return
        inner = doc.get("event")
        if isinstance(inner, dict) and "eventName" not in doc:
            yield inner
            return
        if any(k in doc for k in _EVENT_KEYS):
            yield doc
        else:
            yield Skip("not_an_event", "object without CloudTrail event fields")
    elif isinstance(doc, list):
        for rec in doc:
            if isinstance(rec, dict):
                inner = rec.get("event")
                yield inner if isinstance(inner, dict) and "eventName" not in rec else rec
            else:
                yield Skip("not_an_event", type(rec).__name__)
    else:
        yield Skip("not_an_event", type(doc).__name__)


def iter_raw_records(data: bytes, name: str) -> Iterator[dict | Skip]:
    """Yield every raw event (a dict) in ``data``, or a Skip for each unreadable part.

    ``name`` is used only in skip details (a path or S3 key), never to decide the format.
    """
    complete = True
    if data[:2] == _GZIP_MAGIC:
        data, complete = _gunzip(data)
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        doc = None
        whole_ok = False
    else:
        whole_ok = True
    if whole_ok:
        yield from _events_of(doc)
    elif _looks_like_json_lines(data):
        yield from _json_lines(data, name, complete)
    elif data.strip() and complete:
        yield Skip("invalid_json", name)
    if not complete:
        yield Skip("truncated_gzip", name)


def _looks_like_json_lines(data: bytes) -> bool:
    """Several lines, one of the first few of which is a JSON object on its own."""
    lines = [line for line in data.lstrip().split(b"\n", 6)[:6] if line.strip()]
    if len(lines) < 2:
        return False
    for line in lines[:5]:
        try:
            if isinstance(orjson.loads(line), dict):
                return True
        except orjson.JSONDecodeError:
            continue
    return False


def _json_lines(data: bytes, name: str, complete: bool) -> Iterator[dict | Skip]:
    lines = data.split(b"\n")
    last = len(lines) - 1
    for i, line in enumerate(lines):
        line = line.strip()
        if not line:
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            if i == last and not complete:
                continue  # the cut-off tail of a truncated stream: reported once as truncated_gzip
            yield Skip("invalid_json", f"{name}:{i + 1}")
            continue
        yield from _events_of(doc)
