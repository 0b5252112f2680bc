"""The demo's local stand-in for Slack: a fake Slack Web API on 127.0.0.1 (also the tests' Slack fake).

``tighten demo`` talks to it when no real Slack workspace is given; the tests use it the same way. It is never
used by ``tighten serve``.

``FakeSlackApi`` is a threaded HTTP server on 127.0.0.1 (random port) that answers the Web API methods the
bot uses, records every call (method, parsed parameters) for assertions, and can inject faults (the next N
calls of a method answer 429 with ``Retry-After`` or a 5xx). Point a client at it with
``WebClient(token="xoxb-test", base_url=fake.base_url)``.

It also serves the pieces around the Web API that the bot talks to: the external upload URL returned by
``files.getUploadURLExternal``, ``response_url`` endpoints (``fake.response_url()``) used by ``respond()``, and
``apps.connections.open`` for Socket Mode: it takes only an app-level token (``xapp-``, while every other method
takes only a bot token) and answers with the WebSocket URL that ``fake.socket_mode_url()`` returns (set it to a
local Socket Mode server's URL factory).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlparse

#: Form parameters that carry JSON in Slack's form-encoded API calls.
_JSON_PARAMS = ("blocks", "attachments", "view", "files", "metadata", "channels")




class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default listen backlog of 5 resets bursts of concurrent clicks


@dataclass
class ApiCall:
    method: str  # "chat.postMessage", "upload" (external upload URL) or "response_url"
    params: dict[str, Any]
    status: int = 200
    path: str = ""
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Fault:
    status: int
    remaining: int
    retry_after: int | None


class FakeSlackApi:
    """Threaded fake Slack Web API. Use as a context manager or call :meth:`start`/:meth:`stop`."""

    def __init__(self, *, bot_user_id: str = "UBOTTIGHTEN", bot_id: str = "BTIGHTEN01",
                 team_id: str = "T0TIGHTEN1", usergroups: dict[str, list[str]] | None = None,
                 valid_tokens: set[str] | None = None) -> None:
        """``valid_tokens``: when given, any other token is answered ``invalid_auth`` (as Slack answers a revoked
        or mistyped token); by default every token is accepted."""
        self.bot_user_id = bot_user_id
        self.valid_tokens = valid_tokens
        self.bot_id = bot_id
        self.team_id = team_id
        self.usergroups: dict[str, list[str]] = dict(usergroups or {})
        self.calls: list[ApiCall] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) -> latest message
        self.uploads: dict[str, bytes] = {}  # file_id -> content
        self.views: dict[str, dict[str, Any]] = {}  # view id -> view
        self._faults: dict[str, _Fault] = {}
        #: Returns a fresh WebSocket URL for ``apps.connections.open`` (None: Socket Mode is not available).
        self.socket_mode_url: Callable[[], str] | None = None
        self._lock = threading.Condition()
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.getPermalink": self._permalink,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.push": self._views_open,
            "views.publish": self._views_publish,
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload,
            "usergroups.users.list": self._usergroup_users,
            "conversations.info": self._conversation_info,
            "users.info": self._user_info,
            "apps.connections.open": self._connections_open,
        }

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> FakeSlackApi:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = fake._dispatch(self.path, dict(self.headers), body)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-slack",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeSlackApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeSlackApi is not started")
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def base_url(self) -> str:
        """Web API base for ``WebClient(base_url=...)`` (ends in ``/api/``)."""
        return f"{self.root_url}api/"

    def response_url(self, name: str | None = None) -> str:
        """A fresh ``response_url`` whose posts are recorded as method ``"response_url"``."""
        return f"{self.root_url}response/{name or next(self._ids)}"

    # -- test controls --------------------------------------------------------------------
    def fail_next(self, method: str, times: int = 1, *, status: int = 429, retry_after: int | None = 0) -> None:
        """The next ``times`` calls of ``method`` answer ``status`` (429 carries ``Retry-After``)."""
        with self._lock:
            self._faults[method] = _Fault(status, times, retry_after if status == 429 else None)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.messages.clear()
            self.uploads.clear()
            self.views.clear()
            self._faults.clear()

    def calls_to(self, method: str, *, ok_only: bool = False) -> list[ApiCall]:
        with self._lock:
            return [c for c in self.calls if c.method == method and (not ok_only or c.status == 200)]

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[ApiCall]:
        """Block until at least ``count`` successful calls of ``method`` were recorded; returns them."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [c for c in self.calls if c.method == method and c.status == 200]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"expected {count} call(s) to {method}, got {len(found)}")
                self._lock.wait(left)

    # -- dispatch -------------------------------------------------------------------------
    def _dispatch(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        url = urlparse(path)
        if url.path.startswith("/upload/"):  # raw file bytes (a PNG is not text): never parsed
            file_id = url.path.rsplit("/", 1)[-1]
            with self._lock:
                self.uploads[file_id] = body
            return self._record("upload", {"file_id": file_id, "length": len(body)}, path, 200,
                                b"OK - %d" % len(body), "text/plain")
        params = _parse_body(headers, body)
        params.update({k: v for k, v in parse_qsl(url.query)})
        if url.path.startswith("/response/"):
            return self._record("response_url", params, path, 200, b"ok", "text/plain")
        if not url.path.startswith("/api/"):
            return self._record("unknown", params, path, 404, b"not found", "text/plain")
        method = url.path[len("/api/"):]
        with self._lock:
            fault = self._faults.get(method)
            if fault and fault.remaining > 0:
                fault.remaining -= 1
                extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                error = "ratelimited" if fault.status == 429 else "internal_error"
                return self._record(method, params, path, fault.status,
                                    json.dumps({"ok": False, "error": error}).encode(), "application/json", extra)
        token = headers.get("Authorization") or headers.get("authorization") or params.get("token")
        if not token:
            result: dict[str, Any] = {"ok": False, "error": "not_authed"}
        elif self.valid_tokens is not None and token.removeprefix("Bearer ") not in self.valid_tokens:
            result = {"ok": False, "error": "invalid_auth"}
        elif str(token).split()[-1].startswith("xapp-") != (method == "apps.connections.open"):
            result = {"ok": False, "error": "not_allowed_token_type"}
        else:
            handler = self._handlers.get(method)
            result = handler(params) if handler else {"ok": False, "error": "unknown_method"}
        return self._record(method, params, path, 200, json.dumps(result).encode(), "application/json")

    def _record(self, method: str, params: dict[str, Any], path: str, status: int, payload: bytes,
                content_type: str, extra: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.calls.append(ApiCall(method=method, params=params, status=status, path=path))
            self._lock.notify_all()
        return status, {"Content-Type": content_type, **(extra or {})}, payload

    # -- methods --------------------------------------------------------------------------
    def _next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    def _auth_test(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://tighten-test.slack.com/", "team": "Tighten Test",
                "user": "tighten", "team_id": self.team_id, "user_id": self.bot_user_id, "bot_id": self.bot_id}

    def _post_message(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = p.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not (p.get("text") or p.get("blocks") or p.get("attachments")):
            return {"ok": False, "error": "no_text"}
        if isinstance(p.get("blocks"), list) and len(p["blocks"]) > 50:
            return {"ok": False, "error": "invalid_blocks"}
        ts = self._next_ts()
        message = {"type": "message", "ts": ts, "user": self.bot_user_id, "bot_id": self.bot_id,
                   "text": p.get("text", ""), "blocks": p.get("blocks", []), "thread_ts": p.get("thread_ts")}
        with self._lock:
            self.messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _update(self, p: dict[str, Any]) -> dict[str, Any]:
        key = (p.get("channel", ""), p.get("ts", ""))
        with self._lock:
            if key not in self.messages:
                return {"ok": False, "error": "message_not_found"}
            message = self.messages[key]
            if "text" in p:
                message["text"] = p["text"]
            if "blocks" in p:
                message["blocks"] = p["blocks"]
        return {"ok": True, "channel": key[0], "ts": key[1], "text": message["text"], "message": message}

    def _post_ephemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("channel") or not p.get("user"):
            return {"ok": False, "error": "channel_not_found" if not p.get("channel") else "user_not_in_channel"}
        return {"ok": True, "message_ts": self._next_ts()}

    def _permalink(self, p: dict[str, Any]) -> dict[str, Any]:
        ts = str(p.get("message_ts", "")).replace(".", "")
        return {"ok": True, "channel": p.get("channel"),
                "permalink": f"https://tighten-test.slack.com/archives/{p.get('channel')}/p{ts}"}

    def _new_view(self, view: Any) -> dict[str, Any] | None:
        if not isinstance(view, dict):
            return None
        if len(view.get("blocks", [])) > 100:
            return None
        view_id = f"V{next(self._ids):08d}"
        stored = {**view, "id": view_id, "team_id": self.team_id}
        with self._lock:
            self.views[view_id] = stored
        return stored

    def _views_open(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        view = self._new_view(p.get("view"))
        return {"ok": True, "view": view} if view else {"ok": False, "error": "invalid_arguments"}

    def _views_update(self, p: dict[str, Any]) -> dict[str, Any]:
        view = self._new_view(p.get("view"))
        return {"ok": True, "view": view} if view else {"ok": False, "error": "invalid_arguments"}

    def _views_publish(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("user_id"):
            return {"ok": False, "error": "invalid_arguments"}
        view = self._new_view(p.get("view"))
        return {"ok": True, "view": view} if view else {"ok": False, "error": "invalid_arguments"}

    def _get_upload_url(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("filename") or not str(p.get("length", "")).isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ids):08d}"
        return {"ok": True, "file_id": file_id, "upload_url": f"{self.root_url}upload/{file_id}"}

    def _complete_upload(self, p: dict[str, Any]) -> dict[str, Any]:
        files = p.get("files")
        if not isinstance(files, list) or not files:
            return {"ok": False, "error": "invalid_arguments"}
        with self._lock:
            missing = [f.get("id") for f in files if f.get("id") not in self.uploads]
        if missing:
            return {"ok": False, "error": "file_not_found"}
        return {"ok": True, "files": [{"id": f["id"], "title": f.get("title"), "name": f.get("title")}
                                      for f in files]}

    def _usergroup_users(self, p: dict[str, Any]) -> dict[str, Any]:
        group = p.get("usergroup")
        with self._lock:
            if group not in self.usergroups:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": list(self.usergroups[group])}

    def _conversation_info(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = p.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": {"id": channel, "name": f"chan-{channel.lower()}", "is_member": True}}

    def _connections_open(self, _: dict[str, Any]) -> dict[str, Any]:
        if self.socket_mode_url is None:
            return {"ok": False, "error": "not_allowed"}
        return {"ok": True, "url": self.socket_mode_url()}

    def _user_info(self, p: dict[str, Any]) -> dict[str, Any]:
        user = p.get("user")
        if not user:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": {"id": user, "name": user.lower(), "tz": "UTC"}}

    # -- convenience for assertions -------------------------------------------------------
    def posted(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Parameters of successful chat.postMessage calls (optionally for one channel)."""
        return [c.params for c in self.calls_to("chat.postMessage", ok_only=True)
                if channel is None or c.params.get("channel") == channel]


def _parse_body(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    content_type = (headers.get("Content-Type") or headers.get("content-type") or "").lower()
    if not body:
        return {}
    if "application/json" in content_type:
        try:
            data = json.loads(body)
        except ValueError:
            return {"_raw": body.decode("utf-8", "replace")}
        return data if isinstance(data, dict) else {"_json": data}
    if "application/x-www-form-urlencoded" in content_type:
        params: dict[str, Any] = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        for key in _JSON_PARAMS:
            if isinstance(params.get(key), str):
                with contextlib.suppress(ValueError):
                    params[key] = json.loads(params[key])
        return params
    return {"_raw_length": len(body)}
