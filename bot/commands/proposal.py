"""``tighten proposal show ID [--db FILE] [--format json|terraform|cloudformation]``: one stored proposal's
policy, as JSON (one document, or a list when split) or as Terraform / CloudFormation that replaces what the
role held when the proposal was computed (``bot.policy.iac``). Read-only: a missing store is an error, never
created."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.policy.iac import FORMATS, render, target_from_record
from bot.policy.model import PolicyError
from bot.store.db import DEFAULT_DB, open_db

EXIT_NOT_FOUND = 2


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("proposal", help="show a stored proposal (JSON, Terraform or CloudFormation)",
                                   description="Work with stored proposals.")
    sub = parser.add_subparsers(dest="proposal_command", metavar="SUBCOMMAND")
    sub.required = True
    show = sub.add_parser("show", help="print a proposal's policy",
                          description="Print a stored proposal's policy: JSON, or Terraform / CloudFormation code "
                                      "that replaces what the role held when the proposal was computed.")
    show.add_argument("proposal_id", metavar="ID", help="the proposal's ID (p-...), as in Slack and `tighten changes`")
    show.add_argument("--db", default=DEFAULT_DB, help=f"Tighten's SQLite store (default {DEFAULT_DB})")
    show.add_argument("--format", choices=FORMATS, default="json", help="output format (default json)")
    show.add_argument("--policy-prefix", default="tighten-", metavar="PREFIX",
                      help="name prefix of the policies in terraform/cloudformation output (default tighten-; "
                           "use the config's apply.managed_policy_prefix)")
    show.set_defaults(func=run_show)
    return parser


def run_show(args: argparse.Namespace) -> int:
    from bot.store.proposals import ProposalStore

    if args.db != ":memory:" and not Path(args.db).is_file():
        print(f"tighten proposal show: no store at {args.db} (give --db)", file=sys.stderr)
        return EXIT_NOT_FOUND
    proposal = ProposalStore(open_db(args.db, create=False)).get(args.proposal_id)
    if proposal is None:
        print(f"tighten proposal show: no proposal {args.proposal_id!r} in {args.db}", file=sys.stderr)
        return EXIT_NOT_FOUND
    if not proposal.documents:
        print(f"tighten proposal show: proposal {proposal.id} holds no policy document", file=sys.stderr)
        return EXIT_NOT_FOUND
    target = target_from_record(role_name=proposal.role_name, account=proposal.account, proposal_id=proposal.id,
                                documents=proposal.documents, iac=proposal.iac,
                                current_names=[d.get("name", "") for d in proposal.current_documents],
                                policy_name_prefix=args.policy_prefix)
    try:
        print(render(proposal.documents, args.format, target), end="")
    except PolicyError as exc:
        print(f"tighten proposal show: proposal {proposal.id} holds an invalid policy: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    managed = proposal.managed_as_code
    state = f"{proposal.id}: {proposal.role_name} ({proposal.account}), {proposal.state}, " \
            f"{len(proposal.documents)} document(s)"
    print(state + (f"; managed as code: {managed.get('reason')}" if managed else ""), file=sys.stderr)
    return 0
