"""HTTP mode's front end: a small asyncio server in front of the Bolt app, with hard limits.

One event-loop thread accepts connections and reads requests; a bounded pool of threads verifies, parses and
dispatches each complete request to Bolt. Every connection is answered and closed (``Connection: close``).

Limits (:class:`HttpLimits`):

* the request line and headers must arrive within ``header_timeout`` seconds of connecting (a connection that
  sent nothing is closed silently; one that sent part of a request gets 408), and the body within
  ``body_timeout`` seconds after the headers (else 408);
* ``Content-Length`` is required (411) and at most ``max_body`` bytes (413, answered before the body is read);
  the bodies of all open connections together at most ``max_pending_bodies`` (503), so slow senders cannot
  pile up memory; headers at most ``max_header`` bytes (431);
* at most ``max_connections`` open connections (never more than the open-files limit allows, keeping a
  reserve for the store and outgoing calls). When the cap is reached, the oldest connection still being read
  is closed to make room, so a flood of idle connections cannot keep a real request out;
* ``workers`` threads dispatch to Bolt; the event loop itself never runs Bolt code.

Every request is checked before Bolt sees it (:class:`SlackRequestHandler`): the v0 signature over the raw
body bytes and a timestamp within five minutes (401), then a UTF-8 body (400), a known content type (415), and
a body that parses into a JSON object, nesting included, whose well-known fields have Slack's types (400).
Each rejection is answered with its 4xx and
logged on one line; none reaches Bolt, none produces a traceback or a 500. A verified body that Bolt still
cannot route (say, ``actions`` that is not a list) gets a 400 and one line too.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import json
import logging
import re
import resource
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt import App, BoltRequest

from bot.slack.signing import signature as slack_signature

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
#: Slack rejects nothing older; neither do we accept it (replays).
MAX_CLOCK_SKEW = 5 * 60
_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_DIGITS = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE = re.compile(r"^v0=[0-9a-f]{64}$")
_ACCEPT_PRESSURE = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


@dataclass(frozen=True)
class HttpLimits:
    max_body: int = 1024 * 1024  # Slack's payloads are a few kB
    max_pending_bodies: int = 32 * 1024 * 1024  # all bodies being read or served at once (503 beyond)
    max_header: int = 16 * 1024
    max_headers: int = 100
    header_timeout: float = 5.0  # seconds from connect to the end of the headers
    body_timeout: float = 10.0  # seconds from the end of the headers to the end of the body
    write_timeout: float = 10.0
    linger: float = 2.0  # after an early answer (413, 404...), read and drop what is still arriving
    workers: int = 8
    max_connections: int = 256
    fd_reserve: int = 128  # open files kept for the store, outgoing calls and logs


def connection_cap(limits: HttpLimits) -> int:
    """``limits.max_connections``, lowered so that the connections and the reserve fit the open-files limit."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return limits.max_connections
    reserve = min(limits.fd_reserve, soft // 2)
    return max(1, min(limits.max_connections, soft - reserve))


@dataclass(frozen=True)
class HttpRequest:
    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]  # lower-case names
    body: bytes
    peer: str = "-"

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    problem: str = ""  # why the request was refused: logged, never sent

    @classmethod
    def refuse(cls, status: int, problem: str, headers: dict[str, str] | None = None) -> HttpResponse:
        phrase = HTTPStatus(status).phrase
        return cls(status, f"{phrase}\n".encode(), {"Content-Type": "text/plain; charset=utf-8", **(headers or {})},
                   problem)

    def encode(self) -> bytes:
        head = [f"HTTP/1.1 {self.status} {HTTPStatus(self.status).phrase}"]
        for key, value in self.headers.items():
            if key.lower() in ("content-length", "connection", "transfer-encoding"):
                continue
            head.append(f"{key}: {_header_value(value)}")
        head += [f"Content-Length: {len(self.body)}", "Connection: close", "", ""]
        return "\r\n".join(head).encode("latin-1", "replace") + self.body


def _header_value(value: str) -> str:
    return re.sub(r"[\r\n]+", " ", value)


class _Refused(Exception):
    def __init__(self, response: HttpResponse) -> None:
        super().__init__(response.problem)
        self.response = response


def _refuse(status: int, problem: str, **headers: str) -> _Refused:
    return _Refused(HttpResponse.refuse(status, problem, {k.replace("_", "-"): v for k, v in headers.items()}))


