"""A local stand-in for Slack's Socket Mode endpoint, for tests (real WebSocket frames on 127.0.0.1).

Slack's Socket Mode protocol (https://api.slack.com/apis/socket-mode), as this fake speaks it:

1. The app calls ``apps.connections.open`` with its app-level token (``xapp-``); the fake Web API
   (``FakeSlackApi.socket_mode_url``) answers with a one-time ``ws://127.0.0.1:<port>/link/?ticket=...`` URL
   from :meth:`SocketModeServer.new_url`. A ticket is good for one connection; anything else is refused.
2. On connecting, the server sends ``{"type": "hello", ...}``.
3. Each request Slack would POST in HTTP mode arrives as an envelope ``{"envelope_id", "type": "slash_commands" |
   "interactive" | "events_api", "payload": <the HTTP body as JSON>, "accepts_response_payload"}``; the app
   answers ``{"envelope_id"[, "payload"]}`` (the ack; its payload is what an HTTP response body would carry,
   e.g. ``response_action`` errors of a view submission).
4. ``{"type": "disconnect", "reason": "refresh_requested"}`` asks the app to open a new connection (a fresh
   ``apps.connections.open``); the server closes the old one once the new one is up. The server may also just
   close a connection; the app is expected to reconnect the same way.

Frames are handled by the ``websockets`` library, independent of slack_sdk's own WebSocket client.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve


@dataclass
class Link:
    """One accepted WebSocket connection."""

    number: int
    ticket: str
    connection: ServerConnection
    received: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False


class SocketModeServer:
    def __init__(self, app_id: str = "A0TIGHTEN") -> None:
        self.app_id = app_id
        self.links: list[Link] = []
        self.acks: dict[str, dict[str, Any]] = {}
        self.refused: list[str] = []  # why connections were refused
        self._tickets: set[str] = set()
        self._numbers = itertools.count(1)
        self._lock = threading.Condition()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle --------------------------------------------------------------------------------------------
    def start(self) -> SocketModeServer:
        self._server = serve(self._handle, "127.0.0.1", 0, compression=None, ping_interval=None)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-socket-mode", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def __enter__(self) -> SocketModeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.socket.getsockname()[1])

    def new_url(self) -> str:
        """What ``apps.connections.open`` returns: a URL with a fresh one-time ticket."""
        ticket = uuid.uuid4().hex
        with self._lock:
            self._tickets.add(ticket)
        return f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"

    # -- the server side of each connection ------------------------------------------------------------------
    def _handle(self, connection: ServerConnection) -> None:
        url = urlparse(connection.request.path if connection.request else "")
        ticket = (parse_qs(url.query).get("ticket") or [""])[0]
        with self._lock:
            if url.path != "/link/" or ticket not in self._tickets:
                self.refused.append(f"path {url.path!r}, ticket {'known' if ticket in self._tickets else 'unknown'}")
                self._lock.notify_all()
                connection.close(code=1008, reason="invalid ticket")
                return
            self._tickets.discard(ticket)
            link = Link(number=next(self._numbers), ticket=ticket, connection=connection)
            self.links.append(link)
            self._lock.notify_all()
        connection.send(json.dumps({"type": "hello", "num_connections": len(self.open_links()),
                                    "debug_info": {"host": "fake-socket-mode", "build_number": 1,
                                                   "approximate_connection_time": 18060},
                                    "connection_info": {"app_id": self.app_id}}))
        try:
            for raw in connection:
                message = json.loads(raw)
                with self._lock:
                    link.received.append(message)
                    if isinstance(message, dict) and message.get("envelope_id"):
                        self.acks[message["envelope_id"]] = message
                    self._lock.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                link.closed = True
                self._lock.notify_all()

    # -- test controls ----------------------------------------------------------------------------------------
    def open_links(self) -> list[Link]:
        return [link for link in self.links if not link.closed]

    def wait_for_link(self, number: int = 1, timeout: float = 10.0) -> Link:
        """Block until the ``number``-th connection is open; returns it."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.links) >= number and not self.links[number - 1].closed,
                                       timeout):
                raise TimeoutError(f"connection {number} was not opened (refused: {self.refused})")
            return self.links[number - 1]

    def send_envelope(self, kind: str, payload: dict[str, Any], *, accepts_response_payload: bool | None = None,
                      link: Link | None = None) -> str:
        """Send one envelope on ``link`` (default: the newest open connection); returns its envelope_id."""
        target = link or self.wait_for_link(len(self.links) or 1)
        envelope_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {"envelope_id": envelope_id, "type": kind, "payload": payload,
                                    "accepts_response_payload": kind != "events_api"
                                    if accepts_response_payload is None else accepts_response_payload}
        if kind == "events_api":
            envelope.update(retry_attempt=0, retry_reason="")
        target.connection.send(json.dumps(envelope))
        return envelope_id

    def wait_for_ack(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any]:
        with self._lock:
            if not self._lock.wait_for(lambda: envelope_id in self.acks, timeout):
                raise TimeoutError(f"envelope {envelope_id} was not acknowledged")
            return self.acks[envelope_id]

    def request(self, kind: str, payload: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        """Send an envelope and return the app's ack."""
        return self.wait_for_ack(self.send_envelope(kind, payload), timeout)

    def ask_to_reconnect(self, reason: str = "refresh_requested", timeout: float = 10.0) -> Link:
        """Send ``disconnect`` on the newest connection, wait for the app's new connection, then close the old
        one (as Slack does); returns the new connection."""
        old = self.wait_for_link(len(self.links))
        old.connection.send(json.dumps({"type": "disconnect", "reason": reason,
                                        "debug_info": {"host": "fake-socket-mode"}}))
        new = self.wait_for_link(old.number + 1, timeout)
        old.connection.close(code=1001, reason="refreshed")
        return new

    def drop(self, timeout: float = 10.0) -> Link:
        """Close the newest connection from the server side; returns the connection the app opens next."""
        old = self.wait_for_link(len(self.links))
        old.connection.close(code=1011, reason="server restarting")
        return self.wait_for_link(old.number + 1, timeout)

    def wait_closed(self, link: Link, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not link.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"connection {link.number} is still open")
                self._lock.wait(left)
