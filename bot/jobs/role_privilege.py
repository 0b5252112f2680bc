"""Escalation knowledge for jobs: what each known role can do, stored at inventory, read by scans.

The inventory step computes each role's :class:`~bot.policy.escalation.RoleProfile` (can it administer IAM,
which escalation paths are open for it) from the snapshot it already read, and stores it in the role directory
with the policy hash and the escalation data version it came from; an unchanged role keeps its stored profile
(expanding ``AdministratorAccess`` for every role on every inventory would dominate the planner's time).
A scan builds its :data:`~bot.policy.escalation.RoleLookup` from those stored profiles: no AWS call per check.
A role the inventory has not seen (another account, a role created since) is reported as unresolved, not
judged.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from bot.aws.inventory import RoleSnapshot, canonical_json
from bot.policy.catalog import catalog
from bot.policy.escalation import EscalationContext, RoleLookup, RoleProfile, profile_lookup, role_profile
from bot.policy.escalation_paths import DATA_FILE
from bot.policy.expand import EffectivePermissions, effective_permissions
from bot.policy.model import PolicyError, parse_policy
from bot.store.roles import KnownRole, RoleDirectory


@functools.lru_cache(maxsize=1)
def data_version() -> str:
    """Changes when the escalation data or the IAM catalog changes (stored profiles are then recomputed)."""
    with open(DATA_FILE, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()[:12]
    return f"{digest}+{catalog().version()}"


_RECENT: OrderedDict[str, EffectivePermissions] = OrderedDict()
_RECENT_SIZE = 4
_RECENT_LOCK = threading.Lock()


def snapshot_permissions(snapshot: RoleSnapshot) -> EffectivePermissions:
    """The effective permissions of a snapshot; the last few are kept by policy hash, so the many roles that
    hold the same policies (``AdministratorAccess`` alone, say) are expanded once per inventory."""
    key = hashlib.sha256(canonical_json([snapshot.policy_hash(), snapshot.boundary_document]).encode()).hexdigest()
    with _RECENT_LOCK:
        if key in _RECENT:
            _RECENT.move_to_end(key)
            return _RECENT[key]
    boundary = parse_policy(snapshot.boundary_document, "boundary") if snapshot.boundary_document else None
    perms = effective_permissions([parse_policy(doc, name) for name, doc in snapshot.identity_documents()], boundary)
    with _RECENT_LOCK:
        _RECENT[key] = perms
        while len(_RECENT) > _RECENT_SIZE:
            _RECENT.popitem(last=False)
    return perms


def role_privilege(snapshot: RoleSnapshot, previous: KnownRole | None) -> dict[str, Any] | None:
    """The ``privilege`` to store for ``snapshot``: the previous one when policy and data are unchanged, else
    recomputed; None when the role's policies cannot be read (the role is then unresolved, never trusted)."""
    policy_hash = snapshot.policy_hash()
    old = previous.privilege if previous is not None else None
    if old and old.get("policy_hash") == policy_hash and old.get("data_version") == data_version():
        return old
    try:
        perms = snapshot_permissions(snapshot)
    except PolicyError:
        return None
    profile = role_profile(snapshot.arn, snapshot.name, perms)
    return {**profile.to_json(), "policy_hash": policy_hash, "data_version": data_version()}


def stored_role_lookup(roles: RoleDirectory) -> RoleLookup:
    """A lookup over the profiles stored in the role directory (read once, on first use)."""

    @functools.lru_cache(maxsize=1)
    def inner() -> RoleLookup:
        return profile_lookup(RoleProfile.from_json(p) for p in roles.privileges())

    def lookup(pattern: str) -> Sequence[RoleProfile]:
        return inner()(pattern)

    return lookup


def escalation_context(roles: RoleDirectory, principal_arn: str) -> EscalationContext:
    """What a scan of ``principal_arn`` judges escalation with."""
    return EscalationContext(principal_arn=principal_arn, lookup=stored_role_lookup(roles))
