"""Render Slack Block Kit messages readably in a terminal (rich), for ``tighten demo``.

Covers the block types Tighten posts: header, section (text and fields), context, divider, actions (buttons),
and mrkdwn's ``*bold*``, ``_italic_``, ```` ``` ```` code blocks and ``<url|label>`` links. Anything else is
shown as its type so nothing is silently hidden.
"""

from __future__ import annotations

import html
import re
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

_LINK = re.compile(r"<([^|>]+)\|([^>]+)>")
_BARE_LINK = re.compile(r"<((?:https?|mailto):[^>]+)>")
_USER = re.compile(r"<@([UW][A-Z0-9]+)>")
_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^>]*)?>")
_DATE = re.compile(r"<!date\^\d+\^[^|>]*\|([^>]+)>")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_([^_\n]+)_(?![\w_])")
_INLINE_CODE = re.compile(r"`([^`\n]+)`")


def mrkdwn_to_rich(text: str) -> Text:
    """Slack mrkdwn (outside code blocks) -> rich Text."""
    text = escape(text)
    text = _DATE.sub(r"\1", text)
    text = _LINK.sub(r"[underline]\2[/underline]", text)
    text = _BARE_LINK.sub(r"[underline]\1[/underline]", text)
    text = _USER.sub(r"[cyan]@\1[/cyan]", text)
    text = _CHANNEL.sub(r"[cyan]#\1[/cyan]", text)
    text = _INLINE_CODE.sub(r"[magenta]\1[/magenta]", text)
    text = _BOLD.sub(r"[bold]\1[/bold]", text)
    text = _ITALIC.sub(r"[italic]\1[/italic]", text)
    text = html.unescape(text)  # Slack escapes &, < and > in text; links were read above
    try:
        return Text.from_markup(text)
    except Exception:  # unbalanced markup from odd input: show it plain rather than fail the demo
        return Text(text)


def _text_parts(text: str) -> list[RenderableType]:
    """Split on ``` fences: prose as mrkdwn, fenced parts as a code block (diff-highlighted when it looks so)."""
    parts: list[RenderableType] = []
    for i, chunk in enumerate(text.split("```")):
        if not chunk.strip():
            continue
        if i % 2:
            lexer = "diff" if re.search(r"^[+-]", chunk, re.M) else "json" if chunk.lstrip()[:1] in "{[" else "text"
            parts.append(Syntax(html.unescape(chunk.strip("\n")), lexer, theme="ansi_dark", word_wrap=True))
        else:
            parts.append(mrkdwn_to_rich(chunk.strip("\n")))
    return parts


def _text_of(obj: dict[str, Any] | None) -> str:
    return (obj or {}).get("text", "")


def render_block(block: dict[str, Any]) -> list[RenderableType]:
    kind = block.get("type")
    if kind == "header":
        return [Text(_text_of(block.get("text")), style="bold reverse")]
    if kind == "section":
        out: list[RenderableType] = []
        if block.get("text"):
            out.extend(_text_parts(_text_of(block["text"])))
        if block.get("fields"):
            table = Table.grid(padding=(0, 3))
            fields = [mrkdwn_to_rich(_text_of(f)) for f in block["fields"]]
            for left, right in zip(fields[0::2], [*fields[1::2], Text("")], strict=False):
                table.add_row(left, right)
            out.append(table)
        if block.get("accessory", {}).get("type") == "button":
            out.append(_button(block["accessory"]))
        return out
    if kind == "context":
        texts = [mrkdwn_to_rich(_text_of(e) or e.get("alt_text", "")) for e in block.get("elements", [])]
        line = Text("  ·  ").join(texts)
        line.stylize("dim")
        return [line]
    if kind == "divider":
        return [Text("─" * 40, style="dim")]
    if kind == "actions":
        buttons = Text("  ").join(_button(e) for e in block.get("elements", []))
        return [buttons]
    return [Text(f"[{kind} block]", style="dim")]


def _button(element: dict[str, Any]) -> Text:
    style = {"primary": "bold white on green", "danger": "bold white on red"}.get(element.get("style", ""),
                                                                                 "bold")
    return Text(f" {_text_of(element.get('text')) or element.get('type', '?')} ", style=style)


def render_message(message: dict[str, Any], title: str | None = None) -> Panel:
    """A posted message (``chat.postMessage`` parameters: ``blocks`` and/or ``text``) as a rich Panel."""
    parts: list[RenderableType] = []
    for block in message.get("blocks") or []:
        parts.extend(render_block(block))
    if not parts:
        parts = _text_parts(message.get("text") or "")
    channel = message.get("channel", "")
    subtitle = f"#{channel}" + (f" · thread {message['thread_ts']}" if message.get("thread_ts") else "")
    return Panel(Group(*parts), title=title, subtitle=subtitle, title_align="left", subtitle_align="right",
                 border_style="blue", expand=True)


def print_message(console: Console, message: dict[str, Any], title: str | None = None) -> None:
    console.print(render_message(message, title))
