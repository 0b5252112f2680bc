"""Laying statements out into policy documents that fit IAM's size limit (pure).

A document above the limit (6,144 characters for a managed policy, whitespace not counted) is split into
several; a statement too large on its own is split by resources, then by actions. Only ``Action`` and
``Resource`` lists are ever split (each part keeps the statement's Condition): splitting a ``NotAction`` or
``NotResource`` list would widen what the statement allows (or narrow what a Deny denies). Nothing is ever
truncated; packing is first fit, in order, by exact sizes, so the output is deterministic.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

POLICY_VERSION = "2012-10-17"
MANAGED_POLICY_MAX_CHARS = 6144

_WS = re.compile(r"\s")


def document_size(doc: dict[str, Any]) -> int:
    """Characters AWS counts against the size limit: the JSON without any whitespace."""
    return len(_WS.sub("", orjson.dumps(doc).decode()))


def json_size(value: Any) -> int:
    return len(_WS.sub("", orjson.dumps(value).decode()))


def document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": POLICY_VERSION, "Statement": statements}


def allow_statement(sid: str, actions: list[str], resources: list[str], *,
                    condition: dict[str, Any] | None = None, not_resources: bool = False) -> dict[str, Any]:
    """An Allow statement; ``resources`` is the ``NotResource`` list when ``not_resources``."""
    out: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": list(actions)}
    key = "NotResource" if not_resources else "Resource"
    out[key] = resources[0] if list(resources) == ["*"] else list(resources)
    if condition:
        out["Condition"] = condition
    return out


def _greedy(items: list[str], base: int, limit: int) -> list[list[str]]:
    """In-order chunks of ``items`` so that ``base`` + the chunk as a JSON list's elements stays within
    ``limit`` (``base`` = the document's size with an empty list). A single item always forms a chunk.
    Exact arithmetic: a list's size grows by each element's JSON size plus one comma between elements."""
    out: list[list[str]] = []
    cur: list[str] = []
    total = 0
    for item in items:
        size = json_size(item)
        extra = size + (1 if cur else 0)
        if cur and base + total + extra > limit:
            out.append(cur)
            cur, total, extra = [], 0, size
        cur.append(item)
        total += extra
    if cur:
        out.append(cur)
    return out


def split_statement(sid: str, actions: list[str], resources: list[str], limit: int, *,
                    condition: dict[str, Any] | None = None, not_resources: bool = False) -> list[dict[str, Any]]:
    """Split one Allow statement whose own document exceeds ``limit``: by resources, then (if even one
    resource with all actions is too large) by actions first. A ``NotResource`` list is never split."""
    def make(s: str, acts: list[str], res: list[str]) -> dict[str, Any]:
        return allow_statement(s, acts, res, condition=condition, not_resources=not_resources)

    def size(acts: list[str], res: list[str]) -> int:
        return document_size(document([make(sid + "Part999", acts, res)]))

    if size(actions, resources) <= limit:
        return [make(sid, actions, resources)]
    if resources == ["*"] or not_resources:  # only the actions can be split
        return [make(f"{sid}Part{i + 1}", acts, resources)
                for i, acts in enumerate(_greedy(actions, size([], resources), limit))]
    first = resources[:1]
    action_parts = [actions] if size(actions, first) <= limit else _greedy(actions, size([], first), limit)
    out: list[dict[str, Any]] = []
    for acts in action_parts:
        for res in _greedy(resources, size(acts, []), limit):
            out.append(make(f"{sid}Part{len(out) + 1}", acts, res))
    return out


def split_carried(statement: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    """A statement carried over verbatim (a current Deny), split on its ``Action``, then ``Resource`` list
    when its own document exceeds ``limit``. One that cannot be split is returned whole (over the limit;
    the apply refuses it with IAM's reason rather than weakening it)."""
    if document_size(document([statement])) <= limit:
        return [statement]
    for key in ("Action", "Resource"):
        values = statement.get(key)
        if not isinstance(values, list) or len(values) < 2:
            continue
        sid = str(statement.get("Sid", ""))

        def piece(part: list[str], n: int, key: str = key, sid: str = sid) -> dict[str, Any]:
            out = dict(statement)
            out[key] = part
            if sid:
                out["Sid"] = f"{sid}Part{n}"
            return out

        base = document_size(document([piece([], 999)]))
        out: list[dict[str, Any]] = []
        for i, part in enumerate(_greedy(list(values), base, limit)):
            one = piece(part, i + 1)
            out.extend(split_carried(one, limit) if len(part) == 1 else [one])
        return out
    return [statement]


def pack(statements: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """First fit, in order (deterministic), by exact sizes: a document is its empty size plus its
    statements' sizes plus the commas between them."""
    empty = document_size(document([]))
    docs: list[list[dict[str, Any]]] = []
    totals: list[int] = []
    for st in statements:
        size = json_size(st)
        for i, doc in enumerate(docs):
            if empty + totals[i] + 1 + size <= limit:
                doc.append(st)
                totals[i] += 1 + size
                break
        else:
            docs.append([st])
            totals.append(size)
    return [document(d) for d in docs]
