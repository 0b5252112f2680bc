from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from bot.commands import diff as diff_command

ADMIN = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
PROPOSED = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::reports/*"},
        {"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"},
    ],
}
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tighten")
    diff_command.add_parser(parser.add_subparsers())
    return parser.parse_args(["diff", *argv])


def write(tmp_path: Path, name: str, content: Any) -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def test_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    current = write(tmp_path, "current.json", [ADMIN, PROPOSED])
    proposed = write(tmp_path, "proposed.json", PROPOSED)
    args = parse("--current", current, "--proposed", proposed, "--full")
    assert args.func(args) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("removes ") and "keeps 2 actions in 2 services" in first
    assert "removes IAM administration" in first
    assert "KEPT (2 actions, 2 services)" in out and "REMOVED (" in out and "ESCALATION PATHS" in out
    assert "--- current" in out and "# current.json[0]" in out


def test_boundary_limits_both_sides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    boundary = write(
        tmp_path,
        "b.json",
        {"Statement": [{"Effect": "Allow", "Action": ["s3:*", "logs:*"], "Resource": "*"}]},
    )
    args = parse(
        "--current", write(tmp_path, "c.json", ADMIN), "--proposed", write(tmp_path, "p.json", PROPOSED),
        "--boundary", boundary,
    )  # fmt: skip
    assert args.func(args) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "across 2 services" in first  # the boundary leaves only s3 and logs of AdministratorAccess
    assert "escalation" not in first and "IAM administration" not in first


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        (
            {"Statement": [{"Effect": "Allow", "Resource": "*"}]},
            "Statement[0]: exactly one of Action or NotAction",
        ),
        ([], "non-empty JSON list"),
    ],
)
def test_bad_input_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: Any, message: str
) -> None:
    args = parse(
        "--current", write(tmp_path, "c.json", ADMIN), "--proposed", write(tmp_path, "p.json", content)
    )
    assert args.func(args) == diff_command.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "p.json" in err and message in err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("--current", str(tmp_path / "nope.json"), "--proposed", write(tmp_path, "p.json", PROPOSED))
    assert args.func(args) == diff_command.EXIT_BAD_INPUT
    assert "no such file" in capsys.readouterr().err


def test_role_arn_from_moto(moto_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    iam = boto3.client("iam", endpoint_url=moto_endpoint, region_name="us-east-1")
    boundary_arn = iam.create_policy(
        PolicyName="edge",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}],
            }
        ),
    )["Policy"]["Arn"]
    role = iam.create_role(
        RoleName="app", AssumeRolePolicyDocument=json.dumps(TRUST), PermissionsBoundary=boundary_arn
    )["Role"]
    iam.attach_role_policy(RoleName="app", PolicyArn="arn:aws:iam::aws:policy/PowerUserAccess")
    iam.put_role_policy(RoleName="app", PolicyName="extra", PolicyDocument=json.dumps(PROPOSED))
    args = parse(
        "--current",
        role["Arn"],
        "--proposed",
        write(tmp_path, "p.json", PROPOSED),
        "--endpoint-url",
        moto_endpoint,
    )
    assert args.func(args) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert "keeps 2 actions in 2 services" in first and "closes" in first
    assert "IAM administration" not in first  # boundary and PowerUserAccess: no IAM admin before either

    missing = parse("--current", "arn:aws:iam::123456789012:role/ghost", "--proposed", str(tmp_path / "p.json"),
                    "--endpoint-url", moto_endpoint)  # fmt: skip
    assert missing.func(missing) == diff_command.EXIT_AWS_ERROR
    assert "NoSuchEntity" in capsys.readouterr().err
