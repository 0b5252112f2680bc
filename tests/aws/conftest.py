"""Fixtures for the AWS side: an IAM client on the moto server and an in-memory store."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
import sqlite_utils

from bot.store.db import open_db

ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
INLINE = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Legacy", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
     "Resource": "arn:aws:s3:::legacy-bucket/*"}]}
PROPOSED = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Used", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::legacy-bucket/*"}]}


@pytest.fixture()
def iam(moto_endpoint: str) -> Any:
    return boto3.client("iam", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture()
def db() -> sqlite_utils.Database:
    return open_db(":memory:")


def make_role(iam: Any, name: str = "app", *, path: str = "/", tags: dict[str, str] | None = None,
              admin: bool = True, inline: dict[str, Any] | None = INLINE) -> str:
    iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(TRUST),
                    Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])
    if admin:
        iam.attach_role_policy(RoleName=name, PolicyArn=ADMIN)
    if inline is not None:
        iam.put_role_policy(RoleName=name, PolicyName="legacy", PolicyDocument=json.dumps(inline))
    return name
