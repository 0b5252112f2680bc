"""The escaping rule on single values, expected outputs written by hand from Slack's formatting reference
(https://api.slack.com/reference/surfaces/formatting#escaping): ``&``, ``<``, ``>`` as entities; nothing is
formatted inside code."""

from __future__ import annotations

import pytest

from bot.slack.escaping import code, code_block, neutral, plain

FAMILY = "\U0001F468\u200d\U0001F469\u200d\U0001F467"


@pytest.mark.parametrize(("value", "expected"), [
    ("arn:aws:iam::111122223333:role/app", "`arn:aws:iam::111122223333:role/app`"),
    ("<!channel>", "`&lt;!channel&gt;`"),
    ("<https://evil.example/sso|Re-approve here>", "`&lt;https://evil.example/sso|Re-approve here&gt;`"),
    ("&amp;", "`&amp;amp;`"),  # typed by someone: shown as typed, not as "&"
    ("a`b", "`aˋb`"),
    ("ok\n> quoted", "`ok ⏎ &gt; quoted`"),
    ("x\r\ny", "`x ⏎ y`"),
    ("admin\u202egnp.exe", "`admin[U+202E]gnp.exe`"),
    ("zero\u200bwidth", "`zero[U+200B]width`"),
    (FAMILY, f"`{FAMILY}`"),  # joiners inside an emoji sequence are kept
    ("a\u200db", "`a[U+200D]b`"),  # a joiner anywhere else is not
    ("", "_(empty)_"),
    ("   ", "_(empty)_"),
])
def test_code(value: str, expected: str) -> None:
    assert code(value) == expected


def test_block_keeps_lines_and_plain_keeps_slack_characters() -> None:
    assert code_block("a <b>\r\n\tc`") == "a &lt;b&gt;\n\tcˋ"
    assert neutral("<@U1>") == "&lt;@U1&gt;"
    # plain_text: Slack parses nothing there, so only invisible characters and line breaks are shown
    assert plain("<!here> & ok\nnext\u202e") == "<!here> & ok ⏎ next[U+202E]"
