"""Where CloudTrail log objects come from: a file, a local directory tree, or an S3 trail bucket.

``iter_log_objects(spec)`` lists log objects in a sorted, deterministic order without reading them;
``LogObject.open()`` streams the raw bytes (gzip or not, see :mod:`bot.trail.reader`), ``LogObject.read()``
returns them whole.

S3 layouts understood (``<prefix>`` optional, any depth):

* account trail: ``<prefix>/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<file>.json.gz``
* organization trail: ``<prefix>/AWSLogs/<o-xxxx>/<account>/CloudTrail/<region>/YYYY/MM/DD/...``

Accounts, regions, years, months and days are discovered level by level with ``Delimiter="/"``; a level
outside the ``accounts``/``regions``/``[since, until]`` filters is never listed, so objects are only
listed inside the wanted day prefixes. ``CloudTrail-Digest``/``CloudTrail-Insight`` folders and keys that
are not log files are skipped. A prefix without an ``AWSLogs/`` layout below it is listed flat.

Local files: a CloudTrail-named file (``<acct>_CloudTrail_<region>_<YYYYMMDD>T...``) is filtered by its
name; other files cannot be dated and are always included. Only regular files are read (a symlink to one is
followed). A directory entry with a log name that is not one is still listed, with its ``entry_problem``
(one of ``ENTRY_REASONS``), and opening it raises :class:`UnreadableEntry`, so it is counted, never read:

* ``not_a_regular_file``: a FIFO, a device (e.g. a symlink to ``/dev/zero``) or a socket;
* ``symlink_loop``: a symlink that resolves to itself;
* ``dangling_symlink``: a symlink to nothing.

Opening never waits: a FIFO put in place of a file after listing is refused (``O_NONBLOCK``, then ``fstat``).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, BinaryIO

LOG_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")
_SKIPPED_FOLDERS = ("CloudTrail-Digest", "CloudTrail-Insight")
ENTRY_REASONS = ("not_a_regular_file", "symlink_loop", "dangling_symlink")


class UnreadableEntry(Exception):
    """A directory entry that is not a regular file; ``reason`` is one of ``ENTRY_REASONS``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class LogObject:
    key: str  # stable identity: absolute file path, or "s3://bucket/key"
    size: int
    etag: str  # S3 ETag; for files f"{mtime_ns}-{size}"
    _open: Callable[[], BinaryIO] | None = field(default=None, compare=False, repr=False)
    entry_problem: tuple[str, str] | None = None  # (reason, detail) for a local entry that is not a regular file

    def open(self) -> BinaryIO:
        """A binary stream of the raw bytes (gzip or not). Raises :class:`UnreadableEntry` for an entry that is
        not a regular file, ``OSError`` (or the S3 client's error) when it cannot be read."""
        if self.entry_problem is not None:
            raise UnreadableEntry(*self.entry_problem)
        if self._open is not None:
            return self._open()
        return open_regular_file(self.key)

    def read(self) -> bytes:
        """The raw bytes of the object, whole."""
        with self.open() as fh:
            return fh.read()


