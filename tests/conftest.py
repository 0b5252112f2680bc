"""Shared fixtures. Area-specific fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.aws.embedded import FAKE_CREDENTIALS, EmbeddedAws, start_embedded_aws
from bot.trail.build_event_map import DEFAULT_MAPPINGS

REPO = Path(__file__).resolve().parent.parent
# Public CloudTrail samples bundled with the tests (licences and provenance: tests/data/README.md).
SAMPLES = REPO / "tests" / "data" / "cloudtrail"
# The event-map builder's public inputs (bot/trail/map_sources/README.md).
MAPPINGS = DEFAULT_MAPPINGS

# No test may reach real AWS: fake credentials for everything, before any boto3 import uses them.
for _k, _v in FAKE_CREDENTIALS.items():
    os.environ[_k] = _v
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def samples_dir() -> Path:
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
