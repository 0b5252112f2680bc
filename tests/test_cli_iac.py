"""CLI: ``tighten generate --format`` and ``tighten proposal show --format`` print code that reads back to the
same documents; read-only, with one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from bot.store.db import open_db
from bot.store.proposals import ProposalStore
from tests.policy.iac_readback import cloudformation_policies, terraform_policies
from tests.policy.test_iac import SPLIT, normal
from tests.test_ingest import ROLE_ARN, make_tree


def _store(tmp_path: Path) -> tuple[str, str]:
    db = str(tmp_path / "tighten.db")
    p = ProposalStore(open_db(db)).create(
        account="123456789012", principal_arn="arn:aws:iam::123456789012:role/reporting-job", role_name="reporting-job",
        documents=SPLIT, current_documents=[{"name": "reporting-access", "document": SPLIT[0]}],
        iac={"role_inline": ["reporting-access"], "role_managed": [],
             "managed": {"tool": "terraform", "reason": "Terraform by rule iac.rules[0] (tag ManagedBy=terraform)",
                         "rule": "iac.rules[0]"}, "direct_apply": False})
    return db, p.id


@pytest.mark.parametrize(("fmt", "read"), [("terraform", terraform_policies),
                                           ("cloudformation", cloudformation_policies)])
def test_proposal_show_as_code(tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str, read: object) -> None:
    db, pid = _store(tmp_path)
    assert main(["proposal", "show", pid, "--db", db, "--format", fmt, "--policy-prefix", "tt-"]) == 0
    out, err = capsys.readouterr()
    policies = read(out)  # type: ignore[operator]
    assert [normal(p["document"]) for p in policies] == [normal(d) for d in SPLIT]
    assert [p["name"] for p in policies] == ["tt-reporting-job", "tt-reporting-job-2"]
    assert "Terraform by rule iac.rules[0]" in out and "managed as code" in err


def test_proposal_show_json_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, pid = _store(tmp_path)
    assert main(["proposal", "show", pid, "--db", db]) == 0
    assert json.loads(capsys.readouterr().out) == SPLIT
    assert main(["proposal", "show", "p-nothere", "--db", db]) == 2
    assert "no proposal 'p-nothere'" in capsys.readouterr().err
    missing = tmp_path / "none.db"
    assert main(["proposal", "show", pid, "--db", str(missing)]) == 2
    assert "no store at" in capsys.readouterr().err and not missing.exists()


def test_generate_as_terraform(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs = tmp_path / "logs"
    make_tree(logs, bad=False)  # the bad objects would make the logs partial (exit 3)
    assert main(["generate", "--cloudtrail", str(logs), "--principal", ROLE_ARN]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert main(["generate", "--cloudtrail", str(logs), "--principal", ROLE_ARN, "--format", "terraform"]) == 0
    (policy,) = terraform_policies(capsys.readouterr().out)
    assert normal(policy["document"]) == normal(as_json)
    assert policy["role"] == ROLE_ARN.rsplit("/", 1)[-1]
