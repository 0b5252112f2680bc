"""The one object every Slack listener receives (injected by middleware, Netflix Dispatch style).

Stores are per thread: Bolt runs listeners on a thread pool and our stores open explicit
``BEGIN IMMEDIATE`` transactions, which must not interleave on one SQLite connection.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from bot.config import Config
from bot.slack.approvals import ApprovalPolicy, GroupMembers
from bot.store.changes import ChangeStore
from bot.store.db import open_db
from bot.store.proposals import AuditLog, ProposalStore
from bot.store.queue import WorkQueue
from bot.store.roles import RoleDirectory
from bot.util.clock import Clock, utcnow

#: Key under which the middleware puts the AppContext in Bolt's ``context``.
CONTEXT_KEY = "tighten"


@dataclass
class AppContext:
    db_path: str
    config: Config
    clock: Clock = utcnow
    allowlist_path: str | None = None  # defaults to config.allowlist_path
    group_cache_seconds: float = 60.0  # how long user-group membership is trusted
    counters: Counter[str] = field(default_factory=Counter)
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.db_path == ":memory:":
            raise ValueError("the Slack app needs a file-backed store (listeners run on several threads)")
        if self.allowlist_path is None:
            self.allowlist_path = self.config.allowlist_path
        self.approval = ApprovalPolicy(self.config, GroupMembers(self.group_cache_seconds))

    def _get(self, name: str, factory: Any) -> Any:
        value = getattr(self._local, name, None)
        if value is None:
            value = factory()
            setattr(self._local, name, value)
        return value

    @property
    def db(self) -> sqlite_utils.Database:
        return self._get("db", lambda: open_db(self.db_path))

    @property
    def proposals(self) -> ProposalStore:
        return self._get("proposals", lambda: ProposalStore(self.db, self.clock))

    @property
    def queue(self) -> WorkQueue:
        return self._get("queue", lambda: WorkQueue(self.db, self.clock))

    @property
    def roles(self) -> RoleDirectory:
        return self._get("roles", lambda: RoleDirectory(self.db, self.clock))

    @property
    def audit(self) -> AuditLog:
        return self._get("audit", lambda: AuditLog(self.db, self.clock))

    @property
    def changes(self) -> ChangeStore:
        return self._get("changes", lambda: ChangeStore(self.db, self.clock))

    def count(self, name: str, n: int = 1) -> None:
        """Count an event (bad input, refusal, Slack failure) for the status page and tests."""
        with self._lock:
            self.counters[name] += n
