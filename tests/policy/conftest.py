"""Fixtures for the policy tests: real AWS managed policies, fetched once per session from moto."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from bot.aws.embedded import EmbeddedAws
from bot.policy.model import Policy, parse_policy

MANAGED = (
    "AdministratorAccess",
    "PowerUserAccess",
    "ReadOnlyAccess",
    "IAMFullAccess",
    "AmazonS3FullAccess",
    "AmazonS3ReadOnlyAccess",
    "service-role/AWSLambdaBasicExecutionRole",
)


def fetch_managed_document(iam: Any, path_and_name: str) -> dict[str, Any]:
    arn = f"arn:aws:iam::aws:policy/{path_and_name}"
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    doc = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    return doc  # boto3 decodes the URL-encoded JSON into a dict


@pytest.fixture(scope="session")
def managed_documents(embedded_aws: EmbeddedAws) -> dict[str, dict[str, Any]]:
    """Documents of real AWS managed policies keyed by short name (``AWSLambdaBasicExecutionRole``)."""
    iam = boto3.client("iam", endpoint_url=embedded_aws.endpoint_url, region_name="us-east-1")
    return {name.rsplit("/", 1)[-1]: fetch_managed_document(iam, name) for name in MANAGED}


@pytest.fixture(scope="session")
def managed(managed_documents: dict[str, dict[str, Any]]) -> dict[str, Policy]:
    return {name: parse_policy(doc, name=name) for name, doc in managed_documents.items()}
