"""HTTP mode under idle connections: can a real Slack request still get through?

    python bench/http_connections.py [--idle 1000] [--nofile 1024] [--requests 50] [--checkout DIR]

Runs ``tighten serve --mode http`` (against the local fake Slack Web API; no jobs are scheduled) with its
open-files limit set to ``--nofile``, opens ``--idle`` connections that never send anything, then sends
``--requests`` signed ``/tighten help`` commands at 5/s, each on a new connection, while the idle ones stay
open. Prints the ack times (p50/p99/max, and how many failed or timed out after 10 s), the serve process's open
files, threads and resident memory with the idle connections open, how many idle connections the server had
closed by the end, and how long until it closed all of them. ``--checkout DIR`` runs the serve of another
checkout of the repository (to compare before and after a change).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode, urlparse

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.demo.fake_slack import FakeSlackApi  # noqa: E402
from bot.slack.signing import signed_request  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
NEVER = "0 0 1 1 *"


def proc_status(pid: int) -> str:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return "(gone)"
    threads = re.search(r"Threads:\s+(\d+)", status)
    rss = re.search(r"VmRSS:\s+(\d+) kB", status)
    return (f"{fds} open files, {threads.group(1) if threads else '?'} threads, "
            f"{int(rss.group(1)) // 1024 if rss else '?'} MB resident")


def request_bytes(path: str, secret: str, fake: FakeSlackApi, n: int) -> bytes:
    body = urlencode({"team_id": fake.team_id, "channel_id": "C0BENCH001", "user_id": "U0BENCH001",
                      "command": "/tighten", "text": "help", "response_url": fake.response_url(f"r{n}"),
                      "trigger_id": f"t.{n}"}).encode()
    head = [f"POST {path} HTTP/1.1", "Host: bench", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in signed_request(body, secret).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def send(address: tuple[str, int], data: bytes, results: list[tuple[float | None, str]]) -> None:
    started = time.monotonic()
    try:
        with socket.create_connection(address, timeout=10) as sock:
            sock.sendall(data)
            answer = sock.recv(65536)
        ok = answer.startswith(b"HTTP/1.1 200") or answer.startswith(b"HTTP/1.0 200")
        results.append((time.monotonic() - started, "ok" if ok else answer[:40].decode("latin-1")))
    except OSError as exc:
        results.append((None, type(exc).__name__))


def closed_by_server(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--nofile", type=int, default=1024, help="open-files limit of the serve process")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--checkout", type=Path, default=REPO, help="the repository checkout whose serve runs")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, args.idle + 512))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    tmp = Path(tempfile.mkdtemp(prefix="tighten-conn-bench-"))
    secret = secrets.token_hex(16)
    config = tmp / "tighten.yaml"
    config.write_text(yaml.safe_dump({
        "store": {"path": str(tmp / "tighten.db")},
        "accounts": [{"id": "123456789012", "channel": "C0BENCH001", "approvers": {"users": ["U0BENCH001"]}}],
        "slack": {"mode": "http"},
        "schedules": {"plan": NEVER, "expire": NEVER, "watch": NEVER},
    }))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    checkout = args.checkout.resolve()
    env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": secret,
           "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": str(checkout)}

    def limit_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, hard))

    log_path = tmp / "serve.log"
    with FakeSlackApi() as fake, log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--config", str(config), "--mode", "http",
             "--host", "127.0.0.1", "--port", str(port), "--slack-api-url", fake.base_url],
            cwd=checkout, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=limit_files)
        try:
            deadline = time.monotonic() + 120
            while "listening for Slack on" not in log_path.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"serve did not start:\n{log_path.read_text()[-2000:]}")
                time.sleep(0.1)
            url = re.search(r"listening for Slack on (http://\S+)", log_path.read_text()).group(1)  # type: ignore[union-attr]
            parsed = urlparse(url)
            address = (parsed.hostname or "127.0.0.1", parsed.port or 80)
            print(f"serve (open-files limit {args.nofile}) from {checkout}: {proc_status(proc.pid)}")

            t0 = time.monotonic()
            idle: list[socket.socket] = []
            failed_connects = 0
            for _ in range(args.idle):
                try:
                    idle.append(socket.create_connection(address, timeout=5))
                except OSError:
                    failed_connects += 1
            print(f"{len(idle)} idle connections opened in {time.monotonic() - t0:.1f} s"
                  + (f" ({failed_connects} could not connect)" if failed_connects else ""))
            time.sleep(0.5)
            print(f"with them open: {proc_status(proc.pid)}")

            results: list[tuple[float | None, str]] = []
            threads = []
            start = time.monotonic()
            for i in range(args.requests):
                delay = start + i / 5 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                thread = threading.Thread(target=send, args=(address, request_bytes(parsed.path, secret, fake, i),
                                                             results))
                thread.start()
                threads.append(thread)
            for thread in threads:
                thread.join(15)
            times = sorted(t * 1000 for t, outcome in results if t is not None and outcome == "ok")
            failures = [outcome for t, outcome in results if t is None or outcome != "ok"]
            if times:
                p99 = statistics.quantiles(times, n=100, method="inclusive")[98] if len(times) > 1 else times[0]
                print(f"acks while idle connections are open: p50 {statistics.median(times):.1f} ms, "
                      f"p99 {p99:.1f} ms, max {times[-1]:.1f} ms ({len(times)} of {len(results)} answered 200)")
            if failures:
                print(f"failed: {len(failures)} ({', '.join(sorted(set(failures)))})")
            closed = sum(closed_by_server(s) for s in idle)
            print(f"idle connections closed by the server so far: {closed} of {len(idle)}")
            t1 = time.monotonic()
            while closed < len(idle) and time.monotonic() - t1 < 120:
                time.sleep(0.5)
                closed = sum(closed_by_server(s) for s in idle)
            print(f"all idle connections closed by the server after {time.monotonic() - t0:.1f} s from the first"
                  if closed == len(idle) else f"still open after 120 s more: {len(idle) - closed}")
            print(f"afterwards: {proc_status(proc.pid)}")
            for sock in idle:
                sock.close()
        finally:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        errors = [line for line in log_path.read_text(errors="replace").splitlines()
                  if "Traceback" in line or "ERROR" in line]
        print(f"serve log: {len(log_path.read_text(errors='replace').splitlines())} lines, "
              f"{len(errors)} error lines" + (f", e.g. {errors[0][:160]}" if errors else ""))


if __name__ == "__main__":
    main()
