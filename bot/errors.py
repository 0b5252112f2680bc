"""Expected failures and how the command line reports them: one line naming the problem and what to do.

A command (or anything it calls) raises :class:`UserError` for a problem the user can fix: a bad path, a
file that is not what it should be, a missing tool. Exceptions from the libraries Tighten stands on (SQLite,
the file system, botocore, the Slack SDK) that mean the same thing are translated by :func:`explain`, so a
command does not need its own ``try``/``except`` for them. ``bot.cli.main`` calls :func:`explain` on anything
a command raises and prints ``tighten COMMAND: <message>`` on stderr with the exit status it returns.
Anything :func:`explain` does not recognise is a bug: it is reported as one line too, with a pointer to
``--debug`` (or ``TIGHTEN_DEBUG=1``), which shows the full traceback instead.
"""

from __future__ import annotations

import sqlite3
from typing import Any

#: Bad input: arguments, paths, files, configuration (argparse uses 2 for usage errors too).
EXIT_BAD_INPUT = 2
#: Something outside Tighten failed or could not be reached (AWS, Slack, the network), or a bug.
EXIT_FAILED = 1
#: Interrupted with Ctrl-C.
EXIT_INTERRUPTED = 130

#: Slack Web API errors that mean the token itself is wrong.
BAD_TOKEN_ERRORS = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive",
                              "not_allowed_token_type"})


class UserError(Exception):
    """A problem the user can fix; ``str(exc)`` is the whole message (what is wrong and what to do)."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ConfigError(ValueError):
    """One or more problems in a config file; ``problems`` lists each as ``"<file>: <key>: <message>"``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


def explain(exc: BaseException) -> tuple[str, int] | None:
    """``(one-line message, exit status)`` for an expected failure, ``None`` for a bug."""
    if isinstance(exc, UserError):
        return str(exc), exc.exit_code
    if isinstance(exc, ConfigError):
        return f"{len(exc.problems)} problem(s) in the configuration:\n  " + "\n  ".join(exc.problems), \
            EXIT_BAD_INPUT
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == "moto":
        return ("the embedded AWS needs moto, which is not installed: pip install 'tighten[demo]' "
                "(from a checkout: pip install -e '.[demo]')"), EXIT_BAD_INPUT
    if isinstance(exc, UnicodeDecodeError):
        return (f"a file is not UTF-8 text ({exc.reason} at byte {exc.start}): save it as UTF-8",
                EXIT_BAD_INPUT)
    if isinstance(exc, sqlite3.Error):
        return f"the store failed: {exc} (is it a Tighten store, and is the disk full or read-only?)", EXIT_FAILED
    message = _aws(exc) or _slack(exc)
    if message:
        return message, EXIT_FAILED
    if isinstance(exc, OSError):
        return os_error(exc), EXIT_BAD_INPUT if exc.filename else EXIT_FAILED
    return None


def os_error(exc: OSError) -> str:
    """``PATH: what is wrong`` for a file-system error (or the network error it wraps)."""
    if not exc.filename:
        return f"{exc.strerror or exc}: check the network" if _is_network(exc) else f"{exc.strerror or exc}"
    path = exc.filename
    if isinstance(exc, FileNotFoundError):
        return f"{path}: no such file or directory"
    if isinstance(exc, PermissionError):
        return f"{path}: permission denied"
    if isinstance(exc, IsADirectoryError):
        return f"{path}: is a directory, expected a file"
    if isinstance(exc, NotADirectoryError):
        return f"{path}: part of this path is a file, not a directory"
    if isinstance(exc, FileExistsError):
        return f"{path}: already exists and is not a directory"
    return f"{path}: {exc.strerror or exc}"


def _is_network(exc: BaseException) -> bool:
    import socket
    import urllib.error

    return isinstance(exc, urllib.error.URLError | ConnectionError | socket.gaierror | TimeoutError)


def _aws(exc: BaseException) -> str | None:
    try:
        from botocore import exceptions as be
    except ImportError:  # pragma: no cover - boto3 is a runtime dependency
        return None
    if isinstance(exc, be.NoCredentialsError | be.PartialCredentialsError):
        return ("no AWS credentials: run where a task or instance role is available, or set AWS_PROFILE "
                "or the AWS_* key variables")
    if isinstance(exc, be.NoRegionError):
        return "no AWS region: set AWS_REGION (or pass --region)"
    if isinstance(exc, be.EndpointConnectionError | be.ConnectTimeoutError | be.ReadTimeoutError):
        return f"AWS is unreachable ({exc}): check the network, the proxy or --endpoint-url"
    if isinstance(exc, be.ClientError):
        err: dict[str, Any] = exc.response.get("Error", {})
        return f"AWS refused {exc.operation_name}: {err.get('Code', '?')}: {err.get('Message', '')}"
    if isinstance(exc, be.BotoCoreError):
        return f"AWS: {exc}"
    return None


def _slack(exc: BaseException) -> str | None:
    import urllib.error

    from slack_sdk.errors import SlackApiError

    if isinstance(exc, SlackApiError):
        error = str(exc.response.get("error", "")) if exc.response is not None else ""
        if error in BAD_TOKEN_ERRORS:
            return f"Slack rejected the token ({error}): check SLACK_BOT_TOKEN (a bot token, xoxb-...)"
        return f"Slack answered an error ({error or exc})"
    try:
        from slack_bolt.error import BoltError
    except ImportError:  # pragma: no cover - slack-bolt is a runtime dependency
        BoltError = ()  # type: ignore[assignment,misc]  # noqa: N806
    if isinstance(exc, BoltError) and "auth.test" in str(exc):
        return "Slack rejected the token: check SLACK_BOT_TOKEN (a bot token, xoxb-...)"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot reach the server ({exc.reason}): check the network or the proxy"
    return None
