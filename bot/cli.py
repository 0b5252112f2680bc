"""The ``tighten`` command line. Each subcommand lives in ``bot/commands/<name>.py`` and exposes
``add_parser(subparsers)`` (which sets ``func`` to a ``run(args) -> int``).

Errors: a command raises :class:`bot.errors.UserError` (or lets a library's exception through) and
:func:`main` prints one line, ``tighten COMMAND: <what is wrong and what to do>``, with a non-zero exit status
(see :mod:`bot.errors`). ``tighten --debug COMMAND`` or ``TIGHTEN_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from importlib import metadata

import bot.commands
from bot.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, explain

#: Main commands first in ``tighten --help``; any other module in bot/commands follows alphabetically.
PREFERRED_ORDER = ["demo", "serve", "ingest", "principals", "generate", "verify", "diff", "check_no_new_access",
                   "scan", "changes", "rollback"]


def command_modules() -> list[str]:
    found = sorted(m.name for m in pkgutil.iter_modules(bot.commands.__path__) if not m.name.startswith("_"))
    return [n for n in PREFERRED_ORDER if n in found] + [n for n in found if n not in PREFERRED_ORDER]


def version() -> str:
    try:
        return metadata.version("tighten")
    except metadata.PackageNotFoundError:  # running from a checkout that was not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tighten",
        description="Shrink over-privileged AWS IAM roles to what they actually use.",
    )
    parser.add_argument("--version", action="version", version=f"tighten {version()}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (also: TIGHTEN_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in command_modules():
        importlib.import_module(f"bot.commands.{name}").add_parser(sub)
    return parser


def debugging(args: argparse.Namespace | None = None) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get("TIGHTEN_DEBUG", "") not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    since, until = getattr(args, "since", None), getattr(args, "until", None)
    if since and until and since > until:
        print(f"tighten {args.command}: --since {since} is after --until {until}: the window is empty",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"tighten {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if debugging(args):
            raise
        explained = explain(exc)
        if explained is None:
            print(f"tighten {args.command}: unexpected error: {type(exc).__name__}: {exc} (this is a bug; "
                  "`tighten --debug ...` or TIGHTEN_DEBUG=1 shows the traceback)", file=sys.stderr)
            return EXIT_FAILED
        message, status = explained
        print(f"tighten {args.command}: {message}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
