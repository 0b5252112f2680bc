"""Fixtures for bot.trail tests."""

from __future__ import annotations

import pytest

from bot.trail.normalize import Normalizer


@pytest.fixture(scope="session")
def normalizer() -> Normalizer:
    return Normalizer()
