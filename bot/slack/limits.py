"""Slack Block Kit limits, enforced on every message and view we build: the one place that knows them.

Numbers from Slack's Block Kit reference (https://api.slack.com/reference/block-kit): 50 blocks per message,
100 per modal / App Home view, 3,000 characters of section text, 150 of header text, 2,000 of button value,
75 of button text, 25 elements in an actions block, 3,000 in a context element, 40,000 for message text.

Lengths are counted in UTF-16 code units (:func:`units`), as Slack counts them where it counts that way: an
emoji outside the Basic Multilingual Plane is two units, so 3,000 emoji are 6,000 units, not 3,000. Counting every
limit this way is never less than counting code points, so a text that fits here fits Slack either way.

Anything longer is cut with a visible marker, never silently dropped, and cuts are safe (:func:`clip`): never
inside an entity (``&amp;``), a Slack control sequence (``<@U…>``, ``<!date…>``, ``<url|label>``), a code span,
a surrogate pair or an emoji sequence.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELD = 2000
MAX_SECTION_FIELDS = 10
MAX_HEADER_TEXT = 150
MAX_BUTTON_VALUE = 2000
MAX_BUTTON_TEXT = 75
MAX_ACTIONS_ELEMENTS = 25
MAX_CONTEXT_TEXT = 3000
MAX_CONTEXT_ELEMENTS = 10
MAX_MESSAGE_TEXT = 40000
MAX_MODAL_TITLE = 24
MAX_CONFIRM_TITLE = 100
MAX_CONFIRM_TEXT = 300
MAX_PRIVATE_METADATA = 3000
MAX_BLOCK_ID = 255
#: Slack has been reported to reject messages whose blocks hold more than about 13k characters in total.
MAX_MESSAGE_CHARS = 12000
#: The notification text we send with blocks (Slack's limit is MAX_MESSAGE_TEXT; short is kinder).
MAX_NOTIFICATION_TEXT = 3000

#: Marker appended where content was cut; the full text is always uploaded in the thread.
TRUNCATED = "… (full diff in thread)"
CUT = "…"


def units(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (how Slack counts)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def _prefix(text: str, room: int) -> str:
    """The longest prefix of ``text`` of at most ``room`` UTF-16 units."""
    if text.isascii():
        return text[:max(0, room)]
    used = 0
    for i, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > room:
            return text[:i]
    return text


_OPEN_ENTITY = re.compile(r"&[#a-zA-Z0-9]{0,8}$")


def _joins(ch: str) -> bool:
    """A character that belongs to the character before it (combining mark, variation selector, emoji
    modifier, zero-width joiner)."""
    return unicodedata.category(ch) in ("Mn", "Me", "Mc") or ch == "\u200d" or 0x1F3FB <= ord(ch) <= 0x1F3FF


def _safe_cut(text: str, cut: str) -> str:
    """``cut`` (a prefix of ``text``) shortened so it ends on a boundary Slack and readers agree on."""
    while True:
        before = cut
        entity = _OPEN_ENTITY.search(cut)
        if entity:
            cut = cut[:entity.start()]
        if cut.rfind("<") > cut.rfind(">"):
            cut = cut[:cut.rfind("<")]
        while cut and ((len(cut) < len(text) and _joins(text[len(cut)])) or cut[-1] == "\u200d"):
            cut = cut[:-1]
        if cut == before:
            return cut


def safe_prefix(text: str, room: int) -> str:
    """The longest prefix of ``text`` within ``room`` units that ends on a safe boundary (see :func:`clip`)."""
    return _safe_cut(text, _prefix(text, room))


def _open_code_span(text: str) -> bool:
    """Does ``text`` end inside an inline code span (an odd number of single backticks outside fences)?"""
    return text.replace("```", "").count("`") % 2 == 1


def clip(text: str, limit: int, marker: str = CUT) -> str:
    """``text`` if it fits in ``limit`` units, else a safe prefix plus ``marker`` (total <= limit)."""
    if units(text) <= limit:
        return text
    room = max(0, limit - units(marker) - 1)  # one unit kept to close a code span
    cut = safe_prefix(text, room)
    if _open_code_span(cut):
        cut += "`"
    return cut + marker


def clip_code(text: str, limit: int = MAX_SECTION_TEXT, marker: str = TRUNCATED) -> str:
    """``text`` (already escaped) in a ``` code block of at most ``limit`` units, cut at a line end when
    possible."""
    fence = "```"
    text = text.replace("`", "ˋ")  # a backtick inside the text could end the block early
    whole = f"{fence}\n{text}\n{fence}"
    if units(whole) <= limit:
        return whole
    room = limit - (2 * len(fence) + 3 + units(marker))
    cut = safe_prefix(text, room)
    newline = cut.rfind("\n")
    if newline > len(cut) // 2:
        cut = cut[:newline]
    return f"{fence}\n{cut}\n{fence}\n{marker}"


