"""Inventory and apply/rollback costs against the embedded moto server (127.0.0.1), in AWS calls and seconds.

    python bench/aws_apply.py [ROLES]

Creates ROLES roles (default 200; each with AdministratorAccess, one customer-managed and one inline policy),
then measures: one account inventory (``list_role_snapshots``: get_account_authorization_details, paginated),
per-role snapshots (``get_role_snapshot``), and apply + rollback for 20 roles. Seconds on moto are only a
rough proxy for real IAM (which adds ~50-200 ms per call and rate limits); call counts transfer as they are.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from typing import Any

import boto3

from bot.aws.apply import rollback_change, start_change
from bot.aws.embedded import start_embedded_aws
from bot.aws.inventory import get_role_snapshot, list_role_snapshots
from bot.store.db import open_db

ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def _doc(i: int) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": f"arn:aws:s3:::bucket-{i}/*"}]})


def main(roles: int) -> None:
    aws = start_embedded_aws(load_managed_policies=True)
    try:
        iam = boto3.client("iam", endpoint_url=aws.endpoint_url, region_name="us-east-1")
        calls: Counter[str] = Counter()
        iam.meta.events.register("provide-client-params.iam", lambda model, **_: calls.update([model.name]))
        setup = boto3.client("iam", endpoint_url=aws.endpoint_url, region_name="us-east-1")
        for i in range(roles):
            name = f"role-{i:04d}"
            setup.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)
            setup.attach_role_policy(RoleName=name, PolicyArn=ADMIN)
            arn = setup.create_policy(PolicyName=f"team-{i:04d}", PolicyDocument=_doc(i))["Policy"]["Arn"]
            setup.attach_role_policy(RoleName=name, PolicyArn=arn)
            setup.put_role_policy(RoleName=name, PolicyName="legacy", PolicyDocument=_doc(i))

        t = time.perf_counter()
        result = list_role_snapshots(iam)
        took = time.perf_counter() - t
        print(f"inventory: {len(result.all)} roles in {took:.2f} s, {sum(calls.values())} IAM calls {dict(calls)}")

        calls.clear()
        t = time.perf_counter()
        for i in range(min(roles, 50)):
            get_role_snapshot(iam, f"role-{i:04d}")
        took = time.perf_counter() - t
        n = min(roles, 50)
        print(f"per-role snapshot: {took / n * 1000:.1f} ms/role, {sum(calls.values()) / n:.1f} IAM calls/role")

        db = open_db(":memory:")
        proposed: dict[str, Any] = json.loads(_doc(0))
        n = min(roles, 20)
        calls.clear()
        t = time.perf_counter()
        change_ids = []
        for i in range(n):
            name = f"role-{i:04d}"
            res = start_change(db, iam, role_name=name, proposed_documents=[proposed],
                               expected_policy_hash=get_role_snapshot(iam, name).policy_hash(), proposal_id=None,
                               requested_by="bench")
            assert res.state == "applied", res.message
            change_ids.append(res.change_id)
        took = time.perf_counter() - t
        print(f"apply: {took / n * 1000:.1f} ms/role, {sum(calls.values()) / n:.1f} IAM calls/role "
              f"(incl. the caller's snapshot for the hash)")
        calls.clear()
        t = time.perf_counter()
        for change_id in change_ids:
            res = rollback_change(db, iam, change_id, requested_by="bench")
            assert res.state == "rolled_back", res.message
        took = time.perf_counter() - t
        print(f"rollback: {took / n * 1000:.1f} ms/role, {sum(calls.values()) / n:.1f} IAM calls/role")
    finally:
        aws.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
