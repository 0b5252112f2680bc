"""Building and serving the Bolt app. The listeners are the same in Socket Mode and HTTP mode.

- Socket Mode (default, ``serve_socket_mode``): no inbound endpoint, which suits a bot with IAM write power.
- HTTP mode (``serve_http`` / ``start_http``): a small threaded http.server around ``BoltRequest``; Bolt's
  ``RequestVerification`` middleware rejects unsigned, wrongly signed and stale (>5 min) requests.

Both run with ``process_before_response=False``: Bolt acks first and runs listeners on its thread pool. Listeners
ack at once and only touch SQLite and the Slack Web API; scans/applies/rollbacks go to the work queue.
"""

from __future__ import annotations

import importlib
import logging
import random
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from slack_bolt import App, BoltRequest
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.slack.context import CONTEXT_KEY, AppContext

log = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default listen backlog of 5 resets bursts of concurrent clicks

#: Listener modules; each exposes ``register(app)``.
LISTENERS = (
    "bot.slack.commands.tighten",
    "bot.slack.actions.approve",
    "bot.slack.actions.reject",
    "bot.slack.actions.view_policy",
    "bot.slack.actions.rollback",
    "bot.slack.actions.allow_action",
    "bot.slack.actions.home_refresh",
    "bot.slack.actions.open_as_code",
    "bot.slack.actions.mark_applied_via_code",
    "bot.slack.views.reject_submission",
    "bot.slack.views.home",
)

EVENTS_PATH = "/slack/events"


class RetryAfterHandler(RateLimitErrorRetryHandler):
    """slack_sdk's 429 handler (honours ``Retry-After``) with an injectable sleep and a scale factor, so tests
    can make the waits short without changing the logic. ``wait_scale=1`` in production."""

    def __init__(self, max_retry_count: int = 3, *, wait_scale: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.wait_scale = wait_scale
        self.sleep = sleep

    def prepare_for_next_attempt(self, *, state: RetryState, request: HttpRequest,
                                 response: HttpResponse | None = None, error: Exception | None = None) -> None:
        if response is None:
            raise error  # type: ignore[misc]
        state.next_attempt_requested = True
        header = next((k for k in response.headers if k.lower() == "retry-after"), None)
        try:
            seconds = float(response.headers[header][0]) if header else 1.0
        except (ValueError, IndexError):
            seconds = 1.0
        self.sleep((seconds + random.random()) * self.wait_scale)
        state.increment_current_attempt()


class AnyServerErrorRetryHandler(ServerErrorRetryHandler):
    """Retries every 5xx (slack_sdk's own handler only retries 500 and 503)."""

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        return response is not None and 500 <= response.status_code < 600


def retry_handlers(*, max_retries: int = 3, wait_scale: float = 1.0,
                   backoff: float = 0.5) -> list[RetryHandler]:
    return [
        ConnectionErrorRetryHandler(max_retry_count=max_retries,
                                    interval_calculator=BackoffRetryIntervalCalculator(backoff)),
        RetryAfterHandler(max_retry_count=max_retries, wait_scale=wait_scale),
        AnyServerErrorRetryHandler(max_retry_count=max_retries,
                                   interval_calculator=BackoffRetryIntervalCalculator(backoff)),
    ]


def make_client(token: str, *, base_url: str | None = None, max_retries: int = 3, wait_scale: float = 1.0,
                backoff: float = 0.5, timeout: int = 30) -> WebClient:
    """A WebClient that retries 429 (after ``Retry-After``), 5xx and connection errors."""
    kwargs: dict[str, Any] = {"token": token, "timeout": timeout,
                              "retry_handlers": retry_handlers(max_retries=max_retries, wait_scale=wait_scale,
                                                               backoff=backoff)}
    if base_url:
        kwargs["base_url"] = base_url
    return WebClient(**kwargs)


def build_app(ctx: AppContext, *, token: str | None = None, signing_secret: str,
              client: WebClient | None = None) -> App:
    """The Bolt app with every Tighten listener and the context middleware. Pass ``client`` (for example
    ``make_client(token, base_url=fake.base_url)``) or ``token``."""
    if client is None:
        if not token:
            raise ValueError("build_app needs a bot token or a WebClient")
        client = make_client(token)
    app = App(client=client, signing_secret=signing_secret, process_before_response=False,
              request_verification_enabled=True)

    def inject_context(context: Any, next: Callable[[], None]) -> None:  # noqa: A002 (Bolt's argument name)
        context[CONTEXT_KEY] = ctx
        next()

    app.use(inject_context)

    @app.error
    def on_error(error: Exception, body: dict[str, Any], logger: logging.Logger) -> None:
        ctx.count("slack.listener_error")
        kind = body.get("type") or body.get("command") or "request"
        logger.error("Tighten listener failed on %s: %s", kind, type(error).__name__, exc_info=error)

    for name in LISTENERS:
        importlib.import_module(name).register(app)
    return app


# -- HTTP mode ----------------------------------------------------------------------------------------------
class BoltHttpServer:
    """Serves a Bolt app on ``POST /slack/events`` with a threaded http.server (one thread per request)."""

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0, path: str = EVENTS_PATH) -> None:
        bolt = app

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                if self.path.split("?", 1)[0] != path:
                    self._answer(404, b"not found", {})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8") if length else ""
                query = self.path.split("?", 1)[1] if "?" in self.path else ""
                headers = {k.lower(): v for k, v in self.headers.items()}
                response = bolt.dispatch(BoltRequest(body=body, query=query, headers=headers))
                out = {k: v[0] for k, v in response.headers.items() if v and k.lower() != "content-length"}
                self._answer(response.status, response.body.encode("utf-8"), out)

            def do_GET(self) -> None:  # noqa: N802
                self._answer(405, b"POST only", {})

            def _answer(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                log.debug("http: " + format, *args)

        self.server = _Server((host, port), Handler)
        self.server.daemon_threads = True
        self.path = path
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{self.path}"

    def start(self) -> BoltHttpServer:
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), name="tighten-http",
                                        daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_http(app: App, host: str = "127.0.0.1", port: int = 0) -> BoltHttpServer:
    """Serve ``app`` in a background thread; returns the server (``.url``, ``.stop()``)."""
    return BoltHttpServer(app, host, port).start()


def serve_http(app: App, host: str, port: int) -> None:
    """Serve ``app`` over HTTP until interrupted (the Request URL is ``http(s)://<host>/slack/events``)."""
    server = BoltHttpServer(app, host, port)
    log.info("Tighten listening on %s", server.url)
    try:
        server.serve_forever()
    finally:
        server.server.server_close()


# -- Socket Mode --------------------------------------------------------------------------------------------
def socket_mode_handler(app: App, app_token: str) -> Any:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    if not app_token.startswith("xapp-"):
        raise ValueError("Socket Mode needs an app-level token (xapp-...) with connections:write")
    return SocketModeHandler(app, app_token)


def serve_socket_mode(app: App, app_token: str) -> None:
    """Connect to Slack over Socket Mode and block (no inbound endpoint needed)."""
    socket_mode_handler(app, app_token).start()
