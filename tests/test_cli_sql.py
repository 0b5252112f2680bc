"""CLI: tighten ingest --engine duckdb / --athena (argument errors) and tighten athena-ddl."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from bot.commands import athena_ddl, ingest
from tests.conftest import SAMPLES

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "tighten.example.yaml"


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tighten")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (ingest, athena_ddl):
        module.add_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_ingest_with_duckdb_then_again(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = str(tmp_path / "t.db")
    argv = ["ingest", "--engine", "duckdb", "--cloudtrail", str(SAMPLES / "OTRF_Security-Datasets"), "--db", db]
    assert run(argv) == 0
    out = capsys.readouterr().out
    assert "days: 1 seen, 1 queried" in out and "for 103 events" in out and "principals: " in out
    assert run(argv) == 0
    assert "0 queried, 1 already ingested" in capsys.readouterr().out


def test_duckdb_not_installed_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "duckdb", None)  # import duckdb now raises ImportError
    code = run(["ingest", "--engine", "duckdb", "--cloudtrail", str(SAMPLES), "--db", str(tmp_path / "t.db")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "needs duckdb: pip install 'tighten[sql]'" in err
    assert not (tmp_path / "t.db").exists()


@pytest.mark.parametrize("argv,message", [
    (["--athena"], "--athena needs a database"),
    (["--athena", "--athena-database", "ct", "--cloudtrail", "x"], "--cloudtrail is for the native and duckdb"),
    (["--engine", "duckdb"], "--engine duckdb needs --cloudtrail"),
    ([], "give --cloudtrail"),
    (["--athena", "--config", "missing.yaml"], "missing.yaml"),
    (["--athena", "--athena-database", "ct", "--since", "2099-01-01"], "empty window"),
    (["--athena", "--athena-database", "ct", "--days-per-query", "0"], "--days-per-query must be at least 1"),
    (["--engine", "lake"], "--engine lake needs --lake-store"),
    (["--engine", "lake", "--lake-store", "x; DROP"], "not an event data store ID"),
])
def test_bad_arguments_are_one_line_and_create_nothing(argv: list[str], message: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert run(["ingest", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no index created


def _parse(ddl: str) -> exp.Create:
    tree = sqlglot.parse_one(ddl.rstrip().rstrip(";"), read="athena")
    assert isinstance(tree, exp.Create)
    return tree


def test_athena_ddl_prints_a_statement_sqlglot_parses(capsys: pytest.CaptureFixture) -> None:
    assert run(["athena-ddl", "--location", "s3://org-trail/AWSLogs/o-a1b2c3d4e5", "--accounts",
                "111111111111,222222222222", "--regions", "eu-west-1", "--database", "cloudtrail"]) == 0
    tree = _parse(capsys.readouterr().out)
    assert tree.this.this.sql() == "cloudtrail.cloudtrail_org"
    props = {p.name: p.text("value") for p in tree.find_all(exp.Property) if p.name}
    assert props["storage.location.template"].startswith("s3://org-trail/AWSLogs/o-a1b2c3d4e5/${account}/")


def test_athena_ddl_defaults_from_config_and_botocore_regions(capsys: pytest.CaptureFixture) -> None:
    assert run(["athena-ddl", "--config", str(EXAMPLE)]) == 0
    tree = _parse(capsys.readouterr().out)
    props = {p.name: p.text("value") for p in tree.find_all(exp.Property) if p.name}
    assert props["projection.account.values"] == "123456789012,210987654321"  # the example's accounts
    regions = props["projection.region.values"].split(",")
    assert {"us-east-1", "eu-west-1", "ap-southeast-2"} <= set(regions) and regions == sorted(regions)
    assert tree.this.this.sql() == "cloudtrail.cloudtrail_org"


def test_athena_ddl_without_location_is_one_line(capsys: pytest.CaptureFixture) -> None:
    assert run(["athena-ddl", "--accounts", "111111111111"]) == 2
    err = capsys.readouterr().err
    assert "give --location" in err and err.count("\n") == 1
    assert run(["athena-ddl", "--location", "s3://org-trail/AWSLogs/", "--accounts", "12"]) == 2
    assert "not an account ID or region: '12'" in capsys.readouterr().err
