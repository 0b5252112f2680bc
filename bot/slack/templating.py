"""Jinja2 rendering of the text parts of Slack messages (templates in ``bot/templates/``).

Filters: ``esc`` quotes a value that did not come from Tighten (:func:`bot.slack.escaping.code`, the one
escaping rule); ``who`` names an actor (a Slack mention for a user ID, the escaped name otherwise); ``count``
writes a number with its noun in the right number (``1 action``, ``2 actions``, ``1,024 services``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from bot.slack.escaping import code

SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{6,}$")
SLACK_GROUP_ID = re.compile(r"^S[A-Z0-9]{6,}$")
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
#: Actors that are Tighten itself, named in words.
OWN_ACTORS = {"scheduler": "the scheduler", "tighten": "Tighten"}


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=False,  # Slack mrkdwn, not HTML: outside values go through the `esc` filter
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )
    env.filters["esc"] = code
    env.filters["who"] = who
    env.filters["count"] = count
    return env


def is_slack_user(actor: object) -> bool:
    return bool(SLACK_USER_ID.match(str(actor)))


def who(actor: object) -> str:
    """A Slack user ID (``U…``/``W…``) as a mention; Tighten's own actors in words; anything else (a CLI user)
    quoted as outside text."""
    text = str(actor)
    if SLACK_USER_ID.match(text):
        return f"<@{text}>"
    if text in OWN_ACTORS:
        return OWN_ACTORS[text]
    return code(text)


def group(group_id: object) -> str:
    """A Slack user group ID as a group mention; anything else quoted."""
    text = str(group_id)
    return f"<!subteam^{text}>" if SLACK_GROUP_ID.match(text) else code(text)


def count(n: object, noun: str, plural: str | None = None) -> str:
    """``1 action``, ``2 actions``, ``22,316 actions`` (``plural`` for irregular nouns)."""
    value = int(n)  # type: ignore[call-overload]
    return f"{value:,} {noun if value == 1 else (plural or noun + 's')}"


def render(name: str, **values: Any) -> str:
    """Render ``bot/templates/<name>`` and strip surrounding blank lines."""
    return environment().get_template(name).render(**values).strip()
