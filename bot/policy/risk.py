"""Risk score of a principal, for scan priority. Deterministic, and every point is explained.

Score (0-100) is the sum of five parts, in this order of weight:

1. IAM administration (40): an IAM "Permissions management" action on a wildcard resource
   (:func:`bot.policy.escalation.can_administer_iam`).
2. Privilege escalation (20, +2 per further path up to +10): open paths from :mod:`bot.policy.escalation`.
3. Breadth (up to 20): Write / Permissions management / Tagging actions granted on ``*``, on a log scale
   (1 action ~ 1.5 points, 100 ~ 10, 10,000 = 20); plus a note of services fully granted.
4. Unused grants (up to 10): the fraction of granted actions not used in the window (when usage is known).
5. Staleness (up to 10): days since last use, 0 at 7 days or less, 10 at 90 days or more or never used.

Tiers: critical >= 60, high >= 40, medium >= 20, low below. A role with ``iam:*`` therefore ranks above one
with ``s3:*`` (IAM administration and escalation come first); PowerUserAccess is not IAM administration but
still escalates (``lambda:UpdateFunctionCode``, ``ssm:SendCommand``) and is broad, so it ranks high.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.policy.escalation import EscalationContext, escalation_paths, iam_admin_grants
from bot.policy.expand import EffectivePermissions

WEIGHT_IAM_ADMIN = 40.0
WEIGHT_ESCALATION = 20.0
WEIGHT_ESCALATION_EXTRA = 2.0
MAX_ESCALATION_EXTRA = 10.0
MAX_BREADTH = 20.0
BREADTH_FULL_AT = 10_000
MAX_UNUSED = 10.0
MAX_STALENESS = 10.0
STALE_AFTER_DAYS = 7
STALE_FULL_DAYS = 90
TIERS = ((60.0, "critical"), (40.0, "high"), (20.0, "medium"), (0.0, "low"))
_WRITE_LEVELS = frozenset({"Write", "Permissions management", "Tagging"})


@dataclass(frozen=True)
class RiskScore:
    score: float
    tier: str  # "critical" | "high" | "medium" | "low"
    reasons: list[str]
    parts: dict[str, float] = field(default_factory=dict)  # part name -> points


def _tier(score: float) -> str:
    for floor, name in TIERS:
        if score >= floor:
            return name
    return "low"


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _examples(names: Iterable[str], limit: int = 3) -> str:
    names = sorted(names)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def risk_score(
    perms: EffectivePermissions,
    usage_actions: set[str] | None,
    last_used: str | None,
    now: datetime,
    escalation_context: EscalationContext | None = None,
) -> RiskScore:
    """Score ``perms`` (see the module docstring). ``usage_actions`` None means usage is unknown;
    ``escalation_context`` lets escalation follow PassRole / AssumeRole to the named roles."""
    parts: dict[str, float] = {}
    reasons: list[str] = []

    admin = iam_admin_grants(perms)
    if admin:
        parts["iam_admin"] = WEIGHT_IAM_ADMIN
        reasons.append(
            f"can administer IAM: {len(admin)} permissions-management actions on wildcard resources "
            f"({_examples(g.action for g in admin)})"
        )

    paths = escalation_paths(perms, escalation_context)
    if paths:
        extra = min(MAX_ESCALATION_EXTRA, WEIGHT_ESCALATION_EXTRA * (len(paths) - 1))
        parts["escalation"] = WEIGHT_ESCALATION + extra
        noun = "path" if len(paths) == 1 else "paths"
        reasons.append(f"{len(paths)} privilege-escalation {noun} open ({_examples(p.id for p in paths)})")

    broad_writes = [g for g in perms if g.on_any_resource and g.access_level in _WRITE_LEVELS]
    if broad_writes:
        fraction = min(1.0, math.log10(1 + len(broad_writes)) / math.log10(1 + BREADTH_FULL_AT))
        parts["breadth"] = round(MAX_BREADTH * fraction, 2)
        services = {g.service for g in broad_writes}
        reasons.append(
            f"{len(broad_writes):,} write/permissions/tagging actions granted on * "
            f"across {len(services):,} services"
        )

    if usage_actions is not None and len(perms):
        used = {a.lower() for a in usage_actions}
        unused = sum(1 for name in perms.grants if name.lower() not in used)
        fraction = unused / len(perms)
        if unused:
            parts["unused"] = round(MAX_UNUSED * fraction, 2)
            reasons.append(
                f"{fraction:.0%} of granted actions unused in the window ({unused:,} of {len(perms):,})"
            )

    if last_used is None:
        if usage_actions is not None:
            parts["staleness"] = MAX_STALENESS
            reasons.append("never used in the window")
    else:
        days = (now - _parse_time(last_used)).total_seconds() / 86400
        if days > STALE_AFTER_DAYS:
            span = STALE_FULL_DAYS - STALE_AFTER_DAYS
            parts["staleness"] = round(MAX_STALENESS * min(1.0, (days - STALE_AFTER_DAYS) / span), 2)
            reasons.append(f"last used {int(days)} days ago")

    if not reasons:
        reasons.append("no IAM administration, no escalation path, no broad write access")
    score = round(min(100.0, sum(parts.values())), 1)
    return RiskScore(score=score, tier=_tier(score), reasons=reasons, parts=parts)
