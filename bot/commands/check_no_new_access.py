"""``tighten check-no-new-access --current FILE_OR_ROLE_ARN --proposed FILE [--boundary FILE]``.

Proves that the proposed identity policies allow nothing the current ones do not, for any request, under the
same permissions boundary (``bot.policy.contain``). Prints ``PASS`` and exits 0; or ``FAIL`` and one line per
widening (action, resource pattern, the Condition or Deny lost; ``cannot prove: ...`` where it cannot decide)
and exits 3. Inputs as for ``tighten diff``: unreadable or invalid input exits 2 with a one-line error, an IAM
error exits 1.
"""

from __future__ import annotations

import argparse
import sys

from bot.commands.diff import (
    EXIT_AWS_ERROR,
    EXIT_BAD_INPUT,
    AwsError,
    InputError,
    add_policy_arguments,
    read_inputs,
)
from bot.policy.contain import check_no_new_access

EXIT_PASS = 0
EXIT_WIDENS = 3
__all__ = ["EXIT_AWS_ERROR", "EXIT_BAD_INPUT", "EXIT_PASS", "EXIT_WIDENS", "add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "check-no-new-access",
        help="prove a proposed policy grants nothing the current one does not (PASS exit 0, FAIL exit 3)",
        description="Containment check, like AWS's CheckNoNewAccess, offline: every request the proposed "
                    "policies allow must be allowed by the current ones, with the same boundary on both sides.",
    )
    add_policy_arguments(parser)
    parser.add_argument("--max-findings", type=int, default=200, metavar="N",
                        help="list at most N findings (the rest are counted; default 200)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        inputs = read_inputs(args)
    except AwsError as exc:
        print(f"tighten check-no-new-access: {exc}", file=sys.stderr)
        return EXIT_AWS_ERROR
    except InputError as exc:
        print(f"tighten check-no-new-access: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    result = check_no_new_access(inputs.current, inputs.proposed, inputs.boundary,
                                 max_findings=max(1, args.max_findings))
    if result.passed:
        print("PASS")
        return EXIT_PASS
    print("FAIL")
    for line in result.lines():
        print(line)
    return EXIT_WIDENS