class BlockLimitError(ValueError):
    """A value that must not be cut (a button value, an id) is over its limit."""


def check_button_value(value: str) -> str:
    if units(value) > MAX_BUTTON_VALUE:
        raise BlockLimitError(f"button value is {units(value)} units (limit {MAX_BUTTON_VALUE})")
    return value


def fit_blocks(blocks: list[dict[str, Any]], max_blocks: int = MAX_MESSAGE_BLOCKS,
               marker: str = TRUNCATED) -> list[dict[str, Any]]:
    """Clip every text to its limit and keep at most ``max_blocks`` blocks.

    When blocks must be dropped, actions blocks (the buttons) are kept and the last kept content block
    says what was left out. The first block is never dropped.
    """
    blocks = [_fit_block(b) for b in blocks]
    if len(blocks) <= max_blocks:
        return blocks
    actions = [b for b in blocks if b.get("type") == "actions"]
    content = [b for b in blocks if b.get("type") != "actions"]
    room = max_blocks - len(actions) - 1
    kept = content[:room] + [{"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"{len(content) - room} more {'item' if len(content) - room == 1 else 'items'} not shown {marker}"}]}]
    # keep the buttons where they were relative to the kept content: at the end
    return kept + actions[: max_blocks - len(kept)]


def _text(obj: Any) -> str:
    return obj.get("text", "") if isinstance(obj, dict) else ""


def _check_element(el: dict[str, Any], where: str, problems: list[str]) -> None:
    if "value" in el and units(str(el["value"])) > MAX_BUTTON_VALUE:
        problems.append(f"{where}: button value > {MAX_BUTTON_VALUE}")
    if el.get("type") == "button" and units(_text(el.get("text"))) > MAX_BUTTON_TEXT:
        problems.append(f"{where}: button text > {MAX_BUTTON_TEXT}")
    confirm = el.get("confirm")
    if isinstance(confirm, dict):
        if units(_text(confirm.get("title"))) > MAX_CONFIRM_TITLE:
            problems.append(f"{where}: confirm title > {MAX_CONFIRM_TITLE}")
        if units(_text(confirm.get("text"))) > MAX_CONFIRM_TEXT:
            problems.append(f"{where}: confirm text > {MAX_CONFIRM_TEXT}")


def check_blocks(blocks: list[dict[str, Any]], max_blocks: int = MAX_MESSAGE_BLOCKS) -> list[str]:
    """Every limit violation in ``blocks`` (empty when valid), lengths in UTF-16 units. Used by tests and as a
    last guard."""
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(f"{len(blocks)} blocks (limit {max_blocks})")
    total = total_chars(blocks)
    if max_blocks == MAX_MESSAGE_BLOCKS and total > MAX_MESSAGE_CHARS:
        problems.append(f"{total} units of text in total (keep under {MAX_MESSAGE_CHARS})")
    for i, block in enumerate(blocks):
        kind = block.get("type")
        where = f"block {i}"
        if kind == "header" and units(_text(block.get("text"))) > MAX_HEADER_TEXT:
            problems.append(f"{where}: header text {units(_text(block.get('text')))} > {MAX_HEADER_TEXT}")
        if kind == "section":
            text = _text(block.get("text"))
            if units(text) > MAX_SECTION_TEXT:
                problems.append(f"{where}: section text {units(text)} > {MAX_SECTION_TEXT}")
            for field in block.get("fields", []):
                if units(_text(field)) > MAX_SECTION_FIELD:
                    problems.append(f"{where}: section field > {MAX_SECTION_FIELD}")
            if len(block.get("fields", [])) > MAX_SECTION_FIELDS:
                problems.append(f"{where}: more than {MAX_SECTION_FIELDS} fields")
            if isinstance(block.get("accessory"), dict):
                _check_element(block["accessory"], where, problems)
        if kind == "context":
            for el in block.get("elements", []):
                if units(_text(el)) > MAX_CONTEXT_TEXT:
                    problems.append(f"{where}: context text > {MAX_CONTEXT_TEXT}")
            if len(block.get("elements", [])) > MAX_CONTEXT_ELEMENTS:
                problems.append(f"{where}: more than {MAX_CONTEXT_ELEMENTS} context elements")
        if kind == "actions":
            elements = block.get("elements", [])
            if len(elements) > MAX_ACTIONS_ELEMENTS:
                problems.append(f"{where}: {len(elements)} action elements > {MAX_ACTIONS_ELEMENTS}")
            for el in elements:
                _check_element(el, where, problems)
        if "block_id" in block and units(block["block_id"]) > MAX_BLOCK_ID:
            problems.append(f"{where}: block_id > {MAX_BLOCK_ID}")
    return problems


def total_chars(value: Any) -> int:
    """UTF-16 units of every ``text`` string inside ``value`` (blocks, elements, fields)."""
    if isinstance(value, dict):
        return sum(units(v) if k == "text" and isinstance(v, str) else total_chars(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(total_chars(v) for v in value)
    return 0


def _fit_element(el: dict[str, Any]) -> dict[str, Any]:
    if "value" in el:
        check_button_value(str(el["value"]))
    if el.get("type") == "button" and "text" in el:
        el = {**el, "text": {**el["text"], "text": clip(el["text"]["text"], MAX_BUTTON_TEXT)}}
    return el


def _fit_block(block: dict[str, Any]) -> dict[str, Any]:
    block = dict(block)
    kind = block.get("type")
    if kind == "header":
        block["text"] = {**block["text"], "text": clip(block["text"]["text"], MAX_HEADER_TEXT)}
    elif kind == "section":
        if "text" in block:
            text = block["text"]["text"]
            if units(text) > MAX_SECTION_TEXT:
                fixed = clip_code(_strip_fence(text)) if text.startswith("```") else clip(
                    text, MAX_SECTION_TEXT, TRUNCATED)
                block["text"] = {**block["text"], "text": fixed}
        if "fields" in block:
            block["fields"] = [{**f, "text": clip(f["text"], MAX_SECTION_FIELD)}
                               for f in block["fields"][:MAX_SECTION_FIELDS]]
        if isinstance(block.get("accessory"), dict):
            block["accessory"] = _fit_element(block["accessory"])
    elif kind == "context":
        block["elements"] = [{**e, "text": clip(e["text"], MAX_CONTEXT_TEXT)} if "text" in e else e
                             for e in block["elements"][:MAX_CONTEXT_ELEMENTS]]
    elif kind == "actions":
        block["elements"] = [_fit_element(el) for el in block["elements"][:MAX_ACTIONS_ELEMENTS]]
    return block


def _strip_fence(text: str) -> str:
    body = text[3:]
    if body.startswith("\n"):
        body = body[1:]
    end = body.rfind("```")
    return body[:end].rstrip("\n") if end >= 0 else body
