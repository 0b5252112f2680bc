"""``tighten check-config --config FILE``: validate a config file and report every problem at once."""

from __future__ import annotations

import argparse
import sys

from bot.config import ConfigError, load_config

#: Exit status for an invalid configuration (argparse also uses 2 for usage errors).
EXIT_INVALID = 2


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "check-config", help="validate a config file (exit 2 and list every problem when invalid)",
        description="Validate a Tighten config file. Each problem names the file, the key and what was expected.",
    )
    parser.add_argument("--config", required=True, metavar="FILE", help="the YAML config file")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"{args.config}: {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_INVALID
    athena = f", athena {cfg.athena.database}.{cfg.athena.table}" if cfg.athena.database else ""
    print(f"{args.config}: OK ({len(cfg.accounts)} account(s), engine {cfg.backend}, slack mode {cfg.slack_mode},"
          f" lookback {cfg.lookback_days} days{athena})")
    return 0
