"""What every job (scan, apply, rollback, digest, watch...) runs with: store, config, clock, AWS and Slack.

Stores are per thread (APScheduler triggers run on its thread pool, the worker loop on its own thread) because
our stores open explicit ``BEGIN IMMEDIATE`` transactions, which must not interleave on one SQLite connection.
AWS clients come from ``iam_for(account)`` (tests pass moto clients; production uses per-account sessions);
Slack goes through ``notifier`` (``bot.slack.notify.Notifier``), which may be None (CLI scans post nothing).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlite_utils

from bot.config import Config
from bot.store.access import ThreadStores
from bot.store.db import open_db
from bot.util.clock import Clock, utcnow


class JobNotifier(Protocol):
    """The part of ``bot.slack.notify.Notifier`` the jobs use."""

    def post_proposal(self, proposal_id: str) -> bool: ...

    def post_apply_result(self, proposal_id: str, change_id: str | None, ok: bool, detail: str) -> Any: ...

    def post_rollback_result(self, proposal_id: str | None, change_id: str, ok: bool, detail: str,
                             requested_by: str | None = None, conflicts: Sequence[str] = ()) -> Any: ...

    def post_denial_alert(self, proposal_id: str, change_id: str, denials: list[tuple[str, str, str, str]]) -> Any: ...

    def post_digest(self, channel: str, text: str, blocks: list[dict[str, Any]], png: bytes | None) -> Any: ...

    def post_applied_via_code(self, proposal_id: str, *, confirmed: bool) -> Any: ...

    def post_drift_back(self, proposal_id: str, change_id: str) -> Any: ...


@dataclass
class JobContext(ThreadStores):
    db_path: str
    config: Config
    clock: Clock = utcnow
    iam_for: Callable[[str], Any] | None = None  # account id -> boto3 IAM client
    notifier: JobNotifier | None = None
    aa_client_for: Callable[[str], Any] | None = None  # account id -> boto3 accessanalyzer client
    # account id -> boto3 IAM client for IAM's service-last-accessed data (the reader role); None: scans run
    # without that safety net and say so in the proposal's notes
    last_accessed_for: Callable[[str], Any] | None = None
    sleep: Callable[[float], None] = time.sleep  # Access Analyzer polling waits (tests pass a no-op)
    s3_client: Any = None  # for an s3:// CloudTrail source (None: boto3 default client)
    ingest_workers: int = 1  # parse processes for ingest; 1 inside the threaded scheduler process (fork-safe)
    worker_name: str = "worker-1"
    counters: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _memory_db: sqlite_utils.Database | None = field(default=None, repr=False)

    def _open(self) -> sqlite_utils.Database:
        if self.db_path == ":memory:":  # one shared connection (single-threaded tests only)
            if self._memory_db is None:
                self._memory_db = open_db(":memory:")
            return self._memory_db
        return open_db(self.db_path)

    @property
    def aa_quota(self) -> Any:
        """Access Analyzer quota guard (``bot.aws.access_analyzer.AccessAnalyzerQuota``) on this store."""
        from bot.aws.access_analyzer import AccessAnalyzerQuota

        settings = self.config.access_analyzer
        return self._get("aa_quota", lambda: AccessAnalyzerQuota(
            self.db, concurrent=settings.max_concurrent, per_day=settings.max_per_day, clock=self.clock))

    def iam(self, account: str) -> Any:
        if self.iam_for is None:
            raise RuntimeError("no AWS access configured for jobs (iam_for is not set)")
        return self.iam_for(account)

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def close(self) -> None:
        """Close this thread's connection (file-backed stores); other threads keep theirs."""
        self._close_thread_stores(keep=self._memory_db)
