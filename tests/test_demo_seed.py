"""The demo seed: roles in moto, CloudTrail objects in the org-trail layout with real record shapes."""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime

import boto3

from bot.demo.seed import ACCOUNT, BREAK_GLASS, ORG_ID, SERVICE_LINKED, seed_account

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
KEY = re.compile(rf"^AWSLogs/{ORG_ID}/{ACCOUNT}/CloudTrail/us-east-1/\d{{4}}/\d\d/\d\d/"
                 rf"{ACCOUNT}_CloudTrail_us-east-1_\d{{8}}T\d{{4}}Z_[A-Za-z0-9]{{16}}\.json\.gz$")


def test_seed_account(moto_endpoint: str) -> None:
    result = seed_account(moto_endpoint, now=NOW, days=40)
    iam = boto3.client("iam", endpoint_url=moto_endpoint, region_name="us-east-1")
    attached = iam.list_attached_role_policies(RoleName="ci-deployer")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AdministratorAccess"]
    assert iam.list_role_policies(RoleName="reporting-job")["PolicyNames"] == ["reporting-access"]
    assert "/aws-service-role/" in result.role_arns[SERVICE_LINKED]
    assert BREAK_GLASS in result.role_arns
    created = iam.get_role(RoleName="ci-deployer")["Role"]["CreateDate"]
    assert (datetime.now(UTC) - created).days >= 399  # history consistent with 40 days of logs

    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=result.bucket, MaxKeys=1000)["Contents"]]
    assert len(keys) == result.objects > 40
    assert all(KEY.match(k) for k in keys), [k for k in keys if not KEY.match(k)][:3]

    records = []
    for key in keys:
        body = s3.get_object(Bucket=result.bucket, Key=key)["Body"].read()
        batch = json.loads(gzip.decompress(body))["Records"]
        assert all(r["eventTime"][:10].replace("-", "/") in key for r in batch)
        records.extend(batch)
    assert len(records) == result.events
    names = {r["eventName"] for r in records}
    assert {"CreateFunction20150331", "UpdateFunctionCode20150331v2", "GetObject", "ListObjects"} <= names
    create = next(r for r in records if r["eventName"] == "CreateFunction20150331")
    assert create["requestParameters"]["role"] == result.role_arns["orders-api-exec"]
    issuer = create["userIdentity"]["sessionContext"]["sessionIssuer"]
    assert issuer["arn"] == result.role_arns["ci-deployer"] and create["userIdentity"]["type"] == "AssumedRole"
    denied = [r for r in records if "errorCode" in r]
    assert denied and all(r["eventName"] == "ListUsers" for r in denied) and len(denied) == result.denied
    data = [r for r in records if not r["managementEvent"]]
    assert data and all(r["eventCategory"] == "Data" and r["resources"] for r in data)
    slr = [r for r in records if r["userIdentity"].get("invokedBy") == "ecs.amazonaws.com"]
    assert slr
    # ~40 days of history, nothing in the future nor in the last 15 minutes (delivery delay)
    first = datetime.fromisoformat(result.first_event.replace("Z", "+00:00"))
    last = datetime.fromisoformat(result.last_event.replace("Z", "+00:00"))
    assert (NOW - first).days >= 39 and (NOW - last).total_seconds() > 15 * 60
