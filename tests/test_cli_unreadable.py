"""CLI: unreadable logs are never silent. `tighten ingest` exit codes (1: log objects that could not be used,
3: entries that are not regular files) and `tighten generate` refusing partial logs unless --allow-partial."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bot.cli import build_parser, main
from bot.commands.generate import EXIT_INCOMPLETE, EXIT_NO_POLICY
from bot.commands.ingest import EXIT_READ_ERRORS, EXIT_UNREADABLE_ENTRIES
from tests.test_ingest import ACCT, ROLE_ARN, delivery, event, make_tree


def _noise(seed: int, n: int = 3000) -> bytes:
    return bytes((i * 7919 + seed * 104729) % 256 for i in range(n))


def test_a_directory_of_random_bytes_is_errors_not_skipped_events(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for i in range(3):
        (logs / f"f{i}.json").write_bytes(_noise(i))
    (logs / "g.json.gz").write_bytes(b"\x1f\x8b" + _noise(9))
    code = main(["ingest", "--cloudtrail", str(logs), "--db", str(tmp_path / "i.db")])
    out = capsys.readouterr().out
    assert code == EXIT_READ_ERRORS == 1
    assert "0 errors" not in out and "4 errors" in out
    assert "errors by reason: invalid_json=3, truncated_gzip=1" in out
    assert "events: 0 read" in out and "0 skipped" in out
    for i in range(3):
        assert f"error: {logs / f'f{i}.json'}: invalid_json:" in out


def test_ingest_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    logs = tmp_path / "logs"
    make_tree(logs, bad=False)
    db = str(tmp_path / "i.db")
    assert main(["ingest", "--cloudtrail", str(logs), "--db", db]) == 0
    os.mkfifo(logs / "stray.json")
    os.symlink("/dev/zero", logs / "zero.json")
    assert main(["ingest", "--cloudtrail", str(logs), "--db", db]) == EXIT_UNREADABLE_ENTRIES == 3
    out = capsys.readouterr().out
    assert "2 unreadable entries" in out and "unreadable entries by reason: not_a_regular_file=2" in out
    assert f"unreadable entry: {logs / 'zero.json'}: not_a_regular_file: a character device" in out
    (logs / "cut.json.gz").write_bytes(delivery([event(1)] * 20)[:-10])
    assert main(["ingest", "--cloudtrail", str(logs), "--db", db]) == EXIT_READ_ERRORS  # errors come first


def test_exit_codes_are_documented_in_help(capsys: pytest.CaptureFixture) -> None:
    parser = build_parser()
    for command, codes in (("ingest", ("0 ", "1 ", "2 ", "3 ")), ("generate", ("0 ", "2 ", "3 "))):
        with pytest.raises(SystemExit):
            parser.parse_args([command, "--help"])
        text = capsys.readouterr().out
        assert "exit codes:" in text
        tail = text[text.index("exit codes:"):]
        assert all(f"\n  {c}" in tail for c in codes), command
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "--allow-partial" in readme and "exit 3" in readme


@pytest.fixture()
def partial_logs(tmp_path: Path) -> Path:
    """The good tree plus one truncated delivery file of the same account."""
    logs = tmp_path / "logs"
    make_tree(logs, bad=False)
    folder = logs / "AWSLogs" / ACCT / "CloudTrail" / "us-east-1"
    folder.mkdir(parents=True)
    (folder / "cut.json.gz").write_bytes(delivery([event(i, "ListBucket") for i in range(30)])[:-25])
    return logs


def test_generate_refuses_partial_logs_loudly(partial_logs: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["generate", "--cloudtrail", str(partial_logs), "--principal", ROLE_ARN])
    captured = capsys.readouterr()
    assert code == EXIT_INCOMPLETE == 3
    assert captured.out == ""  # no policy
    assert "1 CloudTrail log(s) could not be read; refusing" in captured.err
    assert "cut.json.gz: truncated_gzip: the gzip stream ends early" in captured.err
    assert "--allow-partial" in captured.err


def test_generate_allow_partial_prints_the_policy_and_still_warns(partial_logs: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    assert main(["generate", "--cloudtrail", str(partial_logs), "--principal", ROLE_ARN, "--allow-partial"]) == 0
    captured = capsys.readouterr()
    assert {a for st in json.loads(captured.out)["Statement"] for a in st["Action"]} == {"s3:GetObject",
                                                                                      "s3:PutObject"}
    assert "cut.json.gz: truncated_gzip" in captured.err and "WARNING" in captured.err
    assert "partial: 1 CloudTrail log(s) could not be read" in captured.err


def test_generate_from_an_index_with_errors_of_earlier_runs(partial_logs: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    db = str(tmp_path / "i.db")
    assert main(["ingest", "--cloudtrail", str(partial_logs), "--db", db]) == EXIT_READ_ERRORS
    capsys.readouterr()
    assert main(["generate", "--db", db, "--principal", ROLE_ARN]) == EXIT_INCOMPLETE
    assert "cut.json.gz: truncated_gzip" in capsys.readouterr().err
    # an unreadable object that names only another account does not make this principal's logs partial
    other = partial_logs / "AWSLogs" / "999999999999"
    (partial_logs / "AWSLogs" / ACCT).rename(other)
    assert main(["generate", "--cloudtrail", str(partial_logs), "--principal", ROLE_ARN]) == 0
    err = capsys.readouterr().err
    assert "could not be read" not in err


def test_generate_unknown_principal_with_unreadable_logs_says_why(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "only.json.gz").write_bytes(delivery([event(1)])[:-10])
    assert main(["generate", "--cloudtrail", str(logs), "--principal", ROLE_ARN]) == EXIT_INCOMPLETE
    err = capsys.readouterr().err
    assert "unknown principal" in err and "only.json.gz: truncated_gzip" in err
    (logs / "only.json.gz").unlink()
    (logs / "ok.json.gz").write_bytes(delivery([event(1)]))
    assert main(["generate", "--cloudtrail", str(logs), "--principal", "arn:aws:iam::1:role/x"]) == EXIT_NO_POLICY


def test_generate_lists_stray_entries_without_refusing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    logs = tmp_path / "logs"
    make_tree(logs, bad=False)
    os.mkfifo(logs / "pipe.json")
    assert main(["generate", "--cloudtrail", str(logs), "--principal", ROLE_ARN]) == 0
    err = capsys.readouterr().err
    assert "skipped 1 entry that is not a regular file" in err and "pipe.json: not_a_regular_file: a FIFO" in err
