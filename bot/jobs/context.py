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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlite_utils

from bot.config import Config
from bot.store.changes import ChangeStore
from bot.store.db import open_db
from bot.store.proposals import AuditLog, ProposalStore
from bot.store.queue import WorkQueue
from bot.store.roles import RoleDirectory
from bot.store.scans import ScanCache
from bot.store.usage import UsageIndex
from bot.util.clock import Clock, utcnow


class JobNotifier(Protocol):
    """The part of ``bot.slack.notify.Notifier`` the jobs use."""

    def post_proposal(self, proposal_id: str) -> bool: ...

    def post_apply_result(self, proposal_id: str, change_id: str | None, ok: bool, detail: str) -> Any: ...

    def post_rollback_result(self, proposal_id: str, change_id: str, ok: bool, detail: str,
                             requested_by: str | None = None) -> Any: ...

    def post_denial_alert(self, proposal_id: str, change_id: str, denials: list[tuple[str, str, str, str]]) -> Any: ...

    def post_digest(self, channel: str, text: str, blocks: list[dict[str, Any]], png: bytes | None) -> Any: ...


@dataclass
class JobContext:
    db_path: str
    config: Config
    clock: Clock = utcnow
    iam_for: Callable[[str], Any] | None = None  # account id -> boto3 IAM client
    notifier: JobNotifier | None = None
    aa_client_for: Callable[[str], Any] | None = None  # account id -> boto3 accessanalyzer client
    sleep: Callable[[float], None] = time.sleep  # Access Analyzer polling waits (tests pass a no-op)
    s3_client: Any = None  # for an s3:// CloudTrail source (None: boto3 default client)
    ingest_workers: int = 1  # parse processes for ingest; 1 inside the threaded scheduler process (fork-safe)
    worker_name: str = "worker-1"
    counters: Counter[str] = field(default_factory=Counter)
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _memory_db: sqlite_utils.Database | None = field(default=None, repr=False)

    def _get(self, name: str, factory: Callable[[], Any]) -> Any:
        value = getattr(self._local, name, None)
        if value is None:
            value = factory()
            setattr(self._local, name, value)
        return value

    def _open(self) -> sqlite_utils.Database:
        if self.db_path == ":memory:":  # one shared connection (single-threaded tests only)
            if self._memory_db is None:
                self._memory_db = open_db(":memory:")
            return self._memory_db
        return open_db(self.db_path)

    @property
    def db(self) -> sqlite_utils.Database:
        return self._get("db", self._open)

    @property
    def queue(self) -> WorkQueue:
        return self._get("queue", lambda: WorkQueue(self.db, self.clock))

    @property
    def proposals(self) -> ProposalStore:
        return self._get("proposals", lambda: ProposalStore(self.db, self.clock))

    @property
    def roles(self) -> RoleDirectory:
        return self._get("roles", lambda: RoleDirectory(self.db, self.clock))

    @property
    def audit(self) -> AuditLog:
        return self._get("audit", lambda: AuditLog(self.db, self.clock))

    @property
    def changes(self) -> ChangeStore:
        return self._get("changes", lambda: ChangeStore(self.db, self.clock))

    @property
    def scans(self) -> ScanCache:
        return self._get("scans", lambda: ScanCache(self.db, self.clock))

    @property
    def aa_quota(self) -> Any:
        """Access Analyzer quota guard (``bot.aws.access_analyzer.AccessAnalyzerQuota``) on this store."""
        from bot.aws.access_analyzer import AccessAnalyzerQuota

        settings = self.config.access_analyzer
        return self._get("aa_quota", lambda: AccessAnalyzerQuota(
            self.db, concurrent=settings.max_concurrent, per_day=settings.max_per_day, clock=self.clock))

    @property
    def usage(self) -> UsageIndex:
        return self._get("usage", lambda: UsageIndex(self.db, self.clock))

    def iam(self, account: str) -> Any:
        if self.iam_for is None:
            raise RuntimeError("no AWS access configured for jobs (iam_for is not set)")
        return self.iam_for(account)

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def close(self) -> None:
        """Close this thread's connection (file-backed stores)."""
        db = getattr(self._local, "db", None)
        if db is not None and db is not self._memory_db:
            db.conn.close()
        self._local = threading.local()
