"""The allowlist file on disk, and who added its entries.

``bot.policy.allowlist`` parses and validates (pure); this module reads and writes the file: atomically (a
temporary file renamed over it, so a crash never leaves half a file) and, for additions, under a lock held across
the read-modify-write (a thread lock plus an OS lock on a sibling ``.lock`` file, so neither two listeners nor two
processes lose each other's entries).

Authorship lives in the store (``allowlist_authors``), keyed by what an entry allows (action, resource,
principal): an entry added through ``/tighten allow`` or the Allow button records who added it and when; an entry
written by hand in the file has no author. The two-person rule uses it: whoever added an entry a proposal grants
something because of may not approve that proposal.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

from bot.policy.allowlist import AllowEntry, Allowlist, AllowlistError, parse_allowlist
from bot.util.clock import Clock, iso, utcnow

_thread_lock = threading.Lock()


def load_allowlist(path: str | Path | None) -> Allowlist:
    """Load and validate ``path``; a missing path (None) is an empty allowlist, a missing file an error."""
    if path is None:
        return Allowlist()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise AllowlistError(f"{p}: cannot read allowlist: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise AllowlistError(f"{p}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    return parse_allowlist(text, str(p))


def load_if_present(path: str | Path | None) -> Allowlist:
    """The allowlist at ``path``; not configured or not created yet = empty (a broken file raises)."""
    if not path or not Path(path).exists():
        return Allowlist()
    return load_allowlist(path)


def save_allowlist(allowlist: Allowlist, path: str | Path) -> None:
    """Write atomically (temporary file + rename) so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".allowlist-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(allowlist.to_yaml())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with _thread_lock, open(path.with_name(path.name + ".lock"), "a", encoding="utf-8") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def add_entry(path: str | Path, principal: str | None, action: str, resource: str | None = None,
              reason: str = "") -> AllowEntry:
    """Validate and add one entry to the file (idempotent), under the lock; returns the entry as stored."""
    p = Path(path)
    with _locked(p):
        allowlist = load_allowlist(p) if p.exists() else Allowlist()
        entry = allowlist.add(principal, action, resource, reason)
        save_allowlist(allowlist, p)
    return entry


def entry_key(entry: AllowEntry) -> tuple[str, str, str]:
    return (entry.action, entry.resource, entry.principal or "*")


class AllowlistAuthors:
    """Who added which allowlist entry (through Slack); hand-written entries have no row here."""

    def __init__(self, db: sqlite_utils.Database, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock
        ensure_schema(db)

    def record(self, entry: AllowEntry, user: str) -> None:
        action, resource, principal = entry_key(entry)
        self.db.conn.execute(
            "INSERT OR IGNORE INTO allowlist_authors (action, resource, principal, added_by, added_at)"
            " VALUES (?, ?, ?, ?, ?)", (action, resource, principal, user, iso(self.clock())))

    def authors(self, entry: AllowEntry) -> list[str]:
        action, resource, principal = entry_key(entry)
        return [r[0] for r in self.db.conn.execute(
            "SELECT added_by FROM allowlist_authors WHERE action = ? AND resource = ? AND principal = ?"
            " ORDER BY added_at, added_by", (action, resource, principal))]

    def exclusions(self, entries: Iterable[AllowEntry]) -> list[dict[str, Any]]:
        """``{"user", "reason", "action", "resource"}`` for every author of ``entries`` (for
        ``Proposal.excluded_approvers``; ``action`` and ``resource`` let a message quote them)."""
        out: list[dict[str, Any]] = []
        for entry in entries:
            for user in self.authors(entry):
                out.append({"user": user, "reason": f"added the allowlist entry {entry.action} on "
                                                    f"{entry.resource} that it grants",
                            "action": entry.action, "resource": entry.resource})
        return out


def ensure_schema(db: sqlite_utils.Database) -> None:
    db.conn.execute(
        """CREATE TABLE IF NOT EXISTS allowlist_authors (
            action TEXT NOT NULL, resource TEXT NOT NULL, principal TEXT NOT NULL, added_by TEXT NOT NULL,
            added_at TEXT NOT NULL, PRIMARY KEY (action, resource, principal, added_by)
        )"""
    )