# -- verifying and dispatching one request (pool threads) --------------------------------------------------------
def parse_slack_body(text: str, content_type: str) -> dict[str, Any]:
    """The request body as Slack means it: a JSON object (Events API), or form fields (slash commands) whose
    ``payload`` field, when present, is a JSON object (interactivity). Raises ValueError when it is not."""
    kind = content_type.split(";", 1)[0].strip().lower()
    try:
        if kind == "application/json":
            body = json.loads(text)
        elif kind == "application/x-www-form-urlencoded":
            fields = dict(parse_qsl(text, keep_blank_values=True, max_num_fields=1000))
            body = json.loads(fields["payload"]) if "payload" in fields else fields
        else:
            raise ValueError(f"unsupported content type {kind or '(none)'}")
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({exc.msg} at position {exc.pos})") from None
    if not isinstance(body, dict):
        raise ValueError(f"expected a JSON object, got {type(body).__name__}")
    return body


_STRINGS = ("type", "command", "text", "callback_id", "trigger_id", "response_url", "api_app_id", "team_id",
            "user_id", "channel_id", "token", "event_id")
_OBJECTS = ("event", "view", "container", "message", "authorizations")
_OBJECT_OR_ID = ("user", "team", "channel", "enterprise")


#: Fields Slack always sends, by request kind (a slash command, or the ``type`` of the body).
_REQUIRED = {
    "command": ("user_id", "channel_id", "text", "response_url"),
    "block_actions": ("user", "actions"),
    "view_submission": ("user", "view"),
    "view_closed": ("user", "view"),
    "event_callback": ("event",),
}


def shape_problem(body: dict[str, Any]) -> str | None:
    """Why a JSON object is not shaped like a Slack request where Bolt and the listeners read it (a field of
    the wrong type), or None. Fields may be missing; present ones must have Slack's types."""
    for key in _STRINGS:
        if body.get(key) is not None and not isinstance(body[key], str):
            return f"{key} is not a string"
    for key in _OBJECTS:
        if key in body and not isinstance(body[key], dict | list if key == "authorizations" else dict):
            return f"{key} is not an object"
    for key in _OBJECT_OR_ID:
        value = body.get(key)
        if value is not None and not isinstance(value, dict | str):
            return f"{key} is neither an object nor an ID"
        if isinstance(value, dict) and value.get("id") is not None and not isinstance(value["id"], str):
            return f"{key}.id is not a string"
    actions = body.get("actions")
    if actions is not None and not (isinstance(actions, list) and all(
            isinstance(a, dict) and all(isinstance(a.get(k, ""), str) for k in ("action_id", "block_id", "value"))
            for a in actions)):
        return "actions is not a list of actions"
    event = body.get("event")
    if isinstance(event, dict) and any(event.get(k) is not None and not isinstance(event[k], str)
                                       for k in ("type", "subtype", "user", "channel", "bot_id")):
        return "event has a field of the wrong type"
    required = _REQUIRED.get("command" if "command" in body else str(body.get("type")), ())
    missing = [key for key in required if body.get(key) in (None, "") and not (key == "text" and key in body)]
    if missing:
        return f"no {', '.join(missing)}"
    if isinstance(body.get("user"), dict) and not body["user"].get("id"):
        return "user has no id"
    if isinstance(event, dict) and not event.get("type"):
        return "event has no type"
    view = body.get("view")
    if isinstance(view, dict):
        if any(view.get(k) is not None and not isinstance(view[k], str)
               for k in ("id", "callback_id", "private_metadata", "type")):
            return "view has a field of the wrong type"
        state = view.get("state")
        if state is not None and not (isinstance(state, dict) and isinstance(state.get("values", {}), dict)):
            return "view.state is not an object of values"
    return None


