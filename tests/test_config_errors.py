"""Broken configs: every problem names the file and the key, and says what was expected."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.commands import check_config
from bot.config import ConfigError, load_config

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "tighten.example.yaml"

MINIMAL: dict[str, Any] = {
    "accounts": [{"id": "123456789012", "channel": "C0123456789", "approvers": {"users": ["U0123456789"]}}],
}


def _write(tmp_path: Path, raw: Any, name: str = "tighten.yaml") -> Path:
    path = tmp_path / name
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw, sort_keys=False))
    return path


def _problems(tmp_path: Path, raw: Any) -> tuple[Path, list[str]]:
    path = _write(tmp_path, raw)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    return path, err.value.problems


def _with(**changes: Any) -> dict[str, Any]:
    raw = yaml.safe_load(yaml.safe_dump(MINIMAL))
    for dotted, value in changes.items():
        node = raw
        parts = dotted.split("__")
        for part in parts[:-1]:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        last = parts[-1]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value
    return raw


_DELETE = object()

# (case id, raw config, key the message must name, fragment of what was expected)
CASES: list[tuple[str, Any, str, str]] = [
    ("missing account id", _with(accounts__0__id=_DELETE), "accounts[0].id", "missing required key"),
    ("account id as int", _with(accounts__0__id=123456789012), "accounts[0].id", "quoted string"),
    ("account id too short", _with(accounts__0__id="12345"), "accounts[0].id", "12-digit"),
    ("duplicate account", {"accounts": MINIMAL["accounts"] * 2}, "accounts[1].id", "duplicate"),
    ("accounts not a list", {"accounts": {"id": "123456789012"}}, "accounts", "expected a list"),
    ("account not a mapping", {"accounts": ["123456789012"]}, "accounts[0]", "expected a mapping"),
    ("channel as #name", _with(accounts__0__channel="#security"), "accounts[0].channel", "Slack channel ID"),
    ("review channel lowercase", _with(slack__review_channel="c0123456789"), "slack.review_channel",
     "Slack channel ID"),
    ("approver not a user ID", _with(accounts__0__approvers={"users": ["@alice"]}),
     "accounts[0].approvers.users[0]", "Slack user ID"),
    ("approver group wrong", _with(approval__approvers={"groups": ["U0123456789"]}),
     "approval.approvers.groups[0]", "user group ID"),
    ("no approvers at all", _with(accounts__0__approvers=_DELETE), "accounts[0].approvers", "no approvers"),
    ("no channel at all", _with(accounts__0__channel=_DELETE), "accounts[0].channel", "no review channel"),
    ("unknown top-level key", _with(slak={"mode": "socket"}), "slak", "unknown key"),
    ("unknown nested key", _with(slack={"mdoe": "http"}), "slack.mdoe", "unknown key"),
    ("unknown account key", _with(accounts__0__role="X"), "accounts[0].role", "unknown key"),
    ("bad slack mode", _with(slack={"mode": "webhook"}), "slack.mode", "socket, http"),
    ("section not a mapping", _with(slack="socket"), "slack", "expected a mapping"),
    ("http host not an address", _with(slack={"http": {"host": "0.0.0.0:3000"}}), "slack.http.host",
     "IP address or a host name"),
    ("http host with a scheme", _with(slack={"http": {"host": "http://localhost"}}), "slack.http.host",
     "IP address or a host name"),
    ("http port out of range", _with(slack={"http": {"port": 70000}}), "slack.http.port", "1 to 65535"),
    ("http port as string", _with(slack={"http": {"port": "3000"}}), "slack.http.port", "expected an integer"),
    ("http unknown key", _with(slack={"http": {"bind": "0.0.0.0"}}), "slack.http.bind", "unknown key"),
    ("lookback as string", _with(cloudtrail={"lookback_days": "90"}), "cloudtrail.lookback_days",
     "expected an integer"),
    ("lookback zero", _with(cloudtrail={"lookback_days": 0}), "cloudtrail.lookback_days", "from 1 to 400"),
    ("lookback as bool", _with(cloudtrail={"lookback_days": True}), "cloudtrail.lookback_days",
     "expected an integer"),
    ("last-accessed horizon past IAM's 400 days", _with(cloudtrail={"last_accessed_horizon_days": 500}),
     "cloudtrail.last_accessed_horizon_days", "from 0 to 400"),
    ("last-accessed horizon negative", _with(cloudtrail={"last_accessed_horizon_days": -1}),
     "cloudtrail.last_accessed_horizon_days", "from 0 to 400"),
    ("last-accessed horizon as string", _with(cloudtrail={"last_accessed_horizon_days": "400"}),
     "cloudtrail.last_accessed_horizon_days", "expected an integer"),
    ("self approval as string", _with(approval={"allow_self_approval": "no"}), "approval.allow_self_approval",
     "expected a boolean"),
    ("protected roles not a list", _with(scope={"protected_roles": "BreakGlass"}), "scope.protected_roles",
     "expected a list"),
    ("cron with 4 fields", _with(schedules={"expire": "*/5 * * *"}), "schedules.expire", "5-field cron"),
    ("cron out of range", _with(schedules={"ingest": "61 * * * *"}), "schedules.ingest", "5-field cron"),
    ("cron nonsense", _with(schedules={"plan": "every hour"}), "schedules.plan", "5-field cron"),
    ("digest bad cron", _with(slack={"digests": [{"channel": "C0123456789", "cron": "0 25 * * *"}]}),
     "slack.digests[0].cron", "5-field cron"),
    ("digest missing channel", _with(slack={"digests": [{"kind": "daily"}]}), "slack.digests[0].channel",
     "missing required key"),
    ("digest bad kind", _with(slack={"digests": [{"channel": "C0123456789", "kind": "hourly"}]}),
     "slack.digests[0].kind", "daily, weekly"),
    ("bad timezone", _with(schedules={"off_hours": {"start": "20:00", "end": "06:00", "timezone": "Mars/Base"}}),
     "schedules.off_hours.timezone", "IANA time zone"),
    ("bad off-hours time", _with(schedules={"off_hours": {"start": "8pm", "end": "06:00"}}),
     "schedules.off_hours.start", "HH:MM"),
    ("off-hours missing end", _with(schedules={"off_hours": {"start": "20:00"}}), "schedules.off_hours.end",
     "missing required key"),
    ("bad engine", _with(backend={"engine": "magic"}), "backend.engine", "local, access-analyzer"),
    ("access analyzer without trail", _with(backend={"engine": "access-analyzer"}),
     "backend.access_analyzer.trail_arn", "missing required key"),
    ("quota negative", _with(backend={"access_analyzer": {"max_per_day": -1}}),
     "backend.access_analyzer.max_per_day", "positive integer"),
    ("ttl as float", _with(apply={"proposal_ttl_days": 1.5}), "apply.proposal_ttl_days", "expected an integer"),
    ("store path as list", _with(store={"path": ["a"]}), "store.path", "expected a string"),
    ("allowlist as mapping", _with(allowlist={"path": "x"}), "allowlist", "expected a string"),
    ("no accounts", {"slack": {"mode": "socket"}}, "accounts", "no account to scan"),
    ("protected role malformed ARN", _with(scope={"protected_roles": ["arn:aws:iam::12345:role/x"]}),
     "scope.protected_roles[0]", "role ARN"),
    ("protected role ARN of a user", _with(scope={"protected_roles": ["arn:aws:iam::123456789012:user/x"]}),
     "scope.protected_roles[0]", "role ARN"),
    ("protected role bad name", _with(scope={"protected_roles": ["break glass"]}), "scope.protected_roles[0]",
     "role name"),
    ("own role not an ARN", _with(scope={"own_role_arns": ["TightenApplier"]}), "scope.own_role_arns[0]",
     "role ARN"),
    ("unknown region", _with(accounts__0__regions=["us-east-1", "us-east-9"]), "accounts[0].regions[1]",
     "AWS region"),
    ("made-up region", _with(accounts__0__regions=["moon-1"]), "accounts[0].regions[0]", "AWS region"),
    ("source with unknown scheme", _with(cloudtrail={"source": "s4://bucket"}), "cloudtrail.source",
     "unknown scheme s4://"),
    ("source with bad bucket", _with(cloudtrail={"source": "s3://Bad_Bucket/AWSLogs"}), "cloudtrail.source",
     "bucket name"),
    ("source folder missing", _with(cloudtrail={"source": "/nonexistent/trail"}), "cloudtrail.source",
     "does not exist"),
    ("lookback too long", _with(cloudtrail={"lookback_days": 100000}), "cloudtrail.lookback_days",
     "more than a year"),
    ("lookback past access analyzer", _with(cloudtrail={"lookback_days": 120},
                                            backend={"engine": "access-analyzer", "access_analyzer": {
                                                "trail_arn": "arn:aws:cloudtrail:us-east-1:123456789012:trail/t",
                                                "access_role_arn": "arn:aws:iam::123456789012:role/aa"}}),
     "cloudtrail.lookback_days", "at most 90 days"),
    ("store path cannot be created", _with(store={"path": "/proc/nope/tighten.db"}), "store.path",
     "cannot be created"),
    ("allowlist file missing", _with(allowlist="no-such-allowlist.yaml"), "allowlist", "does not exist"),
    ("direct apply as string", _with(iac={"direct_apply": "no"}), "iac.direct_apply", "expected a boolean"),
    ("iac rule without tool", _with(iac={"rules": [{"tag": "ManagedBy=terraform"}]}), "iac.rules[0].tool",
     "missing required key"),
    ("iac rule unknown tool", _with(iac={"rules": [{"tool": "pulumi", "name": "x"}]}), "iac.rules[0].tool",
     "terraform, cloudformation"),
    ("iac rule without matcher", _with(iac={"rules": [{"tool": "terraform"}]}), "iac.rules[0]",
     "at least one of tag, name, path"),
    ("iac rule empty tag key", _with(iac={"rules": [{"tool": "terraform", "tag": "=terraform"}]}),
     "iac.rules[0].tag", "key=value"),
    ("iac rule relative path", _with(iac={"rules": [{"tool": "terraform", "path": "terraform/*"}]}),
     "iac.rules[0].path", "starting with '/'"),
    ("iac rules not a list", _with(iac={"rules": {"tool": "terraform"}}), "iac.rules", "expected a list"),
    ("account iac unknown key", _with(accounts__0__iac={"direct": True}), "accounts[0].iac.direct", "unknown key"),
    ("account iac rule typo", _with(accounts__0__iac={"rules": [{"tool": "terraform", "nmae": "x"}]}),
     "accounts[0].iac.rules[0].nmae", "unknown key"),
    ("athena database with a dash", _with(athena__database="cloud-trail"), "athena.database", "database name"),
    ("athena results not in S3", _with(athena__output_location="/tmp/results"), "athena.output_location",
     "S3 URL"),
    ("athena unknown region", _with(athena__region="us-north-9"), "athena.region", "AWS region"),
    ("athena negative price", _with(athena__price_per_tb=-1), "athena.price_per_tb", "non-negative"),
    ("athena unknown grouping", _with(athena__grouping="some"), "athena.grouping", "projected, full"),
    ("athena zero days per query", _with(athena__days_per_query=0), "athena.days_per_query", "positive"),
    ("athena misspelled key", _with(athena__workgroups="primary"), "athena.workgroups", "unknown key"),
]


@pytest.mark.parametrize(("raw", "key", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_problem_names_file_key_and_expectation(tmp_path: Path, raw: Any, key: str, expected: str) -> None:
    path, problems = _problems(tmp_path, raw)
    matching = [p for p in problems if p.startswith(f"{path}: {key}: ")]
    assert matching, f"no problem names {key!r}: {problems}"
    assert any(expected in p for p in matching), f"{key}: expected {expected!r} in {matching}"


def test_store_path_that_is_a_directory_or_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    (tmp_path / "notes.db").write_text("not a database")
    (tmp_path / "file").write_text("x")
    for store_path, expected in ((tmp_path / "dir.db", "is a directory"), (tmp_path / "notes.db", "not an SQLite"),
                                 (tmp_path / "file" / "tighten.db", "is a file, not a directory")):
        path, problems = _problems(tmp_path, _with(store={"path": str(store_path)}))
        assert any(p.startswith(f"{path}: store.path: ") and expected in p for p in problems), problems
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.db", "file", "notes.db", "tighten.yaml"]


@pytest.mark.parametrize(("entries", "expected"), [
    ([{"action": "s3:GetObjekt"}], "unknown IAM action 's3:GetObjekt'"),
    ([{"action": "s3:GetObject", "resource": "bucket/*"}], "must be '*' or an ARN"),
    ("not a list", "expected a mapping with an 'entries' list"),
])
def test_broken_allowlist_file(tmp_path: Path, entries: Any, expected: str) -> None:
    (tmp_path / "allowlist.yaml").write_text(yaml.safe_dump({"entries": entries}))
    path, problems = _problems(tmp_path, _with(allowlist="allowlist.yaml"))
    assert any(p.startswith(f"{path}: allowlist: ") and expected in p for p in problems), problems


def test_allowlist_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "allowlist.yaml").write_bytes("entries:\n  - action: s3:GetObject\n    reason: caf\xe9\n"
                                              .encode("latin-1"))
    path, problems = _problems(tmp_path, _with(allowlist="allowlist.yaml"))
    assert any(p.startswith(f"{path}: allowlist: ") and "UTF-8" in p for p in problems), problems


@pytest.mark.parametrize("content", [b"", b"# only a comment\n", b"\n\n"], ids=["empty", "comment", "blank"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "tighten.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.problems == [f"{path}: (top level): the file is empty; start from config/tighten.example.yaml"]


@pytest.mark.parametrize(("content", "line", "byte"), [
    (b"\xff\xfe\x00\x01binary", 1, "0xff"),
    ("store:\n  path: caf\xe9.db\n".encode("latin-1"), 2, "0xe9"),
], ids=["binary", "latin-1"])
def test_not_utf8(tmp_path: Path, content: bytes, line: int, byte: str) -> None:
    path = tmp_path / "tighten.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.problems == [f"{path}: line {line}: not UTF-8 text (byte {byte}); save the file as UTF-8"]


def test_valid_values_pass(tmp_path: Path) -> None:
    """Values that look unusual but are right: a GovCloud region, a role with a path, a name with '@'."""
    (tmp_path / "allowlist.yaml").write_text("")  # an empty allowlist file is an empty allowlist
    (tmp_path / "trail").mkdir()
    cfg = load_config(_write(tmp_path, _with(
        accounts__0__regions=["us-gov-west-1", "eu-central-2"],
        scope={"protected_roles": ["ops@break-glass", "arn:aws:iam::123456789012:role/admin/path/BreakGlass",
                                   "arn:aws-us-gov:iam::123456789012:role/x"]},
        cloudtrail={"source": str(tmp_path / "trail"), "lookback_days": 400},
        store={"path": str(tmp_path / "new" / "dir" / "tighten.db")}, allowlist="allowlist.yaml")))
    assert cfg.lookback_days == 400 and len(cfg.protected_roles) == 3
    assert not (tmp_path / "new").exists()  # checking creates nothing


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    raw = _with(accounts__0__id=42, slack={"mode": "x", "review_channel": "general"},
                schedules={"expire": "bad", "watch": "* * * * * *"}, bogus=1)
    path, problems = _problems(tmp_path, raw)
    keys = {p.split(": ")[1] for p in problems}
    assert {"accounts[0].id", "slack.mode", "slack.review_channel", "schedules.expire", "schedules.watch",
            "bogus"} <= keys
    assert all(p.startswith(f"{path}: ") for p in problems)


def test_not_yaml_names_file_and_line(tmp_path: Path) -> None:
    path, problems = _problems(tmp_path, "accounts:\n  - id: '1\n    name: x\n")
    assert len(problems) == 1 and problems[0].startswith(f"{path}: line ")
    assert "not valid YAML" in problems[0]


def test_top_level_not_mapping(tmp_path: Path) -> None:
    path, problems = _problems(tmp_path, "- a\n- b\n")
    assert problems == [f"{path}: (top level): expected a mapping, got a list"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nope.yaml")
    assert err.value.problems[0].startswith(f"{tmp_path / 'nope.yaml'}: cannot read file")


def test_valid_minimal_config(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, MINIMAL))
    assert cfg.channel_for("123456789012") == "C0123456789"
    assert cfg.lookback_days == 90


def _check(path: Path) -> int:
    parser = argparse.ArgumentParser()
    check_config.add_parser(parser.add_subparsers())
    args = parser.parse_args(["check-config", "--config", str(path)])
    return args.func(args)


def test_check_config_command_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, _with(accounts__0__id=123456789012, schedules={"expire": "*/5 * * *"}))
    assert _check(path) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{path}: accounts[0].id:" in err and f"{path}: schedules.expire:" in err


def example_copy(tmp_path: Path) -> Path:
    """The example config with its deployment paths (store on /data, allowlist beside it) moved to tmp_path,
    so the check does not depend on who may write /data on this machine."""
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["store"]["path"] = str(tmp_path / "tighten.db")
    raw["allowlist"] = str(EXAMPLE.parent / raw["allowlist"])
    return _write(tmp_path, raw, "tighten.example.yaml")


def test_check_config_command_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _check(example_copy(tmp_path)) == 0
    assert "OK" in capsys.readouterr().out


def test_http_listen_address_defaults_to_loopback(tmp_path: Path) -> None:
    from bot.config import parse_config

    cfg = parse_config(MINIMAL, "x.yaml")
    assert (cfg.http_host, cfg.http_port) == ("127.0.0.1", 3000)
    for host in ("0.0.0.0", "::", "::1", "10.0.0.7", "tighten.internal", "localhost"):
        raw = {**MINIMAL, "slack": {**MINIMAL.get("slack", {}), "http": {"host": host, "port": 8080}}}
        cfg = parse_config(raw, "x.yaml")
        assert (cfg.http_host, cfg.http_port) == (host, 8080)
