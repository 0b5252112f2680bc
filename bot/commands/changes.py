"""``tighten changes [--db PATH] [--state STATE] [--role NAME] [--json]``: the changes Tighten made or refused,
newest first, with their state, role, proposal, who asked, and the reason when refused or failed."""

from __future__ import annotations

import argparse
import json

from bot.store import changes as cs
from bot.store.db import DEFAULT_DB, open_db

#: Every state a change can be in.
STATES = (cs.APPLYING, cs.APPLIED, cs.ROLLING_BACK, cs.ROLLED_BACK, cs.FAILED, cs.STALE, cs.REFUSED)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("changes", help="list IAM changes Tighten applied, refused or rolled back",
                                   description="List changes, newest first.")
    parser.add_argument("--db", default=DEFAULT_DB, help=f"Tighten's SQLite store (default {DEFAULT_DB})")
    parser.add_argument("--state", action="append", choices=STATES, metavar="STATE",
                        help=f"only this state (repeatable): {', '.join(STATES)}")
    parser.add_argument("--role", help="only changes of this role name")
    parser.add_argument("--limit", type=int, default=50, help="at most N changes (default 50)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from bot.store.changes import ChangeStore

    store = ChangeStore(open_db(args.db, create=False))
    found = store.list(states=tuple(args.state) if args.state else None, role_name=args.role, limit=args.limit)
    if args.json:
        for change in found:
            retained = [r["policy_arn"] for r in store.retained(change.id)]
            print(json.dumps({"id": change.id, "state": change.state, "account": change.account,
                              "role": change.role_name, "proposal": change.proposal_id,
                              "requested_by": change.requested_by, "created_at": change.created_at,
                              "updated_at": change.updated_at, "policies": change.policy_names,
                              "reason": change.reason, "retained_policies": retained}, sort_keys=True))
        return 0
    if not found:
        print("no changes")
        return 0
    # columns as wide as their longest value: a role name or a Slack user ID is never cut
    role = max(len("ROLE"), *(len(change.role_name) for change in found))
    by = max(len("BY"), *(len(change.requested_by or "-") for change in found))
    print(f"{'CHANGE':<12} {'STATE':<13} {'ACCOUNT':<13} {'ROLE':<{role}} {'PROPOSAL':<11} {'BY':<{by}} CREATED")
    for change in found:
        print(f"{change.id:<12} {change.state:<13} {change.account:<13} {change.role_name:<{role}} "
              f"{(change.proposal_id or '-'):<11} {(change.requested_by or '-'):<{by}} {change.created_at}")
        if change.reason and change.state not in ("applied", "rolled_back"):
            print(f"{'':<12} reason: {change.reason}")
    return 0
