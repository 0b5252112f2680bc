"""Per-thread access to the stores, shared by the Slack app's and the jobs' contexts.

Stores are per thread: Bolt runs listeners on a thread pool, APScheduler and the worker loop on their own
threads, and our stores open explicit ``BEGIN IMMEDIATE`` transactions, which must not interleave on one SQLite
connection. A class mixing this in provides ``db_path`` and ``clock``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import sqlite_utils

from bot.store.allowances import AllowanceStore
from bot.store.changes import ChangeStore
from bot.store.db import open_db
from bot.store.proposals import AuditLog, ProposalStore
from bot.store.queue import WorkQueue
from bot.store.roles import RoleDirectory
from bot.store.scans import ScanCache
from bot.store.usage import UsageIndex
from bot.util.clock import Clock

T = TypeVar("T")


class ThreadStores:
    db_path: str
    clock: Clock

    def _thread_local(self) -> threading.local:
        local = self.__dict__.get("_stores_local")
        if local is None:
            local = self.__dict__.setdefault("_stores_local", threading.local())  # atomic under the GIL
        return local

    def _get(self, name: str, factory: Callable[[], T]) -> T:
        local = self._thread_local()
        value = getattr(local, name, None)
        if value is None:
            value = factory()
            setattr(local, name, value)
        return value

    def _open(self) -> sqlite_utils.Database:
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
    def allowances(self) -> AllowanceStore:
        return self._get("allowances", lambda: AllowanceStore(self.db, self.clock))

    @property
    def usage(self) -> UsageIndex:
        return self._get("usage", lambda: UsageIndex(self.db, self.clock))

    def _close_thread_stores(self, keep: Any = None) -> None:
        """Forget this thread's stores and close its connection (unless it is ``keep``)."""
        local = self._thread_local()
        db = getattr(local, "db", None)
        if db is not None and db is not keep:
            db.conn.close()
        local.__dict__.clear()
