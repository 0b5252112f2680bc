"""``tighten serve`` as real processes: the jobs run in a child process that lives and dies with serve, and the
HTTP listener keeps serving real requests while more idle connections are open than serve has file
descriptors."""

from __future__ import annotations

import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse

import pytest
import yaml

from bot.demo.fake_slack import FakeSlackApi
from bot.slack.signing import signed_request
from tests.slack.socket_mode_server import SocketModeServer

REPO = Path(__file__).resolve().parent.parent
TOKEN = "xoxb-serve-process-token-never-logged"
SECRET = "serve-process-signing-secret"
APP_TOKEN = "xapp-1-A0TIGHTEN-1-serve-process-app-token"
NEVER = "0 0 1 1 *"

pytestmark = pytest.mark.slow


@contextmanager
def serving(tmp_path: Path, aws_url: str, fake: FakeSlackApi, preexec: Callable[[], None] | None = None,
            mode: str = "http") -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    raw: dict[str, Any] = {
        "store": {"path": str(tmp_path / "tighten.db")},
        "accounts": [{"id": "123456789012", "channel": "C0123456789", "approvers": {"users": ["U0123456789"]}}],
        "slack": {"mode": mode, "http": {"host": "127.0.0.1", "port": _free_port()}},
        "schedules": {"plan": NEVER, "expire": NEVER, "watch": NEVER},
    }
    config = tmp_path / "tighten.yaml"
    config.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_APP_TOKEN": APP_TOKEN,
           "AWS_ENDPOINT_URL": aws_url, "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--config", str(config),
                                 "--slack-api-url", fake.base_url], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT, preexec_fn=preexec)
    try:
        ready = "listening for Slack on" if mode == "http" else "connected to Slack over Socket Mode"
        _wait(lambda: ready in log.read_text(), "serve to take Slack requests", proc, log)
        yield proc, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(condition: Callable[[], bool], what: str, proc: subprocess.Popen[bytes] | None = None,
          log: Path | None = None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc is not None and proc.poll() is not None and log is not None:
            raise AssertionError(f"serve exited ({proc.returncode}) waiting for {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}" + (f":\n{log.read_text()[-3000:]}" if log else ""))


def _jobs_pid(log: Path) -> int:
    match = re.search(r"scheduler and worker running in process (\d+)", log.read_text())
    assert match, log.read_text()
    return int(match.group(1))


def _gone(pid: int) -> bool:
    """The process exited (a zombie waiting for its parent counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return True
    return state in ("Z", "X")


def _url(log: Path) -> str:
    match = re.search(r"listening for Slack on (http://\S+)", log.read_text())
    assert match
    return match.group(1)


def test_serve_stops_with_status_1_when_its_jobs_process_dies(tmp_path: Path, moto_endpoint: str) -> None:
    with FakeSlackApi() as fake, serving(tmp_path, moto_endpoint, fake) as (proc, log):
        jobs = _jobs_pid(log)
        assert jobs != proc.pid
        os.kill(jobs, signal.SIGKILL)
        assert proc.wait(60) == 1
    text = log.read_text()
    assert f"the jobs process (pid {jobs}) exited" in text and "stopped cleanly" in text
    assert TOKEN not in text and SECRET not in text


def test_jobs_process_stops_when_serve_is_killed(tmp_path: Path, moto_endpoint: str) -> None:
    with FakeSlackApi() as fake, serving(tmp_path, moto_endpoint, fake) as (proc, log):
        jobs = _jobs_pid(log)
        proc.kill()
        proc.wait(30)
        _wait(lambda: _gone(jobs), "the orphaned jobs process to stop", timeout=60)
    assert "the serve process went away" in log.read_text()


def test_sigint_to_the_process_group_is_handled_by_serve_alone(tmp_path: Path, moto_endpoint: str) -> None:
    """A Ctrl-C reaches every process of the group; the jobs process ignores it and stops when serve says."""
    with FakeSlackApi() as fake, serving(tmp_path, moto_endpoint, fake, preexec=os.setsid) as (proc, log):
        jobs = _jobs_pid(log)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(60) == 0
        _wait(lambda: _gone(jobs), "the jobs process to stop")
    text = log.read_text()
    assert "SIGINT received" in text and "stopped cleanly" in text and "Traceback" not in text


def _lower_open_files() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))


def test_real_request_served_with_more_idle_connections_than_file_descriptors(tmp_path: Path,
                                                                             moto_endpoint: str) -> None:
    """serve runs with 256 open files; 400 idle connections are opened against it (each would hold a file, and
    none sends anything), then a signed slash command on a new connection is answered."""
    with FakeSlackApi() as fake, serving(tmp_path, moto_endpoint, fake, preexec=_lower_open_files) as (proc, log):
        url = urlparse(_url(log))
        address = (url.hostname or "127.0.0.1", url.port or 80)
        idle = []
        try:
            for _ in range(400):
                idle.append(socket.create_connection(address, timeout=10))
            answer_url = fake.response_url("through-the-crowd")
            body = urlencode({"team_id": fake.team_id, "channel_id": "C0123456789", "user_id": "U0123456789",
                              "command": "/tighten", "text": "help", "response_url": answer_url,
                              "trigger_id": "t.1"}).encode()
            headers = signed_request(body, SECRET)
            head = [f"POST {url.path} HTTP/1.1", "Host: x", f"Content-Length: {len(body)}"]
            head += [f"{k}: {v}" for k, v in headers.items()]
            with socket.create_connection(address, timeout=10) as sock:
                sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
                assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
            fake.wait_for("response_url", timeout=10)
            assert proc.poll() is None
        finally:
            for sock in idle:
                sock.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    text = log.read_text()
    assert "HTTP connection limit (" in text and "cap 128" in text
    assert "Traceback" not in text and "Too many open files" not in text


def test_serve_in_socket_mode_takes_commands_and_clicks(tmp_path: Path, moto_endpoint: str) -> None:
    """The default transport, as deployed: serve opens its connection with the app-level token and acks a slash
    command and a click; SIGTERM closes it cleanly; no token appears in the log."""
    with FakeSlackApi() as fake, SocketModeServer() as socket_mode:
        fake.socket_mode_url = socket_mode.new_url
        with serving(tmp_path, moto_endpoint, fake, mode="socket") as (proc, log):
            link = socket_mode.wait_for_link(1)
            url = fake.response_url("socket-help")
            ack = socket_mode.request("slash_commands", {
                "team_id": fake.team_id, "channel_id": "C0123456789", "user_id": "U0123456789",
                "command": "/tighten", "text": "help", "response_url": url, "trigger_id": "t.1"})
            assert set(ack) == {"envelope_id"}
            fake.wait_for("response_url", timeout=10)
            click = socket_mode.request("interactive", {
                "type": "block_actions", "user": {"id": "U0123456789"}, "team": {"id": fake.team_id},
                "api_app_id": "A0TIGHTEN", "trigger_id": "t.2", "channel": {"id": "C0123456789"},
                "container": {"type": "message", "channel_id": "C0123456789", "message_ts": "1.1"},
                "message": {"ts": "1.1", "type": "message"}, "response_url": fake.response_url("click"),
                "actions": [{"type": "button", "action_id": "tighten.proposal.approve", "block_id": "b",
                             "value": "p-does-not-exist", "action_ts": "1"}]})
            assert click["envelope_id"]
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0
            socket_mode.wait_closed(link)
    text = log.read_text()
    assert "stopped cleanly" in text and "Traceback" not in text
    assert TOKEN not in text and APP_TOKEN not in text and "xapp-" not in text
