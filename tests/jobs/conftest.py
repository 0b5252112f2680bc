"""Jobs harness: moto IAM (real server on 127.0.0.1), a file-backed store, a FakeClock, usage written through
the real UsageIndex, and optionally FakeSlackApi + the real Notifier."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from bot.config import Account, Approvers, Config, Digest
from bot.demo.fake_slack import FakeSlackApi
from bot.jobs.context import JobContext
from bot.store.usage import ObjectUsage
from bot.util.clock import FakeClock, iso

ACCOUNT = "123456789012"  # moto's default account
CHANNEL = "C0REVIEW01"
DIGEST_CHANNEL = "C0DIGEST01"
APPROVER = "U0ALICE001"


def policy(actions: list[str] | str, resource: str | list[str] = "*") -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}]}


def make_config(tmp_path: Path, **kw: Any) -> Config:
    values: dict[str, Any] = {
        "db_path": str(tmp_path / "tighten.db"),
        "lookback_days": 30,
        "accounts": (Account(id=ACCOUNT, name="test", channel=CHANNEL, approvers=Approvers(users=(APPROVER,))),),
        "digests": (Digest(channel=DIGEST_CHANNEL, kind="daily", cron="0 9 * * *"),),
        "allowlist_path": str(tmp_path / "allowlist.yaml"),
    }
    values.update(kw)
    return Config(**values)


@dataclass
class Env:
    ctx: JobContext
    iam: Any
    clock: FakeClock
    tmp_path: Path
    seq: int = 0

    def role(self, name: str, document: dict[str, Any], *, path: str = "/") -> str:
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service":
                 "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        arn = self.iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        self.iam.put_role_policy(RoleName=name, PolicyName=f"{name}-inline", PolicyDocument=json.dumps(document))
        return arn

    def use(self, arn: str, action: str, resource: str = "*", *, days_ago: int = 1, count: int = 3) -> None:
        """Record usage as ingest would: one new log object holding ``count`` calls."""
        self.seq += 1
        t = iso(self.clock() - timedelta(days=days_ago))
        obj = ObjectUsage(key=f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/test-{self.seq}.json.gz", size=1,
                          etag=f"e{self.seq}", events=count, usage_events=count)
        obj.usage[(ACCOUNT, arn, action, resource, "", t[:10])] = [count, t, t]
        obj.principals[arn] = ["role", ACCOUNT, False, count, 0, t, t]
        self.ctx.usage.record_objects([obj])

    def deny(self, arn: str, action: str, resource: str, *, event_id: str, at: datetime | None = None) -> None:
        self.seq += 1
        t = iso(at or self.clock())
        obj = ObjectUsage(key=f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/deny-{self.seq}.json.gz", size=1,
                          etag=f"d{self.seq}", events=1, denied=1)
        obj.principals[arn] = ["role", ACCOUNT, False, 1, 1, t, t]
        obj.denials.append((ACCOUNT, arn, action, resource, "AccessDenied", t, event_id))
        self.ctx.usage.record_objects([obj])


@pytest.fixture()
def clock() -> FakeClock:
    now = datetime.now(UTC).replace(microsecond=0)
    return FakeClock(now)


@pytest.fixture()
def env(tmp_path: Path, moto_endpoint: str, clock: FakeClock) -> Iterator[Env]:
    iam = boto3.client("iam", endpoint_url=moto_endpoint, region_name="us-east-1")
    ctx = JobContext(db_path=str(tmp_path / "tighten.db"), config=make_config(tmp_path), clock=clock,
                     iam_for=lambda account: iam)
    yield Env(ctx=ctx, iam=iam, clock=clock, tmp_path=tmp_path)
    ctx.close()


@pytest.fixture()
def slack() -> Iterator[FakeSlackApi]:
    with FakeSlackApi() as api:
        yield api


def attach_notifier(env: Env, slack: FakeSlackApi) -> None:
    from bot.slack.app import make_client
    from bot.slack.context import AppContext
    from bot.slack.notify import Notifier

    app_ctx = AppContext(db_path=env.ctx.db_path, config=env.ctx.config, clock=env.clock)
    client = make_client("xoxb-test", base_url=slack.base_url, wait_scale=0.0, backoff=0.001)
    env.ctx.notifier = Notifier(client, app_ctx)
