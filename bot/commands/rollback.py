"""``tighten rollback CHANGE_ID [--force] [--db PATH] [--endpoint-url URL] [--assume-role NAME] [--as WHO]``.

Undoes what an applied change did to its role, and only that: re-attaches what it detached, puts back the exact
text of the inline policies it deleted, restores or removes the ``tighten-*`` policies, and leaves everything
others changed since in place. When someone changed what the change touched (edited a ``tighten-*`` policy,
re-attached a policy it detached), nothing is changed and the conflicts are listed; ``--force`` restores the
before-image anyway (what it replaces is stored first). A change that was already rolled back, or never applied,
is refused with the reason. Exit status: 0 restored, 1 refused or incomplete (the message says why), 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bot.store.db import DEFAULT_DB, open_db

EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "rollback", help="restore a role exactly as it was before a Tighten change",
        description="Restore the role of CHANGE_ID to its stored before-image.",
    )
    parser.add_argument("change_id", metavar="CHANGE_ID", help="the change to undo (see `tighten changes`)")
    parser.add_argument("--db", default=DEFAULT_DB, help=f"Tighten's SQLite store (default {DEFAULT_DB})")
    parser.add_argument("--endpoint-url", help="IAM/STS endpoint (a local moto server in tests)")
    parser.add_argument("--region", default="us-east-1", help="AWS region for the clients")
    parser.add_argument("--assume-role", metavar="NAME",
                        help="role name to assume in the change's account (e.g. TightenApplier); "
                             "default: boto3's credentials as they are")
    parser.add_argument("--as", dest="actor", default=None, help="who asks (recorded in the audit log)")
    parser.add_argument("--force", action="store_true",
                        help="restore the before-image even over others' later changes to what the change touched")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from bot.aws.apply import rollback_change
    from bot.store import changes as cs
    from bot.store.changes import ChangeStore
    from bot.store.proposals import ROLLED_BACK, ProposalStore

    db = open_db(args.db, create=False)
    change = ChangeStore(db).get(args.change_id)
    if change is None:
        print(f"tighten rollback: no change {args.change_id!r} in {args.db}", file=sys.stderr)
        return EXIT_BAD_INPUT
    actor = args.actor or "cli"
    result = rollback_change(db, _iam(args, change.account), args.change_id, requested_by=actor,
                             force=args.force)
    for note in result.notes:
        print(f"  note: {note}")
    for conflict in result.conflicts if result.state != cs.ROLLED_BACK else ():
        print(f"  conflict: {conflict}", file=sys.stderr)
    if result.state != cs.ROLLED_BACK:
        print(f"not rolled back: {result.message}", file=sys.stderr)
        return EXIT_REFUSED
    if change.proposal_id:
        ProposalStore(db).transition(change.proposal_id, ROLLED_BACK)
    print(f"{args.change_id}: {result.message}")
    return 0


def _iam(args: argparse.Namespace, account: str) -> Any:
    if args.assume_role:
        from bot.aws.sessions import AccountSessions

        sessions = AccountSessions(endpoint_url=args.endpoint_url, region=args.region, session_name="tighten-cli")
        return sessions.client(account, "iam", role_name=args.assume_role)
    import boto3

    return boto3.client("iam", endpoint_url=args.endpoint_url, region_name=args.region)
