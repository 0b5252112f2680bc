"""IAM identity policy documents as immutable values.

:func:`parse_policy` reads any valid identity policy (inline or managed, or a permissions boundary):
``Action``/``NotAction``, ``Resource``/``NotResource``, each a string or a list, ``Allow``/``Deny``, an
optional ``Sid`` and a ``Condition`` block that is kept verbatim (never dropped). Anything that AWS would
reject in an identity policy (a ``Principal``, both ``Action`` and ``NotAction``, an unknown effect, an
action without a service prefix, ...) raises :class:`PolicyError` naming the statement and key.

:func:`policy_to_document` turns a :class:`Policy` back into the JSON document AWS accepts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

EFFECTS = ("Allow", "Deny")
DEFAULT_VERSION = "2012-10-17"
VERSIONS = ("2012-10-17", "2008-10-17")

_STATEMENT_KEYS = frozenset({"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"})


class PolicyError(ValueError):
    """A policy document is not a valid identity policy; the message says where and why."""


@dataclass(frozen=True)
class Statement:
    sid: str | None
    effect: str  # "Allow" | "Deny"
    actions: tuple[str, ...] | None
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    not_resources: tuple[str, ...] | None
    # Kept verbatim: {operator: {condition key: [values]}}. Excluded from hashing (dicts are unhashable).
    conditions: dict[str, dict[str, list[str]]] | None = field(default=None, hash=False)

    @property
    def is_allow(self) -> bool:
        return self.effect == "Allow"

    @property
    def action_patterns(self) -> tuple[str, ...]:
        """The patterns of ``Action`` or ``NotAction`` (whichever the statement uses)."""
        return self.actions if self.actions is not None else (self.not_actions or ())

    @property
    def resource_patterns(self) -> tuple[str, ...]:
        """The patterns of ``Resource`` or ``NotResource`` (whichever the statement uses)."""
        return self.resources if self.resources is not None else (self.not_resources or ())


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]
    name: str = ""
    version: str = DEFAULT_VERSION


def _string_list(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        items: Sequence[Any] = [value]
    elif isinstance(value, list):
        items = value
    else:
        raise PolicyError(f"{where}: expected a string or a list of strings, got {type(value).__name__}")
    if not items:
        raise PolicyError(f"{where}: empty list")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item:
            raise PolicyError(f"{where}: every entry must be a non-empty string, got {item!r}")
        out.append(item)
    return tuple(out)


def _check_action(pattern: str, where: str) -> None:
    if pattern == "*":
        return
    prefix, sep, name = pattern.partition(":")
    if not sep or not prefix or not name or ":" in name:
        raise PolicyError(f"{where}: action {pattern!r} is not of the form 'service:Action'")


def _conditions(value: Any, where: str) -> dict[str, dict[str, list[str]]]:
    if not isinstance(value, dict) or not value:
        raise PolicyError(f"{where}: expected a non-empty object of operators")
    out: dict[str, dict[str, list[str]]] = {}
    for operator, block in value.items():
        if not isinstance(operator, str) or not operator:
            raise PolicyError(f"{where}: operator names must be non-empty strings")
        if not isinstance(block, dict) or not block:
            raise PolicyError(f"{where}.{operator}: expected a non-empty object of condition keys")
        keys: dict[str, list[str]] = {}
        for key, raw in block.items():
            raw_list = raw if isinstance(raw, list) else [raw]
            if not raw_list:
                raise PolicyError(f"{where}.{operator}.{key}: empty list of values")
            values: list[str] = []
            for v in raw_list:
                if isinstance(v, bool):
                    values.append("true" if v else "false")
                elif isinstance(v, str | int | float):
                    values.append(str(v))
                else:
                    raise PolicyError(f"{where}.{operator}.{key}: unsupported value {v!r}")
            keys[str(key)] = values
        out[operator] = keys
    return out


def _parse_statement(raw: Any, index: int) -> Statement:
    where = f"Statement[{index}]"
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: expected an object, got {type(raw).__name__}")
    if "Principal" in raw or "NotPrincipal" in raw:
        raise PolicyError(f"{where}: Principal/NotPrincipal is not allowed in an identity policy")
    unknown = sorted(set(raw) - _STATEMENT_KEYS)
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {', '.join(unknown)}")
    effect = raw.get("Effect")
    if effect not in EFFECTS:
        raise PolicyError(f"{where}.Effect: must be 'Allow' or 'Deny', got {effect!r}")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise PolicyError(f"{where}.Sid: must be a string")

    if ("Action" in raw) == ("NotAction" in raw):
        raise PolicyError(f"{where}: exactly one of Action or NotAction is required")
    if ("Resource" in raw) == ("NotResource" in raw):
        raise PolicyError(f"{where}: exactly one of Resource or NotResource is required")

    actions = not_actions = resources = not_resources = None
    if "Action" in raw:
        actions = _string_list(raw["Action"], f"{where}.Action")
        for a in actions:
            _check_action(a, f"{where}.Action")
    else:
        not_actions = _string_list(raw["NotAction"], f"{where}.NotAction")
        for a in not_actions:
            _check_action(a, f"{where}.NotAction")
    if "Resource" in raw:
        resources = _string_list(raw["Resource"], f"{where}.Resource")
    else:
        not_resources = _string_list(raw["NotResource"], f"{where}.NotResource")
    conditions = _conditions(raw["Condition"], f"{where}.Condition") if "Condition" in raw else None
    return Statement(
        sid=sid,
        effect=effect,
        actions=actions,
        not_actions=not_actions,
        resources=resources,
        not_resources=not_resources,
        conditions=conditions,
    )


def parse_policy(doc: Mapping[str, Any] | str, name: str = "") -> Policy:
    """Parse an identity policy document (a dict, or its JSON text)."""
    if isinstance(doc, str | bytes):
        try:
            doc = json.loads(doc)
        except ValueError as exc:
            raise PolicyError(f"policy {name or ''} is not valid JSON: {exc}".replace("  ", " ")) from None
    if not isinstance(doc, Mapping):
        raise PolicyError(f"policy document must be a JSON object, got {type(doc).__name__}")
    version = doc.get("Version", DEFAULT_VERSION)
    if version not in VERSIONS:
        raise PolicyError(f"Version: must be one of {', '.join(VERSIONS)}, got {version!r}")
    unknown = sorted(set(doc) - {"Version", "Id", "Statement"})
    if unknown:
        raise PolicyError(f"unknown top-level key(s) {', '.join(unknown)}")
    if "Statement" not in doc:
        raise PolicyError("Statement: missing")
    raw_statements = doc["Statement"]
    if isinstance(raw_statements, dict):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, list):
        raise PolicyError("Statement: expected an object or a list of objects")
    statements = tuple(_parse_statement(s, i) for i, s in enumerate(raw_statements))
    return Policy(statements=statements, name=name, version=str(version))


def _element(values: tuple[str, ...]) -> str | list[str]:
    return values[0] if len(values) == 1 else list(values)


def statement_to_dict(statement: Statement) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if statement.sid is not None:
        out["Sid"] = statement.sid
    out["Effect"] = statement.effect
    if statement.actions is not None:
        out["Action"] = _element(statement.actions)
    if statement.not_actions is not None:
        out["NotAction"] = _element(statement.not_actions)
    if statement.resources is not None:
        out["Resource"] = _element(statement.resources)
    if statement.not_resources is not None:
        out["NotResource"] = _element(statement.not_resources)
    if statement.conditions is not None:
        out["Condition"] = {
            op: {k: (v[0] if len(v) == 1 else list(v)) for k, v in block.items()}
            for op, block in statement.conditions.items()
        }
    return out


def policy_to_document(policy: Policy) -> dict[str, Any]:
    """The JSON document for ``policy`` (single values as strings, several as lists)."""
    return {"Version": policy.version, "Statement": [statement_to_dict(s) for s in policy.statements]}
