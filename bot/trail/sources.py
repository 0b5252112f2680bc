"""Where CloudTrail log objects come from: a file, a local directory tree, or an S3 trail bucket.

``iter_log_objects(spec)`` lists log objects in a sorted, deterministic order without reading them;
``LogObject.read()`` fetches the raw bytes (gzip or not, see :mod:`bot.trail.reader`).

S3 layouts understood (``<prefix>`` optional, any depth):

* account trail: ``<prefix>/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<file>.json.gz``
* organization trail: ``<prefix>/AWSLogs/<o-xxxx>/<account>/CloudTrail/<region>/YYYY/MM/DD/...``

Accounts, regions, years, months and days are discovered level by level with ``Delimiter="/"``; a level
outside the ``accounts``/``regions``/``[since, until]`` filters is never listed, so objects are only
listed inside the wanted day prefixes. ``CloudTrail-Digest``/``CloudTrail-Insight`` folders and keys that
are not log files are skipped. A prefix without an ``AWSLogs/`` layout below it is listed flat.

Local files: a CloudTrail-named file (``<acct>_CloudTrail_<region>_<YYYYMMDD>T...``) is filtered by its
name; other files cannot be dated and are always included.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

LOG_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")
_SKIPPED_FOLDERS = ("CloudTrail-Digest", "CloudTrail-Insight")


@dataclass(frozen=True)
class LogObject:
    key: str  # stable identity: absolute file path, or "s3://bucket/key"
    size: int
    etag: str  # S3 ETag; for files f"{mtime_ns}-{size}"
    _fetch: Callable[[], bytes] | None = field(default=None, compare=False, repr=False)

    def read(self) -> bytes:
        """The raw bytes of the object (gzip or not)."""
        if self._fetch is not None:
            return self._fetch()
        with open(self.key, "rb") as fh:
            return fh.read()


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
    if os.path.isfile(path):
        yield _file_object(path)
        return
    if not os.path.isdir(path):
        raise FileNotFoundError(f"CloudTrail source not found: {spec}")
    found: list[str] = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_FOLDERS)
        for name in files:
            if is_log_name(name) and filt.file_name_ok(name):
                found.append(os.path.join(root, name))
    for full in sorted(found):
        yield _file_object(full)


def _file_object(path: str) -> LogObject:
    st = os.stat(path)
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
                _fetch=self._fetcher(key),
            )

    def _fetcher(self, key: str) -> Callable[[], bytes]:
        client, bucket = self._client, self._bucket

        def fetch() -> bytes:
            return client.get_object(Bucket=bucket, Key=key)["Body"].read()

        return fetch

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
