"""Per-account sessions through STS assume-role, and the Organizations listing, on the moto server."""

from __future__ import annotations

from typing import Any

import boto3

from bot.aws.sessions import AccountSessions
from bot.config import Account
from bot.util.clock import FakeClock, utcnow


def test_assumes_the_configured_role_and_caches_it(moto_endpoint: str) -> None:
    calls: list[str] = []
    base = boto3.Session(region_name="us-east-1")
    base.events.register("provide-client-params.sts.AssumeRole", lambda params, **_: calls.append(params["RoleArn"]))
    clock = FakeClock(utcnow())
    sessions = AccountSessions(base_session=base, endpoint_url=moto_endpoint, clock=clock)
    account = Account(id="111111111111", name="prod")
    iam = sessions.reader_iam(account)
    sts = sessions.client("111111111111", "sts", role_name="TightenReader")
    identity = sts.get_caller_identity()
    assert identity["Arn"].startswith("arn:aws:sts::111111111111:assumed-role/TightenReader/")
    assert iam.list_roles()["Roles"] == []
    assert calls == ["arn:aws:iam::111111111111:role/TightenReader"]
    sessions.applier_iam(account)
    assert calls[-1] == "arn:aws:iam::111111111111:role/TightenApplier"
    clock.advance(minutes=58)  # inside the renewal margin of the 1-hour credentials
    sessions.reader_iam(account)
    assert calls.count("arn:aws:iam::111111111111:role/TightenReader") == 2


def test_lists_active_organization_accounts(moto_endpoint: str) -> None:
    orgs: Any = boto3.client("organizations", endpoint_url=moto_endpoint, region_name="us-east-1")
    orgs.create_organization(FeatureSet="ALL")
    for i in range(3):
        orgs.create_account(AccountName=f"team-{i}", Email=f"team{i}@example.com")
    sessions = AccountSessions(endpoint_url=moto_endpoint, )
    accounts = sessions.organization_accounts()
    names = {a.name for a in accounts}
    assert {"team-0", "team-1", "team-2"} <= names
    assert all(a.status == "ACTIVE" and len(a.id) == 12 for a in accounts)
    via_role = sessions.organization_accounts(management_account_id="123456789012", role_name="TightenOrgReader")
    assert {a.id for a in via_role} == {a.id for a in accounts}
