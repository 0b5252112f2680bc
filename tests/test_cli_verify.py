"""``tighten verify``: every successful call of a principal replayed against a policy.

The key property over all bundled samples: for every principal, the policy ``tighten generate`` prints for it
lets ``tighten verify`` replay all of its calls with 0 denied. The generated policy comes from the CLI; the
replay reads the logs itself (not the usage index that generation used).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest

from bot.cli import main
from bot.commands.verify import EXIT_BAD_INPUT, EXIT_DENIED, read_calls, replay_calls
from bot.ingest import ingest
from bot.policy.model import parse_policy
from bot.policy.replay import replay
from bot.store.db import open_db
from bot.store.usage import UsageIndex
from tests.conftest import SAMPLES

DATASETS = sorted(p.name for p in SAMPLES.iterdir() if p.is_dir())
OTRF = SAMPLES / "OTRF_Security-Datasets"
OTRF_ROLE = "arn:aws:iam::123456789123:role/MordorNginxStack-BankingWAFRole-9S3E0UAE1MM0"


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


#: the one bundled sample file that is not a CloudTrail log (a policy document beside the logs)
NOT_LOGS = "policy-to-guess.json"


@pytest.mark.parametrize("dataset", DATASETS)
def test_generated_policy_allows_every_call_of_every_principal(dataset: str, tmp_path: Path) -> None:
    folder = SAMPLES / dataset
    db = str(tmp_path / "usage.db")
    index = UsageIndex(open_db(db))
    ingest(str(folder), index, workers=1)
    principals = [p.arn for p in index.principals() if index.usage(p.arn)]
    assert principals
    unusable: list[str] = []
    records = list(read_calls(str(folder), since=None, until=None, unusable=unusable))  # read once for all
    assert all(line.split(": ")[1] == "not_cloudtrail" and NOT_LOGS in line for line in unusable), unusable
    checked = 0
    for n, arn in enumerate(principals):
        partial = ["--allow-partial"] if unusable else []  # generate refuses incomplete logs the same way
        code, policy_json, err = _cli("generate", "--db", db, "--principal", arn, *partial)
        assert code == 0, err
        policy_file = tmp_path / "policy.json"
        policy_file.write_text(policy_json)
        if n == 0:  # the whole command once per dataset
            code, out, err = _cli("verify", "--cloudtrail", str(folder), "--principal", arn,
                                  "--policy", str(policy_file), *partial)
            assert code == 0 and "calls replayed, all allowed" in out, out + err
            if unusable:  # without --allow-partial the unusable object refuses the replay
                code, out, err = _cli("verify", "--cloudtrail", str(folder), "--principal", arn,
                                      "--policy", str(policy_file))
                assert code == 2 and "could not be read" in err and NOT_LOGS in err, err
        docs = json.loads(policy_json)
        policies = [parse_policy(d) for d in (docs if isinstance(docs, list) else [docs])]
        calls = replay_calls([r for r in records if r.principal.arn == arn])
        result = replay(calls, policies)
        assert result.denied == [], (arn, [d.line() for d in result.denied])
        checked += result.calls
    assert checked > 0


def test_denied_calls_are_listed_and_exit_3(tmp_path: Path) -> None:
    policy = tmp_path / "narrow.json"
    policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::mordors3stack-s3bucket-llp2yingx64a"}]}))
    code, out, err = _cli("verify", "--cloudtrail", str(OTRF), "--principal", OTRF_ROLE, "--policy", str(policy))
    assert code == EXIT_DENIED, out + err
    lines = out.splitlines()
    assert lines[0].startswith(f"{OTRF_ROLE}: ") and "calls would be denied" in lines[0]
    denied = [line for line in lines[1:] if "implicit deny" in line]
    assert denied and all(line.split()[1].startswith("2020-09-") for line in denied)  # event, time, action, resource
    assert any(" s3:GetObject arn:aws:s3:::mordors3stack-s3bucket-llp2yingx64a/" in line for line in denied)
    assert not any(" s3:ListBucket " in line for line in denied)


def test_all_allowed_says_how_many(tmp_path: Path) -> None:
    policy = tmp_path / "admin.json"
    policy.write_text(json.dumps([{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}]}]))
    code, out, _ = _cli("verify", "--cloudtrail", str(OTRF), "--principal", "MordorNginxStack-BankingWAFRole-9S3E0UAE1MM0",
                        "--policy", str(policy))
    assert code == 0
    n = int(out.split()[0])
    assert n >= 10 and out.startswith(f"{n} calls replayed, all allowed")


def test_boundary_limits_the_replay(tmp_path: Path) -> None:
    admin = tmp_path / "admin.json"
    admin.write_text(json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    boundary = tmp_path / "boundary.json"
    boundary.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}))
    code, out, _ = _cli("verify", "--cloudtrail", str(OTRF), "--principal", OTRF_ROLE, "--policy", str(admin),
                        "--boundary", str(boundary))
    assert code == EXIT_DENIED and "s3:GetObject" in out


@pytest.mark.parametrize(("setup", "message"), [
    ("missing-policy", "no such file"),
    ("bad-json", "not valid JSON"),
    ("not-a-policy", "not a valid policy"),
    ("missing-logs", "CloudTrail source not found"),
    ("unknown-principal", "no call by 'arn:aws:iam::123456789123:role/nobody' in the logs"),
    ("empty-window", "in that window"),
])
def test_bad_input_is_one_line_exit_2_and_creates_nothing(setup: str, message: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    policy = tmp_path / "p.json"
    policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    args = ["verify", "--cloudtrail", str(OTRF), "--principal", OTRF_ROLE, "--policy", str(policy)]
    if setup == "missing-policy":
        args[-1] = str(tmp_path / "nope.json")
    elif setup == "bad-json":
        policy.write_text("{not json")
    elif setup == "not-a-policy":
        policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Maybe"}]}))
    elif setup == "missing-logs":
        args[2] = str(tmp_path / "no-logs")
    elif setup == "unknown-principal":
        args[4] = "arn:aws:iam::123456789123:role/nobody"
    elif setup == "empty-window":
        args += ["--since", "2030-01-01"]
    before = sorted(os.listdir(tmp_path))
    code, out, err = _cli(*args)
    assert code == EXIT_BAD_INPUT
    assert out == "" and err.count("\n") == 1 and err.startswith("tighten verify: ") and message in err, err
    assert "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == before
