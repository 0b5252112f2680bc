"""Ingest: CloudTrail log objects -> normalized call records -> the usage index.

Only new or changed objects are read (``UsageIndex.needs_ingest``: key + size + ETag). Each object is read,
parsed and normalized into an in-memory :class:`~bot.store.usage.ObjectUsage`; the single writer (this
process) stores batches of objects with ``executemany`` inside one transaction. With ``workers > 1`` the
read/parse/normalize step runs in a process pool (local files are opened by the workers; S3 objects are
fetched here, by ``FETCH_THREADS`` threads ahead of the parser, and their bytes handed over), the index is
still written by this process only. Default workers: the CPU count (at most 4) when there are at least
``MIN_OBJECTS_FOR_POOL`` objects to read; a pool only pays when cores are free (see bench/ingest.py).

``since``/``until`` select which objects are listed (S3 day prefixes, dated CloudTrail file names); they do
not drop events inside an object, because an object is ingested once and must be complete. Query windows
belong to :meth:`UsageIndex.usage`.

Bad input never raises: every skipped record or part is counted by reason (``IngestReport.skipped``); an
object that cannot be read at all is reported in ``IngestReport.errors``, remembered in the index
(``UsageIndex.ingest_errors``) and retried on the next run.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from bot.store.usage import ObjectUsage, UsageIndex
from bot.trail.normalize import Normalizer, Skip
from bot.trail.reader import iter_raw_records
from bot.trail.records import CallRecord
from bot.trail.sources import LogObject, iter_log_objects

#: Flush to the index after this many objects or usage rows, whichever comes first. Small batches keep the
#: pool busy: while this process writes a batch it submits nothing, so the queued work (below) must outlast
#: one flush.
BATCH_OBJECTS = 16
BATCH_ROWS = 20_000
#: Objects submitted to the pool but not yet collected, per worker, and at most this many bytes of fetched
#: (S3) object data held for them.
IN_FLIGHT_PER_WORKER = 16
IN_FLIGHT_BYTES = 64 << 20
#: Below this many objects to read a process pool costs more than it saves.
MIN_OBJECTS_FOR_POOL = 8

Progress = Callable[[int, int], None]  # (objects done, objects to read)


@dataclass
class IngestReport:
    files_seen: int = 0
    files_read: int = 0
    files_already_ingested: int = 0  # unchanged since a previous run: not read
    files_replaced: int = 0  # read again because size/ETag changed (old contribution replaced)
    events: int = 0  # raw records read
    records: int = 0  # records normalized into calls (usage + denied + calls needing no action)
    usage_events: int = 0
    denied: int = 0
    principals: int = 0  # distinct principals in the objects read by this run
    skipped: Counter[str] = field(default_factory=Counter)
    errors: dict[str, str] = field(default_factory=dict)  # object key -> why it could not be read
    seconds: float = 0.0
    workers: int = 1

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def summary_lines(self) -> list[str]:
        lines = [
            f"files: {self.files_seen} seen, {self.files_read} read ({self.files_replaced} changed), "
            f"{self.files_already_ingested} already ingested, {len(self.errors)} errors",
            f"events: {self.events} read, {self.usage_events} usage, {self.denied} denied, "
            f"{self.skipped_total} skipped",
            f"principals: {self.principals}",
        ]
        if self.skipped:
            lines.append("skipped by reason: " + ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items())))
        for key, err in sorted(self.errors.items()):
            lines.append(f"error: {key}: {err}")
        return lines


# -- per-object work (runs in a worker process or inline) ----------------------------------------

_normalizer: Normalizer | None = None


def _get_normalizer() -> Normalizer:
    global _normalizer
    if _normalizer is None:
        _normalizer = Normalizer()
    return _normalizer


@dataclass
class _Parsed:
    usage: ObjectUsage
    raw_events: int


def parse_object(key: str, size: int, etag: str, data: bytes) -> _Parsed:
    """Read one object's bytes into its aggregated contribution. Never raises on bad content.

    The cyclic garbage collector is paused meanwhile: parsing allocates hundreds of thousands of short-lived,
    acyclic dicts, and the collections they trigger were ~15% of ingest time (reference counting still frees
    them at once; the collector runs again afterwards).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse_object(key, size, etag, data)
    finally:
        if enabled:
            gc.enable()


