"""``tighten worker`` drains due items; unposted proposals are posted by the next watch run."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bot.commands import worker as worker_command
from bot.demo.fake_slack import FakeSlackApi
from bot.jobs.scan import run_scan
from bot.jobs.worker import Worker
from bot.store.queue import DONE
from tests.jobs.conftest import ACCOUNT, APPROVER, CHANNEL, Env, attach_notifier, policy


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    worker_command.add_parser(parser.add_subparsers())
    return parser.parse_args(["worker", *argv])


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "tighten.yaml"
    path.write_text(f"""
store: {{path: {tmp_path / 'tighten.db'}}}
accounts:
  - id: "{ACCOUNT}"
    name: test
    channel: {CHANNEL}
    approvers: {{users: [{APPROVER}]}}
""")
    return path


def test_worker_command_runs_due_items(env: Env, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    item, _ = env.ctx.queue.enqueue("expire")
    env.ctx.close()
    assert worker_command.run(_args("--config", str(_config(env.tmp_path)))) == 0
    assert "ran 1 item(s)" in capsys.readouterr().out
    assert env.ctx.queue.get(item.id).state == DONE


def test_worker_command_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert worker_command.run(_args("--config", str(_config(tmp_path)), "--kinds", "scan,bake")) == 2
    assert "unknown kind(s) bake" in capsys.readouterr().err
    assert worker_command.run(_args("--config", str(tmp_path / "missing.yaml"))) == 2


def test_unposted_proposal_is_posted_by_the_next_watch(env: Env, slack: FakeSlackApi) -> None:
    arn = env.role("reporting", policy("s3:*"))
    env.use(arn, "s3:ListAllMyBuckets")
    outcome = run_scan(env.ctx, ACCOUNT, arn, requested_by=None)  # no notifier: nothing posted
    assert outcome.proposal is not None and not outcome.proposal.message_ts
    attach_notifier(env, slack)
    env.ctx.queue.enqueue("watch")
    Worker(env.ctx).run_until_idle()
    proposal = env.ctx.proposals.get(outcome.proposal.id)
    assert proposal is not None and proposal.message_ts
    assert len(slack.posted(CHANNEL)) == 1
