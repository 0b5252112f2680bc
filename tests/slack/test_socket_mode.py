"""Socket Mode's own protocol, end to end against the local Socket Mode server: the app-level token opens the
connection, every envelope is acked by id on the connection it came from, and the app reconnects (with a new
``apps.connections.open``) when Slack asks it to or drops the connection. The flows themselves (slash command,
Approve, Reject with a reason...) run over Socket Mode in test_commands_e2e.py and test_review_e2e.py."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.ids import COMMAND
from tests.slack.conftest import ALICE, APP_TOKEN, CHANNEL, Harness
from tests.slack.socket_mode_server import SocketModeServer


def _command_payload(h: Harness, text: str, url: str) -> dict[str, str]:
    return {"team_id": h.fake.team_id, "channel_id": CHANNEL, "user_id": ALICE, "command": COMMAND,
            "text": text, "response_url": url, "trigger_id": "t.1", "api_app_id": "A0TIGHTEN"}


def test_connection_opened_with_the_app_token_and_hello(socket_harness: Harness) -> None:
    h = socket_harness
    assert h.socket_mode is not None
    (opened,) = h.fake.calls_to("apps.connections.open")
    assert opened.status == 200 and not h.socket_mode.refused
    link = h.socket_mode.wait_for_link(1)
    assert h.handler.client.is_connected()
    assert h.socket_mode.open_links() == [link]


def test_every_envelope_is_acked_by_id_on_its_connection(socket_harness: Harness) -> None:
    h = socket_harness
    assert h.socket_mode is not None
    urls = [h.fake.response_url(f"e{i}") for i in range(5)]
    ids = [h.socket_mode.send_envelope("slash_commands", _command_payload(h, "help", url)) for url in urls]
    acks = [h.socket_mode.wait_for_ack(envelope_id) for envelope_id in ids]
    assert [a["envelope_id"] for a in acks] == ids
    link = h.socket_mode.wait_for_link(1)
    assert sorted(m["envelope_id"] for m in link.received) == sorted(ids)  # one ack each, nothing else
    for url in urls:
        assert "/tighten help" in h.wait_response(url)["text"]


def test_reconnects_when_asked_to(socket_harness: Harness) -> None:
    h = socket_harness
    assert h.socket_mode is not None
    first = h.socket_mode.wait_for_link(1)
    second = h.socket_mode.ask_to_reconnect("refresh_requested")
    assert second.ticket != first.ticket  # a new apps.connections.open, a new one-time ticket
    assert len(h.fake.calls_to("apps.connections.open", ok_only=True)) == 2
    h.socket_mode.wait_closed(first)
    url = h.fake.response_url("after-refresh")
    ack = h.socket_mode.wait_for_ack(
        h.socket_mode.send_envelope("slash_commands", _command_payload(h, "help", url), link=second))
    assert ack["envelope_id"] and "/tighten help" in h.wait_response(url)["text"]


@pytest.mark.slow
def test_reconnects_when_the_connection_drops(socket_harness: Harness) -> None:
    """Without a disconnect message first, the client notices at its next connection check (every 10 s)."""
    h = socket_harness
    assert h.socket_mode is not None
    h.add_role()
    second = h.socket_mode.drop(timeout=30)
    assert len(h.fake.calls_to("apps.connections.open", ok_only=True)) == 2
    answer = h.command("scan reporting")
    assert "queued" in answer["text"]
    assert second.received and not second.closed


def test_a_ticket_opens_one_connection_only() -> None:
    import websockets.sync.client

    with SocketModeServer() as server:
        url = server.new_url()
        with websockets.sync.client.connect(url) as ws:
            assert '"hello"' in str(ws.recv(timeout=5))
        with pytest.raises(Exception), websockets.sync.client.connect(url) as ws:  # noqa: B017, PT011
            ws.recv(timeout=5)
        assert server.refused


def test_tokens_are_used_for_what_they_are_for(socket_harness: Harness) -> None:
    """The app-level token only opens connections; the bot token does the rest (the fake refuses a mix-up)."""
    with pytest.raises(SlackApiError, match="not_allowed_token_type"):
        WebClient(token=APP_TOKEN, base_url=socket_harness.fake.base_url).chat_postMessage(channel=CHANNEL,
                                                                                         text="x")
    with pytest.raises(SlackApiError, match="not_allowed_token_type"):
        WebClient(token="xoxb-test", base_url=socket_harness.fake.base_url).apps_connections_open(
            app_token="xoxb-test")


def test_form_encoded_commands_are_not_needed(socket_harness: Harness) -> None:
    """In Socket Mode the payload is JSON from the start: a command text mentioning "payload" arrives intact."""
    h = socket_harness
    h.add_role("payload-processor")
    body = urlencode(_command_payload(h, "scan payload-processor", h.fake.response_url("p")))
    status, _ = h.deliver(body)
    assert status == 200 and "queued" in h.wait_response(h.fake.response_url("p"))["text"]
