"""Slack ack latency of ``tighten serve --mode http``, idle and while the worker scans hundreds of roles.

    python bench/ack_latency.py [--roles 200] [--rate 5] [--idle 150] [--max-busy 1500] [--checkout DIR]

Sets up the embedded moto server (``--roles`` roles: a third with AdministratorAccess, a third with ``s3:*``,
a third already tight, each with usage in the index) and the local fake Slack Web API, then runs the real
``tighten serve --mode http`` in a child process against both. Signed Slack requests (``/tighten help``,
``/tighten queue``, a View policy click, an ``app_home_opened`` event, in turn) are sent at a fixed rate, each
on a new connection and its own thread (an open loop: a slow ack never delays the next request):

1. idle: ``--idle`` requests with nothing queued;
2. busy: a ``plan`` work item is queued (inventory and ranking of every role, then one scan per role) and
   requests keep coming until every scan finished (or ``--max-busy`` requests).

Prints p50/p99/max of the ack (HTTP response) time per phase, the follow-up time of slash commands (until the
answer reached the response_url), and how many scans finished while the busy phase ran. ``--checkout DIR``
runs the serve of another checkout of the repository (to compare before and after a change).
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlparse

import boto3
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.aws.embedded import FAKE_CREDENTIALS, start_embedded_aws  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.demo.fake_slack import FakeSlackApi  # noqa: E402
from bot.slack.ids import COMMAND, ActionId  # noqa: E402
from bot.slack.signing import signed_request  # noqa: E402
from bot.store.db import open_db  # noqa: E402
from bot.store.queue import WorkQueue  # noqa: E402
from bot.store.usage import ObjectUsage, UsageIndex  # noqa: E402
from bot.util.clock import iso  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"  # moto's default account
CHANNEL = "C0BENCH001"
APPROVER = "U0BENCH001"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
NEVER = "0 0 1 1 *"  # cron: no trigger fires during the bench


@dataclass
class Sample:
    kind: str
    started: float
    ack: float | None = None  # seconds until the HTTP response was read
    status: int | None = None
    response_url: str | None = None
    error: str | None = None


@dataclass
class Phase:
    name: str
    samples: list[Sample] = field(default_factory=list)


def _policy(actions: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions,
                                                               "Resource": "*"}]})


def seed(aws_url: str, db_path: Path, roles: int) -> None:
    iam = boto3.client("iam", endpoint_url=aws_url, region_name="us-east-1")
    iam.create_role(RoleName="TightenApplier", AssumeRolePolicyDocument=TRUST)
    now = datetime.now(UTC).replace(microsecond=0)
    objects = []
    for i in range(roles):
        name = f"role-{i:03d}"
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
        if i % 3 == 0:
            iam.attach_role_policy(RoleName=name, PolicyArn=ADMIN)
        else:
            actions = "s3:*" if i % 3 == 1 else "s3:ListAllMyBuckets"
            iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=_policy(actions))
        t = iso(now - timedelta(days=2))
        obj = ObjectUsage(key=f"AWSLogs/{ACCOUNT}/bench-{i}.json.gz", size=1, etag="e", events=5, usage_events=5)
        obj.usage[(ACCOUNT, arn, "s3:ListAllMyBuckets", "*", "", t[:10])] = [5, t, t]
        obj.principals[arn] = ["role", ACCOUNT, False, 5, 0, t, t]
        objects.append(obj)
    index = UsageIndex(open_db(db_path))
    index.record_objects(objects)
    index.db.conn.close()


def write_config(tmp: Path) -> Path:
    raw = {
        "store": {"path": str(tmp / "tighten.db")},
        "cloudtrail": {"lookback_days": 30},
        "accounts": [{"id": ACCOUNT, "name": "bench", "channel": CHANNEL, "approvers": {"users": [APPROVER]}}],
        "slack": {"mode": "http"},
        "schedules": {"plan": NEVER, "expire": NEVER, "watch": NEVER},
    }
    path = tmp / "tighten.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


class Client:
    """Builds and sends the signed requests Slack would send."""

    def __init__(self, url: str, secret: str, fake: FakeSlackApi) -> None:
        parsed = urlparse(url)
        self.host, self.port, self.path = parsed.hostname or "127.0.0.1", parsed.port or 80, parsed.path
        self.secret = secret
        self.fake = fake
        self.n = 0

    def next_request(self) -> tuple[str, bytes, str, str | None]:
        """(kind, body, content type, response_url) of the next request in the rotation."""
        self.n += 1
        turn = self.n % 4
        if turn in (0, 1):
            text = "help" if turn == 0 else "queue"
            url = self.fake.response_url(f"bench-{self.n}")
            body = urlencode({"team_id": self.fake.team_id, "channel_id": CHANNEL, "user_id": APPROVER,
                              "command": COMMAND, "text": text, "response_url": url, "trigger_id": f"t.{self.n}"})
            return f"command {text}", body.encode(), "application/x-www-form-urlencoded", url
        if turn == 2:
            payload = {"type": "block_actions", "user": {"id": APPROVER}, "team": {"id": self.fake.team_id},
                       "api_app_id": "A0BENCH", "trigger_id": f"t.{self.n}", "channel": {"id": CHANNEL},
                       "container": {"type": "message", "channel_id": CHANNEL, "message_ts": "1.1"},
                       "message": {"ts": "1.1", "type": "message"}, "response_url": self.fake.response_url(),
                       "actions": [{"type": "button", "action_id": ActionId.VIEW_POLICY, "block_id": "b",
                                    "value": "p-not-a-proposal", "action_ts": "1"}]}
            return "click", urlencode({"payload": json.dumps(payload)}).encode(), \
                "application/x-www-form-urlencoded", None
        event = {"type": "event_callback", "team_id": self.fake.team_id, "api_app_id": "A0BENCH",
                 "event": {"type": "app_home_opened", "user": APPROVER, "tab": "home", "channel": "D0BENCH"},
                 "event_id": f"Ev{self.n}", "event_time": int(time.time())}
        return "event", json.dumps(event).encode(), "application/json", None

    def send(self, sample: Sample, body: bytes, content_type: str) -> None:
        headers = signed_request(body, self.secret, content_type=content_type)
        try:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            conn.request("POST", self.path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            sample.ack = time.monotonic() - sample.started
            sample.status = response.status
            conn.close()
        except OSError as exc:
            sample.error = f"{type(exc).__name__}: {exc}"


def run_phase(phase: Phase, client: Client, rate: float, done: threading.Event | None, count: int) -> None:
    """Send requests every 1/rate s until ``count`` were sent or ``done`` is set."""
    threads = []
    t0 = time.monotonic()
    for i in range(count):
        if done is not None and done.is_set():
            break
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        kind, body, content_type, url = client.next_request()
        sample = Sample(kind=kind, started=time.monotonic(), response_url=url)
        phase.samples.append(sample)
        thread = threading.Thread(target=client.send, args=(sample, body, content_type), daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(35)


def percentiles(values: list[float]) -> str:
    if not values:
        return "no samples"
    ms = sorted(v * 1000 for v in values)
    p50 = statistics.median(ms)
    p99 = statistics.quantiles(ms, n=100, method="inclusive")[98] if len(ms) > 1 else ms[0]
    return f"p50 {p50:5.1f} ms  p99 {p99:6.1f} ms  max {ms[-1]:6.1f} ms  (n={len(ms)})"


def follow_ups(phase: Phase, fake: FakeSlackApi) -> list[float]:
    arrived = {c.path.rsplit("/", 1)[-1]: c.at for c in fake.calls_to("response_url")}
    out = []
    for s in phase.samples:
        if s.response_url:
            at = arrived.get(s.response_url.rsplit("/", 1)[-1])
            if at is not None:
                out.append(at - s.started)
    return out


def report(phase: Phase, fake: FakeSlackApi) -> None:
    acks = [s.ack for s in phase.samples if s.ack is not None]
    bad = [s for s in phase.samples if s.ack is None or s.status != 200]
    print(f"{phase.name:5s} ack       {percentiles(acks)}"
          + (f"; {len(bad)} failed, e.g. {bad[0].error or bad[0].status}" if bad else ""))
    print(f"{phase.name:5s} follow-up {percentiles(follow_ups(phase, fake))}")


def wait_for_url(log_path: Path, proc: subprocess.Popen[bytes], timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(r"listening for Slack on (http://\S+)", log_path.read_text(errors="replace"))
        if match:
            return match.group(1)
        if proc.poll() is not None:
            raise SystemExit(f"serve exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
        time.sleep(0.1)
    raise SystemExit("serve did not start listening")


def scans_state(db_path: Path) -> tuple[int, int]:
    """(finished scans, scan and plan items still pending or running)."""
    db = open_db(db_path)
    try:
        finished = db.conn.execute("SELECT COUNT(*) FROM work_items WHERE kind = 'scan' AND state = 'done'")
        open_items = db.conn.execute(
            "SELECT COUNT(*) FROM work_items WHERE kind IN ('scan', 'plan') AND state IN ('pending', 'running')")
        return int(finished.fetchone()[0]), int(open_items.fetchone()[0])
    finally:
        db.conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--roles", type=int, default=200)
    parser.add_argument("--rate", type=float, default=5.0, help="requests per second")
    parser.add_argument("--idle", type=int, default=150, help="requests in the idle phase")
    parser.add_argument("--max-busy", type=int, default=1500, help="most requests in the busy phase")
    parser.add_argument("--checkout", type=Path, default=REPO, help="the repository checkout whose serve runs")
    args = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    aws = start_embedded_aws(load_managed_policies=True)
    tmp = Path(tempfile.mkdtemp(prefix="tighten-ack-bench-"))
    secret = secrets.token_hex(16)
    proc: subprocess.Popen[bytes] | None = None
    with FakeSlackApi() as fake:
        try:
            config_path = write_config(tmp)
            db_path = Path(load_config(config_path).db_path)
            t0 = time.perf_counter()
            seed(aws.endpoint_url, db_path, args.roles)
            print(f"seeded {args.roles} roles on moto in {time.perf_counter() - t0:.1f} s")
            checkout = args.checkout.resolve()
            env = {**os.environ, **FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": aws.endpoint_url,
                   "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": secret, "PYTHONUNBUFFERED": "1",
                   "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(checkout)}
            log_path = tmp / "serve.log"
            with log_path.open("wb") as log_file:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "bot.cli", "serve", "--config", str(config_path), "--mode", "http",
                     "--host", "127.0.0.1", "--port", "0", "--slack-api-url", fake.base_url],
                    cwd=checkout, env=env, stdout=log_file, stderr=subprocess.STDOUT)
            client = Client(wait_for_url(log_path, proc), secret, fake)
            for _ in range(8):  # warm up (imports, first connections)
                kind, body, content_type, _url = client.next_request()
                client.send(Sample(kind=kind, started=time.monotonic()), body, content_type)

            idle = Phase("idle")
            run_phase(idle, client, args.rate, None, args.idle)

            db = open_db(db_path)
            WorkQueue(db).enqueue("plan", {}, priority=120, dedupe_key="plan", requested_by="bench")
            db.conn.close()
            busy = Phase("busy")
            done = threading.Event()

            def watch() -> None:
                while not done.is_set():
                    _finished, open_items = scans_state(db_path)
                    if open_items == 0:
                        done.set()
                    done.wait(0.5)

            watcher = threading.Thread(target=watch, daemon=True)
            started = time.perf_counter()
            watcher.start()
            run_phase(busy, client, args.rate, done, args.max_busy)
            busy_seconds = time.perf_counter() - started
            finished, open_items = scans_state(db_path)
            done.set()
            time.sleep(3)  # late follow-ups
            print(f"busy phase: {busy_seconds:.0f} s, {finished} scans finished"
                  + (f", {open_items} items still open" if open_items else ""))
            report(idle, fake)
            report(busy, fake)
        finally:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
            aws.stop()


if __name__ == "__main__":
    main()
