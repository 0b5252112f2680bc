"""``tighten scan ROLE [--config FILE] [--db PATH] [--endpoint-url URL] [--assume-role NAME] [--as WHO]``.

Runs one scan now (the same pipeline as the scheduler: role snapshot, usage in the lookback window, generated
policy, diff, risk, coverage warnings) and prints the outcome. A proposal is stored as ``pending`` (the bot
posts it for review when it runs); nothing is posted to Slack and nothing is applied from here. ROLE is a role
name or ARN; a name is looked up in the role directory, else in the single configured account.

Exit status: 0 proposal created or already tight, 1 not proposed (incomplete usage data, deferred), 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_NOT_PROPOSED = 1
EXIT_BAD_INPUT = 2


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "scan", help="scan one role now and print the proposed least-privilege change",
        description="Scan ROLE now: what it holds, what it used, the proposal and its diff.",
    )
    parser.add_argument("role", metavar="ROLE", help="role name or ARN")
    parser.add_argument("--config", help="Tighten config file (lookback, accounts, allowlist, store)")
    parser.add_argument("--db", help="Tighten's SQLite store (default: store.path from the config)")
    parser.add_argument("--account", help="account ID when ROLE is a name known in several accounts")
    parser.add_argument("--endpoint-url", help="IAM/STS endpoint (a local moto server in tests)")
    parser.add_argument("--region", default="us-east-1", help="AWS region for the clients")
    parser.add_argument("--assume-role", metavar="NAME", help="role name to assume in the account (TightenReader)")
    parser.add_argument("--as", dest="actor", default="cli", help="who asks (recorded in the audit log)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from botocore.exceptions import ClientError

    from bot.config import Config, ConfigError, load_config
    from bot.jobs.context import JobContext
    from bot.jobs.scan import run_scan
    from bot.policy.allowlist import AllowlistError

    try:
        config = load_config(args.config) if args.config else Config()
    except (ConfigError, OSError) as exc:
        print(f"tighten scan: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    db_path = args.db or config.db_path
    # IAM's service-last-accessed data comes from the same IAM client; a local emulator (--endpoint-url) does
    # not implement that API, so scans against one run without that safety net (and say so)
    ctx = JobContext(db_path=db_path, config=config, iam_for=lambda account: _iam(args, account),
                     last_accessed_for=None if args.endpoint_url else (lambda account: _iam(args, account)))
    try:
        target = _resolve(ctx, args)
        if isinstance(target, str):
            print(f"tighten scan: {target}", file=sys.stderr)
            return EXIT_BAD_INPUT
        account, arn = target
        try:
            outcome = run_scan(ctx, account, arn, requested_by=args.actor)
        except AllowlistError as exc:
            print(f"tighten scan: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except ClientError as exc:  # NoSuchEntity, AccessDenied...; unreachable AWS or no credentials: bot.cli
            print(f"tighten scan: {arn}: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        _print(outcome)
        return 0 if outcome.result in ("proposed", "already_tight") else EXIT_NOT_PROPOSED
    finally:
        ctx.close()


def _resolve(ctx: Any, args: argparse.Namespace) -> tuple[str, str] | str:
    role: str = args.role
    if role.startswith("arn:"):
        parts = role.split(":")
        if len(parts) < 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
            return f"{role!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"
        return parts[4], role
    known = [r for r in ctx.roles.find(role) if not args.account or r.account == args.account]
    if len(known) == 1:
        return known[0].account, known[0].arn
    if len(known) > 1:
        return f"role {role!r} exists in accounts {', '.join(r.account for r in known)}; pass --account"
    account = args.account or (ctx.config.accounts[0].id if len(ctx.config.accounts) == 1 else None)
    if account is None:
        account = _caller_account(args)
    if account is None:
        return f"cannot tell the account of role {role!r}: pass its ARN or --account"
    from botocore.exceptions import ClientError

    iam = ctx.iam(account)
    try:
        return account, iam.get_role(RoleName=role)["Role"]["Arn"]
    except ClientError as exc:  # an unreachable AWS is not a missing role: that goes to bot.cli's one line
        code = exc.response.get("Error", {}).get("Code", "?")
        if code == "NoSuchEntity":
            return f"role {role!r} not found in account {account}"
        return f"cannot read role {role!r} in account {account}: {code}"


def _caller_account(args: argparse.Namespace) -> str | None:
    import boto3
    from botocore.exceptions import NoCredentialsError

    try:
        sts = boto3.client("sts", endpoint_url=args.endpoint_url, region_name=args.region)
        return str(sts.get_caller_identity()["Account"])
    except NoCredentialsError:  # the caller is told to pass --account; an unreachable AWS is reported as such
        return None


def _iam(args: argparse.Namespace, account: str) -> Any:
    if args.assume_role:
        from bot.aws.sessions import AccountSessions

        sessions = AccountSessions(endpoint_url=args.endpoint_url, region=args.region, session_name="tighten-cli")
        return sessions.client(account, "iam", role_name=args.assume_role)
    import boto3

    return boto3.client("iam", endpoint_url=args.endpoint_url, region_name=args.region)


def _print(outcome: Any) -> None:
    print(f"{outcome.principal_arn}: {outcome.result}")
    print(f"  {outcome.message}")
    if outcome.risk_tier:
        print(f"  risk: {outcome.risk_score:.1f} ({outcome.risk_tier})")
    for note in outcome.notes:
        if note not in outcome.message:  # a reason not to propose is already the message
            print(f"  note: {note}")
    p = outcome.proposal
    if p is None:
        return
    for reason in p.risk_reasons:
        print(f"  risk reason: {reason}")
    for warning in p.warnings:
        print(f"  warning [{warning.get('code')}]: {warning.get('message')}")
    print()
    print(p.diff_text)
