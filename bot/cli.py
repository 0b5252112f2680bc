"""The ``tighten`` command line. Each subcommand lives in ``bot/commands/<name>.py`` and exposes
``add_parser(subparsers)`` (which sets ``func`` to a ``run(args) -> int``)."""

from __future__ import annotations

import argparse
import importlib
import sys

#: Subcommand modules under bot.commands, in the order ``tighten --help`` lists them.
COMMANDS: list[str] = []


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tighten",
        description="Shrink over-privileged AWS IAM roles to what they actually use.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"bot.commands.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