class SlackRequestHandler:
    """Turns one complete HTTP request into a response: verify, parse, then ``app.dispatch``."""

    def __init__(self, app: App, signing_secret: str, path: str = EVENTS_PATH,
                 clock: Callable[[], float] = time.time) -> None:
        if not signing_secret:
            raise ValueError("HTTP mode needs the signing secret (SLACK_SIGNING_SECRET)")
        self.app = app
        self._secret = signing_secret  # never logged
        self.path = path
        self.clock = clock

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            body = self.verified_body(request)
        except _Refused as refused:
            return refused.response
        # The body is verified and parsed here; Bolt gets the parsed object (its own form parser takes any
        # body containing the word "payload" for an interactive one and drops such slash commands).
        bolt_request = BoltRequest(body=body, query=request.query, headers=request.headers, mode="socket_mode")
        response = self.app.dispatch(bolt_request)
        headers = {k: v[0] for k, v in response.headers.items() if v}
        return HttpResponse(response.status, (response.body or "").encode("utf-8"), headers)

    def verified_body(self, request: HttpRequest) -> dict[str, Any]:
        timestamp = request.headers.get("x-slack-request-timestamp", "")
        signature = request.headers.get("x-slack-signature", "")
        if not timestamp or not signature:
            raise _refuse(401, "unsigned (no X-Slack-Request-Timestamp or X-Slack-Signature)")
        if not _DIGITS.match(timestamp):
            raise _refuse(401, "X-Slack-Request-Timestamp is not an integer")
        if abs(self.clock() - int(timestamp)) > MAX_CLOCK_SKEW:
            raise _refuse(401, "stale or future X-Slack-Request-Timestamp (more than 5 minutes off)")
        if not _SIGNATURE.match(signature) or not hmac.compare_digest(
                signature, slack_signature(request.body, self._secret, timestamp)):
            raise _refuse(401, "wrong signature")
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _refuse(400, f"body is not UTF-8 (byte {exc.start})") from None
        content_type = request.headers.get("content-type", "")
        kind = content_type.split(";", 1)[0].strip().lower()
        if kind not in ("application/json", "application/x-www-form-urlencoded"):
            raise _refuse(415, f"unsupported content type {kind or '(none)'}")
        try:
            body = parse_slack_body(text, content_type)
        except ValueError as exc:
            raise _refuse(400, f"malformed body: {exc}") from None
        problem = shape_problem(body)
        if problem:
            raise _refuse(400, f"malformed body: {problem}")
        return body


# -- the server (event-loop thread) ---------------------------------------------------------------------------
@dataclass(eq=False)
class _Connection:
    sock: socket.socket
    peer: str
    dispatched: bool = False  # handed to Bolt: no longer evicted to make room
    started: bool = False  # its task runs: from then on the task (or its transport) owns the socket
    body_bytes: int = 0  # counted in the server's pending-body budget until the connection ends
    task: asyncio.Task[None] | None = None

    def abort(self) -> None:
        """Close it: cancel its task, which closes its transport; a task that never ran closes nothing, so
        the socket is closed here."""
        if self.task is not None:
            self.task.cancel()
        if not self.started:
            with contextlib.suppress(OSError):
                self.sock.close()


