"""``tighten scan`` against moto: prints the outcome, stores the proposal, clear errors for bad input."""

from __future__ import annotations

import argparse

import pytest

from bot.commands import scan as scan_command
from tests.jobs.conftest import ACCOUNT, Env, policy


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    scan_command.add_parser(parser.add_subparsers())
    return parser.parse_args(["scan", *argv])


def test_scan_command_prints_summary_and_stores_proposal(env: Env, moto_endpoint: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    arn = env.role("reporting", policy("s3:*"))
    env.use(arn, "s3:ListAllMyBuckets")
    env.ctx.close()
    code = scan_command.run(_args("reporting", "--db", env.ctx.db_path, "--endpoint-url", moto_endpoint,
                                  "--account", ACCOUNT))
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"{arn}: proposed" in out and "s3" in out and "risk:" in out
    assert env.ctx.proposals.latest(arn) is not None


def test_scan_command_bad_input(env: Env, moto_endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert scan_command.run(_args("arn:aws:s3:::bucket", "--db", env.ctx.db_path)) == 2
    assert "not an IAM role ARN" in capsys.readouterr().err
    code = scan_command.run(_args("nope", "--db", env.ctx.db_path, "--endpoint-url", moto_endpoint,
                                  "--account", ACCOUNT))
    assert code == 2 and "not found" in capsys.readouterr().err


def test_scan_command_not_proposed_without_usage(env: Env, moto_endpoint: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    arn = env.role("idle", policy("s3:*"))
    code = scan_command.run(_args(arn, "--db", env.ctx.db_path, "--endpoint-url", moto_endpoint))
    out = capsys.readouterr().out
    assert code == 1 and "incomplete" in out
    reason = out.splitlines()[1].strip()  # the line under "<arn>: incomplete"
    assert reason.startswith("not proposing for idle: ")
    assert out.count(reason.removeprefix("not proposing for idle: ")) == 1, out  # said once, not again as a note
