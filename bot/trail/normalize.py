"""Raw CloudTrail event -> CallRecord (or a counted Skip). Signatures first; the body lands next."""

from __future__ import annotations

from typing import Any, NamedTuple

from bot.trail.records import CallRecord

SKIP_REASONS = (
    "truncated_gzip",
    "invalid_json",
    "not_an_event",
    "missing_fields",
    "unknown_event_source",
    "unknown_event",
    "permissionless",
    "not_api_call",
)


class Skip(NamedTuple):
    reason: str  # one of SKIP_REASONS
    detail: str = ""


class Normalizer:
    def __init__(self, catalog: Any = None) -> None:
        self._catalog = catalog

    def normalize(self, raw: dict) -> CallRecord | Skip:
        raise NotImplementedError("normalizer body not committed yet")
