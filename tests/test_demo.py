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
    # above the fold (the first section): the path ci-deployer keeps open, and who may approve
    first = json.loads((tmp_path / "messages" / "ci-deployer.json").read_text())["blocks"][1]["text"]["text"]
    assert "stays open" in first and "(lambda-update-function-code)" in first
    assert "*Who may approve:* <@UDEMOAPPROVER>" in first
    assert "restored byte-for-byte" in text
    # the refused click, the Reject with its reason, the digest: checked again from the store and the files
    from bot.demo.run import DEMO_INTRUDER, REFUSED_ROLE, REJECT_REASON, REJECTED_ROLE
    from bot.store.db import open_db
    from bot.store.proposals import ProposalStore

    proposals = {p.role_name: p for p in ProposalStore(open_db(tmp_path / "tighten.db", create=False)).list()}
    assert proposals[REFUSED_ROLE].state == "pending" and proposals[REFUSED_ROLE].decided_by is None
    assert (proposals[REJECTED_ROLE].state, proposals[REJECTED_ROLE].decision_reason) == ("rejected", REJECT_REASON)
    assert f"only visible to {DEMO_INTRUDER}" in text and "not an approver" in text
    digest = json.loads((tmp_path / "digest" / "daily.json").read_text())
    assert digest["blocks"][0]["text"]["text"] == "Tighten daily digest"
    digest_text = json.dumps(digest["blocks"])
    assert "Waiting for review:* 2" in digest_text and "Rolled back in the period:* 1" in digest_text
    png = (tmp_path / "digest" / "daily-chart.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png[12:16] == b"IHDR"
    # the CloudFormation-managed role: its snippet went to the thread, was deployed, the proposal closed
    from bot.demo.seed import CFN_ROLE

    assert "AWS::IAM::RolePolicy" in (tmp_path / f"{CFN_ROLE}.yaml").read_text()
    assert "closed as applied via code" in text and proposals[CFN_ROLE].state == "applied_via_code"


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


def test_demo_slack_names_every_missing_variable_before_starting(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.demo.run import SLACK_ENV
    from bot.errors import UserError

    for name in SLACK_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-set")
    out = tmp_path / "out"
    with pytest.raises(UserError) as err:
        run_demo(out, slack=True)
    message = str(err.value)
    assert all(name in message for name in SLACK_ENV if name != "SLACK_BOT_TOKEN")
    assert "SLACK_BOT_TOKEN" not in message and "nothing was started" in message
    assert not out.exists()