def _parse_object(key: str, size: int, etag: str, data: bytes) -> _Parsed:
    normalize = _get_normalizer().normalize
    out = ObjectUsage(key=key, size=size, etag=etag)
    add, skip = out.add, out.skip
    raw_events = 0
    for item in iter_raw_records(data, key):
        if isinstance(item, Skip):
            skip(item.reason)
            continue
        raw_events += 1
        try:
            rec = normalize(item)
        except Exception:  # a normalizer bug must not stop the run: counted, never silent
            skip("normalize_error")
            continue
        if isinstance(rec, CallRecord):
            add(rec)
        else:
            skip(rec.reason)
    return _Parsed(out, raw_events)


def _work(task: tuple[str, int, str, bytes | None]) -> _Parsed | str:
    key, size, etag, data = task
    try:
        if data is None:
            with open(key, "rb") as fh:
                data = fh.read()
        return parse_object(key, size, etag, data)
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    except Exception as exc:  # defensive: one bad object never stops the run
        return f"{type(exc).__name__}: {exc}"


def _is_local(obj: LogObject) -> bool:
    return not obj.key.startswith("s3://") and os.path.isabs(obj.key)


#: Threads fetching remote (S3) objects ahead of the parser: GETs are latency-bound, not CPU-bound.
FETCH_THREADS = 8


def _fetch(obj: LogObject, local_inline: bool) -> tuple[LogObject, bytes | None, str | None]:
    if local_inline and _is_local(obj):
        return obj, None, None
    try:
        return obj, obj.read(), None
    except Exception as exc:  # S3 errors, vanished files: reported and retried next run
        return obj, None, f"{type(exc).__name__}: {exc}"


def _tasks(objects: list[LogObject], errors: dict[str, str],
           local_inline: bool) -> Iterator[tuple[str, int, str, bytes | None]]:
    """Tasks in listing order. Objects the worker cannot open itself are fetched here, by a few threads
    ahead of the consumer (a bounded window, so memory stays flat)."""
    if all(local_inline and _is_local(o) for o in objects):
        for obj in objects:
            yield (obj.key, obj.size, obj.etag, None)
        return
    with ThreadPoolExecutor(max_workers=FETCH_THREADS, thread_name_prefix="tighten-fetch") as pool:
        window: deque[Future[tuple[LogObject, bytes | None, str | None]]] = deque()
        items = iter(objects)
        for obj in items:
            window.append(pool.submit(_fetch, obj, local_inline))
            if len(window) >= 2 * FETCH_THREADS:
                break
        while window:
            fetched, data, error = window.popleft().result()
            nxt = next(items, None)
            if nxt is not None:
                window.append(pool.submit(_fetch, nxt, local_inline))
            if error is not None:
                errors[fetched.key] = error
            else:
                yield (fetched.key, fetched.size, fetched.etag, data)


def _as_date(value: date | str | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value[:10])


def _pool_context(fetch_threads: bool = False) -> Any:
    """``fork`` (cheapest) in a single-threaded process such as the CLI; ``forkserver`` when other threads
    run (the bot's scheduler and Slack listeners, or our own S3 fetch threads), because forking a
    multi-threaded process can deadlock."""
    methods = multiprocessing.get_all_start_methods()
    if threading.active_count() == 1 and not fetch_threads and "fork" in methods:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def default_workers(n_objects: int) -> int:
    if n_objects < MIN_OBJECTS_FOR_POOL:
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


