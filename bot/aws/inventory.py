"""Role inventory: what each IAM role holds right now (attached managed policies with their default version
documents, inline policies, boundary, tags, creation and last use), and which roles Tighten may touch.

``get_role_snapshot`` reads one role with per-role calls (used right before an apply); ``list_role_snapshots``
reads a whole account with ``get_account_authorization_details`` (paginated) and sorts roles into in scope /
excluded. Both produce identical snapshots, so ``policy_hash()`` from a scan matches the one at apply time.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote

from bot.util.clock import Clock, iso, parse_iso, utcnow

SERVICE_LINKED_PATH_PREFIX = "/aws-service-role/"
AWS_MANAGED_PREFIX = "arn:aws:iam::aws:policy/"


def canonical_json(document: Any) -> str:
    """The one serialisation used for hashing and comparing policy documents."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def as_document(value: Any) -> dict[str, Any]:
    """IAM returns documents already decoded by boto3, but raw API output is URL-encoded JSON text."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        text = value if value.lstrip().startswith("{") else unquote(value)
        return json.loads(text)
    raise TypeError(f"not a policy document: {type(value).__name__}")


@dataclass
class AttachedPolicy:
    arn: str
    name: str
    default_version_id: str
    document: dict[str, Any]
    aws_managed: bool
    path: str = "/"

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RoleSnapshot:
    account: str
    arn: str
    name: str
    path: str
    role_id: str
    created: str
    last_used: str | None
    tags: dict[str, str]
    attached: list[AttachedPolicy]
    inline: dict[str, dict[str, Any]]
    boundary_arn: str | None
    boundary_document: dict[str, Any] | None
    assume_role_policy: dict[str, Any]

    def identity_documents(self) -> list[tuple[str, dict[str, Any]]]:
        """(name, document) for every identity policy: attached managed ones first, then inline."""
        out = [(p.name, p.document) for p in self.attached]
        out.extend((name, doc) for name, doc in sorted(self.inline.items()))
        return out

    def policy_hash(self) -> str:
        """Stable sha256 over attached ARNs with their default documents, inline documents and boundary."""
        payload = {
            "attached": sorted([p.arn, p.document] for p in self.attached),
            "inline": self.inline,
            "boundary": self.boundary_arn,
        }
        return hashlib.sha256(canonical_json(payload).encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["attached"] = [p.to_json() for p in self.attached]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RoleSnapshot:
        data = dict(data)
        data["attached"] = [AttachedPolicy(**p) for p in data["attached"]]
        return cls(**data)


@dataclass
class Scope:
    """Which roles Tighten may touch. Patterns are shell globs on the role name (case-insensitive);
    tags are ``key`` (any value) or ``key=value``."""

    protected_role_names: tuple[str, ...] = ()
    protected_tags: tuple[str, ...] = ("tighten:protected",)
    own_role_arns: tuple[str, ...] = ()
    lookback_days: int = 90

    def exclusion(self, role: RoleSnapshot) -> str | None:
        """Why ``role`` is out of scope, or None when it is in scope."""
        if role.path.startswith(SERVICE_LINKED_PATH_PREFIX):
            return "service-linked role"
        if any(_same_role(role, arn) for arn in self.own_role_arns):
            return "Tighten's own role"
        for pattern in self.protected_role_names:
            if fnmatch.fnmatchcase(role.name.lower(), pattern.lower()):
                return f"protected role (matches {pattern!r})"
        for tag in self.protected_tags:
            key, sep, value = tag.partition("=")
            if key in role.tags and (not sep or role.tags[key] == value):
                return f"protected tag {tag!r}"
        return None

    def warnings(self, role: RoleSnapshot, now: datetime) -> list[str]:
        created = parse_iso(role.created)
        if now - created < timedelta(days=self.lookback_days):
            age = (now - created).days
            return [f"insufficient history: role is {age} days old, lookback is {self.lookback_days} days"]
        return []


@dataclass
class ExcludedRole:
    snapshot: RoleSnapshot
    reason: str


@dataclass
class InventoryResult:
    account: str
    in_scope: list[RoleSnapshot] = field(default_factory=list)
    excluded: list[ExcludedRole] = field(default_factory=list)
    warnings: dict[str, list[str]] = field(default_factory=dict)  # role ARN -> warnings

    @property
    def all(self) -> list[RoleSnapshot]:
        return self.in_scope + [e.snapshot for e in self.excluded]


class PolicyDocuments:
    """Default-version documents of managed policies, fetched once per ARN."""

    def __init__(self, iam: Any) -> None:
        self.iam = iam
        self._cache: dict[str, AttachedPolicy] = {}

    def remember(self, policy: AttachedPolicy) -> None:
        self._cache[policy.arn] = policy

    def get(self, arn: str) -> AttachedPolicy:
        if arn not in self._cache:
            meta = self.iam.get_policy(PolicyArn=arn)["Policy"]
            version = self.iam.get_policy_version(PolicyArn=arn, VersionId=meta["DefaultVersionId"])
            self._cache[arn] = AttachedPolicy(
                arn=arn, name=meta["PolicyName"], default_version_id=meta["DefaultVersionId"],
                document=as_document(version["PolicyVersion"]["Document"]),
                aws_managed=arn.startswith(AWS_MANAGED_PREFIX), path=meta.get("Path", "/"),
            )
        return self._cache[arn]


def get_role_snapshot(iam: Any, role_name_or_arn: str, *, documents: PolicyDocuments | None = None
                      ) -> RoleSnapshot:
    """Everything the role holds now, read with per-role calls."""
    name = role_name_or_arn.rsplit("/", 1)[-1] if role_name_or_arn.startswith("arn:") else role_name_or_arn
    docs = documents or PolicyDocuments(iam)
    role = iam.get_role(RoleName=name)["Role"]
    attached_arns: list[str] = []
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
        attached_arns.extend(p["PolicyArn"] for p in page["AttachedPolicies"])
    inline: dict[str, dict[str, Any]] = {}
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
        for policy_name in page["PolicyNames"]:
            doc = iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
            inline[policy_name] = as_document(doc)
    return _snapshot(role, attached_arns, inline, docs)


def list_role_snapshots(iam: Any, *, scope: Scope | None = None, clock: Clock = utcnow) -> InventoryResult:
    """Every role of the account (``get_account_authorization_details``, paginated), sorted by scope."""
    docs = PolicyDocuments(iam)
    roles: list[dict[str, Any]] = []
    for page in iam.get_paginator("get_account_authorization_details").paginate(
            Filter=["Role", "LocalManagedPolicy"]):
        roles.extend(page.get("RoleDetailList", []))
        for policy in page.get("Policies", []):
            default = next((v for v in policy.get("PolicyVersionList", []) if v.get("IsDefaultVersion")), None)
            if default is None:
                continue
            docs.remember(AttachedPolicy(
                arn=policy["Arn"], name=policy.get("PolicyName") or policy["Arn"].rsplit("/", 1)[-1],
                default_version_id=default["VersionId"],
                document=as_document(default["Document"]), aws_managed=False, path=policy.get("Path", "/"),
            ))
    snapshots = [
        _snapshot(role, [p["PolicyArn"] for p in role.get("AttachedManagedPolicies", [])],
                  {p["PolicyName"]: as_document(p["PolicyDocument"]) for p in role.get("RolePolicyList", [])},
                  docs)
        for role in roles
    ]
    account = snapshots[0].account if snapshots else ""
    result = InventoryResult(account=account)
    scope = scope or Scope()
    now = clock()
    for snap in sorted(snapshots, key=lambda s: s.name.lower()):
        reason = scope.exclusion(snap)
        if reason:
            result.excluded.append(ExcludedRole(snap, reason))
            continue
        result.in_scope.append(snap)
        warnings = scope.warnings(snap, now)
        if warnings:
            result.warnings[snap.arn] = warnings
    return result


def _snapshot(role: dict[str, Any], attached_arns: Iterable[str], inline: dict[str, dict[str, Any]],
              docs: PolicyDocuments) -> RoleSnapshot:
    boundary_arn = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    last_used = (role.get("RoleLastUsed") or {}).get("LastUsedDate")
    return RoleSnapshot(
        account=role["Arn"].split(":")[4],
        arn=role["Arn"],
        name=role["RoleName"],
        path=role.get("Path", "/"),
        role_id=role["RoleId"],
        created=_iso(role["CreateDate"]),
        last_used=_iso(last_used) if last_used else None,
        tags={t["Key"]: t["Value"] for t in role.get("Tags", [])},
        attached=[docs.get(arn) for arn in attached_arns],
        inline=inline,
        boundary_arn=boundary_arn,
        boundary_document=docs.get(boundary_arn).document if boundary_arn else None,
        assume_role_policy=as_document(role.get("AssumeRolePolicyDocument") or {}),
    )


def _same_role(role: RoleSnapshot, arn: str) -> bool:
    """ARN equality that tolerates a configured ARN written without the role's path."""
    parts = arn.split(":", 5)
    return arn == role.arn or (len(parts) == 6 and parts[4] == role.account
                               and parts[5].rsplit("/", 1)[-1] == role.name)


def _iso(value: datetime | str) -> str:
    return iso(value) if isinstance(value, datetime) else iso(parse_iso(value))
