"""`tighten rollback` and `tighten changes` end to end on the moto server and a store file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from bot.aws.apply import start_change
from bot.aws.inventory import get_role_snapshot
from bot.commands import changes as changes_cmd
from bot.commands import rollback as rollback_cmd
from bot.store.db import open_db
from tests.aws.conftest import ADMIN, INLINE, PROPOSED, make_role


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tighten")
    sub = parser.add_subparsers()
    rollback_cmd.add_parser(sub)
    changes_cmd.add_parser(sub)
    return parser


def test_changes_then_rollback_cli(tmp_path: Path, iam: Any, moto_endpoint: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    db_path = str(tmp_path / "t.db")
    make_role(iam)
    result = start_change(open_db(db_path), iam, role_name="app", proposed_documents=[PROPOSED],
                          expected_policy_hash=get_role_snapshot(iam, "app").policy_hash(), proposal_id=None,
                          requested_by="U1")
    parser = _parser()
    args = parser.parse_args(["changes", "--db", db_path, "--json"])
    assert args.func(args) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line)["state"] == "applied" and json.loads(line)["id"] == result.change_id

    args = parser.parse_args(["rollback", result.change_id, "--db", db_path, "--endpoint-url", moto_endpoint,
                              "--as", "alice"])
    assert args.func(args) == 0
    assert "restored" in capsys.readouterr().out
    snap = get_role_snapshot(iam, "app")
    assert [p.arn for p in snap.attached] == [ADMIN] and snap.inline == {"legacy": INLINE}

    assert args.func(args) == 1
    assert "already rolled back" in capsys.readouterr().err
    args = parser.parse_args(["rollback", "c-missing", "--db", db_path])
    assert args.func(args) == 2

    args = parser.parse_args(["changes", "--db", db_path])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert result.change_id in out and "rolled_back" in out
