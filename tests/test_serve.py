"""``tighten serve``: config and secrets checked before anything starts; a real process (HTTP mode, fake Slack,
moto) recovers left-over work, reports healthy, and shuts down cleanly on SIGTERM."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.commands import serve
from bot.config import load_config
from bot.demo.fake_slack import FakeSlackApi
from bot.store.db import open_db
from bot.store.queue import WorkQueue
from bot.util.clock import iso, utcnow

REPO = Path(__file__).resolve().parent.parent
TOKEN = "xoxb-serve-test-token-must-never-be-logged"
SECRET = "serve-test-signing-secret-never-logged"


def _config(tmp_path: Path, **extra: Any) -> Path:
    raw: dict[str, Any] = {
        "store": {"path": str(tmp_path / "tighten.db")},
        "accounts": [{"id": "123456789012", "channel": "C0123456789", "approvers": {"users": ["U0123456789"]}}],
        "slack": {"mode": "http"},
        **extra,
    }
    path = tmp_path / "tighten.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    serve.add_parser(parser.add_subparsers())
    args = parser.parse_args(["serve", *argv])
    return args.func(args)


def test_config_error_reported_before_anything_starts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path, schedules={"scan": "*/5 * *"}, slack={"mode": "pigeon"})
    assert _run(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: schedules.scan:" in err and f"{path}: slack.mode:" in err
    assert "nothing was started" in err
    assert not (tmp_path / "tighten.db").exists()


def test_missing_secrets_named_never_shown(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    path = _config(tmp_path)
    assert _run(["--config", str(path), "--mode", "socket"]) == 2
    assert _run(["--config", str(path), "--mode", "http"]) == 2
    captured = capsys.readouterr()
    assert "SLACK_APP_TOKEN" in captured.err and "SLACK_SIGNING_SECRET" in captured.err
    assert TOKEN not in captured.err + captured.out
    assert not (tmp_path / "tighten.db").exists()


def test_socket_mode_needs_app_level_token() -> None:
    with pytest.raises(serve.MissingSecret, match="xapp-"):
        serve.slack_secrets("socket", {"SLACK_BOT_TOKEN": TOKEN, "SLACK_APP_TOKEN": "xoxb-wrong-kind"})
    ok = serve.slack_secrets("socket", {"SLACK_BOT_TOKEN": TOKEN, "SLACK_APP_TOKEN": "xapp-1-A-1-x"})
    assert ok["SLACK_APP_TOKEN"].startswith("xapp-")


def test_healthcheck_needs_fresh_heartbeat_and_store(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path))
    healthy, why = serve.healthcheck(cfg)
    assert not healthy and "no heartbeat" in why
    WorkQueue(open_db(cfg.db_path))  # creates the store
    beat = serve.heartbeat_path(cfg)
    serve.write_heartbeat(beat, {"pid": 1, "worker": True, "scheduler": True})
    assert serve.healthcheck(cfg)[0]
    serve.write_heartbeat(beat, {"pid": 1, "worker": False, "scheduler": True})
    assert serve.healthcheck(cfg) == (False, "not running: worker")
    stale = json.loads(beat.read_text())
    stale.update(worker=True, at=iso(utcnow() - timedelta(minutes=10)))
    beat.write_text(json.dumps(stale))
    healthy, why = serve.healthcheck(cfg, max_age=180)
    assert not healthy and "old" in why


def _wait(condition: Any, what: str, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            raise AssertionError(f"serve exited ({proc.returncode}) while waiting for {what}:\n{proc.stderr.read()}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_serve_process_recovers_work_and_stops_cleanly_on_sigterm(tmp_path: Path, moto_endpoint: str) -> None:
    path = _config(tmp_path)
    cfg = load_config(path)
    db = open_db(cfg.db_path)
    queue = WorkQueue(db)
    item, _ = queue.enqueue("expire", {}, dedupe_key="expire")
    assert queue.claim("serve-deadhost-1") is not None  # a process that died mid-item left it running
    db.conn.execute("UPDATE work_items SET lease_until = ? WHERE id = ?",  # ... and its lease has run out since
                    ("2000-01-01T00:00:00Z", item.id))
    db.conn.close()

    env = {**os.environ, "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET,
           "AWS_ENDPOINT_URL": moto_endpoint, "PYTHONUNBUFFERED": "1"}
    env.pop("SLACK_APP_TOKEN", None)
    with FakeSlackApi() as fake:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--config", str(path), "--mode", "http",
             "--host", "127.0.0.1", "--port", "0", "--slack-api-url", fake.base_url],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait(lambda: serve.heartbeat_path(cfg).exists(), "the heartbeat", proc)
            check_db = open_db(cfg.db_path)
            check_queue = WorkQueue(check_db)
            _wait(lambda: check_queue.get(item.id).state == "done", "the left-over item to be re-run", proc)
            assert _run(["--config", str(path), "--healthcheck"]) == 0
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    assert "SIGTERM received" in err and "stopped cleanly" in err
    assert TOKEN not in out + err and SECRET not in out + err
    assert "will be unused" not in err  # Bolt was given the token once (the client), not also from the environment
    assert not serve.heartbeat_path(cfg).exists()
    assert not check_queue.items(state="running")
    assert check_queue.get(item.id).attempts == 2  # run once more after recovery, never twice concurrently
    check_db.conn.close()
    assert _run(["--config", str(path), "--healthcheck"]) == 1


def test_slack_failure_at_start_runs_no_work(tmp_path: Path) -> None:
    """Slack is checked (auth.test) before the jobs start: an unreachable Slack leaves the queue untouched."""
    from bot.slack.app import make_client

    cfg = load_config(_config(tmp_path))
    db = open_db(cfg.db_path)
    queue = WorkQueue(db)
    item, _ = queue.enqueue("expire", {})
    queue.claim("serve-deadhost-1")
    unreachable = make_client(TOKEN, base_url="http://127.0.0.1:9/api/", max_retries=0)
    service = serve.Service(cfg, "http", {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET},
                            host="127.0.0.1", port=0, slack_client=unreachable)
    with pytest.raises(Exception):  # noqa: B017 - whatever Bolt raises for a failed auth.test
        service.start()
    service.stop()
    assert service.jobs is None
    assert queue.get(item.id).state == "running" and queue.get(item.id).attempts == 1
    assert TOKEN not in repr(service)
    db.conn.close()
