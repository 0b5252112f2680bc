from __future__ import annotations

import pytest

from bot.config import Config
from bot.slack.serve import SlackSetupError, settings_from_env


def test_missing_secrets_are_named_never_shown() -> None:
    with pytest.raises(SlackSetupError) as err:
        settings_from_env(Config(), {"SLACK_BOT_TOKEN": "xoxp-user-token-secret"}, "socket")
    assert "SLACK_BOT_TOKEN" in str(err.value) and "SLACK_APP_TOKEN" in str(err.value)
    assert "secret" not in str(err.value)
    with pytest.raises(SlackSetupError, match="SLACK_SIGNING_SECRET"):
        settings_from_env(Config(), {"SLACK_BOT_TOKEN": "xoxb-1"}, "http")


def test_settings_repr_hides_tokens() -> None:
    s = settings_from_env(Config(), {"SLACK_BOT_TOKEN": "xoxb-abc", "SLACK_APP_TOKEN": "xapp-def"})
    assert s.mode == "socket" and "xoxb" not in repr(s) and "xapp" not in repr(s)
