"""What a proposal must keep: the inputs of :func:`bot.policy.generate.generate_policy` besides usage rows.

Usage rows (``bot.store.usage.UsageRow``) carry a resource that is an ARN, :data:`ANY_RESOURCE` (the action
takes no resource type) or :data:`UNKNOWN_RESOURCE` (the call targeted a resource whose ARN the log does not
show). Allowlist entries (``bot.policy.allowlist.AllowEntry``) name an action and a resource (``*`` = any).
Any other source of "keep this" -- IAM's service-last-accessed data, the Access Analyzer backend's output --
comes in as :class:`KeepEntry`: an action or action pattern (``s3:GetObject``, ``s3:Get*``, ``s3:*``), an
optional resource (ARN or ARN pattern; None = wherever the current policy allows it), a kind naming the
source, and a note shown to reviewers. Every entry is held to the same rule as usage: it is granted only
inside what the current policy allows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Resource placeholder when the call targeted a resource whose ARN could not be built from the log.
UNKNOWN_RESOURCE = "?"
#: Resource for actions that take no resource type (only ``*`` can be granted).
ANY_RESOURCE = "*"


@dataclass(frozen=True, slots=True)
class KeepEntry:
    """One thing a proposal must keep, from a source other than the usage index or the allowlist."""

    action: str  # "s3:GetObject", or a pattern: "s3:Get*", "s3:*"
    resource: str | None = None  # ARN or ARN pattern; None: wherever the current policy allows the action
    kind: str = "extra"  # the source: "last-accessed", "access-analyzer", ...
    note: str = ""  # shown to reviewers with the action's sources


def keep_entries_from_documents(documents: Iterable[Mapping[str, Any]], *, kind: str,
                                note: str = "") -> list[KeepEntry]:
    """Entries for every (action pattern, resource) an outside generator's Allow statements grant (the Access
    Analyzer backend's documents). ``Resource: "*"`` and ``NotResource`` become None (the current statement's
    scope); Deny statements and conditions are not carried (the current policy's own are)."""
    out: list[KeepEntry] = []
    for doc in documents:
        statements = doc.get("Statement", [])
        if isinstance(statements, Mapping):
            statements = [statements]
        for st in statements:
            if not isinstance(st, Mapping) or st.get("Effect") != "Allow" or "Action" not in st:
                continue
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            raw = st.get("Resource", "*")
            resources: list[str | None] = [None if r == "*" else str(r)
                                           for r in (raw if isinstance(raw, list) else [raw])]
            if "NotResource" in st:
                resources = [None]
            for action in actions:
                for resource in resources:
                    out.append(KeepEntry(action=str(action), resource=resource, kind=kind, note=note))
    return list(dict.fromkeys(out))
