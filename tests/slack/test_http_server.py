"""HTTP mode's front end over real sockets: every malformed, oversized, slow or unauthenticated request gets its
4xx and one log line (never a traceback, never a 500, never Bolt); idle connections cannot keep a real request
out; the signature is Slack's own (checked with slack_sdk's verifier)."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import quote, urlencode, urlparse

import pytest
from slack_sdk.signature import SignatureVerifier

from bot.slack.http_server import BoltHttpServer, HttpLimits
from bot.slack.signing import signed_request
from tests.slack.conftest import ALICE, CHANNEL, SECRET, Harness

LOGGER = "bot.slack.http_server"


def _address(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or 80


def _head(path: str, headers: dict[str, str], length: int | None) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def exchange(url: str, data: bytes, *, half_close: bool = False, timeout: float = 10.0) -> bytes:
    """Send raw bytes, read until the server closes; returns everything it sent."""
    with socket.create_connection(_address(url), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status(raw: bytes) -> int:
    assert raw.startswith(b"HTTP/1.1 "), raw[:80]
    return int(raw.split(b" ", 2)[1])


def signed(body: bytes, content_type: str = "application/x-www-form-urlencoded", path: str = "/slack/events",
           **extra: str) -> bytes:
    return _head(path, {**signed_request(body, SECRET, content_type=content_type), **extra}, len(body)) + body


def _command(text: str, url: str = "http://127.0.0.1:9/never") -> bytes:
    """A /tighten command body (the default response_url is never reached: use it only for refused ones)."""
    return urlencode({"team_id": "T0TIGHTEN1", "channel_id": CHANNEL, "user_id": ALICE, "command": "/tighten",
                      "text": text, "response_url": url, "trigger_id": "t.1"}).encode()


def _refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


@pytest.fixture()
def quick(http_harness: Harness) -> Iterator[BoltHttpServer]:
    """The harness's app behind a server with short timeouts and a small connection cap."""
    limits = HttpLimits(header_timeout=0.5, body_timeout=0.5, linger=0.2, max_connections=8)
    server = BoltHttpServer(http_harness.app, SECRET, limits=limits).start()
    try:
        yield server
    finally:
        server.stop()


