"""A Slack WebClient that remembers the messages it posted and updated and the files it uploaded, so the demo can
show them and find their buttons without reading channel history (the app's manifest grants no ``*:history``
scope). It is the client of the jobs (review messages, apply results, digests); Bolt's listeners answer with a
client of their own per request, whose calls the demo reads from the local fake Slack."""

from __future__ import annotations

import json
import threading
from typing import Any

from slack_sdk import WebClient
from slack_sdk.models.blocks import Block
from slack_sdk.web import SlackResponse

from bot.slack.app import retry_handlers


class RecordingClient(WebClient):
    """Calls that succeeded: ``chat.postMessage`` / ``chat.update`` kept as ``(channel, ts) -> message``, file
    uploads in :attr:`uploads`."""

    def __init__(self, token: str, *, base_url: str | None = None, timeout: int = 30) -> None:
        kwargs: dict[str, Any] = {"token": token, "timeout": timeout, "retry_handlers": retry_handlers()}
        if base_url:
            kwargs["base_url"] = base_url
        super().__init__(**kwargs)
        self.sent: dict[tuple[str, str], dict[str, Any]] = {}
        self.uploads: list[dict[str, Any]] = []
        self._sent_lock = threading.Lock()

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:  # type: ignore[override]
        response = super().api_call(api_method, **kwargs)
        params = dict(kwargs.get("json") or kwargs.get("data") or kwargs.get("params") or {})
        if api_method in ("chat.postMessage", "chat.update") and response.get("ok"):
            key = (str(response["channel"]), str(response["ts"]))
            message = {
                "channel": key[0], "ts": key[1], "text": params.get("text", ""),
                "blocks": _plain(params.get("blocks")),
            }
            with self._sent_lock:
                previous = self.sent.get(key, {})
                message["thread_ts"] = params.get("thread_ts") or previous.get("thread_ts")
                self.sent[key] = message
        return response

    def files_upload_v2(self, **kwargs: Any) -> SlackResponse:
        response = super().files_upload_v2(**kwargs)
        if response.get("ok"):
            with self._sent_lock:
                self.uploads.append({k: kwargs.get(k) for k in ("channel", "thread_ts", "filename", "title",
                                                                  "content")})
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


def _plain(blocks: Any) -> list[dict[str, Any]]:
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return [b.to_dict() if isinstance(b, Block) else b for b in blocks or []]