def open_regular_file(path: str) -> BinaryIO:
    """Open ``path`` for reading only if it is a regular file (symlinks followed); never blocks on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        problem = _stat_problem(path, exc)
        if problem is None:
            raise
        raise UnreadableEntry(*problem) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnreadableEntry("not_a_regular_file", _file_kind(mode))
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return kind
    return f"not a regular file (mode {mode:o})"


def _stat_problem(path: str, exc: OSError) -> tuple[str, str] | None:
    """The entry problem an ``OSError`` from stat/open means, or None when it is an ordinary read error."""
    if exc.errno == errno.ELOOP:
        return ("symlink_loop", "too many levels of symbolic links")
    if exc.errno == errno.ENOENT and os.path.islink(path):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return ("dangling_symlink", f"points to {target}, which does not exist")
    return None


def is_log_name(name: str) -> bool:
    return name.endswith(LOG_SUFFIXES) and "CloudTrail-Digest" not in name


def iter_log_objects(
    spec: str,
    *,
    since: date | None = None,
    until: date | None = None,
    accounts: Collection[str] | None = None,
    regions: Collection[str] | None = None,
    s3_client: Any = None,
) -> Iterator[LogObject]:
    """Log objects named by ``spec`` (file, directory or ``s3://bucket[/prefix]``), sorted by key."""
    filt = _Filter(since, until, accounts, regions)
    if spec.startswith("s3://"):
        bucket, _, prefix = spec[5:].partition("/")
        if not bucket:
            raise ValueError(f"no bucket in {spec!r}")
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        yield from _S3Lister(s3_client, bucket, filt).objects(prefix)
        return
    path = os.path.abspath(spec)
    if not os.path.isdir(path):
        if not os.path.lexists(path):
            raise FileNotFoundError(f"CloudTrail source not found: {spec}")
        entry = _file_object(path)
        if entry is not None:
            yield entry
        return
    found: list[str] = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_FOLDERS)
        for name in files:
            if is_log_name(name) and filt.file_name_ok(name):
                found.append(os.path.join(root, name))
    for full in sorted(found):
        entry = _file_object(full)
        if entry is not None:
            yield entry


