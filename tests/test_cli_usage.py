"""CLI: tighten ingest / principals / generate (called through their modules' parsers)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from bot.commands import generate, ingest, principals
from tests.test_ingest import ROLE_ARN, make_tree


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tighten")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (ingest, principals, generate):
        module.add_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture()
def logs(tmp_path: Path) -> Path:
    root = tmp_path / "logs"
    make_tree(root, bad=False)
    return root


def test_ingest_then_principals_then_generate(logs: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = str(tmp_path / "t.db")
    assert run(["ingest", "--cloudtrail", str(logs), "--db", db, "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "files: 3 seen, 3 read" in out and "0 errors" in out and "principals: 1" in out
    assert "skipped by reason: invalid_json=1, not_an_event=1" in out
    assert run(["ingest", "--cloudtrail", str(logs), "--db", db]) == 0
    assert "0 read (0 changed), 3 already ingested" in capsys.readouterr().out

    assert run(["principals", "--db", db]) == 0
    out = capsys.readouterr().out
    assert ROLE_ARN in out and "2024-08-01T10:00:00Z" in out

    assert run(["generate", "--db", db, "--principal", ROLE_ARN]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["Version"] == "2012-10-17"
    actions = {a for st in doc["Statement"] for a in st["Action"]}
    assert actions == {"s3:GetObject", "s3:PutObject"}  # the denied DeleteObject is not granted
    assert "2 actions, 1 document(s)" in captured.err


def test_generate_with_temporary_index_name_and_allowlist(logs: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    allow = tmp_path / "allow.yaml"
    allow.write_text("entries:\n  - action: sqs:listqueues\n    principal: app\n    reason: not logged\n")
    assert run(["generate", "--cloudtrail", str(logs), "--principal", "app", "--allowlist", str(allow)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {a for st in doc["Statement"] for a in st["Action"]} == {"s3:GetObject", "s3:PutObject",
                                                                    "sqs:ListQueues"}
    assert not (logs / "tighten.db").exists()


@pytest.mark.parametrize(("extra", "message"), [
    (["--principal", "arn:aws:iam::111122223333:role/nobody"], "unknown principal"),
    (["--principal", ROLE_ARN, "--since", "2025-01-01"], "no usage by"),
])
def test_generate_refuses_clearly(logs: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    assert run(["generate", "--cloudtrail", str(logs), *extra]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err


def test_bad_inputs(tmp_path: Path, logs: Path, capsys: pytest.CaptureFixture) -> None:
    assert run(["ingest", "--cloudtrail", str(tmp_path / "missing"), "--db", str(tmp_path / "x.db")]) == 2
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("entries:\n  - action: signin:ConsoleLogin\n")
    assert run(["generate", "--cloudtrail", str(logs), "--principal", "app", "--allowlist", str(bad)]) == 2
    assert "unknown IAM action 'signin:ConsoleLogin'" in capsys.readouterr().err
    from bot.store.db import StoreError, open_db

    with pytest.raises(StoreError, match="no such store"):  # bot.cli prints it as one line
        run(["principals", "--db", str(tmp_path / "missing.db")])
    assert not (tmp_path / "missing.db").exists()
    open_db(tmp_path / "empty.db").conn.close()
    assert run(["principals", "--db", str(tmp_path / "empty.db")]) == 0
    assert "no principals" in capsys.readouterr().err


def test_ingest_and_generate_from_s3_org_trail(moto_endpoint: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    import boto3

    from tests.test_ingest import _put_org_trail

    _put_org_trail(boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1"), "trail")
    db = str(tmp_path / "s3.db")
    assert run(["ingest", "--cloudtrail", "s3://trail", "--endpoint-url", moto_endpoint, "--db", db]) == 0
    assert "files: 2 seen, 2 read" in capsys.readouterr().out
    assert run(["generate", "--cloudtrail", "s3://trail", "--endpoint-url", moto_endpoint, "--db", db,
                "--principal", ROLE_ARN, "--since", "2024-08-02"]) == 0
    captured = capsys.readouterr()
    assert [st["Action"] for st in json.loads(captured.out)["Statement"]] == [["s3:PutObject"]]
    assert run(["ingest", "--cloudtrail", "s3://missing-bucket", "--endpoint-url", moto_endpoint, "--db", db]) == 2
    assert "NoSuchBucket" in capsys.readouterr().err
