"""Bad input through the real command line: one line naming the problem, a non-zero exit, never a traceback.

Each case runs ``python -m bot.cli ...`` in a fresh folder as a user would, and checks stderr names the offending
path or key. Read-only commands must also leave nothing behind.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from bot.demo.fake_slack import FakeSlackApi

REPO = Path(__file__).resolve().parent.parent

ACCOUNTS = [{"id": "123456789012", "channel": "C0123456789", "approvers": {"users": ["U0123456789"]}}]


def closed_port() -> int:
    """A loopback port nobody listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config(folder: Path, name: str = "tighten.yaml", **top: object) -> str:
    raw = {"store": {"path": str(folder / "store" / "tighten.db")}, "accounts": ACCOUNTS, **top}
    (folder / name).write_text(yaml.safe_dump(raw))
    return name


@dataclass
class Case:
    argv: list[str]
    names: list[str]  # what stderr must name (the path, key or variable at fault) and what it says
    setup: Callable[[Path], None] = lambda folder: None
    env: dict[str, str] = field(default_factory=dict)
    creates_nothing: bool = False  # the folder holds only what setup made
    code: int | None = None  # the exact exit status, when it matters


def _files(**files: bytes | str) -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        for name, content in files.items():
            path = folder / name.replace("__", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            if content == "<dir>":
                path.mkdir()
            elif isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
    return setup


def _moto_shim(folder: Path) -> None:
    """A ``moto`` package without its server, first on the path: as when Tighten is installed without extras."""
    (folder / "shim" / "moto").mkdir(parents=True)
    (folder / "shim" / "moto" / "__init__.py").write_text("")


CASES: dict[str, Case] = {
    "db is a directory": Case(["ingest", "--cloudtrail", "logs", "--db", "d"], ["d: is a directory"],
                              _files(logs="<dir>", d="<dir>")),
    "principals on a non-database": Case(["principals", "--db", "notdb.db"], ["notdb.db", "not a Tighten store"],
                                         _files(**{"notdb.db": "hello"})),
    "changes on a non-database": Case(["changes", "--db", "notdb.db"], ["notdb.db", "not a Tighten store"],
                                      _files(**{"notdb.db": "hello"})),
    "ingest into a non-database": Case(["ingest", "--cloudtrail", "logs", "--db", "notdb.db"],
                                       ["notdb.db", "not a Tighten store"], _files(logs="<dir>", **{"notdb.db": "x"})),
    "principals, missing store": Case(["principals", "--db", "missing.db"], ["missing.db", "no such store"],
                                      creates_nothing=True),
    "changes, missing store": Case(["changes", "--db", "missing.db"], ["missing.db", "no such store"],
                                   creates_nothing=True),
    "rollback, missing store": Case(["rollback", "c-1", "--db", "missing.db"], ["missing.db", "no such store"],
                                    creates_nothing=True),
    "generate, missing store": Case(["generate", "--principal", "x", "--db", "missing.db"],
                                    ["missing.db", "no such store"], creates_nothing=True),
    "ingest into a missing directory": Case(["ingest", "--cloudtrail", "logs", "--db", "nope/dir/i.db"],
                                            ["nope/dir", "does not exist", "does not create directories"],
                                            _files(logs="<dir>"), creates_nothing=True),
    "binary config": Case(["check-config", "--config", "bin.yaml"], ["bin.yaml", "not UTF-8"],
                          _files(**{"bin.yaml": b"\xff\xfe\x00\x01\x02"}), code=2),
    "latin-1 config": Case(["check-config", "--config", "latin.yaml"], ["latin.yaml: line 2", "not UTF-8"],
                           _files(**{"latin.yaml": "store:\n  path: caf\xe9.db\n".encode("latin-1")}), code=2),
    "missing config": Case(["check-config", "--config", "nope.yaml"], ["nope.yaml", "cannot read"], code=2),
    "demo --out is a file": Case(["demo", "--out", "afile"], ["afile", "is a file"], _files(afile="x")),
    "demo --out unwritable": Case(["demo", "--out", "/proc/tighten-demo"], ["/proc/tighten-demo",
                                                                            "cannot create"]),
    "demo without moto": Case(["demo", "--out", "out"], ["moto", "tighten[demo]"], _moto_shim,
                              env={"PYTHONPATH": "shim"}),
    "demo --slack without variables": Case(["demo", "--slack", "--out", "out"],
                                           ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "TIGHTEN_DEMO_CHANNEL",
                                            "TIGHTEN_DEMO_APPROVER"], creates_nothing=True),
    "worker, store cannot be created": Case(
        ["worker", "--config", "w.yaml"], ["store.path", "/proc/nope/t.db", "cannot be created"],
        lambda f: config(f, "w.yaml", store={"path": "/proc/nope/t.db"})),
    "worker, store under a file": Case(
        ["worker", "--config", "w.yaml"], ["store.path", "is a file, not a directory"],
        lambda f: (config(f, "w.yaml", store={"path": str(f / "afile" / "t.db")}), _files(afile="x")(f))),
    "serve without its allowlist": Case(["serve", "--config", "s.yaml"], ["allowlist", "missing.yaml",
                                                                          "does not exist"],
                                        lambda f: config(f, "s.yaml", allowlist="missing.yaml")),
    "changes --state bogus": Case(["changes", "--state", "bogus"], ["bogus", "rolled_back", "applied"],
                                  creates_nothing=True, code=2),
    "check-no-new-access, proposal not JSON": Case(
        ["check-no-new-access", "--current", "c.json", "--proposed", "p.json"], ["p.json", "not valid JSON"],
        _files(**{"c.json": '{"Statement": []}', "p.json": "{not json"}), creates_nothing=True, code=2),
    "diff of a non-role ARN": Case(["diff", "--current", "arn:aws:iam::notanarn", "--proposed", "p.json"],
                                   ["arn:aws:iam::notanarn", "not a role ARN"], _files(**{"p.json": "{}"})),
    "ingest, missing source (no progress bar off a terminal)": Case(
        ["ingest", "--cloudtrail", "nowhere", "--db", "x.db"], ["nowhere"], code=2),
    "verify, policy not JSON": Case(["verify", "--cloudtrail", "logs", "--principal", "app", "--policy", "p.json"],
                                    ["p.json", "not valid JSON"], _files(logs="<dir>", **{"p.json": "{"}),
                                    creates_nothing=True, code=2),
    "verify, missing logs": Case(["verify", "--cloudtrail", "nowhere", "--principal", "app", "--policy", "p.json"],
                                 ["nowhere", "not found"], _files(**{"p.json": '{"Version": "2012-10-17", "Statement": '
                                 '[{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'}), creates_nothing=True, code=2),
    "ingest --workers 0": Case(["ingest", "--cloudtrail", "logs", "--workers", "0"], ["--workers", "at least 1"],
                               _files(logs="<dir>"), creates_nothing=True, code=2),
    "ingest since after until": Case(["ingest", "--cloudtrail", "logs", "--since", "2024-05-02", "--until",
                                      "2024-05-01"], ["--since 2024-05-02", "--until 2024-05-01"],
                                     _files(logs="<dir>"), creates_nothing=True, code=2),
}


