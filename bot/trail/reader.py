"""Raw CloudTrail records out of one log object, read as a stream within fixed limits.

Accepted shapes (gzip is detected by its magic number, not by the name):

* CloudTrail delivery files: ``{"Records": [...]}``;
* a bare JSON array of events (stratus-red-team detonation logs);
* a single JSON object that is itself an event;
* JSON lines (``.jsonl``/``.ndjson`` exports): one event per line; a line ``{"event": {...}}`` (Panther
  test-case export) is unwrapped.

How an object is read: its bytes are decompressed as they are read (multi-member gzip streams are followed;
padding after a complete member is ignored, as gzip(1) does). A document of at most
``Limits.whole_document_bytes`` decompressed, whose Python objects are estimated to fit in
``Limits.whole_document_memory``, is parsed in one go by orjson: the fast path every ordinary delivery file
takes. A larger one is parsed one record at a time (ijson's C backend for arrays and ``{"Records": [...]}``,
line by line for JSON lines), so memory stays bounded whatever the object's size.

An object is used whole or not at all. When it cannot be used, :class:`Unreadable` is raised (possibly after
some records were yielded: the caller discards them) with one of ``OBJECT_REASONS``:

* ``truncated_gzip``: the gzip stream ends early or is corrupt;
* ``invalid_json``: the document is neither JSON nor JSON lines (random bytes, a cut-off document);
* ``not_cloudtrail``: JSON, but no CloudTrail event in it (an empty file, a policy document, a list of numbers);
* ``too_large``: more than ``Limits.max_bytes`` once decompressed;
* ``compression_ratio``: it inflates more than ``Limits.max_ratio`` times (a decompression bomb);
* ``too_many_records``: more than ``Limits.max_records`` records;
* ``record_too_large``: one record (or JSON line) longer than ``Limits.max_record_bytes``.

Problems with single records yield :class:`~bot.trail.normalize.Skip` items and the rest of the object is used:

* ``invalid_json``: one line of a JSON-lines file is not JSON;
* ``not_an_event``: a value where an event was expected is not an object, or an object with none of the
  CloudTrail event fields.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import ijson
import orjson

from bot.trail.normalize import Skip

OBJECT_REASONS = (
    "truncated_gzip",
    "invalid_json",
    "not_cloudtrail",
    "too_large",
    "compression_ratio",
    "too_many_records",
    "record_too_large",
)

_GZIP_MAGIC = b"\x1f\x8b"
#: Compressed bytes read at a time, and decompressed bytes produced at a time once streaming.
_READ_CHUNK = 1 << 20
_STREAM_CHUNK = 1 << 20
#: ijson reads this much at a time.
_IJSON_BUFFER = 1 << 16
#: Documents up to this size are parsed whole without estimating their memory first (at worst ~100 MB of
#: Python objects; the estimate costs about a tenth of the parse, so ordinary files skip it).
_SMALL_DOCUMENT = 4 << 20
_OPEN_BRACE, _OPEN_BRACKET, _QUOTE = b"{[\""


@dataclass(frozen=True)
class Limits:
    """What one log object may cost. An object past a limit is not used (see :class:`Unreadable`).

    CloudTrail delivers a file per account and region every few minutes; the bench corpus (500 realistic
    events per file) is 0.7 MB of JSON per file, so these leave a wide margin for busy accounts while keeping
    a hostile object to a few hundred MB of work and memory: at most ``whole_document_memory`` for a document
    parsed whole, about 24 times ``max_record_bytes`` for the record being parsed when streaming, and the
    aggregated usage of at most ``max_records`` records.
    """

    max_bytes: int = 256 << 20  # decompressed bytes per object
    max_ratio: int = 100  # decompressed / compressed bytes (real CloudTrail gzip files: about 10 to 20)
    ratio_after: int = 4 << 20  # the ratio is checked once this many bytes have been decompressed
    max_records: int = 250_000
    max_record_bytes: int = 1 << 20
    whole_document_bytes: int = 16 << 20
    whole_document_memory: int = 128 << 20


DEFAULT_LIMITS = Limits()


class Unreadable(Exception):
    """The object as a whole cannot be used; ``reason`` is one of ``OBJECT_REASONS``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _mib(n: int) -> str:
    return f"{n / (1 << 20):g} MiB"


