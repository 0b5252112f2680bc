"""The one object every Slack listener receives (injected by middleware, Netflix Dispatch style).

Stores are per thread (``bot.store.access.ThreadStores``): Bolt runs listeners on a thread pool.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from bot.config import Config
from bot.slack.approvals import ApprovalPolicy, GroupMembers
from bot.store.access import ThreadStores
from bot.util.clock import Clock, utcnow

#: Key under which the middleware puts the AppContext in Bolt's ``context``.
CONTEXT_KEY = "tighten"


@dataclass
class AppContext(ThreadStores):
    db_path: str
    config: Config
    clock: Clock = utcnow
    allowlist_path: str | None = None  # defaults to config.allowlist_path
    group_cache_seconds: float = 60.0  # how long user-group membership is trusted
    counters: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.db_path == ":memory:":
            raise ValueError("the Slack app needs a file-backed store (listeners run on several threads)")
        if self.allowlist_path is None:
            self.allowlist_path = self.config.allowlist_path
        self.approval = ApprovalPolicy(self.config, GroupMembers(self.group_cache_seconds))

    def count(self, name: str, n: int = 1) -> None:
        """Count an event (bad input, refusal, Slack failure) for the status page and tests."""
        with self._lock:
            self.counters[name] += n
