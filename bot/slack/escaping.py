"""The one escaping rule for text that did not come from Tighten.

Names, paths, ARNs, S3 keys, tag values, stack names, reasons people type, warning texts built from them, event
times, error details: anything Tighten did not write itself reaches Slack only through this module.

The rule, for Slack mrkdwn (every message, modal, App Home view, digest, ephemeral reply, thread post):

1. **Quoted as code.** An outside value is shown as an inline code span (:func:`code`), or inside a code block
   when it is many lines (:func:`code_block`, e.g. a diff). Slack formats nothing inside code: ``*``, ``_``,
   ``~``, emoji shortcodes and quote marks (``>``) are shown as typed, so a name cannot make text bold, struck
   out or look like Tighten's own words.
2. **Slack's control characters as entities**: ``&`` ``<`` ``>`` become ``&amp;`` ``&lt;`` ``&gt;`` (Slack's
   escaping rule, https://api.slack.com/reference/surfaces/formatting#escaping). No ``<!channel>``,
   ``<!here>``, ``<@U…>``, ``<#C…>`` or ``<https://…|label>`` can come from outside; ``&amp;`` typed by
   someone is shown as ``&amp;``, not as ``&``.
3. **Backticks as** ``ˋ`` (U+02CB), so an outside value can never close its code span (or a code block).
4. **Invisible and layout characters made visible**: control characters and Unicode format characters
   (right-to-left overrides and isolates, zero-width spaces, soft hyphens, byte-order marks...) are shown as
   ``[U+202E]``; line breaks inside a one-line value as ``⏎`` (a value cannot start a line of its own). The
   zero-width joiner is kept inside emoji sequences only.

``@here`` without angle brackets is plain text for Slack (messages are never posted with ``link_names``); text
objects are sent with ``verbatim: true`` so Slack does not turn bare URLs or channel names into links either.

For ``plain_text`` objects (headers, button labels, modal titles) and file titles, where Slack parses nothing,
:func:`plain` applies step 4 only.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

ZWJ = "\u200d"
NEWLINE_MARK = "⏎"
BACKTICK = "ˋ"  # U+02CB MODIFIER LETTER GRAVE ACCENT
EMPTY = "_(empty)_"
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_LINE_BREAKS = frozenset("\n\r\u2028\u2029\x0b\x0c\x85")


def _visible(ch: str) -> str:
    return f"[U+{ord(ch):04X}]"


def _hidden(ch: str, previous: str) -> bool:
    """A character that is invisible or changes the layout of the text around it."""
    category = unicodedata.category(ch)
    if category == "Cf":
        # the zero-width joiner builds emoji sequences (a family, a flag): kept right after a symbol or VS16
        return not (ch == ZWJ and previous and (unicodedata.category(previous) in ("So", "Sk")
                                                or previous == "\ufe0f"))
    return category in ("Cc", "Cs")


#: Characters that need a look: all but printable ASCII (with entities: and ``&``, ``<``, ``>``, backtick too).
_SPECIAL = re.compile(r"[^\x20-\x25\x27-\x3b\x3d\x3f-\x5f\x61-\x7e]")
_SPECIAL_PLAIN = re.compile(r"[^\x20-\x7e]")


def _one(ch: str, previous: str, *, multiline: bool, entities: bool) -> str:
    if ch in _LINE_BREAKS:
        return "\n" if multiline else f" {NEWLINE_MARK} "
    if ch == "\t":
        return "\t" if multiline else " "
    if entities and ch in _ENTITIES:
        return _ENTITIES[ch]
    if entities and ch == "`":
        return BACKTICK
    return _visible(ch) if _hidden(ch, previous) else ch


def _characters(text: str, *, multiline: bool, entities: bool) -> str:
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    pattern = _SPECIAL if entities else _SPECIAL_PLAIN
    if text.isascii():  # the common case: look only at the few characters that need it
        if not pattern.search(text):
            return text

        def replace(match: re.Match[str]) -> str:
            return _one(match.group(), "", multiline=multiline, entities=entities)

        return pattern.sub(replace, text)
    out: list[str] = []
    previous = ""
    for ch in text:
        out.append(ch if " " <= ch <= "~" and ch not in "&<>`" else
                   _one(ch, previous, multiline=multiline, entities=entities))
        previous = ch
    return "".join(out)


def neutral(value: Any, *, multiline: bool = False) -> str:
    """Steps 2-4 of the rule (entities, backticks, invisible characters), without the code span: for text
    that is already inside a code span or code block Tighten writes."""
    return _characters(str(value), multiline=multiline, entities=True)


def code(value: Any) -> str:
    """An outside value as an inline code span, safe in any mrkdwn text."""
    text = neutral(value)
    return f"`{text}`" if text.strip() else EMPTY


def code_block(value: Any) -> str:
    """An outside multi-line text as the body of a code block (the caller adds the fences, see
    :func:`bot.slack.limits.clip_code`)."""
    return neutral(value, multiline=True)


def plain(value: Any) -> str:
    """An outside value for a ``plain_text`` object or a file title: invisible characters made visible, one line."""
    return _characters(str(value), multiline=False, entities=False)
