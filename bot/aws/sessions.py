"""Per-account AWS sessions: Tighten runs with boto3's default credential chain and reaches each configured
account by assuming a role there (``TightenReader`` to read, ``TightenApplier`` to change). Credentials are
cached per (account, role) and renewed five minutes before they expire; they are never logged.

``endpoint_url`` points every client at a local emulator in tests and the demo.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import boto3

from bot.util.clock import Clock, utcnow

RENEW_BEFORE = timedelta(minutes=5)


@dataclass(frozen=True)
class OrgAccount:
    id: str
    name: str
    email: str
    status: str


@dataclass
class _Cached:
    session: boto3.Session
    expires: datetime


class AccountSessions:
    def __init__(self, *, base_session: boto3.Session | None = None, endpoint_url: str | None = None,
                 region: str = "us-east-1", session_name: str = "tighten", external_id: str | None = None,
                 duration_seconds: int = 3600, clock: Clock = utcnow) -> None:
        self.base = base_session or boto3.Session(region_name=region)
        self.endpoint_url = endpoint_url
        self.region = region
        self.session_name = session_name
        self.external_id = external_id
        self.duration_seconds = duration_seconds
        self.clock = clock
        self._cache: dict[tuple[str, str], _Cached] = {}

    def role_arn(self, account_id: str, role_name: str, partition: str = "aws") -> str:
        return f"arn:{partition}:iam::{account_id}:role/{role_name}"

    def session(self, account_id: str, role_name: str | None) -> boto3.Session:
        """A session acting as ``role_name`` in ``account_id``; the base session when ``role_name`` is None."""
        if role_name is None:
            return self.base
        key = (account_id, role_name)
        cached = self._cache.get(key)
        if cached and cached.expires - RENEW_BEFORE > self.clock():
            return cached.session
        params: dict[str, Any] = {"RoleArn": self.role_arn(account_id, role_name),
                                  "RoleSessionName": self.session_name, "DurationSeconds": self.duration_seconds}
        if self.external_id:
            params["ExternalId"] = self.external_id
        creds = self._client(self.base, "sts").assume_role(**params)["Credentials"]
        session = boto3.Session(aws_access_key_id=creds["AccessKeyId"],
                                aws_secret_access_key=creds["SecretAccessKey"],
                                aws_session_token=creds["SessionToken"], region_name=self.region)
        self._cache[key] = _Cached(session, creds["Expiration"])
        return session

    def client(self, account_id: str, service: str, *, role_name: str | None) -> Any:
        return self._client(self.session(account_id, role_name), service)

    def reader_iam(self, account: Any) -> Any:
        """IAM client as the account's reader role (``account`` is a ``bot.config.Account``)."""
        return self.client(account.id, "iam", role_name=account.reader_role)

    def applier_iam(self, account: Any) -> Any:
        return self.client(account.id, "iam", role_name=account.applier_role)

    def organization_accounts(self, *, management_account_id: str | None = None,
                              role_name: str | None = None) -> list[OrgAccount]:
        """Active accounts of the AWS Organization (as ``role_name`` in the management account when given)."""
        session = self.session(management_account_id, role_name) if management_account_id else self.base
        orgs = self._client(session, "organizations")
        out = []
        for page in orgs.get_paginator("list_accounts").paginate():
            for acct in page["Accounts"]:
                if acct.get("Status", "ACTIVE") == "ACTIVE":
                    out.append(OrgAccount(acct["Id"], acct.get("Name", ""), acct.get("Email", ""),
                                          acct.get("Status", "ACTIVE")))
        return sorted(out, key=lambda a: a.id)

    def _client(self, session: boto3.Session, service: str) -> Any:
        return session.client(service, endpoint_url=self.endpoint_url, region_name=self.region)
