"""Slack Block Kit limits, enforced on every message and view we build.

Numbers from Slack's Block Kit reference (https://api.slack.com/reference/block-kit): 50 blocks per message,
100 per modal / App Home view, 3,000 characters of section text, 150 of header text, 2,000 of button value,
75 of button text, 25 elements in an actions block, 3,000 in a context element, 40,000 for message text.
Anything longer is cut with a visible marker, never silently dropped.
"""

from __future__ import annotations

from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_BUTTON_VALUE = 2000
MAX_BUTTON_TEXT = 75
MAX_ACTIONS_ELEMENTS = 25
MAX_CONTEXT_TEXT = 3000
MAX_MESSAGE_TEXT = 40000
MAX_MODAL_TITLE = 24
MAX_PRIVATE_METADATA = 3000
#: Slack has been reported to reject messages whose blocks hold more than about 13k characters in total.
MAX_MESSAGE_CHARS = 12000

#: Marker appended where content was cut; the full text is always uploaded in the thread.
TRUNCATED = "… (full diff in thread)"
CUT = "…"


class BlockLimitError(ValueError):
    """A value that must not be cut (a button value, an id) is over its limit."""


def clip(text: str, limit: int, marker: str = CUT) -> str:
    """``text`` if it fits in ``limit`` characters, else its start plus ``marker`` (total <= limit)."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(marker))] + marker


def clip_code(text: str, limit: int = MAX_SECTION_TEXT, marker: str = TRUNCATED) -> str:
    """``text`` in a ``` code block of at most ``limit`` characters, cut at a line end when possible."""
    fence = "```"
    text = text.replace(fence, "ˋˋˋ")  # a fence inside the text would end the block early
    whole = f"{fence}\n{text}\n{fence}"
    if len(whole) <= limit:
        return whole
    room = limit - (2 * len(fence) + 3 + len(marker))
    cut = text[:room]
    newline = cut.rfind("\n")
    if newline > room // 2:
        cut = cut[:newline]
    return f"{fence}\n{cut}\n{fence}\n{marker}"


def escape(text: str) -> str:
    """Escape the three characters Slack mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def check_button_value(value: str) -> str:
    if len(value) > MAX_BUTTON_VALUE:
        raise BlockLimitError(f"button value is {len(value)} characters (limit {MAX_BUTTON_VALUE})")
    return value


def fit_blocks(blocks: list[dict[str, Any]], max_blocks: int = MAX_MESSAGE_BLOCKS,
               marker: str = TRUNCATED) -> list[dict[str, Any]]:
    """Clip every text to its limit and keep at most ``max_blocks`` blocks.

    When blocks must be dropped, actions blocks (the buttons) are kept and the last kept content block
    says what was left out.
    """
    blocks = [_fit_block(b) for b in blocks]
    if len(blocks) <= max_blocks:
        return blocks
    actions = [b for b in blocks if b.get("type") == "actions"]
    content = [b for b in blocks if b.get("type") != "actions"]
    room = max_blocks - len(actions) - 1
    kept = content[:room] + [{"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"{len(content) - room} more item(s) not shown {marker}"}]}]
    # keep the buttons where they were relative to the kept content: at the end
    return kept + actions[: max_blocks - len(kept)]


def check_blocks(blocks: list[dict[str, Any]], max_blocks: int = MAX_MESSAGE_BLOCKS) -> list[str]:
    """Every limit violation in ``blocks`` (empty when valid). Used by tests and as a last guard."""
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(f"{len(blocks)} blocks (limit {max_blocks})")
    total = total_chars(blocks)
    if max_blocks == MAX_MESSAGE_BLOCKS and total > MAX_MESSAGE_CHARS:
        problems.append(f"{total} characters of text in total (keep under {MAX_MESSAGE_CHARS})")
    for i, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "header" and len(block["text"]["text"]) > MAX_HEADER_TEXT:
            problems.append(f"block {i}: header text {len(block['text']['text'])} > {MAX_HEADER_TEXT}")
        if kind == "section":
            text = block.get("text", {}).get("text", "")
            if len(text) > MAX_SECTION_TEXT:
                problems.append(f"block {i}: section text {len(text)} > {MAX_SECTION_TEXT}")
            for field in block.get("fields", []):
                if len(field.get("text", "")) > 2000:
                    problems.append(f"block {i}: section field > 2000")
            if len(block.get("fields", [])) > 10:
                problems.append(f"block {i}: more than 10 fields")
        if kind == "context":
            for el in block.get("elements", []):
                if len(el.get("text", "")) > MAX_CONTEXT_TEXT:
                    problems.append(f"block {i}: context text > {MAX_CONTEXT_TEXT}")
            if len(block.get("elements", [])) > 10:
                problems.append(f"block {i}: more than 10 context elements")
        if kind == "actions":
            elements = block.get("elements", [])
            if len(elements) > MAX_ACTIONS_ELEMENTS:
                problems.append(f"block {i}: {len(elements)} action elements > {MAX_ACTIONS_ELEMENTS}")
            for el in elements:
                if len(el.get("value", "")) > MAX_BUTTON_VALUE:
                    problems.append(f"block {i}: button value > {MAX_BUTTON_VALUE}")
                if len(el.get("text", {}).get("text", "")) > MAX_BUTTON_TEXT:
                    problems.append(f"block {i}: button text > {MAX_BUTTON_TEXT}")
        if "block_id" in block and len(block["block_id"]) > 255:
            problems.append(f"block {i}: block_id > 255")
    return problems


def total_chars(value: Any) -> int:
    """Characters of every ``text`` string inside ``value`` (blocks, elements, fields)."""
    if isinstance(value, dict):
        return sum(len(v) if k == "text" and isinstance(v, str) else total_chars(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(total_chars(v) for v in value)
    return 0


def _fit_block(block: dict[str, Any]) -> dict[str, Any]:
    block = dict(block)
    kind = block.get("type")
    if kind == "header":
        block["text"] = {**block["text"], "text": clip(block["text"]["text"], MAX_HEADER_TEXT)}
    elif kind == "section":
        if "text" in block:
            text = block["text"]["text"]
            if len(text) > MAX_SECTION_TEXT:
                fixed = clip_code(_strip_fence(text)) if text.startswith("```") else clip(
                    text, MAX_SECTION_TEXT, TRUNCATED)
                block["text"] = {**block["text"], "text": fixed}
        if "fields" in block:
            block["fields"] = [{**f, "text": clip(f["text"], 2000)} for f in block["fields"][:10]]
    elif kind == "context":
        block["elements"] = [{**e, "text": clip(e["text"], MAX_CONTEXT_TEXT)} if "text" in e else e
                             for e in block["elements"][:10]]
    elif kind == "actions":
        elements = block["elements"][:MAX_ACTIONS_ELEMENTS]
        for el in elements:
            if "value" in el:
                check_button_value(el["value"])
        block["elements"] = [
            {**el, "text": {**el["text"], "text": clip(el["text"]["text"], MAX_BUTTON_TEXT)}} if "text" in el else el
            for el in elements]
    return block


def _strip_fence(text: str) -> str:
    body = text[3:]
    if body.startswith("\n"):
        body = body[1:]
    end = body.rfind("```")
    return body[:end].rstrip("\n") if end >= 0 else body
