"""Normalized CloudTrail records: the contract between ``bot.trail`` and ``bot.store``.

A raw CloudTrail record becomes one :class:`CallRecord` (or a counted skip). Everything downstream
(usage index, policy generation, post-apply watch) reads only these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The resource placeholders belong to the policy layer (generation decides what they grant); re-exported here.
from bot.policy.keep import ANY_RESOURCE, UNKNOWN_RESOURCE

__all__ = ["ANY_RESOURCE", "UNKNOWN_RESOURCE", "ActionUse", "CallRecord", "Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made the call, resolved to the IAM identity that holds the permissions."""

    arn: str  # role ARN for assumed-role sessions; user ARN; root ARN; federated provider/user
    kind: str  # "role" | "user" | "root" | "federated" | "service" | "unknown"
    account: str
    service_linked: bool = False  # role under /aws-service-role/


@dataclass(frozen=True, slots=True)
class ActionUse:
    """One IAM action a call needed, with the resource it needed it on."""

    action: str  # canonical catalog spelling, e.g. "s3:GetObject"
    resource: str  # ARN, ANY_RESOURCE, or UNKNOWN_RESOURCE
    # UNKNOWN_RESOURCE only: why a derived ARN was refused by the normalizer's structural lint (e.g.
    # "double_slash"); "" otherwise. Not part of equality: the use is the same unknown resource either way.
    rejected: str = field(default="", compare=False)


@dataclass(slots=True)
class CallRecord:
    """One CloudTrail event after normalization."""

    event_id: str
    event_time: str  # ISO-8601 UTC, "2024-08-01T13:47:16Z"
    account: str  # recipientAccountId (falls back to the principal's account)
    region: str
    event_source: str  # "s3.amazonaws.com"
    event_name: str  # raw eventName, e.g. "UpdateFunctionCode20150331v2"
    principal: Principal
    actions: list[ActionUse] = field(default_factory=list)
    error_code: str | None = None
    denied: bool = False  # AccessDenied / UnauthorizedOperation / ...: not usage
    invoked_by: str | None = None  # AWS service that made the call on the principal's behalf

    @property
    def day(self) -> str:
        return self.event_time[:10]
