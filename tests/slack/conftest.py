"""End-to-end harness: the Bolt app reached the two ways Slack reaches it, on 127.0.0.1, with FakeSlackApi.

* ``http``: real signed HTTP requests to the app's HTTP front end;
* ``socket``: the app connected in Socket Mode (``apps.connections.open`` on the fake Web API, then a real
  WebSocket to ``tests/slack/socket_mode_server.py``); each request is sent as the envelope Slack would send
  and the answer is the app's ack.

``harness`` runs a test over both; ``http_harness`` is for what only HTTP mode has (signatures, limits).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from slack_bolt import App

from bot.config import Account, Approvers, Config
from bot.demo.fake_slack import FakeSlackApi
from bot.slack.app import BoltHttpServer, build_app, make_client, socket_mode_handler, start_http
from bot.slack.context import AppContext
from bot.slack.signing import signed_request
from bot.store.proposals import Proposal
from bot.store.roles import KnownRole
from tests.slack.socket_mode_server import SocketModeServer

SECRET = "test-signing-secret"
APP_TOKEN = "xapp-1-A0TIGHTEN-1-test"
FORM = "application/x-www-form-urlencoded"
ACCOUNT = "111122223333"
CHANNEL = "C0REVIEW01"
ALICE = "U0ALICE001"  # approver by user ID
BOB = "U0BOB00001"  # approver through the user group
MALLORY = "U0MALLORY1"  # not an approver
GROUP = "S0APPROVE1"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/reporting"
POLICY = {"Version": "2012-10-17",
          "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                         "Resource": ["arn:aws:s3:::reports", "arn:aws:s3:::reports/*"]}]}


def make_config(tmp_path: Path, *, allow_self_approval: bool = False) -> Config:
    return Config(
        accounts=(Account(id=ACCOUNT, name="prod", channel=CHANNEL,
                          approvers=Approvers(users=(ALICE,), groups=(GROUP,))),),
        allow_self_approval=allow_self_approval,
        allowlist_path=str(tmp_path / "allowlist.yaml"),
    )


@dataclass
class Harness:
    fake: FakeSlackApi
    ctx: AppContext
    app: App
    transport: str  # "http" | "socket"
    server: BoltHttpServer | None = None  # HTTP mode
    socket_mode: SocketModeServer | None = None  # Socket Mode
    handler: Any = None  # the app's SocketModeHandler

    # -- sending requests the way Slack does ---------------------------------------------------------
    def deliver(self, body: str, content_type: str = FORM) -> tuple[int, str]:
        """Send ``body`` (what Slack would POST in HTTP mode) over this harness's transport; returns the
        status and the response body (Socket Mode: 200 and the ack's payload once acknowledged)."""
        if self.socket_mode is None:
            return self.signed(body, content_type=content_type)
        if content_type == "application/json":
            kind, payload = "events_api", json.loads(body)
        else:
            fields = dict(parse_qsl(body, keep_blank_values=True))
            kind, payload = ("interactive", json.loads(fields["payload"])) if "payload" in fields \
                else ("slash_commands", fields)
        try:
            ack = self.socket_mode.request(kind, payload)
        except TimeoutError:
            return 0, "no ack"
        return 200, json.dumps(ack["payload"]) if "payload" in ack else ""

    def post(self, body: str, headers: dict[str, str]) -> tuple[int, str]:
        assert self.server is not None, "HTTP mode only"
        req = urllib.request.Request(self.server.url, data=body.encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def signed(self, body: str, *, timestamp: int | None = None, content_type: str | None = None) -> tuple[int, str]:
        kwargs: dict[str, Any] = {"timestamp": timestamp}
        if content_type:
            kwargs["content_type"] = content_type
        return self.post(body, signed_request(body, SECRET, **kwargs))

    def command(self, text: str, user: str = ALICE) -> dict[str, Any]:
        """Run ``/tighten <text>`` and return the ephemeral answer posted to the response_url."""
        url = self.fake.response_url()
        body = urlencode({"token": "x", "team_id": self.fake.team_id, "channel_id": CHANNEL, "user_id": user,
                          "command": "/tighten", "text": text, "response_url": url, "trigger_id": "t.1"})
        status, _ = self.deliver(body)
        assert status == 200
        return self.wait_response(url)

    def wait_response(self, url: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for call in self.fake.calls_to("response_url"):
                if url.endswith(call.path):
                    return call.params
            time.sleep(0.01)
        raise TimeoutError(f"no response posted to {url}")

    def action_body(self, action_id: str, value: str, user: str = ALICE, *, channel: str | None = CHANNEL,
                    ts: str | None = None, block_id: str = "b") -> str:
        payload: dict[str, Any] = {
            "type": "block_actions", "user": {"id": user}, "team": {"id": self.fake.team_id},
            "api_app_id": "A0TIGHTEN", "trigger_id": f"trigger-{time.monotonic_ns()}",
            "actions": [{"type": "button", "action_id": action_id, "block_id": block_id, "value": value,
                         "action_ts": "1"}],
        }
        if channel:
            payload["channel"] = {"id": channel}
            payload["container"] = {"type": "message", "channel_id": channel, "message_ts": ts}
            payload["message"] = {"ts": ts, "type": "message"}
            payload["response_url"] = self.fake.response_url()
        else:
            payload["container"] = {"type": "view", "view_id": "V1"}
        return urlencode({"payload": json.dumps(payload)})

    def click(self, action_id: str, value: str, user: str = ALICE, **kw: Any) -> int:
        status, _ = self.deliver(self.action_body(action_id, value, user, **kw))
        return status

    def submit_view(self, callback_id: str, private_metadata: str, values: dict[str, Any],
                    user: str = ALICE) -> tuple[int, str]:
        payload = {"type": "view_submission", "user": {"id": user}, "team": {"id": self.fake.team_id},
                   "api_app_id": "A0TIGHTEN", "trigger_id": "t.2",
                   "view": {"id": "V0MODAL1", "type": "modal", "callback_id": callback_id,
                            "private_metadata": private_metadata, "state": {"values": values}}}
        return self.deliver(urlencode({"payload": json.dumps(payload)}))

    def event(self, event: dict[str, Any]) -> int:
        body = json.dumps({"type": "event_callback", "team_id": self.fake.team_id, "api_app_id": "A0TIGHTEN",
                           "event": event, "event_id": f"Ev{time.monotonic_ns()}", "event_time": int(time.time())})
        status, _ = self.deliver(body, content_type="application/json")
        return status

    # -- seeding ---------------------------------------------------------------------------------------
    def add_role(self, name: str = "reporting", account: str = ACCOUNT, **kw: Any) -> KnownRole:
        role = KnownRole(account=account, arn=f"arn:aws:iam::{account}:role/{name}", name=name, **kw)
        self.ctx.roles.upsert(role)
        return role

    def add_proposal(self, role: str = "reporting", requested_by: str | None = None, **kw: Any) -> Proposal:
        fields: dict[str, Any] = dict(
            account=ACCOUNT, principal_arn=f"arn:aws:iam::{ACCOUNT}:role/{role}", role_name=role,
            documents=[POLICY], summary="removes 11,873 actions across 402 services; keeps 2 actions in 1 service",
            diff_text="- iam:*\n- s3:*\n+ s3:GetObject\n+ s3:ListBucket", unified_diff="--- current\n+++ proposed",
            risk_score=9.5, risk_reasons=["AdministratorAccess attached", "99% of granted actions unused"],
            warnings=[{"code": "data-events", "message": "S3 data events are not logged by the trail"}],
            stats={"current_actions": 11875, "proposed_actions": 2, "removed": 11873, "kept": 2},
            requested_by=requested_by)
        fields.update(kw)
        return self.ctx.proposals.create(**fields)


@pytest.fixture()
def fake() -> Iterator[FakeSlackApi]:
    with FakeSlackApi(usergroups={GROUP: [BOB]}) as api:
        yield api


def _harness(tmp_path: Path, fake: FakeSlackApi, config: Config, transport: str = "http") -> Iterator[Harness]:
    ctx = AppContext(db_path=str(tmp_path / "tighten.db"), config=config)
    client = make_client("xoxb-test", base_url=fake.base_url, wait_scale=0.0, backoff=0.001)
    app = build_app(ctx, signing_secret=SECRET, client=client)
    if transport == "http":
        server = start_http(app, SECRET)
        try:
            yield Harness(fake=fake, ctx=ctx, app=app, transport=transport, server=server)
        finally:
            server.stop()
        return
    with SocketModeServer() as socket_mode:
        fake.socket_mode_url = socket_mode.new_url
        handler = socket_mode_handler(app, APP_TOKEN)
        handler.connect()
        socket_mode.wait_for_link(1)
        try:
            yield Harness(fake=fake, ctx=ctx, app=app, transport=transport, socket_mode=socket_mode,
                          handler=handler)
        finally:
            # the client's receive loop waits up to 3 s for data before it notices close(): end the connection
            # from the server side first (with reconnecting off)
            handler.client.auto_reconnect_enabled = False
            socket_mode.stop()
            handler.close()


@pytest.fixture(params=["http", "socket"])
def harness(request: pytest.FixtureRequest, tmp_path: Path, fake: FakeSlackApi) -> Iterator[Harness]:
    """The app over HTTP, then over Socket Mode."""
    yield from _harness(tmp_path, fake, make_config(tmp_path), request.param)


@pytest.fixture()
def http_harness(tmp_path: Path, fake: FakeSlackApi) -> Iterator[Harness]:
    yield from _harness(tmp_path, fake, make_config(tmp_path))


@pytest.fixture()
def socket_harness(tmp_path: Path, fake: FakeSlackApi) -> Iterator[Harness]:
    yield from _harness(tmp_path, fake, make_config(tmp_path), "socket")


@pytest.fixture()
def self_approving_harness(tmp_path: Path, fake: FakeSlackApi) -> Iterator[Harness]:
    yield from _harness(tmp_path, fake, make_config(tmp_path, allow_self_approval=True))


def wait_until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll ``condition`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.01)


def action_ids(message: dict[str, Any]) -> list[str]:
    """The action ids of a posted message's buttons, in order."""
    return [el["action_id"] for b in message["blocks"] if b["type"] == "actions" for el in b["elements"]]
