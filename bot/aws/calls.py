"""AWS calls of a change: each one made under the change's lease, transient failures retried with backoff, and
policy documents read as the exact text IAM holds.

* **Lease.** Before every call the change's lease is renewed (``ChangeStore.renew``); a caller that lost it
  (it stalled past the lease and someone else took the change over) stops with :class:`LeaseLost` before
  touching anything, so no AWS step of one change runs twice concurrently.
* **Transient failures** (a lost connection, a timeout, throttling, an IAM 5xx or ``ConcurrentModification``)
  are retried in place with exponential backoff (``RetryPolicy``: 1, 2, 4, 8, 16 s by default) on top of
  botocore's own retries; when they persist the call raises :class:`Unfinished` and the caller decides (apply:
  restore the before-image; rollback: leave the change for a later retry).
* **Exact text.** boto3 decodes policy documents into dicts; a handler registered first on the client keeps
  the URL-decoded text IAM returned next to it (``PolicyDocumentText``, ``DocumentText``), so a rollback can
  put back the very bytes that were there.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from bot.aws.inventory import as_document, canonical_json
from bot.store.changes import ChangeStore

T = TypeVar("T")

#: IAM error codes that mean "try again": throttling, IAM-side failures, a concurrent write to the same entity.
TRANSIENT_CODES = frozenset({
    "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException", "ServiceUnavailable",
    "ServiceFailure", "InternalFailure", "InternalError", "RequestTimeout", "RequestTimeoutException",
    "ConcurrentModification", "PriorRequestNotComplete",
})

_RAW_TEXT_HANDLER = "tighten-keep-policy-text"


class LeaseLost(RuntimeError):
    """Someone else holds the change now; stop without touching AWS or the change's state."""


class Unfinished(RuntimeError):
    """A call still failed transiently after every retry."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # the first try and 5 retries
    base_seconds: float = 1.0
    max_seconds: float = 20.0
    sleep: Callable[[float], None] = time.sleep

    def delay(self, retry: int) -> float:
        return float(min(self.max_seconds, self.base_seconds * (2 ** retry)))


def default_owner() -> str:
    """Who runs a change here: host, process and thread (two threads of one process are two owners)."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return code(exc) in TRANSIENT_CODES or int(status) >= 500
    return isinstance(exc, BotoConnectionError | HTTPClientError)


class Calls:
    """The AWS calls of one change, made by ``owner`` under the change's lease."""

    def __init__(self, iam: Any, store: ChangeStore, change_id: str, owner: str, retry: RetryPolicy) -> None:
        self.iam = iam
        self.store = store
        self.change_id = change_id
        self.owner = owner
        self.retry = retry
        keep_policy_text(iam)

    def __call__(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        for attempt in range(self.retry.attempts):
            if not self.store.renew(self.change_id, self.owner):
                raise LeaseLost(f"change {self.change_id} is now held by {self.store.holder(self.change_id) or 'nobody'}"
                                f"; {self.owner} stops before {what}")
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - sorted into transient (retried) and the rest (raised)
                if not is_transient(exc):
                    raise
                if attempt + 1 >= self.retry.attempts:
                    raise Unfinished(f"{what}: {error_text(exc)} (still failing after {self.retry.attempts} "
                                     "attempts)") from exc
                self.retry.sleep(self.retry.delay(attempt))
        raise AssertionError("unreachable")

    # -- reads -----------------------------------------------------------------------------------------
    def attached(self, role: str) -> list[str]:
        def read() -> list[str]:
            arns: list[str] = []
            for page in self.iam.get_paginator("list_attached_role_policies").paginate(RoleName=role):
                arns.extend(p["PolicyArn"] for p in page["AttachedPolicies"])
            return arns

        return self("list attached policies", read)

    def inline_text(self, role: str, name: str) -> str | None:
        """The exact text of an inline policy, or None when the role has none of that name."""
        try:
            out = self(f"read inline policy {name}", self.iam.get_role_policy, RoleName=role, PolicyName=name)
        except ClientError as exc:
            if code(exc) == "NoSuchEntity":
                return None
            raise
        return document_text(out, "PolicyDocumentText", "PolicyDocument")

    def policy(self, arn: str) -> PolicyState:
        try:
            meta = self(f"read {arn}", self.iam.get_policy, PolicyArn=arn)["Policy"]
        except ClientError as exc:
            if code(exc) == "NoSuchEntity":
                return PolicyState(arn=arn, exists=False)
            raise
        version = self(f"read {arn} {meta['DefaultVersionId']}", self.iam.get_policy_version, PolicyArn=arn,
                       VersionId=meta["DefaultVersionId"])["PolicyVersion"]
        text = document_text(version, "DocumentText", "Document")
        return PolicyState(arn=arn, exists=True, default_version_id=meta["DefaultVersionId"], text=text,
                           document=json.loads(text), attachment_count=int(meta.get("AttachmentCount", 0)),
                           description=meta.get("Description", ""), name=meta.get("PolicyName", ""),
                           path=meta.get("Path", "/"))

    def version_text(self, arn: str, version_id: str) -> str:
        version = self(f"read {arn} {version_id}", self.iam.get_policy_version, PolicyArn=arn,
                       VersionId=version_id)["PolicyVersion"]
        return document_text(version, "DocumentText", "Document")

    def versions(self, arn: str) -> list[dict[str, Any]]:
        return list(self(f"list versions of {arn}", self.iam.list_policy_versions, PolicyArn=arn)["Versions"])


@dataclass
class PolicyState:
    """A managed policy as it is now (``exists`` False: no such policy)."""

    arn: str
    exists: bool
    default_version_id: str | None = None
    text: str | None = None
    document: dict[str, Any] | None = None
    attachment_count: int = 0
    description: str = ""
    name: str = ""
    path: str = "/"

    def holds(self, document: dict[str, Any] | None) -> bool:
        return self.document is not None and document is not None and same_document(self.document, document)


def same_document(a: Any, b: Any) -> bool:
    return canonical_json(a) == canonical_json(b)


def document_text(response: dict[str, Any], text_key: str, document_key: str) -> str:
    """The text kept by :func:`keep_policy_text`, or (a client without the handler) the decoded document."""
    text = response.get(text_key)
    if isinstance(text, str):
        return text
    value = response[document_key]
    return raw_text(value) if isinstance(value, str) else json.dumps(as_document(value))


def raw_text(value: str) -> str:
    """IAM returns documents URL-encoded (RFC 3986); some emulators return them plain."""
    return value if value.lstrip().startswith("{") else unquote(value)


def keep_policy_text(iam: Any) -> None:
    """Register (once per client) the handler that keeps each policy document's text next to boto3's dict."""
    events = getattr(getattr(iam, "meta", None), "events", None)
    if events is not None:
        events.register_first("after-call.iam", _keep_text, unique_id=_RAW_TEXT_HANDLER)


def _keep_text(parsed: dict[str, Any], model: Any, **_: Any) -> None:
    if not isinstance(parsed, dict):
        return
    if model.name == "GetRolePolicy" and isinstance(parsed.get("PolicyDocument"), str):
        parsed["PolicyDocumentText"] = raw_text(parsed["PolicyDocument"])
    elif model.name == "GetPolicyVersion":
        version = parsed.get("PolicyVersion") or {}
        if isinstance(version.get("Document"), str):
            version["DocumentText"] = raw_text(version["Document"])


def code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_text(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'Error')}: {err.get('Message', '')}".strip()
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return f"{type(exc).__name__}: {exc}"
    return str(exc)
