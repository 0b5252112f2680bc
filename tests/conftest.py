"""Shared fixtures. Area-specific fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.aws.embedded import FAKE_CREDENTIALS, EmbeddedAws, start_embedded_aws

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TIGHTEN_SHARED", REPO.parent / "shared"))
SAMPLES = SHARED / "data" / "cloudtrail"
MAPPINGS = SHARED / "data" / "mappings"

# No test may reach real AWS: fake credentials for everything, before any boto3 import uses them.
for _k, _v in FAKE_CREDENTIALS.items():
    os.environ[_k] = _v
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    if not SAMPLES.is_dir():
        pytest.fail(f"shared CloudTrail samples not found at {SAMPLES} (set TIGHTEN_SHARED)")
    return SAMPLES


@pytest.fixture(scope="session")
def embedded_aws() -> Iterator[EmbeddedAws]:
    """One moto server on 127.0.0.1 for the whole session (AWS managed policies loaded)."""
    aws = start_embedded_aws(load_managed_policies=True)
    try:
        yield aws
    finally:
        aws.stop()


@pytest.fixture()
def moto_endpoint(embedded_aws: EmbeddedAws) -> str:
    """A freshly reset moto server; boto3 clients take ``endpoint_url=moto_endpoint``."""
    embedded_aws.reset()
    return embedded_aws.endpoint_url