class BoltHttpServer:
    """Serves a Bolt app on ``POST <path>`` (see the module docstring). The socket is bound on construction;
    :meth:`start` serves in a background thread, :meth:`stop` (or :meth:`close` when never started) ends."""

    def __init__(self, app: App, signing_secret: str, host: str = "127.0.0.1", port: int = 0,
                 path: str = EVENTS_PATH, limits: HttpLimits | None = None) -> None:
        self.handler = SlackRequestHandler(app, signing_secret, path)
        self.limits = limits or HttpLimits()
        self.path = path
        self.max_connections = connection_cap(self.limits)
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        self.socket = socket.create_server((host, port), family=family, backlog=1024)
        self.socket.setblocking(False)
        self.counters: Counter[str] = Counter()
        self._counter_lock = threading.Lock()
        self._connections: dict[int, _Connection] = {}  # by id, oldest first
        self._body_bytes = 0  # announced bodies of the open connections (event-loop thread only)
        self._pool = ThreadPoolExecutor(self.limits.workers, thread_name_prefix="tighten-http-worker")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._closed = False
        self._last_pressure_log = 0.0

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}{self.path}"

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    def count(self, name: str, n: int = 1) -> None:
        with self._counter_lock:
            self.counters[name] += n

    # -- life cycle -------------------------------------------------------------------------------------------
    def start(self) -> BoltHttpServer:
        self._thread = threading.Thread(target=self._run, name="tighten-http", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` is called from another thread."""
        self._run()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self.close()

    def close(self) -> None:
        """Release the socket and the pool (also when the server never started)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self.socket.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        accepting = asyncio.create_task(self._accept_loop())
        self._ready.set()
        await self._stopping.wait()
        accepting.cancel()
        for conn in list(self._connections.values()):
            conn.abort()
        await asyncio.sleep(0)

    # -- accepting --------------------------------------------------------------------------------------------
    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if len(self._connections) >= self.max_connections and self._evict_oldest_unread():
                await asyncio.sleep(0)  # let the aborted transports close their sockets
            try:
                sock, address = await loop.sock_accept(self.socket)
            except OSError as exc:
                if exc.errno in _ACCEPT_PRESSURE:  # out of file descriptors: make room, then retry
                    self._pressure(f"accept failed ({errno.errorcode.get(exc.errno or 0, exc.errno)})")
                    await asyncio.sleep(0 if self._evict_oldest_unread() else 0.05)
                    continue
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EINTR, errno.EAGAIN):
                    continue
                raise
            peer = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)
            if len(self._connections) >= self.max_connections:  # every connection is in Bolt's hands
                self.count("refused.busy")
                self._pressure("every connection is being served")
                asyncio.create_task(self._refuse_busy(sock, peer))
                continue
            conn = _Connection(sock=sock, peer=peer)
            self._connections[id(conn)] = conn
            conn.task = asyncio.create_task(self._serve(conn))

    def _evict_oldest_unread(self) -> bool:
        for conn in self._connections.values():
            if not conn.dispatched:
                self.count("evicted")
                self._pressure("closing the oldest connections that have not sent a request")
                del self._connections[id(conn)]
                conn.abort()
                return True
        return False

    def _pressure(self, what: str) -> None:
        now = time.monotonic()
        if now - self._last_pressure_log >= 60:
            self._last_pressure_log = now
            log.warning("HTTP connection limit (%d open, cap %d): %s; evicted so far: %d",
                        len(self._connections), self.max_connections, what, self.counters["evicted"])

    async def _refuse_busy(self, sock: socket.socket, peer: str) -> None:
        try:
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await asyncio.get_running_loop().sock_sendall(
                        sock, HttpResponse.refuse(503, "busy", {"Retry-After": "1"}).encode())
        finally:
            sock.close()
        log.warning("HTTP 503 to %s: all %d connections are being served", peer, self.max_connections)

    # -- one connection ---------------------------------------------------------------------------------------
    async def _serve(self, conn: _Connection) -> None:
        conn.started = True
        writer: asyncio.StreamWriter | None = None
        try:
            # (if cancelled in here, asyncio closes the transport it made, and with it the socket)
            reader, writer = await asyncio.open_connection(sock=conn.sock)
            try:
                request = await self._read_request(conn, reader, writer)
            except _Refused as refused:
                await self._answer(conn, writer, refused.response, request_line="-", reader=reader)
                return
            if request is None:
                return
            conn.dispatched = True
            loop = asyncio.get_running_loop()
            response = await loop.run_in_executor(self._pool, self._handle, request)
            await self._answer(conn, writer, response, request_line=f"{request.method} {request.path}")
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            self.count("dropped")
        except asyncio.CancelledError:
            pass  # evicted or shutting down
        except Exception as exc:  # noqa: BLE001 - one connection must never stop the server
            self.count("error")
            log.error("HTTP connection from %s failed: %s: %s", conn.peer, type(exc).__name__, exc)
        finally:
            self._connections.pop(id(conn), None)
            self._body_bytes -= conn.body_bytes
            conn.body_bytes = 0
            if writer is not None:
                writer.transport.abort()

    def _handle(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.handler(request)
        except Exception as exc:  # noqa: BLE001 - a body Bolt cannot route (a field of the wrong type...)
            return HttpResponse.refuse(400, f"Bolt could not process the body: {type(exc).__name__}: {exc}")

    async def _read_request(self, conn: _Connection, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> HttpRequest | None:
        limits = self.limits
        buffer = bytearray()
        try:
            async with asyncio.timeout(limits.header_timeout):
                while (end := buffer.find(b"\r\n\r\n")) < 0:
                    if len(buffer) > limits.max_header:
                        raise _refuse(431, f"request header over {limits.max_header} bytes")
                    chunk = await reader.read(65536)
                    if not chunk:
                        if buffer:
                            raise _refuse(400, "connection closed inside the request header")
                        self.count("closed_idle")
                        return None
                    buffer += chunk
        except TimeoutError:
            if not buffer:
                self.count("idle_timeout")
                log.debug("HTTP connection from %s sent nothing in %.0f s: closed", conn.peer,
                          limits.header_timeout)
                return None
            raise _refuse(408, f"request header not complete within {limits.header_timeout:g} s") from None
        if end > limits.max_header:
            raise _refuse(431, f"request header over {limits.max_header} bytes")
        method, target, headers = parse_head(bytes(buffer[:end]), limits.max_headers)
        rest = bytes(buffer[end + 4:])
        if target.split("?", 1)[0] != self.path:
            raise _refuse(404, f"{method} {target.split('?', 1)[0][:100]}: not the events path")
        if method != "POST":
            raise _refuse(405, f"{method}: only POST is served", Allow="POST")
        length = content_length(headers)
        if length > limits.max_body:
            raise _refuse(413, f"body of {length} bytes is over the {limits.max_body}-byte limit")
        if self._body_bytes + length > limits.max_pending_bodies:
            raise _refuse(503, f"{self._body_bytes} body bytes already held; {length} more would exceed "
                               f"{limits.max_pending_bodies}", Retry_After="1")
        conn.body_bytes = length
        self._body_bytes += length
        if len(rest) < length and headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = rest[:length]
        try:
            async with asyncio.timeout(limits.body_timeout):
                while len(body) < length:
                    chunk = await reader.read(min(65536, length - len(body)))
                    if not chunk:
                        raise _refuse(400, f"connection closed after {len(body)} of {length} body bytes")
                    body += chunk
        except TimeoutError:
            raise _refuse(408, f"body not complete within {limits.body_timeout:g} s "
                               f"({len(body)} of {length} bytes)") from None
        return HttpRequest(method=method, target=target, headers=headers, body=body, peer=conn.peer)

    async def _answer(self, conn: _Connection, writer: asyncio.StreamWriter, response: HttpResponse, *,
                      request_line: str, reader: asyncio.StreamReader | None = None) -> None:
        if response.problem:
            self.count(f"refused.{response.status}")
            log.warning("HTTP %d %s from %s: %s", response.status, request_line, conn.peer, response.problem)
        else:
            self.count("served")
        writer.write(response.encode())
        async with asyncio.timeout(self.limits.write_timeout):
            await writer.drain()
        if reader is not None and writer.can_write_eof():
            # Answered before reading everything: half-close, then drop what is still arriving for a moment,
            # so that closing does not reset the connection before the client has read the answer.
            writer.write_eof()
            with contextlib.suppress(TimeoutError, ConnectionError):
                async with asyncio.timeout(self.limits.linger):
                    dropped = 0
                    while dropped < 16 * self.limits.max_body and (chunk := await reader.read(65536)):
                        dropped += len(chunk)


def parse_head(head: bytes, max_headers: int = 100) -> tuple[str, str, dict[str, str]]:
    """(method, target, headers with lower-case names) of an HTTP/1.x request head; raises _Refused (400,
    431, 505) on anything malformed."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or not parts[1].startswith(b"/"):
        raise _refuse(400, "malformed request line")
    method, target, version = parts
    if not re.fullmatch(rb"HTTP/[0-9]\.[0-9]", version):
        raise _refuse(400, "malformed request line")
    if not version.startswith(b"HTTP/1."):
        raise _refuse(505, f"{version.decode('ascii')} is not served")
    if len(lines) - 1 > max_headers:
        raise _refuse(431, f"more than {max_headers} header fields")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.match(name):
            raise _refuse(400, "malformed header field")
        key = name.decode("ascii").lower()
        text = value.strip(b" \t").decode("latin-1")
        if key in headers:
            if key == "content-length" and headers[key] != text:
                raise _refuse(400, "conflicting Content-Length fields")
            if key != "content-length":
                headers[key] = f"{headers[key]}, {text}"
        else:
            headers[key] = text
    return method.decode("ascii"), target.decode("latin-1"), headers


def content_length(headers: dict[str, str]) -> int:
    if "transfer-encoding" in headers:
        raise _refuse(411, "Transfer-Encoding is not accepted; send Content-Length")
    value = headers.get("content-length")
    if value is None:
        raise _refuse(411, "no Content-Length")
    if not _DIGITS.match(value):
        raise _refuse(400, "malformed Content-Length")
    return int(value)


def start_http(app: App, signing_secret: str, host: str = "127.0.0.1", port: int = 0,
               limits: HttpLimits | None = None) -> BoltHttpServer:
    """Serve ``app`` in a background thread; returns the server (``.url``, ``.stop()``)."""
    return BoltHttpServer(app, signing_secret, host, port, limits=limits).start()


def serve_http(app: App, signing_secret: str, host: str, port: int) -> None:
    """Serve ``app`` over HTTP until interrupted (the Request URL is ``http(s)://<host>/slack/events``)."""
    server = BoltHttpServer(app, signing_secret, host, port)
    log.info("Tighten listening on %s", server.url)
    try:
        server.serve_forever()
    finally:
        server.close()
