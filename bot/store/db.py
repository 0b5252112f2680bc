"""Opening the SQLite store. Every store module creates its own tables with ``ensure_schema(db)``."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

DEFAULT_DB = "tighten.db"


def open_db(path: str | Path = DEFAULT_DB) -> sqlite_utils.Database:
    """Open (creating if needed) the store at ``path``; ``":memory:"`` for an in-memory store.

    WAL mode so the Slack listeners and the scheduler can read while one writer commits; a busy
    timeout so concurrent writers wait instead of failing; ``isolation_level=None`` so callers
    control transactions explicitly (``BEGIN IMMEDIATE`` for atomic state changes).
    """
    if str(path) == ":memory:":
        conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA synchronous=NORMAL")
    return sqlite_utils.Database(conn)


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception, which is re-raised): the write lock is
    taken at the start, so check-then-write sequences inside are atomic against other connections."""
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def add_missing_columns(db: sqlite_utils.Database, table: str, columns: dict[str, str]) -> None:
    """Stores created by older versions lack newer columns: add them (NULL reads as the field's default)."""
    have = {row[1] for row in db.conn.execute(f"PRAGMA table_info({table})")}
    for name, sql_type in columns.items():
        if name not in have:
            db.conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}")
