"""CLI: ``tighten check-no-new-access`` (PASS 0 / FAIL 3 / bad input 2 / IAM error 1) and
``tighten generate --current``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from bot.commands import check_no_new_access, generate, ingest
from tests.test_ingest import ROLE_ARN, make_tree

TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
GUARDED = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:*", "Resource": ["arn:aws:s3:::data", "arn:aws:s3:::data/*"],
     "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
    {"Sid": "NeverDelete", "Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}]}
NARROW = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/*",
     "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tighten")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (check_no_new_access, generate, ingest):
        module.add_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def write(tmp_path: Path, name: str, content: Any) -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def test_pass_and_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    current = write(tmp_path, "current.json", GUARDED)
    assert run(["check-no-new-access", "--current", current, "--proposed", write(tmp_path, "p.json", NARROW)]) == 0
    assert capsys.readouterr().out == "PASS\n"

    loose = json.loads(json.dumps(NARROW))
    del loose["Statement"][0]["Condition"]
    loose["Statement"].append({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::data*"})
    assert run(["check-no-new-access", "--current", current, "--proposed", write(tmp_path, "w.json", loose)]) == 3
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "FAIL"
    assert any(line.startswith("s3:GetObject on arn:aws:s3:::data/*:") and "aws:SecureTransport" in line
               for line in out)
    assert any(line.startswith("s3:* on arn:aws:s3:::data*:") for line in out)
    assert any("DENY REMOVED" in line and "NeverDelete" in line for line in out)


def test_boundary_applies_to_both_sides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    current = write(tmp_path, "c.json", NARROW)
    wide = write(tmp_path, "p.json", {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
    boundary = write(tmp_path, "b.json", {"Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/*",
         "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]})
    assert run(["check-no-new-access", "--current", current, "--proposed", wide]) == 3
    assert run(["check-no-new-access", "--current", current, "--proposed", wide, "--boundary", boundary]) == 0
    assert capsys.readouterr().out.endswith("PASS\n")


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not valid JSON"),
    ({"Statement": [{"Effect": "Allow", "Resource": "*"}]}, "exactly one of Action or NotAction"),
    ([], "non-empty JSON list"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: Any,
                                          message: str) -> None:
    args = ["check-no-new-access", "--current", write(tmp_path, "c.json", GUARDED),
            "--proposed", write(tmp_path, "p.json", content)]
    assert run(args) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith("tighten check-no-new-access: ") and message in captured.err
    assert run(["check-no-new-access", "--current", str(tmp_path / "missing.json"),
                "--proposed", write(tmp_path, "p2.json", NARROW)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_role_arn_read_from_iam(moto_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    iam = boto3.client("iam", endpoint_url=moto_endpoint, region_name="us-east-1")
    arn = iam.create_role(RoleName="guarded", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    iam.put_role_policy(RoleName="guarded", PolicyName="inline", PolicyDocument=json.dumps(GUARDED))
    common = ["--endpoint-url", moto_endpoint]
    assert run(["check-no-new-access", "--current", arn, "--proposed", write(tmp_path, "p.json", GUARDED),
                *common]) == 0
    assert run(["check-no-new-access", "--current", arn, "--proposed", write(tmp_path, "n.json", NARROW),
                *common]) == 0
    capsys.readouterr()
    ghost = arn.replace("guarded", "ghost")
    assert run(["check-no-new-access", "--current", ghost, "--proposed", str(tmp_path / "p.json"), *common]) == 1
    assert "NoSuchEntity" in capsys.readouterr().err


def test_generate_inside_a_current_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_tree(tmp_path / "logs", bad=False)  # unreadable logs refuse generation (tested elsewhere)
    current = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
         "Resource": "arn:aws:s3:::data/*", "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
        {"Sid": "KeepReports", "Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::data/reports/*"}]}
    path = write(tmp_path, "current.json", current)
    assert run(["generate", "--cloudtrail", str(tmp_path / "logs"), "--principal", ROLE_ARN, "--current", path]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    allow = [s for s in doc["Statement"] if s["Effect"] == "Allow"]
    assert allow and all(s["Condition"] == {"Bool": {"aws:SecureTransport": "true"}} for s in allow)
    assert current["Statement"][1] in doc["Statement"]
    assert "containment against --current: PASS" in captured.err
    # the written proposal passes the standalone check too
    proposed = write(tmp_path, "proposed.json", captured.out)
    assert run(["check-no-new-access", "--current", path, "--proposed", proposed]) == 0
    assert capsys.readouterr().out == "PASS\n"
    # without --current: the pure usage policy, as before
    assert run(["generate", "--cloudtrail", str(tmp_path / "logs"), "--principal", ROLE_ARN]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert all("Condition" not in s for s in plain["Statement"])
    assert run(["generate", "--cloudtrail", str(tmp_path / "logs"), "--principal", ROLE_ARN, "--current",
                str(tmp_path / "nope.json")]) == 2
    assert "no such file" in capsys.readouterr().err
