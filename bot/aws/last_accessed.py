"""IAM's service-last-accessed data for one principal (boto3 adapter).

``GenerateServiceLastAccessedDetails`` (``Granularity=ACTION_LEVEL``: IAM adds the last use of each tracked
action for the services it tracks at action level) starts a job; ``GetServiceLastAccessedDetails`` is polled
until the job completes and read page by page (``Marker``). IAM keeps this data for 400 days (IAM User Guide,
"Refining permissions in AWS using last accessed information"). Permissions: ``iam:GenerateServiceLastAccessedDetails``
on the principal and ``iam:GetServiceLastAccessedDetails`` (``config/iam/reader.json``).

Errors (throttling, access denied, a failed or slow job) raise :class:`LastAccessedError` with one line that
says why; the caller decides (a scan refuses to propose: the safety net it relies on is missing).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bot.util.clock import Clock, iso, utcnow


class LastAccessedError(Exception):
    """IAM's last-accessed data could not be read; the message says why."""


@dataclass(frozen=True, slots=True)
class ActionAccess:
    action: str  # "iam:CreateRole" (namespace and IAM's action name)
    last_accessed: str  # ISO-8601 UTC


@dataclass(frozen=True, slots=True)
class ServiceAccess:
    namespace: str  # IAM prefix, "s3"
    name: str  # "Amazon S3"
    last_authenticated: str | None  # ISO-8601 UTC; None: not used in IAM's tracking period
    actions: tuple[ActionAccess, ...] = ()  # tracked actions with a recorded last use
    action_level: bool = False  # IAM tracks this service at action level


def read_last_accessed(iam: Any, principal_arn: str, *, sleep: Callable[[float], None] = time.sleep,
                       clock: Clock = utcnow, timeout: timedelta = timedelta(minutes=3),
                       poll_seconds: float = 2.0) -> list[ServiceAccess]:
    """Every service IAM reports for ``principal_arn`` (used or not), with action-level detail where tracked."""
    try:
        job = iam.generate_service_last_accessed_details(Arn=principal_arn, Granularity="ACTION_LEVEL")["JobId"]
        deadline = clock() + timeout
        marker: str | None = None
        out: list[ServiceAccess] = []
        while True:
            request: dict[str, Any] = {"JobId": job}
            if marker:
                request["Marker"] = marker
            page = iam.get_service_last_accessed_details(**request)
            status = page.get("JobStatus")
            if status == "IN_PROGRESS":
                if clock() >= deadline:
                    raise LastAccessedError(f"IAM's last-accessed job for {principal_arn} did not finish in "
                                            f"{int(timeout.total_seconds())} s")
                sleep(poll_seconds)
                continue
            if status != "COMPLETED":
                why = (page.get("Error") or {}).get("Message") or str(status)
                raise LastAccessedError(f"IAM's last-accessed job for {principal_arn} failed: {why}")
            out.extend(_service(item) for item in page.get("ServicesLastAccessed", []))
            if not page.get("IsTruncated"):
                return out
            marker = page.get("Marker")
    except (ClientError, BotoCoreError) as exc:
        raise LastAccessedError(f"cannot read IAM's last-accessed data for {principal_arn}: {exc}") from None


def _when(value: Any) -> str | None:
    return iso(value) if isinstance(value, datetime) else (str(value) if value else None)


def _service(item: dict[str, Any]) -> ServiceAccess:
    namespace = str(item.get("ServiceNamespace", "")).lower()
    tracked = item.get("TrackedActionsLastAccessed")
    actions = tuple(
        ActionAccess(f"{namespace}:{a['ActionName']}", when)
        for a in tracked or [] if a.get("ActionName") and (when := _when(a.get("LastAccessedTime")))
    )
    return ServiceAccess(namespace=namespace, name=str(item.get("ServiceName", namespace)),
                         last_authenticated=_when(item.get("LastAuthenticated")), actions=actions,
                         action_level=tracked is not None)