def test_signature_is_slacks_own(http_harness: Harness) -> None:
    """Requests signed by slack_sdk's own SignatureVerifier are served; ours verify with it too."""
    body = _command("help", http_harness.fake.response_url("sdk"))
    ts = str(int(time.time()))
    sdk = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body.decode())
    assert sdk == signed_request(body, SECRET, timestamp=int(ts))["X-Slack-Signature"]
    raw = exchange(http_harness.server.url, _head("/slack/events", {
        "Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sdk}, len(body)) + body)
    assert status(raw) == 200 and b"Connection: close" in raw
    assert "/tighten help" in http_harness.wait_response(http_harness.fake.response_url("sdk"))["text"]


BAD_BODIES = {  # name: (body, content type) -- all signed; each is refused before Bolt
    "bad payload JSON": (b"payload=%7Bnot+json", "application/x-www-form-urlencoded", 400),
    "payload not an object": (b"payload=%5B1%2C2%5D", "application/x-www-form-urlencoded", 400),
    "deeply nested payload": (b"payload=" + b"%5B" * 200_000, "application/x-www-form-urlencoded", 400),
    "deeply nested JSON": (b"[" * 500_000, "application/json", 400),
    "not UTF-8": (b"command=%2Ftighten&text=\xff\xfe\xfd", "application/x-www-form-urlencoded", 400),
    "JSON content type on a form body": (_command("help"), "application/json", 400),
    "JSON that is not an object": (b'"hello"', "application/json", 400),
    "unknown content type": (b"hello", "text/plain", 415),
    "actions not a list": (b"payload=" + quote(json.dumps({"type": "block_actions", "actions": 5})).encode(),
                           "application/x-www-form-urlencoded", 400),
    "view not an object": (b"payload=" + quote(json.dumps({"type": "view_submission", "view": 5})).encode(),
                           "application/x-www-form-urlencoded", 400),
    "event not an object": (json.dumps({"type": "event_callback", "event": []}).encode(), "application/json", 400),
    "event without a type": (json.dumps({"type": "event_callback", "event": {}}).encode(), "application/json", 400),
    "click without a user": (b"payload=" + quote(json.dumps({"type": "block_actions", "actions": []})).encode(),
                             "application/x-www-form-urlencoded", 400),
    "user id not a string": (b"payload=" + quote(json.dumps({"type": "block_actions", "actions": [],
                                                             "user": {"id": 5}})).encode(),
                             "application/x-www-form-urlencoded", 400),
    "command without response_url": (b"command=%2Ftighten&text=help&user_id=U1&channel_id=C1",
                                     "application/x-www-form-urlencoded", 400),
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_malformed_bodies_get_4xx_and_one_line(http_harness: Harness, caplog: pytest.LogCaptureFixture,
                                               name: str) -> None:
    body, content_type, expected = BAD_BODIES[name]
    caplog.set_level(logging.INFO)
    assert status(exchange(http_harness.server.url, signed(body, content_type))) == expected
    # the same body unsigned is refused for that first
    unsigned = _head("/slack/events", {"Content-Type": content_type}, len(body)) + body
    assert status(exchange(http_harness.server.url, unsigned)) == 401
    refusals = _refusals(caplog)
    assert len(refusals) == 2 and all("\n" not in r.getMessage() for r in refusals)
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert http_harness.server.counters[f"refused.{expected}"] == 1 and http_harness.server.counters["refused.401"] == 1
    assert not http_harness.fake.calls_to("response_url") and http_harness.ctx.queue.pending() == []


def test_unauthenticated_requests_get_401(http_harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    body = _command("scan reporting")
    good = signed_request(body, SECRET)
    cases = {
        "no signature": {"Content-Type": "application/x-www-form-urlencoded"},
        "non-integer timestamp": {**good, "X-Slack-Request-Timestamp": "1e9"},
        "timestamp with spaces": {**good, "X-Slack-Request-Timestamp": " 1700000000"},
        "huge timestamp": {**good, "X-Slack-Request-Timestamp": "9" * 40},
        "stale": signed_request(body, SECRET, timestamp=int(time.time()) - 360),
        "future": signed_request(body, SECRET, timestamp=int(time.time()) + 360),
        "wrong secret": signed_request(body, "not-the-secret"),
        "malformed signature": {**good, "X-Slack-Signature": "v0=zz"},
    }
    for name, headers in cases.items():
        assert status(exchange(http_harness.server.url, _head("/slack/events", headers, len(body)) + body)) == 401, name
    assert len(_refusals(caplog)) == len(cases)
    assert "not an integer" in caplog.text and "wrong signature" in caplog.text
    assert not [r for r in caplog.records if r.exc_info], [(r.getMessage(), str(r.exc_info[1])) for r in caplog.records if r.exc_info]
    assert http_harness.ctx.counters["slack.listener_error"] == 0


def test_oversized_body_is_refused_before_it_is_read(http_harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    # a billion bytes announced, three sent: answered at once, not after a timeout
    with socket.create_connection(_address(http_harness.server.url), timeout=5) as sock:
        sock.sendall(_head("/slack/events", headers, 1_000_000_000) + b"abc")
        assert status(sock.recv(65536)) == 413
    # 64 MB announced: the 413 arrives while the client is still sending, after at most a few MB
    with socket.create_connection(_address(http_harness.server.url), timeout=5) as sock:
        sock.sendall(_head("/slack/events", headers, 64 * 1024 * 1024))
        sent = 0
        sock.settimeout(0.05)
        answer = b""
        while not answer and sent < 64 * 1024 * 1024:
            try:
                sent += sock.send(b"x" * 65536)
                answer = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
        sock.settimeout(5)
        answer = answer or sock.recv(65536)
    assert status(answer) == 413 and sent < 16 * 1024 * 1024
    # just over the cap, sent in full: still 413
    big = b"x" * (1024 * 1024 + 1)
    assert status(exchange(http_harness.server.url, signed(big))) == 413
    assert http_harness.server.counters["refused.413"] == 3 and "over the 1048576-byte limit" in caplog.text


def test_protocol_errors(http_harness: Harness) -> None:
    url = http_harness.server.url
    reply = http_harness.fake.response_url("continue")
    body = _command("help", reply)
    cases = {
        b"GET /slack/events HTTP/1.1\r\nHost: x\r\n\r\n": 405,
        b"POST /elsewhere HTTP/1.1\r\nContent-Length: 0\r\n\r\n": 404,
        b"POST /slack/events HTTP/1.1\r\n\r\n": 411,
        b"POST /slack/events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n": 411,
        b"POST /slack/events HTTP/1.1\r\nContent-Length: -1\r\n\r\n": 400,
        b"POST /slack/events HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab": 400,
        b"POST /slack/events HTTP/2.0\r\nContent-Length: 0\r\n\r\n": 505,
        b"BREW /slack/events\r\n\r\n": 400,
        b"POST /slack/events HTTP/1.1\r\nBad Header: x\r\n\r\n": 400,
        b"POST /slack/events HTTP/1.1\r\n folded: x\r\n\r\n": 400,
        b"POST /slack/events HTTP/1.1\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n": 431,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n": 400,  # a TLS hello
    }
    for data, expected in cases.items():
        assert status(exchange(url, data)) == expected, data[:60]
    # the connection closed half way through the body
    assert status(exchange(url, signed(body)[:-5], half_close=True)) == 400
    # Expect: 100-continue is honoured
    with socket.create_connection(_address(url), timeout=5) as sock:
        sock.sendall(_head("/slack/events", {**signed_request(body, SECRET), "Expect": "100-continue"}, len(body)))
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        assert status(sock.recv(65536)) == 200
    # the command's reply arrives before the test ends (not later, into the next test's log)
    assert "/tighten help" in http_harness.wait_response(reply)["text"]


def test_slow_and_idle_connections_time_out(quick: BoltHttpServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    body = _command("help")  # never completed: never dispatched
    request = signed(body)
    head_end = request.index(b"\r\n\r\n") + 4
    # body announced, three bytes sent, then nothing: 408
    with socket.create_connection(_address(quick.url), timeout=5) as sock:
        sock.sendall(request[:head_end + 3])
        assert status(sock.recv(65536)) == 408
    # half a header, then nothing: 408
    with socket.create_connection(_address(quick.url), timeout=5) as sock:
        sock.sendall(request[:20])
        assert status(sock.recv(65536)) == 408
    # nothing at all: closed without an answer
    with socket.create_connection(_address(quick.url), timeout=5) as sock:
        assert sock.recv(65536) == b""
    assert quick.counters["refused.408"] == 2 and quick.counters["idle_timeout"] == 1
    assert "body not complete within 0.5 s (3 of" in caplog.text
    assert not [r for r in caplog.records if r.exc_info], [(r.getMessage(), str(r.exc_info[1])) for r in caplog.records if r.exc_info]


def test_idle_connections_cannot_keep_a_request_out(http_harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    """More idle connections than the cap: the oldest are closed to make room, and a real request (on a new
    connection) is served long before any timeout would have freed a slot."""
    caplog.set_level(logging.INFO)
    limits = HttpLimits(header_timeout=60, max_connections=8)
    server = BoltHttpServer(http_harness.app, SECRET, limits=limits).start()
    idle: list[socket.socket] = []
    try:
        for _ in range(40):
            idle.append(socket.create_connection(_address(server.url), timeout=5))
        url = http_harness.fake.response_url("through")
        with socket.create_connection(_address(server.url), timeout=5) as sock:
            sock.sendall(signed(_command("help", url)))
            assert status(sock.recv(65536)) == 200
        assert "/tighten help" in http_harness.wait_response(url)["text"]
        assert server.counters["evicted"] >= 40 - 8
        assert server.open_connections <= 8
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    finally:
        for sock in idle:
            sock.close()
        server.stop()


def test_connection_cap_respects_the_open_files_limit() -> None:
    import resource

    from bot.slack.http_server import connection_cap

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (200, hard))
        assert connection_cap(HttpLimits(max_connections=256)) == 100  # 200 minus the reserve
        assert connection_cap(HttpLimits(max_connections=50)) == 50
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_slash_command_mentioning_payload_is_served(http_harness: Harness) -> None:
    """Bolt's own form parser mistakes any body containing "payload" for an interaction; ours does not."""
    http_harness.add_role("payload-processor")
    answer = http_harness.command("scan payload-processor")
    assert "queued" in answer["text"]
    assert http_harness.ctx.queue.pending("scan")[0].payload["principal_arn"].endswith(":role/payload-processor")


def test_concurrent_requests_share_the_bounded_pool(http_harness: Harness) -> None:
    urls = [http_harness.fake.response_url(f"c{i}") for i in range(30)]
    statuses: list[int] = []

    def send(url: str) -> None:
        statuses.append(status(exchange(http_harness.server.url, signed(_command("help", url)))))

    threads = [threading.Thread(target=send, args=(u,)) for u in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 30
    for url in urls:
        http_harness.wait_response(url)
    assert http_harness.server.counters["served"] == 30


def test_unused_server_closes_cleanly(http_harness: Harness) -> None:
    server = BoltHttpServer(http_harness.app, SECRET)
    port = _address(server.url)[1]
    server.stop()  # never started
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # the port is free again


def test_app_mode_of_events_is_json(http_harness: Harness) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "x"}).encode()
    raw = exchange(http_harness.server.url, signed(body, "application/json"))
    assert status(raw) == 200 and b"abc123" in raw


def test_bodies_held_at_once_are_bounded(http_harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    """Slow senders each hold at most one body, and all of them together at most max_pending_bodies."""
    caplog.set_level(logging.INFO)
    server = BoltHttpServer(http_harness.app, SECRET,
                            limits=HttpLimits(max_body=800, max_pending_bodies=1000, body_timeout=60)).start()
    try:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        with socket.create_connection(_address(server.url), timeout=5) as slow:
            slow.sendall(_head("/slack/events", headers, 800) + b"x" * 10)  # holds 800 of the 1000
            time.sleep(0.2)
            crowded = exchange(server.url, _head("/slack/events", headers, 500) + b"y" * 500)
            assert status(crowded) == 503 and b"Retry-After: 1" in crowded
        url = http_harness.fake.response_url("after")
        deadline = time.monotonic() + 5
        while status(answer := exchange(server.url, signed(_command("help", url)))) == 503:
            assert time.monotonic() < deadline  # the slow sender's share is released when it goes away
            time.sleep(0.05)
        assert status(answer) == 200
        assert "more would exceed 1000" in caplog.text
    finally:
        server.stop()