class _Inflater:
    """The decompressed bytes of one object, chunk by chunk, within the byte and ratio limits."""

    def __init__(self, source: Readable, limits: Limits) -> None:
        self._read = source.read
        self._limits = limits
        self.size = 0  # decompressed bytes produced
        self.consumed = 0  # compressed bytes given to the decompressor and used by it
        self.finished = False
        first = self._read(_READ_CHUNK)
        while 0 < len(first) < 2:
            more = self._read(_READ_CHUNK)
            if not more:
                break
            first += more
        self.gzip = first[:2] == _GZIP_MAGIC
        self._pending = first  # input read but not yet decompressed (or, for plain data, not yet returned)
        self._dec: Any = zlib.decompressobj(zlib.MAX_WBITS | 16) if self.gzip else None

    def chunk(self, limit: int) -> bytes:
        """Up to ``limit`` more decompressed bytes; ``b""`` once the object is read whole."""
        if self.finished:
            return b""
        out = self._gzip_chunk(limit) if self.gzip else self._plain_chunk(limit)
        if not out:
            self.finished = True
            return out
        self.size += len(out)
        limits = self._limits
        if self.gzip and self.size > limits.ratio_after and self.size > limits.max_ratio * max(1, self.consumed):
            raise Unreadable("compression_ratio", f"{_mib(self.size)} inflated from {self.consumed:,} bytes "
                             f"(more than {limits.max_ratio} times)")
        if self.size > limits.max_bytes:
            raise Unreadable("too_large", f"more than {_mib(limits.max_bytes)}"
                             + (" once decompressed" if self.gzip else ""))
        return out

    def _plain_chunk(self, limit: int) -> bytes:
        if self._pending:
            out, self._pending = self._pending[:limit], self._pending[limit:]
            return out
        return self._read(min(limit, _READ_CHUNK))

    def _input(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        return self._read(_READ_CHUNK)

    def _gzip_chunk(self, limit: int) -> bytes:
        while True:
            dec = self._dec
            if dec.eof:
                rest = dec.unused_data or self._input()
                if rest[:2] != _GZIP_MAGIC:
                    return b""  # end of the last member (anything after it is padding)
                self._dec = zlib.decompressobj(zlib.MAX_WBITS | 16)
                self._pending = rest
                continue
            data = dec.unconsumed_tail or self._input()
            if not data:
                raise Unreadable("truncated_gzip", "the gzip stream ends early")
            try:
                out = dec.decompress(data, limit)
            except zlib.error as exc:
                raise Unreadable("truncated_gzip", f"corrupt gzip data ({exc})") from None
            self.consumed += len(data) - len(dec.unconsumed_tail) - len(dec.unused_data)
            if out:
                return out


def iter_raw_records(source: bytes | Readable, name: str, limits: Limits = DEFAULT_LIMITS) -> Iterator[dict | Skip]:
    """Yield every raw event (a dict) in ``source``, or a Skip for each unusable record.

    ``source`` is the object's bytes or a binary stream (read once, in chunks). Raises :class:`Unreadable` when
    the object as a whole cannot be used. ``name`` is used only in details, never to decide the format.
    """
    inflater = _Inflater(io.BytesIO(source) if isinstance(source, bytes | bytearray) else source, limits)
    parts: list[bytes] = []
    size = 0
    while size <= limits.whole_document_bytes:
        part = inflater.chunk(limits.whole_document_bytes + 1 - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    head = parts[0] if len(parts) == 1 else b"".join(parts)
    del parts
    if inflater.finished and _fits_in_memory(head, limits):
        yield from _whole_document(head, name, limits)
    else:
        yield from _counted(_streamed_document(head, inflater, name, limits), limits, streamed=True)


def _fits_in_memory(data: bytes, limits: Limits) -> bool:
    """Whether orjson's objects for ``data`` stay within ``whole_document_memory``. Conservative: an empty
    object or list costs ~72 bytes per 3 bytes of JSON, a short string ~58 per 4, anything else under 4 times
    its size (realistic CloudTrail: about 3)."""
    if len(data) <= _SMALL_DOCUMENT:
        return True
    # numpy counts with vector instructions: a tenth of the time of bytes.count, which scans byte by byte
    # (numpy is loaded anyway: the store's SQLite library imports it)
    import numpy as np

    view = np.frombuffer(data, dtype=np.uint8)
    containers = int(np.count_nonzero(view == _OPEN_BRACE)) + int(np.count_nonzero(view == _OPEN_BRACKET))
    quotes = int(np.count_nonzero(view == _QUOTE))
    estimate = 4 * len(data) + 72 * containers + 29 * quotes
    return estimate <= limits.whole_document_memory


def _is_event(value: dict) -> bool:
    return ("eventName" in value or "eventSource" in value or "eventTime" in value or "userIdentity" in value
            or "eventVersion" in value)


def _element(value: Any) -> dict | Skip:
    """One value where an event is expected: the event, its ``{"event": {...}}`` wrapper, or a Skip."""
    if value.__class__ is dict:
        if _is_event(value):
            return value
        inner = value.get("event")
        if inner.__class__ is dict and _is_event(inner):
            return inner
        return Skip("not_an_event", "object without CloudTrail event fields")
    return Skip("not_an_event", type(value).__name__)


def _counted(items: Iterable[dict | Skip], limits: Limits, *, streamed: bool) -> Iterator[dict | Skip]:
    """Pass records through, enforcing ``max_records``; an object with no event at all is not CloudTrail."""
    records = events = 0
    max_records = limits.max_records
    for item in items:
        records += 1
        if records > max_records:
            raise Unreadable("too_many_records", f"more than {max_records:,} records")
        if item.__class__ is dict:
            events += 1
        yield item
    if not events and (records or streamed):
        raise Unreadable("not_cloudtrail", f"{records:,} value(s), none of them a CloudTrail event")


def _whole_document(data: bytes, name: str, limits: Limits) -> Iterator[dict | Skip]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        if _looks_like_json_lines(data):
            yield from _counted(_line_records(data.split(b"\n"), name), limits, streamed=False)
        elif data.strip():
            raise Unreadable("invalid_json", "neither JSON nor JSON lines") from None
        else:
            raise Unreadable("not_cloudtrail", "empty") from None
        return
    records = doc.get("Records") if doc.__class__ is dict else doc
    if records.__class__ is not list:
        yield from _counted([_element(doc)], limits, streamed=False)
        return
    # the hot path of every delivery file: one loop, no per-record generator layers
    if len(records) > limits.max_records:
        raise Unreadable("too_many_records", f"{len(records):,} records, more than {limits.max_records:,}")
    events = 0
    for rec in records:
        if rec.__class__ is dict and ("eventName" in rec or _is_event(rec)):
            events += 1
            yield rec
        else:
            item = _element(rec)
            if item.__class__ is dict:
                events += 1
            yield item
    if records and not events:
        raise Unreadable("not_cloudtrail", f"{len(records):,} value(s), none of them a CloudTrail event")


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


def _line_records(lines: Iterable[bytes], name: str) -> Iterator[dict | Skip]:
    for i, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            yield Skip("invalid_json", f"{name}:{i}")
            continue
        yield _element(doc)


# -- streaming: documents too large to parse whole ---------------------------------------------------


class _RecordReader:
    """A file-like view of ``head`` followed by the rest of the object, for ijson. Counts the bytes read since
    the last record was taken (:meth:`mark`), so one endless record cannot make ijson build it in memory."""

    def __init__(self, head: bytes, inflater: _Inflater, limits: Limits) -> None:
        self._head = memoryview(head)
        self._pos = 0
        self._inflater = inflater
        self._budget = limits.max_record_bytes + _IJSON_BUFFER
        self._limit = limits.max_record_bytes
        self._since_mark = 0

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""
        size = _STREAM_CHUNK if size < 0 else size
        if self._pos < len(self._head):
            out = bytes(self._head[self._pos:self._pos + size])
            self._pos += len(out)
        else:
            out = self._inflater.chunk(size)
        self._since_mark += len(out)
        if self._since_mark > self._budget:
            raise Unreadable("record_too_large", f"a record longer than {_mib(self._limit)}")
        return out

    def mark(self) -> None:
        self._since_mark = 0


def _streamed_document(head: bytes, inflater: _Inflater, name: str, limits: Limits) -> Iterator[dict | Skip]:
    while not head.strip():  # leading whitespace (the caps bound how much)
        more = inflater.chunk(_STREAM_CHUNK)
        if not more:
            return
        head = more
    # enough to see the first lines whole (to tell JSON lines from one document)
    while head.count(b"\n", 0, limits.max_record_bytes) < 6 and len(head) <= limits.max_record_bytes:
        more = inflater.chunk(_STREAM_CHUNK)
        if not more:
            break
        head += more
    start = head.lstrip()[:1]
    if start == b"{" and not _first_line_is_object(head, limits):
        prefix = "Records.item"
    elif start == b"[":
        prefix = "item"
    elif _looks_like_json_lines(head[:limits.max_record_bytes]):
        yield from _line_records(_stream_lines(head, inflater, limits), name)
        return
    else:
        raise Unreadable("invalid_json", "neither JSON nor JSON lines")
    reader = _RecordReader(head, inflater, limits)
    del head
    try:
        for value in ijson.items(reader, prefix, use_float=True, buf_size=_IJSON_BUFFER):
            reader.mark()
            yield _element(value)
    except ijson.JSONError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Unreadable("invalid_json", reason[:200]) from None


def _first_line_is_object(head: bytes, limits: Limits) -> bool:
    """JSON lines start with a whole JSON object on the first line; a ``{"Records": [...]}`` document does not."""
    text = head.lstrip()
    end = text.find(b"\n", 0, limits.max_record_bytes)
    if end < 0:
        return False
    try:
        return isinstance(orjson.loads(text[:end]), dict)
    except orjson.JSONDecodeError:
        return False


def _stream_lines(head: bytes, inflater: _Inflater, limits: Limits) -> Iterator[bytes]:
    buf, pos = head, 0
    while True:
        end = buf.find(b"\n", pos)
        if end >= 0:
            if end - pos > limits.max_record_bytes:
                raise Unreadable("record_too_large", f"a line longer than {_mib(limits.max_record_bytes)}")
            yield buf[pos:end]
            pos = end + 1
            continue
        rest = buf[pos:]
        if len(rest) > limits.max_record_bytes:
            raise Unreadable("record_too_large", f"a line longer than {_mib(limits.max_record_bytes)}")
        more = inflater.chunk(_STREAM_CHUNK)
        if not more:
            if rest:
                yield rest
            return
        buf, pos = rest + more, 0
