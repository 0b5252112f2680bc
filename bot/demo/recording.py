"""A Slack WebClient that remembers the messages it posted and updated, so the demo can show them and find
their buttons without reading channel history (the app's manifest grants no ``*:history`` scope)."""

from __future__ import annotations

import threading
from typing import Any

from slack_sdk import WebClient
from slack_sdk.models.blocks import Block
from slack_sdk.web import SlackResponse

from bot.slack.app import retry_handlers


class RecordingClient(WebClient):
    """``chat.postMessage`` / ``chat.update`` calls that succeeded, kept as ``(channel, ts) -> message``."""

    def __init__(self, token: str, *, base_url: str | None = None, timeout: int = 30) -> None:
        kwargs: dict[str, Any] = {"token": token, "timeout": timeout, "retry_handlers": retry_handlers()}
        if base_url:
            kwargs["base_url"] = base_url
        super().__init__(**kwargs)
        self.sent: dict[tuple[str, str], dict[str, Any]] = {}
        self._sent_lock = threading.Lock()

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:  # type: ignore[override]
        response = super().api_call(api_method, **kwargs)
        if api_method in ("chat.postMessage", "chat.update") and response.get("ok"):
            params = dict(kwargs.get("json") or kwargs.get("data") or kwargs.get("params") or {})
            key = (str(response["channel"]), str(response["ts"]))
            message = {
                "channel": key[0], "ts": key[1], "text": params.get("text", ""),
                "blocks": [b.to_dict() if isinstance(b, Block) else b for b in params.get("blocks") or []],
            }
            with self._sent_lock:
                previous = self.sent.get(key, {})
                message["thread_ts"] = params.get("thread_ts") or previous.get("thread_ts")
                self.sent[key] = message
        return response

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        with self._sent_lock:
            found = self.sent.get((channel, ts))
            return dict(found) if found else None

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """Replies posted in the thread of ``ts``, oldest first."""
        with self._sent_lock:
            replies = [dict(m) for (ch, _), m in self.sent.items() if ch == channel and m.get("thread_ts") == ts]
        return sorted(replies, key=lambda m: float(m["ts"]))
