"""Slack request signing (v0), for tests, benches and the demo to send real signed requests to the Bolt app.

The app verifies in its HTTP front end (``bot.slack.http_server``); this module only produces the headers
Slack would send. The signature covers the raw body bytes, so bodies that are not UTF-8 can be signed too.
"""

from __future__ import annotations

import hashlib
import hmac
import time


def signature(body: str | bytes, secret: str, timestamp: int | str) -> str:
    raw = body if isinstance(body, bytes) else body.encode("utf-8")
    base = f"v0:{timestamp}:".encode() + raw
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_request(body: str | bytes, secret: str, timestamp: int | None = None,
                   content_type: str = "application/x-www-form-urlencoded") -> dict[str, str]:
    """Headers for a Slack request carrying ``body`` signed with ``secret`` at ``timestamp`` (now if None)."""
    ts = str(int(time.time()) if timestamp is None else int(timestamp))
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature(body, secret, ts),
    }
