"""Running the Slack app alone from a config file and the environment (``tighten serve`` adds the scheduler).

Secrets come only from the environment and are never logged: ``SLACK_BOT_TOKEN`` (xoxb-), ``SLACK_APP_TOKEN``
(xapp-, Socket Mode) and ``SLACK_SIGNING_SECRET`` (HTTP mode). ``SLACK_API_URL`` points the Web API client
elsewhere (a proxy, or the demo's local stand-in for Slack).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from slack_bolt import App

from bot.config import Config
from bot.slack.app import build_app, make_client, serve_http, serve_socket_mode
from bot.slack.context import AppContext


class SlackSetupError(ValueError):
    """A missing or malformed setting; the message names the variable, never its value."""


@dataclass(frozen=True)
class SlackSettings:
    mode: str  # "socket" | "http"
    bot_token: str
    signing_secret: str
    app_token: str | None
    api_url: str | None

    def __repr__(self) -> str:  # never print tokens
        return f"SlackSettings(mode={self.mode!r}, api_url={self.api_url!r})"


def settings_from_env(config: Config, environ: Mapping[str, str] | None = None,
                      mode: str | None = None) -> SlackSettings:
    env = os.environ if environ is None else environ
    mode = mode or config.slack_mode
    if mode not in ("socket", "http"):
        raise SlackSetupError(f"Slack mode must be 'socket' or 'http', got {mode!r}")
    problems = []
    bot_token = env.get("SLACK_BOT_TOKEN", "")
    if not bot_token.startswith("xoxb-"):
        problems.append("SLACK_BOT_TOKEN is missing or not a bot token (xoxb-...)")
    app_token = env.get("SLACK_APP_TOKEN")
    if mode == "socket" and not (app_token or "").startswith("xapp-"):
        problems.append("SLACK_APP_TOKEN is missing or not an app-level token (xapp-...); Socket Mode needs it")
    secret = env.get("SLACK_SIGNING_SECRET", "")
    if mode == "http" and not secret:
        problems.append("SLACK_SIGNING_SECRET is missing; HTTP mode verifies every request with it")
    if problems:
        raise SlackSetupError("; ".join(problems))
    return SlackSettings(mode=mode, bot_token=bot_token, signing_secret=secret, app_token=app_token,
                         api_url=env.get("SLACK_API_URL") or None)


def build_from_settings(ctx: AppContext, settings: SlackSettings) -> App:
    client = make_client(settings.bot_token, base_url=settings.api_url)
    return build_app(ctx, signing_secret=settings.signing_secret, client=client)


def run_slack(config: Config, *, mode: str | None = None, host: str | None = None, port: int | None = None,
              environ: Mapping[str, str] | None = None) -> None:
    """Serve the Slack app until interrupted (raises SlackSetupError on bad settings before connecting)."""
    settings = settings_from_env(config, environ, mode)
    ctx = AppContext(db_path=config.db_path, config=config)
    app = build_from_settings(ctx, settings)
    if settings.mode == "socket":
        serve_socket_mode(app, settings.app_token or "")
    else:
        serve_http(app, settings.signing_secret, config.http_host if host is None else host,
                   config.http_port if port is None else port)
