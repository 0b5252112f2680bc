"""IAM quotas that shape an apply (IAM User Guide, "IAM and AWS STS quotas"): a customer managed policy
document holds at most 6,144 characters (whitespace not counted), a managed policy keeps at most 5 versions,
and a role has at most 10 managed policies attached by default (the quota can be raised: pass the real one).

``fit_documents`` splits documents that are too large into several, statement by statement, and splits a single
oversized statement on its ``Action`` (then ``Resource``) list, which never widens what is allowed or denied.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

MANAGED_POLICY_MAX_CHARS = 6144
MANAGED_POLICY_MAX_VERSIONS = 5
ROLE_MAX_MANAGED_POLICIES = 10
_WHITESPACE = re.compile(r"\s")


class PolicyTooLarge(ValueError):
    pass


def policy_size(document: dict[str, Any]) -> int:
    """Characters IAM counts for a managed policy document (whitespace excluded)."""
    return len(_WHITESPACE.sub("", json.dumps(document, separators=(",", ":"))))


def fit_documents(documents: list[dict[str, Any]], limit: int = MANAGED_POLICY_MAX_CHARS) -> list[dict[str, Any]]:
    """Documents each within ``limit``; small documents are returned unchanged."""
    out: list[dict[str, Any]] = []
    for doc in documents:
        if policy_size(doc) <= limit:
            out.append(doc)
            continue
        out.extend(_split(doc, limit))
    return out


def _split(doc: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    statements = doc.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    pieces: list[dict[str, Any]] = []
    for stmt in statements:
        pieces.extend(_split_statement(stmt, doc, limit))
    out: list[dict[str, Any]] = []
    current: list[dict[str, Any]] = []
    for stmt in pieces:
        candidate = _doc(doc, [*current, stmt])
        if current and policy_size(candidate) > limit:
            out.append(_doc(doc, current))
            current = [stmt]
        else:
            current.append(stmt)
    if current:
        out.append(_doc(doc, current))
    return out


def _split_statement(stmt: dict[str, Any], doc: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    if policy_size(_doc(doc, [stmt])) <= limit:
        return [stmt]
    for key in ("Action", "Resource"):
        values = stmt.get(key)
        if isinstance(values, list) and len(values) > 1:
            half = len(values) // 2
            out = []
            for i, part in enumerate((values[:half], values[half:])):
                piece = copy.deepcopy(stmt)
                piece[key] = part
                if "Sid" in piece:
                    piece["Sid"] = f"{piece['Sid']}{key[0]}{i}"
                out.extend(_split_statement(piece, doc, limit))
            return out
    raise PolicyTooLarge(f"a single statement needs {policy_size(_doc(doc, [stmt]))} characters, more than the "
                         f"{limit} a managed policy may hold, and cannot be split on Action or Resource")


def _doc(template: dict[str, Any], statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": template.get("Version", "2012-10-17"), "Statement": statements}
