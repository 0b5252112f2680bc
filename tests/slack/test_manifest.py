"""The pasteable app manifest matches what the code does (scopes for every Web API method it calls)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.slack.app import socket_mode_handler

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "config" / "slack-manifest.yaml"

#: Bot scope each Web API method needs (Slack method reference pages); None = no scope.
METHOD_SCOPES = {
    "chat_postMessage": "chat:write", "chat_update": "chat:write", "chat_postEphemeral": "chat:write",
    "files_upload_v2": "files:write", "usergroups_users_list": "usergroups:read",
    "views_open": None, "views_publish": None, "views_update": None,
}


def test_manifest_declares_command_interactivity_home_and_socket_mode() -> None:
    m = yaml.safe_load(MANIFEST.read_text())
    assert [c["command"] for c in m["features"]["slash_commands"]] == ["/tighten"]
    assert m["settings"]["interactivity"]["is_enabled"] is True
    assert m["settings"]["socket_mode_enabled"] is True
    assert "app_home_opened" in m["settings"]["event_subscriptions"]["bot_events"]
    assert m["features"]["app_home"]["home_tab_enabled"] is True


def test_scopes_are_exactly_what_the_code_calls() -> None:
    used = set()
    for path in (REPO / "bot" / "slack").rglob("*.py"):
        used |= set(re.findall(r"client\.([a-zA-Z_0-9]+)\(", path.read_text()))
    assert used <= set(METHOD_SCOPES), f"add the scope of {used - set(METHOD_SCOPES)} to the manifest and here"
    needed = {"commands"} | {METHOD_SCOPES[m] for m in used if METHOD_SCOPES[m]}
    scopes = set(yaml.safe_load(MANIFEST.read_text())["oauth_config"]["scopes"]["bot"])
    assert scopes == needed


def test_socket_mode_needs_an_app_level_token(http_harness) -> None:  # noqa: ANN001 (fixture)
    from bot.slack.app import build_app, make_client
    from tests.slack.conftest import SECRET

    app = build_app(http_harness.ctx, signing_secret=SECRET, client=make_client("xoxb-test",
                                                                            base_url=http_harness.fake.base_url))
    try:
        socket_mode_handler(app, "xoxb-wrong-kind")
    except ValueError as exc:
        assert "xapp-" in str(exc)
    else:
        raise AssertionError("a bot token was accepted for Socket Mode")
    handler = socket_mode_handler(app, "xapp-1-test")  # constructed, not connected
    assert handler.app is app
    handler.close()
