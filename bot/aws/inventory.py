"""Inventory: what each IAM role and user holds right now (attached managed policies with their default
version documents, inline policies, boundary, tags, creation and last use; for users also their groups'
policies), and which of them Tighten may touch.

``get_role_snapshot`` reads one role with per-role calls (used right before an apply); ``list_role_snapshots``
reads a whole account with ``get_account_authorization_details`` (paginated) and sorts roles into in scope /
excluded. Both produce identical snapshots, so ``policy_hash()`` from a scan matches the one at apply time.

Users are inventoried read-only (Tighten proposes nothing it applies to users; apply and rollback are
role-only). ``list_account_snapshots`` reads roles, users and groups in one paginated
``get_account_authorization_details`` sequence; ``list_user_snapshots`` reads users and groups only;
``get_user_snapshot`` reads one user with per-user and per-group calls. Listing and single reads give identical
user snapshots too.

A user's last use: ``get_account_authorization_details`` does not return ``PasswordLastUsed``, so the listing
adds one paginated ``list_users`` (no policies, about one call per 100 users); ``get_user_snapshot`` takes it from
``get_user``. Access keys' last use costs ``list_access_keys`` plus one ``get_access_key_last_used`` per key and
user, so it is read only with ``access_keys=True``; otherwise ``access_keys_last_used`` is None (not read) and
``last_used`` is the console password's last use alone, which says nothing about programmatic users.
(The IAM credential report would give both in one CSV, but it is generated asynchronously; not used.)
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

from bot.config import IacRule
from bot.util.clock import Clock, iso, parse_iso, utcnow

SERVICE_LINKED_PATH_PREFIX = "/aws-service-role/"
AWS_MANAGED_PREFIX = "arn:aws:iam::aws:policy/"
#: Tags CloudFormation puts on every taggable resource it creates (the role's stack and its logical ID).
CFN_STACK_TAG = "aws:cloudformation:stack-name"
CFN_LOGICAL_ID_TAG = "aws:cloudformation:logical-id"


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
        return _identity_documents(self.attached, self.inline)

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
class GroupSnapshot:
    """An IAM group as seen through one of its members: its attached managed and inline policies."""

    arn: str
    name: str
    path: str
    group_id: str
    attached: list[AttachedPolicy]
    inline: dict[str, dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["attached"] = [p.to_json() for p in self.attached]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GroupSnapshot:
        data = dict(data)
        data["attached"] = [AttachedPolicy(**p) for p in data["attached"]]
        return cls(**data)


@dataclass
class UserSnapshot:
    """What an IAM user holds now, read-only. Its effective identity policies include its groups' policies.

    ``last_used`` is the latest of ``password_last_used`` and the access keys' last use when those were read
    (``access_keys_last_used`` is None when not read; a key never used maps to None)."""

    account: str
    arn: str
    name: str
    path: str
    user_id: str
    created: str
    last_used: str | None
    password_last_used: str | None
    access_keys_last_used: dict[str, str | None] | None
    tags: dict[str, str]
    attached: list[AttachedPolicy]
    inline: dict[str, dict[str, Any]]
    groups: list[GroupSnapshot]  # sorted by group name; attached policies (user's and groups') sorted by ARN
    boundary_arn: str | None
    boundary_document: dict[str, Any] | None

    def identity_documents(self) -> list[tuple[str, dict[str, Any]]]:
        """(name, document) for every identity policy: the user's attached managed ones, then its inline ones,
        then each group's (by group name) attached and inline ones named ``<group>/<policy>`` (IAM policy names
        cannot contain ``/``)."""
        out = _identity_documents(self.attached, self.inline)
        for group in self.groups:
            out.extend((f"{group.name}/{name}", doc) for name, doc in _identity_documents(group.attached, group.inline))
        return out

    def policy_hash(self) -> str:
        """Stable sha256 over the user's attached ARNs with their default documents, inline documents, boundary
        and, per group membership, the group's attached and inline policies the same way."""
        payload = {
            "attached": sorted([p.arn, p.document] for p in self.attached),
            "inline": self.inline,
            "boundary": self.boundary_arn,
            "groups": sorted([g.name, sorted([p.arn, p.document] for p in g.attached), g.inline]
                             for g in self.groups),
        }
        return hashlib.sha256(canonical_json(payload).encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["attached"] = [p.to_json() for p in self.attached]
        out["groups"] = [g.to_json() for g in self.groups]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UserSnapshot:
        data = dict(data)
        data["attached"] = [AttachedPolicy(**p) for p in data["attached"]]
        data["groups"] = [GroupSnapshot.from_json(g) for g in data["groups"]]
        return cls(**data)


@dataclass(frozen=True)
class ManagedAsCode:
    """Why a role is managed as code: its CloudFormation stack tag, or a configured rule (``iac.rules``)."""

    tool: str  # "cloudformation" | "terraform"
    reason: str  # one line, e.g. "CloudFormation stack orders (tag aws:cloudformation:stack-name)"
    stack: str | None = None
    logical_id: str | None = None
    rule: str | None = None  # the rule's key in the config file, e.g. "accounts[0].iac.rules[1]"

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ManagedAsCode:
        return cls(**{k: data.get(k) for k in ("tool", "reason", "stack", "logical_id", "rule")})


def managed_as_code(role: RoleSnapshot | UserSnapshot, rules: Iterable[IacRule] = ()) -> ManagedAsCode | None:
    """The CloudFormation stack tag wins (it names the stack); then the first rule whose every matcher fits.
    Tags match exactly (``key`` = any value); name and path globs case-insensitively."""
    stack = role.tags.get(CFN_STACK_TAG)
    if stack:
        return ManagedAsCode(tool="cloudformation", stack=stack, logical_id=role.tags.get(CFN_LOGICAL_ID_TAG),
                             reason=f"CloudFormation stack {stack} (tag {CFN_STACK_TAG})")
    for rule in rules:
        if rule.tag is not None:
            key, sep, value = rule.tag.partition("=")
            if key not in role.tags or (sep and role.tags[key] != value):
                continue
        if rule.name is not None and not fnmatch.fnmatchcase(role.name.lower(), rule.name.lower()):
            continue
        if rule.path is not None and not fnmatch.fnmatchcase(role.path.lower(), rule.path.lower()):
            continue
        tool = "Terraform" if rule.tool == "terraform" else "CloudFormation"
        return ManagedAsCode(tool=rule.tool, rule=rule.where, reason=f"{tool} by rule {rule.where or '(unnamed)'} "
                             f"({rule.describe()})")
    return None


@dataclass
class Scope:
    """Which roles Tighten may touch, and which users it reports on. Patterns are shell globs on the name
    (case-insensitive); tags are ``key`` (any value) or ``key=value``.

    Users: ``protected_role_names`` patterns and ``protected_tags`` apply to user names and user tags too (a
    break-glass user is as protected as a break-glass role); an ``own_role_arns`` entry that is a user ARN
    (``...:user/<name>``) excludes that user as Tighten's own identity. Service-linked paths and the
    insufficient-history warning work as for roles."""

    protected_role_names: tuple[str, ...] = ()
    protected_tags: tuple[str, ...] = ("tighten:protected",)
    own_role_arns: tuple[str, ...] = ()
    lookback_days: int = 90
    iac_rules: dict[str, tuple[IacRule, ...]] = field(default_factory=dict)  # account -> rules, "" = any account

    def managed_as_code(self, role: RoleSnapshot) -> ManagedAsCode | None:
        """Whether ``role`` is managed as code, and why (see :func:`managed_as_code`)."""
        return managed_as_code(role, self.iac_rules.get(role.account, self.iac_rules.get("", ())))

    def exclusion(self, role: RoleSnapshot) -> str | None:
        """Why ``role`` is out of scope, or None when it is in scope."""
        if role.path.startswith(SERVICE_LINKED_PATH_PREFIX):
            return "service-linked role"
        if any(_same_role(role, arn) for arn in self.own_role_arns):
            return "Tighten's own role"
        return self._protected("role", role.name, role.tags)

    def user_exclusion(self, user: UserSnapshot) -> str | None:
        """Why ``user`` is out of scope, or None when it is in scope."""
        if any(_same_user(user, arn) for arn in self.own_role_arns):
            return "Tighten's own user"
        return self._protected("user", user.name, user.tags)

    def _protected(self, kind: str, name: str, tags: dict[str, str]) -> str | None:
        for pattern in self.protected_role_names:
            if fnmatch.fnmatchcase(name.lower(), pattern.lower()):
                return f"protected {kind} (matches {pattern!r})"
        for tag in self.protected_tags:
            key, sep, value = tag.partition("=")
            if key in tags and (not sep or tags[key] == value):
                return f"protected tag {tag!r}"
        return None

    def warnings(self, role: RoleSnapshot | UserSnapshot, now: datetime) -> list[str]:
        created = parse_iso(role.created)
        if now - created < timedelta(days=self.lookback_days):
            age = (now - created).days
            kind = "user" if isinstance(role, UserSnapshot) else "role"
            return [f"insufficient history: {kind} is {age} days old, lookback is {self.lookback_days} days"]
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
    managed_as_code: dict[str, ManagedAsCode] = field(default_factory=dict)  # role ARN -> why (in scope or not)

    @property
    def all(self) -> list[RoleSnapshot]:
        return self.in_scope + [e.snapshot for e in self.excluded]


@dataclass
class ExcludedUser:
    snapshot: UserSnapshot
    reason: str


@dataclass
class UserInventory:
    account: str
    in_scope: list[UserSnapshot] = field(default_factory=list)
    excluded: list[ExcludedUser] = field(default_factory=list)
    warnings: dict[str, list[str]] = field(default_factory=dict)  # user ARN -> warnings

    @property
    def all(self) -> list[UserSnapshot]:
        return self.in_scope + [e.snapshot for e in self.excluded]


@dataclass
class AccountInventory:
    """Roles and users of one account, from one ``get_account_authorization_details`` sequence."""

    account: str
    roles: InventoryResult
    users: UserInventory


class InventoryError(RuntimeError):
    """The account's authorization details are inconsistent (changed while being listed); retry the listing."""


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
    details = _read_account_details(iam, ["Role", "LocalManagedPolicy"])
    return _role_inventory(details, scope or Scope(), clock())


def list_user_snapshots(iam: Any, *, scope: Scope | None = None, clock: Clock = utcnow,
                        access_keys: bool = False) -> UserInventory:
    """Every user of the account with its groups' policies (``get_account_authorization_details`` for users and
    groups, paginated, plus ``list_users`` for the password's last use), sorted by scope."""
    details = _read_account_details(iam, ["User", "Group", "LocalManagedPolicy"])
    return _user_inventory(iam, details, scope or Scope(), clock(), access_keys)


def list_account_snapshots(iam: Any, *, scope: Scope | None = None, clock: Clock = utcnow,
                           access_keys: bool = False) -> AccountInventory:
    """Roles and users together from one paginated ``get_account_authorization_details`` sequence (roles,
    users, groups and customer-managed policies), plus ``list_users`` for the password's last use."""
    details = _read_account_details(iam, ["Role", "User", "Group", "LocalManagedPolicy"])
    scope = scope or Scope()
    now = clock()
    roles = _role_inventory(details, scope, now)
    users = _user_inventory(iam, details, scope, now, access_keys)
    return AccountInventory(account=roles.account or users.account, roles=roles, users=users)


def get_user_snapshot(iam: Any, user_name_or_arn: str, *, documents: PolicyDocuments | None = None,
                      access_keys: bool = False) -> UserSnapshot:
    """Everything the user holds now, its groups' policies included, read with per-user and per-group calls."""
    name = user_name_or_arn.rsplit("/", 1)[-1] if user_name_or_arn.startswith("arn:") else user_name_or_arn
    docs = documents or PolicyDocuments(iam)
    user = iam.get_user(UserName=name)["User"]
    attached_arns: list[str] = []
    for page in iam.get_paginator("list_attached_user_policies").paginate(UserName=name):
        attached_arns.extend(p["PolicyArn"] for p in page["AttachedPolicies"])
    inline: dict[str, dict[str, Any]] = {}
    for page in iam.get_paginator("list_user_policies").paginate(UserName=name):
        for policy_name in page["PolicyNames"]:
            inline[policy_name] = as_document(
                iam.get_user_policy(UserName=name, PolicyName=policy_name)["PolicyDocument"])
    groups: list[GroupSnapshot] = []
    for page in iam.get_paginator("list_groups_for_user").paginate(UserName=name):
        groups.extend(_read_group(iam, group, docs) for group in page["Groups"])
    password_last_used = user.get("PasswordLastUsed")
    return _user_snapshot(user, attached_arns, inline, groups,
                          _iso(password_last_used) if password_last_used else None,
                          _access_keys_last_used(iam, name) if access_keys else None, docs)


@dataclass
class _AccountDetails:
    roles: list[dict[str, Any]]
    users: list[dict[str, Any]]
    groups: dict[str, dict[str, Any]]  # group name -> GroupDetailList entry
    docs: PolicyDocuments


def _read_account_details(iam: Any, filters: list[str]) -> _AccountDetails:
    details = _AccountDetails(roles=[], users=[], groups={}, docs=PolicyDocuments(iam))
    for page in iam.get_paginator("get_account_authorization_details").paginate(Filter=filters):
        details.roles.extend(page.get("RoleDetailList", []))
        details.users.extend(page.get("UserDetailList", []))
        details.groups.update((g["GroupName"], g) for g in page.get("GroupDetailList", []))
        for policy in page.get("Policies", []):
            default = next((v for v in policy.get("PolicyVersionList", []) if v.get("IsDefaultVersion")), None)
            if default is None:
                continue
            details.docs.remember(AttachedPolicy(
                arn=policy["Arn"], name=policy.get("PolicyName") or policy["Arn"].rsplit("/", 1)[-1],
                default_version_id=default["VersionId"],
                document=as_document(default["Document"]), aws_managed=False, path=policy.get("Path", "/"),
            ))
    return details


def _role_inventory(details: _AccountDetails, scope: Scope, now: datetime) -> InventoryResult:
    snapshots = [
        _snapshot(role, [p["PolicyArn"] for p in role.get("AttachedManagedPolicies", [])],
                  {p["PolicyName"]: as_document(p["PolicyDocument"]) for p in role.get("RolePolicyList", [])},
                  details.docs)
        for role in details.roles
    ]
    result = InventoryResult(account=snapshots[0].account if snapshots else "")
    _sort_by_scope(snapshots, scope.exclusion, ExcludedRole, result, scope, now)
    for snap in snapshots:
        found = scope.managed_as_code(snap)
        if found is not None:
            result.managed_as_code[snap.arn] = found
    return result


def _sort_by_scope(snapshots: list[Any], exclusion: Any, excluded: Any, result: Any, scope: Scope,
                   now: datetime) -> None:
    """Sort snapshots (by name) into ``result.in_scope`` / ``result.excluded`` (with the reason), recording
    history warnings for those in scope. Shared by the role and the user inventory."""
    for snap in sorted(snapshots, key=lambda s: s.name.lower()):
        reason = exclusion(snap)
        if reason:
            result.excluded.append(excluded(snap, reason))
            continue
        result.in_scope.append(snap)
        warnings = scope.warnings(snap, now)
        if warnings:
            result.warnings[snap.arn] = warnings


def _user_inventory(iam: Any, details: _AccountDetails, scope: Scope, now: datetime,
                    access_keys: bool) -> UserInventory:
    password_last_used = _passwords_last_used(iam) if details.users else {}
    groups: dict[str, GroupSnapshot] = {}
    snapshots: list[UserSnapshot] = []
    for user in details.users:
        member_of: list[GroupSnapshot] = []
        for group_name in user.get("GroupList", []):
            if group_name not in groups:
                if group_name not in details.groups:
                    raise InventoryError(f"user {user['UserName']} is in group {group_name}, which the account "
                                         "details did not list (changed during the listing?); retry")
                group = details.groups[group_name]
                groups[group_name] = _group_snapshot(
                    group, [p["PolicyArn"] for p in group.get("AttachedManagedPolicies", [])],
                    {p["PolicyName"]: as_document(p["PolicyDocument"]) for p in group.get("GroupPolicyList", [])},
                    details.docs)
            member_of.append(groups[group_name])
        snapshots.append(_user_snapshot(
            user, [p["PolicyArn"] for p in user.get("AttachedManagedPolicies", [])],
            {p["PolicyName"]: as_document(p["PolicyDocument"]) for p in user.get("UserPolicyList", [])},
            member_of, password_last_used.get(user["UserName"]),
            _access_keys_last_used(iam, user["UserName"]) if access_keys else None, details.docs))
    result = UserInventory(account=snapshots[0].account if snapshots else "")
    _sort_by_scope(snapshots, scope.user_exclusion, ExcludedUser, result, scope, now)
    return result


def _passwords_last_used(iam: Any) -> dict[str, str]:
    """User name -> console password's last use (``list_users``; absent when never used or no password)."""
    out: dict[str, str] = {}
    for page in iam.get_paginator("list_users").paginate():
        for user in page["Users"]:
            if user.get("PasswordLastUsed"):
                out[user["UserName"]] = _iso(user["PasswordLastUsed"])
    return out


def _access_keys_last_used(iam: Any, user_name: str) -> dict[str, str | None]:
    """Access key id -> last use (None when never used): ``list_access_keys`` + one call per key."""
    out: dict[str, str | None] = {}
    for page in iam.get_paginator("list_access_keys").paginate(UserName=user_name):
        for key in page["AccessKeyMetadata"]:
            key_id = key["AccessKeyId"]
            used = iam.get_access_key_last_used(AccessKeyId=key_id).get("AccessKeyLastUsed", {}).get("LastUsedDate")
            out[key_id] = _iso(used) if used else None
    return out


def _read_group(iam: Any, group: dict[str, Any], docs: PolicyDocuments) -> GroupSnapshot:
    name = group["GroupName"]
    attached_arns: list[str] = []
    for page in iam.get_paginator("list_attached_group_policies").paginate(GroupName=name):
        attached_arns.extend(p["PolicyArn"] for p in page["AttachedPolicies"])
    inline: dict[str, dict[str, Any]] = {}
    for page in iam.get_paginator("list_group_policies").paginate(GroupName=name):
        for policy_name in page["PolicyNames"]:
            inline[policy_name] = as_document(
                iam.get_group_policy(GroupName=name, PolicyName=policy_name)["PolicyDocument"])
    return _group_snapshot(group, attached_arns, inline, docs)


def _group_snapshot(group: dict[str, Any], attached_arns: Iterable[str], inline: dict[str, dict[str, Any]],
                    docs: PolicyDocuments) -> GroupSnapshot:
    return GroupSnapshot(arn=group["Arn"], name=group["GroupName"], path=group.get("Path", "/"),
                         group_id=group["GroupId"], attached=[docs.get(arn) for arn in sorted(attached_arns)],
                         inline=inline)


def _user_snapshot(user: dict[str, Any], attached_arns: Iterable[str], inline: dict[str, dict[str, Any]],
                   groups: list[GroupSnapshot], password_last_used: str | None,
                   access_keys: dict[str, str | None] | None, docs: PolicyDocuments) -> UserSnapshot:
    boundary_arn = (user.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    uses = [password_last_used, *(access_keys or {}).values()]
    return UserSnapshot(
        account=user["Arn"].split(":")[4],
        arn=user["Arn"],
        name=user["UserName"],
        path=user.get("Path", "/"),
        user_id=user["UserId"],
        created=_iso(user["CreateDate"]),
        last_used=max((u for u in uses if u), default=None),
        password_last_used=password_last_used,
        access_keys_last_used=access_keys,
        tags={t["Key"]: t["Value"] for t in user.get("Tags", [])},
        attached=[docs.get(arn) for arn in sorted(attached_arns)],
        inline=inline,
        groups=sorted(groups, key=lambda g: g.name),
        boundary_arn=boundary_arn,
        boundary_document=docs.get(boundary_arn).document if boundary_arn else None,
    )


def _identity_documents(attached: list[AttachedPolicy], inline: dict[str, dict[str, Any]]
                        ) -> list[tuple[str, dict[str, Any]]]:
    out = [(p.name, p.document) for p in attached]
    out.extend((name, doc) for name, doc in sorted(inline.items()))
    return out


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


def _same_user(user: UserSnapshot, arn: str) -> bool:
    """A configured user ARN names this user (with or without the user's path)."""
    parts = arn.split(":", 5)
    return arn == user.arn or (len(parts) == 6 and parts[4] == user.account and parts[5].startswith("user/")
                               and parts[5].rsplit("/", 1)[-1] == user.name)


def _iso(value: datetime | str) -> str:
    return iso(value) if isinstance(value, datetime) else iso(parse_iso(value))