@pytest.fixture(scope="module")
def fake_slack() -> Iterator[FakeSlackApi]:
    with FakeSlackApi(valid_tokens={"xoxb-the-right-one"}) as api:
        yield api


def _network_cases(fake: FakeSlackApi) -> dict[str, Case]:
    refused = f"http://127.0.0.1:{closed_port()}"
    slack_env = {"SLACK_BOT_TOKEN": "xoxb-wrong", "SLACK_APP_TOKEN": "xapp-1"}
    return {
        "serve, Slack unreachable": Case(["serve", "--config", "s.yaml", "--slack-api-url", f"{refused}/api/"],
                                         ["cannot reach Slack", refused], lambda f: config(f, "s.yaml"),
                                         env=slack_env, code=1),
        "serve, token rejected": Case(["serve", "--config", "s.yaml", "--slack-api-url", fake.base_url],
                                      ["SLACK_BOT_TOKEN", "invalid_auth"], lambda f: config(f, "s.yaml"),
                                      env=slack_env, code=1),
        "scan, AWS unreachable": Case(["scan", "reporting", "--account", "123456789012", "--endpoint-url",
                                       refused, "--db", "scan.db"], ["AWS is unreachable", refused],
                                      env={"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                                           "AWS_MAX_ATTEMPTS": "1"}, code=1),
    }


def run_cli(folder: Path, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "TIGHTEN_", "AWS_")) and k != "PYTHONPATH"}
    base.update({"AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": str(REPO), "AWS_EC2_METADATA_DISABLED": "true"})
    if "PYTHONPATH" in env:
        env = {**env, "PYTHONPATH": f"{folder / env['PYTHONPATH']}{os.pathsep}{REPO}"}
    return subprocess.run([sys.executable, "-m", "bot.cli", *argv], cwd=folder, env={**base, **env},
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


@dataclass
class Outcome:
    case: Case
    folder: Path
    before: list[str]
    proc: subprocess.CompletedProcess[str]


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _run_case(folder: Path, case: Case) -> Outcome:
    case.setup(folder)
    before = _listing(folder)
    return Outcome(case, folder, before, run_cli(folder, case.argv, case.env))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory, fake_slack: FakeSlackApi) -> dict[str, Outcome]:
    """Every case, run a few at a time (each is a separate process that mostly waits on its imports)."""
    cases = {**CASES, **_network_cases(fake_slack)}
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(_run_case, tmp_path_factory.mktemp("case"), case) for name, case in cases.items()}
        return {name: future.result() for name, future in futures.items()}


