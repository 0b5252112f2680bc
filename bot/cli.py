"""The ``tighten`` command line. Each subcommand lives in ``bot/commands/<name>.py`` and exposes
``add_parser(subparsers)`` (which sets ``func`` to a ``run(args) -> int``)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import bot.commands

#: Main commands first in ``tighten --help``; any other module in bot/commands follows alphabetically.
PREFERRED_ORDER = ["demo", "serve", "ingest", "principals", "generate", "diff", "scan", "changes", "rollback"]


def command_modules() -> list[str]:
    found = sorted(m.name for m in pkgutil.iter_modules(bot.commands.__path__) if not m.name.startswith("_"))
    return [n for n in PREFERRED_ORDER if n in found] + [n for n in found if n not in PREFERRED_ORDER]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tighten",
        description="Shrink over-privileged AWS IAM roles to what they actually use.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in command_modules():
        importlib.import_module(f"bot.commands.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
