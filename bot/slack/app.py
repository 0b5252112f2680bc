"""Building and serving the Bolt app. The listeners are the same in Socket Mode and HTTP mode.

- Socket Mode (default, ``serve_socket_mode``): no inbound endpoint, which suits a bot with IAM write power.
- HTTP mode (``serve_http`` / ``start_http``, in ``bot.slack.http_server``): a small asyncio front end with
  hard limits that verifies every request's signature before Bolt sees it.

Both run with ``process_before_response=False``: Bolt acks first and runs listeners on its thread pool. Listeners
ack at once and only touch SQLite and the Slack Web API; scans/applies/rollbacks go to the work queue.
"""

from __future__ import annotations

import importlib
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from slack_bolt import App
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
from bot.slack.http_server import EVENTS_PATH, BoltHttpServer, HttpLimits, serve_http, start_http

log = logging.getLogger(__name__)

__all__ = ["EVENTS_PATH", "BoltHttpServer", "HttpLimits", "build_app", "make_client", "serve_http",
           "serve_socket_mode", "socket_mode_handler", "start_http"]


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


# -- Socket Mode --------------------------------------------------------------------------------------------
def socket_mode_handler(app: App, app_token: str) -> Any:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    if not app_token.startswith("xapp-"):
        raise ValueError("Socket Mode needs an app-level token (xapp-...) with connections:write")
    return SocketModeHandler(app, app_token)


def serve_socket_mode(app: App, app_token: str) -> None:
    """Connect to Slack over Socket Mode and block (no inbound endpoint needed)."""
    socket_mode_handler(app, app_token).start()
