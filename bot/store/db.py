"""Opening the SQLite store. Every store module creates its own tables with ``ensure_schema(db)``."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from bot.errors import UserError

DEFAULT_DB = "tighten.db"
#: The first 16 bytes of every SQLite 3 database file (sqlite.org/fileformat.html).
SQLITE_HEADER = b"SQLite format 3\x00"


class StoreError(UserError):
    """The store cannot be opened: the message names the path and what to do."""


def open_db(path: str | Path = DEFAULT_DB, *, create: bool = True) -> sqlite_utils.Database:
    """Open the store at ``path`` (``":memory:"`` for an in-memory store); with ``create`` a missing file is
    created, without it (read-only commands) a missing file raises :class:`StoreError`. Directories are never
    created here (see :func:`ensure_store_directory`). A path that is a directory, a file that is not an SQLite
    database, or a file SQLite cannot open raises :class:`StoreError` naming it.

    WAL mode so the Slack listeners and the scheduler can read while one writer commits; a busy
    timeout so concurrent writers wait instead of failing; ``isolation_level=None`` so callers
    control transactions explicitly (``BEGIN IMMEDIATE`` for atomic state changes).
    """
    if str(path) == ":memory:":
        conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    else:
        file = Path(path)
        _check_path(file, create=create)
        try:
            conn = sqlite3.connect(str(file), timeout=30, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            _checked.add(str(file.resolve()))  # SQLite holds it now: never read it outside SQLite again
        except sqlite3.DatabaseError as exc:
            if "not a database" in str(exc):
                raise StoreError(f"{file}: not a Tighten store (the file is not an SQLite database); "
                                 "pass another --db or move this file away") from None
            raise StoreError(f"{file}: cannot open the store ({exc}); check the path and its permissions") from None
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA synchronous=NORMAL")
    return sqlite_utils.Database(conn)


#: Store files whose header this process has already checked. Reading the header again while this process holds
#: a connection to the file would close a descriptor of it, and closing any descriptor of a file drops every
#: POSIX lock the process holds on it (fcntl semantics), including SQLite's: another process could then
#: checkpoint and remove the WAL under a live connection ("disk I/O error", or worse).
_checked: set[str] = set()


def _check_path(file: Path, *, create: bool) -> None:
    if file.is_dir():
        raise StoreError(f"{file}: is a directory; the store is a file (for example {file / DEFAULT_DB})")
    key = str(file.resolve())
    if key in _checked and file.exists():
        return
    if file.exists():
        try:
            with file.open("rb") as fh:
                header = fh.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise StoreError(f"{file}: cannot read ({exc.strerror or exc}); check its permissions") from None
        if header and header != SQLITE_HEADER:  # SQLite would take over a short file: never write over one
            raise StoreError(f"{file}: not a Tighten store (the file is not an SQLite database); pass another "
                             "--db or move this file away")
        return
    if not create:
        raise StoreError(f"{file}: no such store (nothing was created); run `tighten ingest` first or pass "
                         "--db with an existing store")
    parent = file.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise StoreError(f"{file}: the directory {parent} {what}; create it first (Tighten does not create "
                         "directories)")


def ensure_store_directory(path: str | Path) -> None:
    """Create the store's directory if needed (``serve`` and ``worker``, which own their data directory);
    a directory that cannot be created raises :class:`StoreError` naming it."""
    if str(path) == ":memory:":
        return
    parent = Path(path).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"store {path}: cannot create the directory {parent} ({exc.strerror or exc}); "
                         "set store.path to a writable place") from None


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception, which is re-raised): the write lock is
    taken at the start, so check-then-write sequences inside are atomic against other connections.

    Inside an already open transaction on the same connection it joins that one (the outermost commits or rolls
    back), so store methods can be combined into one atomic unit (approve + enqueue apply)."""
    conn = db.conn
    if conn.in_transaction:
        yield conn
        return
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
