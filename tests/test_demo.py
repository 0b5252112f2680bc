"""The README's demo command, end to end: every step must succeed (exit 0)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from bot.demo.run import EXPECTED_PROPOSALS, run_demo


@pytest.mark.slow
def test_demo_runs_the_whole_loop(tmp_path: Path, moto_endpoint: str) -> None:
    # moto_endpoint: the session's moto state is reset first (moto keeps one state per process)
    out = io.StringIO()
    status = run_demo(tmp_path, console=Console(file=out, width=140, color_system=None))
    text = out.getvalue()
    assert status == 0, text[-4000:]
    assert "Demo complete" in text and "✗" not in text
    for role in EXPECTED_PROPOSALS:
        saved = json.loads((tmp_path / "messages" / f"{role}.json").read_text())
        assert saved["blocks"], role
    assert "restored byte-for-byte" in text


def test_demo_restores_the_environment_and_fails_loudly(tmp_path: Path, moto_endpoint: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A step that does not do what it says stops the demo with exit 1 and says why; the process environment
    (fake credentials, endpoint) is restored either way."""
    import os

    import bot.demo.run as demo_run

    before = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_PROFILE")}
    monkeypatch.setattr(demo_run, "EXPECTED_PROPOSALS", (*demo_run.EXPECTED_PROPOSALS, "ghost-role"))
    out = io.StringIO()
    status = run_demo(tmp_path, console=Console(file=out, width=140, color_system=None))
    text = out.getvalue()
    assert status == 1
    assert "✗ step 6 failed: no scan planned for ['ghost-role']" in text
    assert "Demo complete" not in text
    assert {k: os.environ.get(k) for k in before} == before