def _file_object(path: str) -> LogObject | None:
    """The listing of one local entry (None when it vanished meanwhile)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        problem = _stat_problem(path, exc)
        if problem is None:
            if exc.errno == errno.ENOENT:
                return None
            return LogObject(key=path, size=0, etag="")  # e.g. a permission problem: reading it reports it
        return LogObject(key=path, size=0, etag="", entry_problem=problem)
    if not stat.S_ISREG(st.st_mode):
        return LogObject(key=path, size=0, etag="", entry_problem=("not_a_regular_file", _file_kind(st.st_mode)))
    return LogObject(key=path, size=st.st_size, etag=f"{st.st_mtime_ns}-{st.st_size}")


@dataclass(frozen=True)
class _Filter:
    since: date | None
    until: date | None
    accounts: Collection[str] | None
    regions: Collection[str] | None

    def account_ok(self, account: str) -> bool:
        return self.accounts is None or account in self.accounts

    def region_ok(self, region: str) -> bool:
        return self.regions is None or region in self.regions

    def year_ok(self, year: int) -> bool:
        return (self.since is None or year >= self.since.year) and (self.until is None or year <= self.until.year)

    def month_ok(self, year: int, month: int) -> bool:
        ym = (year, month)
        return (self.since is None or ym >= (self.since.year, self.since.month)) and (
            self.until is None or ym <= (self.until.year, self.until.month)
        )

    def day_ok(self, day: date) -> bool:
        return (self.since is None or day >= self.since) and (self.until is None or day <= self.until)

    def file_name_ok(self, name: str) -> bool:
        """Filter a CloudTrail-named file ``<acct>_CloudTrail_<region>_<YYYYMMDD>T<HHMM>Z_<id>``."""
        parts = name.split("_")
        if len(parts) < 5 or parts[1] != "CloudTrail":
            return True
        account, region, stamp = parts[0], parts[2], parts[3]
        if not (self.account_ok(account) and self.region_ok(region)):
            return False
        try:
            day = date(int(stamp[0:4]), int(stamp[4:6]), int(stamp[6:8]))
        except ValueError:
            return True
        return self.day_ok(day)


class _S3Lister:
    def __init__(self, client: Any, bucket: str, filt: _Filter) -> None:
        self._client = client
        self._bucket = bucket
        self._filt = filt

    # -- listing helpers ---------------------------------------------------------------------
    def _children(self, prefix: str) -> list[str]:
        """Sub-folder names directly under ``prefix`` (which ends with "/" or is empty)."""
        names: list[str] = []
        pager = self._client.get_paginator("list_objects_v2")
        for page in pager.paginate(Bucket=self._bucket, Prefix=prefix, Delimiter="/"):
            for cp in page.get("CommonPrefixes", []):
                names.append(cp["Prefix"][len(prefix) :].rstrip("/"))
        return sorted(names)

    def _objects_under(self, prefix: str) -> Iterator[LogObject]:
        pager = self._client.get_paginator("list_objects_v2")
        items: list[dict] = []
        for page in pager.paginate(Bucket=self._bucket, Prefix=prefix):
            items.extend(page.get("Contents", []))
        for item in sorted(items, key=lambda i: i["Key"]):
            key = item["Key"]
            if not is_log_name(key) or any(f"/{s}/" in f"/{key}" for s in _SKIPPED_FOLDERS):
                continue
            if not self._filt.file_name_ok(key.rsplit("/", 1)[-1]):
                continue
            yield LogObject(
                key=f"s3://{self._bucket}/{key}",
                size=int(item.get("Size", 0)),
                etag=str(item.get("ETag", "")).strip('"'),
                _open=self._opener(key),
            )

    def _opener(self, key: str) -> Callable[[], BinaryIO]:
        client, bucket = self._client, self._bucket

        def open_body() -> BinaryIO:
            return client.get_object(Bucket=bucket, Key=key)["Body"]  # type: ignore[no-any-return]

        return open_body

    # -- layout walk -------------------------------------------------------------------------
    def objects(self, prefix: str) -> Iterator[LogObject]:
        prefix = prefix.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        segments = [s for s in prefix.split("/") if s]
        if "AWSLogs" in segments:
            i = segments.index("AWSLogs")
            base = "/".join(segments[: i + 1]) + "/"
            yield from self._descend_awslogs(base, segments[i + 1 :])
        elif "AWSLogs" in self._children(prefix):
            yield from self._awslogs(prefix + "AWSLogs/")
        else:
            yield from self._objects_under(prefix)

    def _descend_awslogs(self, base: str, rest: list[str]) -> Iterator[LogObject]:
        """The user's prefix reaches below AWSLogs/: honour the given levels, discover the others."""
        if not rest:
            yield from self._awslogs(base)
            return
        head = rest[0]
        if head.startswith("o-"):
            if len(rest) == 1:
                yield from self._org(base + head + "/")
            else:
                yield from self._account_path(base + head + "/", rest[1:])
        else:
            yield from self._account_path(base, rest)

    def _account_path(self, base: str, rest: list[str]) -> Iterator[LogObject]:
        account = rest[0]
        if not self._filt.account_ok(account):
            return
        if len(rest) >= 3 and rest[1] == "CloudTrail":
            region = rest[2]
            if self._filt.region_ok(region):
                # deeper levels (year/month/day) given by the user: list flat below them
                below = rest[3:]
                p = f"{base}{account}/CloudTrail/{region}/"
                if below:
                    yield from self._objects_under(p + "/".join(below) + "/")
                else:
                    yield from self._region(p)
            return
        yield from self._account(f"{base}{account}/")

    def _awslogs(self, prefix: str) -> Iterator[LogObject]:
        for name in self._children(prefix):
            if name.startswith("o-"):
                yield from self._org(f"{prefix}{name}/")
            elif name.isdigit() and self._filt.account_ok(name):
                yield from self._account(f"{prefix}{name}/")

    def _org(self, prefix: str) -> Iterator[LogObject]:
        for name in self._children(prefix):
            if name.isdigit() and self._filt.account_ok(name):
                yield from self._account(f"{prefix}{name}/")

    def _account(self, prefix: str) -> Iterator[LogObject]:
        if "CloudTrail" not in self._children(prefix):
            return
        for region in self._children(prefix + "CloudTrail/"):
            if self._filt.region_ok(region):
                yield from self._region(f"{prefix}CloudTrail/{region}/")

    def _region(self, prefix: str) -> Iterator[LogObject]:
        filt = self._filt
        for y in self._children(prefix):
            if not (y.isdigit() and filt.year_ok(int(y))):
                continue
            for m in self._children(f"{prefix}{y}/"):
                if not (m.isdigit() and filt.month_ok(int(y), int(m))):
                    continue
                for d in self._children(f"{prefix}{y}/{m}/"):
                    try:
                        day = date(int(y), int(m), int(d))
                    except ValueError:
                        continue
                    if filt.day_ok(day):
                        yield from self._objects_under(f"{prefix}{y}/{m}/{d}/")
