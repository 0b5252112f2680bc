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

Bad input never raises and never stops the run. Every skipped record is counted by reason
(``IngestReport.skipped``). An object is ingested whole or not at all: one that cannot be used (unreadable,
not CloudTrail, past a :class:`~bot.trail.reader.Limits` cap; reasons in ``OBJECT_REASONS`` plus
``read_error``) is reported in ``IngestReport.errors``, remembered in the index (``UsageIndex.ingest_errors``,
kind ``object``: the accounts it may hold count as incomplete) and retried on the next run. A directory entry
that is not a regular file (``ENTRY_REASONS``: a FIFO, a device, a symlink loop, a dangling symlink) is never
opened for reading: it is reported in ``IngestReport.unreadable`` and remembered with kind ``entry``, which
makes only an account its path names incomplete, so a stray FIFO does not block every scan.
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
from typing import Any, NamedTuple

from bot.store.usage import ENTRY, OBJECT, ObjectUsage, UsageIndex
from bot.trail.normalize import Normalizer, Skip
from bot.trail.reader import DEFAULT_LIMITS, Limits, Readable, Unreadable, iter_raw_records
from bot.trail.records import CallRecord
from bot.trail.sources import LogObject, UnreadableEntry, iter_log_objects, open_regular_file

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
#: Remote (S3) objects up to this size are fetched whole by the fetch threads (and parsed in the pool); larger
#: ones are streamed and parsed in this process, so no object is ever held whole in memory.
FETCH_WHOLE_BYTES = 16 << 20

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
    # resource ARNs the normalizer derived but refused (structural lint), by reason: kept as "unknown"
    unknown_resources: Counter[str] = field(default_factory=Counter)
    # log object key -> "reason: detail": not ingested (nothing of it is used), retried on the next run
    errors: dict[str, str] = field(default_factory=dict)
    error_reasons: Counter[str] = field(default_factory=Counter)
    # directory entry -> "reason: detail": not a regular file, never read
    unreadable: dict[str, str] = field(default_factory=dict)
    unreadable_reasons: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    workers: int = 1

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def add_problem(self, key: str, problem: Problem) -> None:
        if problem.entry:
            self.unreadable[key] = str(problem)
            self.unreadable_reasons[problem.reason] += 1
        else:
            self.errors[key] = str(problem)
            self.error_reasons[problem.reason] += 1

    def summary_lines(self) -> list[str]:
        entries = f", {len(self.unreadable)} unreadable entries" if self.unreadable else ""
        lines = [
            f"files: {self.files_seen} seen, {self.files_read} read ({self.files_replaced} changed), "
            f"{self.files_already_ingested} already ingested, {len(self.errors)} errors{entries}",
            f"events: {self.events} read, {self.usage_events} usage, {self.denied} denied, "
            f"{self.skipped_total} skipped",
            f"principals: {self.principals}",
        ]
        for title, counts in (("skipped by reason", self.skipped),
                              ("resources refused (kept as unknown) by reason", self.unknown_resources),
                              ("errors by reason", self.error_reasons),
                              ("unreadable entries by reason", self.unreadable_reasons)):
            if counts:
                lines.append(f"{title}: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
        lines.extend(f"error: {key}: {err}" for key, err in sorted(self.errors.items()))
        lines.extend(f"unreadable entry: {key}: {err}" for key, err in sorted(self.unreadable.items()))
        return lines


class Problem(NamedTuple):
    """Why one object or entry was not ingested (plain data: it crosses the process pool)."""

    reason: str  # one of OBJECT_REASONS, "read_error", or (entry=True) one of ENTRY_REASONS
    detail: str
    entry: bool = False

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


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


def parse_object(key: str, size: int, etag: str, data: bytes | Readable, limits: Limits = DEFAULT_LIMITS) -> _Parsed:
    """Read one object (its bytes, or a stream of them) into its aggregated contribution. Raises
    :class:`~bot.trail.reader.Unreadable` when the object cannot be used as a whole; bad records are counted.

    The cyclic garbage collector is paused meanwhile: parsing allocates hundreds of thousands of short-lived,
    acyclic dicts, and the collections they trigger were ~15% of ingest time (reference counting still frees
    them at once; the collector runs again afterwards).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse_object(key, size, etag, data, limits)
    finally:
        if enabled:
            gc.enable()


def _parse_object(key: str, size: int, etag: str, data: bytes | Readable, limits: Limits) -> _Parsed:
    normalize = _get_normalizer().normalize
    out = ObjectUsage(key=key, size=size, etag=etag)
    add, skip = out.add, out.skip
    raw_events = 0
    for item in iter_raw_records(data, key, limits):
        if item.__class__ is Skip:
            skip(item.reason)  # type: ignore[union-attr]
            continue
        raw_events += 1
        try:
            rec = normalize(item)  # type: ignore[arg-type]
        except Exception:  # a normalizer bug must not stop the run: counted, never silent
            skip("normalize_error")
            continue
        if rec.__class__ is CallRecord:
            add(rec)  # type: ignore[arg-type]
        else:
            skip(rec.reason)  # type: ignore[union-attr]
    return _Parsed(out, raw_events)


Task = tuple[str, int, str, bytes | LogObject | None]


def _problem_of(exc: BaseException) -> Problem:
    if isinstance(exc, UnreadableEntry):
        return Problem(exc.reason, exc.detail, entry=True)
    if isinstance(exc, Unreadable):
        return Problem(exc.reason, exc.detail)
    if isinstance(exc, OSError):
        return Problem("read_error", f"{type(exc).__name__}: {exc.strerror or exc}")
    return Problem("read_error", f"{type(exc).__name__}: {exc}")  # S3 errors; never stops the run


def _work(task: Task, limits: Limits = DEFAULT_LIMITS) -> _Parsed | Problem:
    """One object: ``data`` is its bytes (fetched remote object), None (a local file, opened here: in a pool
    worker) or the LogObject itself (streamed here, in this process)."""
    key, size, etag, data = task
    try:
        if data is None:
            with open_regular_file(key) as fh:
                return parse_object(key, size, etag, fh, limits)
        if isinstance(data, LogObject):
            with data.open() as fh:
                return parse_object(key, size, etag, fh, limits)
        return parse_object(key, size, etag, data, limits)
    except Exception as exc:  # one bad object never stops the run: reported, retried next time
        return _problem_of(exc)


def _is_local(obj: LogObject) -> bool:
    return not obj.key.startswith("s3://") and os.path.isabs(obj.key)


#: Threads fetching remote (S3) objects ahead of the parser: GETs are latency-bound, not CPU-bound.
FETCH_THREADS = 8


def _fetch(obj: LogObject) -> tuple[LogObject, bytes | LogObject | None, Problem | None]:
    """A remote object's bytes (at most its listed size: a larger body means it changed meanwhile)."""
    if _is_local(obj):
        return obj, None, None
    if obj.size > FETCH_WHOLE_BYTES:
        return obj, obj, None  # streamed in this process
    try:
        with obj.open() as fh:
            data = fh.read(obj.size + 1)
    except Exception as exc:  # S3 errors, vanished objects: reported and retried next run
        return obj, None, _problem_of(exc)
    if len(data) > obj.size:
        return obj, None, Problem("read_error", f"the object grew past its listed size ({obj.size:,} bytes) "
                                                "while it was read")
    return obj, data, None


def _tasks(objects: list[LogObject], problems: dict[str, Problem]) -> Iterator[Task]:
    """Tasks in listing order. Remote objects are fetched here, by a few threads ahead of the consumer (a
    bounded window, so memory stays flat); local files are opened by whoever parses them."""
    if all(_is_local(o) for o in objects):
        for obj in objects:
            yield (obj.key, obj.size, obj.etag, None)
        return
    with ThreadPoolExecutor(max_workers=FETCH_THREADS, thread_name_prefix="tighten-fetch") as pool:
        window: deque[Future[tuple[LogObject, bytes | LogObject | None, Problem | None]]] = deque()
        items = iter(objects)
        for obj in items:
            window.append(pool.submit(_fetch, obj))
            if len(window) >= 2 * FETCH_THREADS:
                break
        while window:
            fetched, data, problem = window.popleft().result()
            nxt = next(items, None)
            if nxt is not None:
                window.append(pool.submit(_fetch, nxt))
            if problem is not None:
                problems[fetched.key] = problem
            else:
                yield (fetched.key, fetched.size, fetched.etag, data)


def _task_bytes(task: Task) -> int:
    return len(task[3]) if isinstance(task[3], bytes) else 0


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
           accounts: list[str] | None = None, regions: list[str] | None = None,
           limits: Limits = DEFAULT_LIMITS) -> IngestReport:
    """Read every new or changed log object under ``spec`` into ``index``, each within ``limits``.

    The cyclic garbage collector is paused for the run (see :func:`parse_object`): the results unpickled from
    the pool and the rows built for the index are hundreds of thousands of acyclic containers whose
    allocation kept triggering collections in this process too. The young generations are collected after
    every batch written.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _ingest(spec, index, since=since, until=until, progress=progress, s3_client=s3_client,
                       workers=workers, accounts=accounts, regions=regions, limits=limits)
    finally:
        if enabled:
            gc.enable()


def _ingest(spec: str, index: UsageIndex, *, since: date | str | None, until: date | str | None,
            progress: Progress | None, s3_client: Any, workers: int | None, accounts: list[str] | None,
            regions: list[str] | None, limits: Limits) -> IngestReport:
    started = time.perf_counter()
    report = IngestReport()
    todo: list[LogObject] = []
    problems: dict[str, Problem] = {}
    for obj in iter_log_objects(spec, since=_as_date(since), until=_as_date(until), accounts=accounts,
                                regions=regions, s3_client=s3_client):
        report.files_seen += 1
        if obj.entry_problem is not None:
            problems[obj.key] = Problem(*obj.entry_problem, entry=True)
            continue
        old = index.ingested_version(obj.key)
        if old == (obj.size, obj.etag):
            report.files_already_ingested += 1
            continue
        if old is not None:
            report.files_replaced += 1
        if obj.size > limits.max_bytes:
            problems[obj.key] = Problem("too_large", f"{obj.size:,} bytes, over the {limits.max_bytes:,} bytes an "
                                                     "object may hold")
            continue
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

    def collect(key: str, result: _Parsed | Problem) -> None:
        nonlocal done, pending_rows
        done += 1
        if isinstance(result, Problem):
            report.add_problem(key, result)
        else:
            obj = result.usage
            report.files_read += 1
            report.events += result.raw_events
            report.records += obj.events
            report.usage_events += obj.usage_events
            report.denied += obj.denied
            report.skipped.update(obj.skipped)
            report.unknown_resources.update(obj.unknown_resources)
            principals.update(obj.principals)
            pending.append(obj)
            pending_rows += len(obj.usage) + len(obj.denials) + len(obj.principals)
            if len(pending) >= BATCH_OBJECTS or pending_rows >= BATCH_ROWS:
                flush()
        if progress:
            progress(done, len(todo))

    read_problems: dict[str, Problem] = {}
    tasks = _tasks(todo, read_problems)
    if n_workers == 1:
        for task in tasks:
            collect(task[0], _work(task, limits))
    else:
        in_flight: deque[tuple[Task, Future[_Parsed | Problem]]] = deque()
        in_flight_bytes = 0

        def collect_oldest() -> None:
            nonlocal in_flight_bytes
            task, fut = in_flight[0]
            collect(task[0], fut.result())
            in_flight.popleft()
            in_flight_bytes -= _task_bytes(task)

        try:
            remote = not all(_is_local(o) for o in todo)
            context = _pool_context(remote)
            if context.get_start_method() == "fork":
                _get_normalizer()  # built once here (event map, catalog index) and inherited by every worker
            with ProcessPoolExecutor(max_workers=n_workers, mp_context=context) as pool:
                # a bounded window of submitted objects keeps memory flat (S3 bytes are held until parsed)
                for task in tasks:
                    if isinstance(task[3], LogObject):  # a large remote object: streamed here
                        collect(task[0], _work(task, limits))
                        continue
                    in_flight.append((task, pool.submit(_work, task, limits)))
                    in_flight_bytes += _task_bytes(task)
                    while in_flight and (len(in_flight) >= n_workers * IN_FLIGHT_PER_WORKER
                                         or in_flight_bytes >= IN_FLIGHT_BYTES):
                        collect_oldest()
                while in_flight:
                    collect_oldest()
        except BrokenProcessPool:
            # a worker died (killed, out of memory): finish the remaining objects in this process
            report.workers = 1
            for task in [t for t, _ in in_flight]:
                collect(task[0], _work(task, limits))
            for task in tasks:
                collect(task[0], _work(task, limits))
    for key, problem in read_problems.items():
        collect(key, problem)
    flush()
    for key, problem in problems.items():
        report.add_problem(key, problem)
    for key, err in report.errors.items():
        index.record_error(key, err, kind=OBJECT)
    for key, err in report.unreadable.items():
        index.record_error(key, err, kind=ENTRY)
    for key, _, _ in index.ingest_errors(kind=ENTRY):
        if key not in report.unreadable and not key.startswith("s3://") and not os.path.lexists(key):
            index.clear_error(key)  # the stray entry is gone
    report.principals = len(principals)
    report.seconds = time.perf_counter() - started
    return report