def ingest(spec: str, index: UsageIndex, *, since: date | str | None = None, until: date | str | None = None,
           progress: Progress | None = None, s3_client: Any = None, workers: int | None = None,
           accounts: list[str] | None = None, regions: list[str] | None = None) -> IngestReport:
    """Read every new or changed log object under ``spec`` into ``index``.

    The cyclic garbage collector is paused for the run (see :func:`parse_object`): the results unpickled from
    the pool and the rows built for the index are hundreds of thousands of acyclic containers whose
    allocation kept triggering collections in this process too. The young generations are collected after
    every batch written.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _ingest(spec, index, since=since, until=until, progress=progress, s3_client=s3_client,
                       workers=workers, accounts=accounts, regions=regions)
    finally:
        if enabled:
            gc.enable()


def _ingest(spec: str, index: UsageIndex, *, since: date | str | None, until: date | str | None,
            progress: Progress | None, s3_client: Any, workers: int | None, accounts: list[str] | None,
            regions: list[str] | None) -> IngestReport:
    started = time.perf_counter()
    report = IngestReport()
    todo: list[LogObject] = []
    for obj in iter_log_objects(spec, since=_as_date(since), until=_as_date(until), accounts=accounts,
                                regions=regions, s3_client=s3_client):
        report.files_seen += 1
        old = index.ingested_version(obj.key)
        if old == (obj.size, obj.etag):
            report.files_already_ingested += 1
            continue
        if old is not None:
            report.files_replaced += 1
        todo.append(obj)
    n_workers = default_workers(len(todo)) if workers is None else max(1, workers)
    report.workers = n_workers
    principals: set[str] = set()
    pending: list[ObjectUsage] = []
    pending_rows = 0
    done = 0
    if progress:
        progress(0, len(todo))

    def flush() -> None:
        nonlocal pending, pending_rows
        if pending:
            index.record_objects(pending)
            # the collector is paused for the run: collect the young generations here, so cycles made
            # meanwhile (S3 client responses, futures) do not pile up over a long ingest
            gc.collect(1)
        pending, pending_rows = [], 0

    def collect(key: str, result: _Parsed | str) -> None:
        nonlocal done, pending_rows
        done += 1
        if isinstance(result, str):
            report.errors[key] = result
        else:
            obj = result.usage
            report.files_read += 1
            report.events += result.raw_events
            report.records += obj.events
            report.usage_events += obj.usage_events
            report.denied += obj.denied
            report.skipped.update(obj.skipped)
            principals.update(obj.principals)
            pending.append(obj)
            pending_rows += len(obj.usage) + len(obj.denials) + len(obj.principals)
            if len(pending) >= BATCH_OBJECTS or pending_rows >= BATCH_ROWS:
                flush()
        if progress:
            progress(done, len(todo))

    read_errors: dict[str, str] = {}
    if n_workers == 1:
        for task in _tasks(todo, read_errors, local_inline=False):
            collect(task[0], _work(task))
    else:
        in_flight: deque[tuple[tuple[str, int, str, bytes | None], Future[_Parsed | str]]] = deque()
        in_flight_bytes = 0
        tasks = _tasks(todo, read_errors, local_inline=True)

        def collect_oldest() -> None:
            nonlocal in_flight_bytes
            task, fut = in_flight[0]
            collect(task[0], fut.result())
            in_flight.popleft()
            in_flight_bytes -= len(task[3] or b"")

        try:
            remote = not all(_is_local(o) for o in todo)
            with ProcessPoolExecutor(max_workers=n_workers, mp_context=_pool_context(remote)) as pool:
                # a bounded window of submitted objects keeps memory flat (S3 bytes are held until parsed)
                for task in tasks:
                    in_flight.append((task, pool.submit(_work, task)))
                    in_flight_bytes += len(task[3] or b"")
                    while in_flight and (len(in_flight) >= n_workers * IN_FLIGHT_PER_WORKER
                                         or in_flight_bytes >= IN_FLIGHT_BYTES):
                        collect_oldest()
                while in_flight:
                    collect_oldest()
        except BrokenProcessPool:
            # a worker died (killed, out of memory): finish the remaining objects in this process
            report.workers = 1
            for task in [t for t, _ in in_flight]:
                collect(task[0], _work(task))
            for task in tasks:
                collect(task[0], _work(task))
    for key, err in read_errors.items():
        done += 1
        report.errors[key] = err
        if progress:
            progress(done, len(todo))
    flush()
    for key, err in report.errors.items():
        index.record_error(key, err)
    report.principals = len(principals)
    report.seconds = time.perf_counter() - started
    return report