NETWORK_CASES = ["serve, Slack unreachable", "serve, token rejected", "scan, AWS unreachable"]


@pytest.mark.parametrize("name", [*CASES, *NETWORK_CASES])
def test_bad_input_is_one_clear_line(outcomes: dict[str, Outcome], name: str) -> None:
    outcome = outcomes[name]
    case, proc = outcome.case, outcome.proc
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    assert proc.returncode != 0, out
    if case.code is not None:
        assert proc.returncode == case.code, out
    for fragment in case.names:
        assert fragment in proc.stderr, f"{fragment!r} not in stderr:\n{proc.stderr}"
    assert proc.stderr.strip() and not proc.stderr.startswith("\n"), repr(proc.stderr[:80])
    # whatever a library logged before it, the last line is Tighten's own message
    last = proc.stderr.strip().splitlines()[-1]
    assert any(fragment in last for fragment in case.names) or last.startswith("  "), last
    if case.creates_nothing:
        assert _listing(outcome.folder) == outcome.before
    if name.startswith("serve"):  # nothing was started: no heartbeat was ever written
        assert not (outcome.folder / "store" / "tighten.db.heartbeat").exists()


def test_a_bug_is_one_line_and_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from bot import cli
    from bot.commands import principals

    def broken(args: object) -> int:
        raise KeyError("oops")

    monkeypatch.delenv("TIGHTEN_DEBUG", raising=False)
    monkeypatch.setattr(principals, "run", broken)
    assert cli.main(["principals"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tighten principals: unexpected error: KeyError: 'oops' (this is a bug;")
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(KeyError):
        cli.main(["--debug", "principals"])
    monkeypatch.setenv("TIGHTEN_DEBUG", "1")
    with pytest.raises(KeyError):
        cli.main(["principals"])


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib import metadata

    from bot import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"tighten {metadata.version('tighten')}"


def test_readme_command_table_lists_every_command() -> None:
    """Each subcommand the CLI has (asked from its parser) has a row in README's command table."""
    from bot import cli

    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    readme = (REPO / "README.md").read_text()
    table = readme.split("## Command line", 1)[1].split("\n\n", 2)[1]
    missing = [name for name in sub.choices if f"`tighten {name}" not in table]
    assert not missing, f"README's command table lacks {missing}"
