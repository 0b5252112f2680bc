"""Jinja2 rendering of the text parts of Slack messages (templates in ``bot/templates/``)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from bot.slack.limits import escape

SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{6,}$")
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=False,  # Slack mrkdwn, not HTML: values are escaped with the `esc` filter
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )
    env.filters["esc"] = lambda value: escape(str(value))
    env.filters["who"] = who
    return env


def who(actor: object) -> str:
    """A Slack user ID (``U…``/``W…``) as a mention; anything else (``scheduler``, a CLI user) as plain text."""
    text = str(actor)
    if SLACK_USER_ID.match(text):
        return f"<@{text}>"
    return f"_{escape(text)}_"


def render(name: str, **values: Any) -> str:
    """Render ``bot/templates/<name>`` and strip surrounding blank lines."""
    return environment().get_template(name).render(**values).strip()
