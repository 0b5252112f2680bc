"""``tighten generate --cloudtrail PATH_OR_S3_URL --principal ARN [--since DATE] [--until DATE]
[--allowlist FILE] [--db FILE] [--format json|terraform|cloudformation] [--current FILE_OR_ROLE_ARN]
[--allow-partial]``: print the least-privilege policy JSON (a list when split) to stdout, or the same documents
as Terraform or CloudFormation for a role (``bot.policy.iac``).

With ``--current`` (policy files, or a role or user ARN read from IAM, as for ``tighten diff``) the policy is
built inside the current policies (their Conditions and Denies kept, never a broader resource) and checked
for containment; the result of the check is printed on stderr (a failing check exits 2). ``--endpoint-url``
serves IAM too. Without ``--current``, the pure usage policy.

Without ``--db`` the logs are ingested into a temporary in-memory index; with ``--db`` the index is updated
incrementally (and ``--cloudtrail`` may be omitted to use it as is). Unknown principal or no usage in the
window: a clear message on stderr, exit 2. Logs that could not all be read (this run's, or recorded in the
index by earlier runs): a summary of them on stderr and exit 3 with no policy, unless ``--allow-partial``.
"""

from __future__ import annotations

import argparse
import sys

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console

from bot.commands.diff import AwsError, InputError, add_policy_arguments, read_inputs
from bot.commands.ingest import add_source_arguments, ingest_with_progress
from bot.policy.allowlist import AllowlistError
from bot.policy.contain import check_no_new_access
from bot.policy.generate import GenerateOptions, generate_policy
from bot.policy.iac import FORMATS, RoleTarget, render
from bot.policy.model import parse_policy
from bot.store.allowlist import load_allowlist
from bot.store.db import open_db
from bot.store.usage import UsageIndex

EXIT_NO_POLICY = 2
EXIT_INCOMPLETE = 3
#: Unreadable logs listed one by one on stderr; the count is always given.
_LISTED = 20

EXIT_CODES_HELP = """exit codes:
  0  the policy was printed (with --allow-partial: also when some logs could not be read; stderr says which)
  2  no policy: bad arguments, unknown principal, or no usage in the window
  3  no policy: some CloudTrail logs that may hold the principal's calls could not be read (truncated,
     not CloudTrail, past a size limit, ...), so its usage would be undercounted; stderr lists them.
     --allow-partial prints the policy from the logs that could be read"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "generate", help="print a least-privilege policy for one principal",
        description="Generate the IAM policy a principal needs from its CloudTrail usage (plus allowlist). "
                    "Prints JSON: one document, or a list when the policy had to be split.",
        epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_source_arguments(parser, required=False)
    parser.add_argument("--principal", required=True, metavar="ARN",
                        help="role/user ARN (a role or user name works when it is unambiguous)")
    parser.add_argument("--allowlist", metavar="FILE", help="allowlist YAML (see config/allowlist.yaml)")
    parser.add_argument("--db", metavar="FILE", help="usage index to use/update (default: temporary)")
    parser.add_argument("--generalize-threshold", type=int, default=GenerateOptions().generalize_threshold,
                        metavar="N", help="more than N ARNs under one prefix become prefix/* (0: never)")
    parser.add_argument("--exclude-invoked-by", action="store_true",
                        help="ignore calls AWS services made on the principal's behalf")
    parser.add_argument("--format", choices=FORMATS, default="json",
                        help="json (default), or terraform / cloudformation: the policy as code for a role "
                             "(aws_iam_policy_document + policy resources, or AWS::IAM::ManagedPolicy YAML)")
    parser.add_argument("--policy-prefix", default="tighten-", metavar="PREFIX",
                        help="name prefix of the policies in terraform/cloudformation output (default tighten-)")
    add_policy_arguments(parser, proposed=False, current_required=False, endpoint=False)
    parser.add_argument("--allow-partial", action="store_true",
                        help="print a policy even when some logs could not be read (it may lack calls in them)")
    parser.set_defaults(func=run)
    return parser


def _resolve(index: UsageIndex, wanted: str) -> tuple[str | None, str]:
    arns = [p.arn for p in index.principals()]
    if wanted in arns:
        return wanted, ""
    if not wanted.startswith("arn:"):
        by_name = [a for a in arns if "/" in a and a.rsplit("/", 1)[1].lower() == wanted.lower()]
        if len(by_name) == 1:
            return by_name[0], ""
        if by_name:
            return None, f"{wanted!r} is ambiguous: " + ", ".join(by_name)
    near = [a for a in arns if wanted.rsplit("/", 1)[-1].lower() in a.lower()][:5]
    hint = f" (similar: {', '.join(near)})" if near else f" ({len(arns)} principals known; see `tighten principals`)"
    return None, f"unknown principal {wanted!r}: no calls by it in the logs{hint}"


def _account_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4].isdigit() else None


def _report_unread(unread: list[tuple[str, str]], head: str) -> None:
    """The loud part: every log that could not be read, on stderr, before any policy."""
    print(f"tighten generate: {len(unread)} CloudTrail log(s) could not be read; {head}:", file=sys.stderr)
    for key, why in unread[:_LISTED]:
        print(f"  {key}: {why}", file=sys.stderr)
    if len(unread) > _LISTED:
        print(f"  ... and {len(unread) - _LISTED} more", file=sys.stderr)


def _warn_unreadable_entries(entries: dict[str, str]) -> None:
    if not entries:
        return
    what = "1 entry that is not a regular file" if len(entries) == 1 else f"{len(entries)} entries that are not " \
        "regular files"
    print(f"tighten generate: skipped {what}:", file=sys.stderr)
    for key, why in sorted(entries.items())[:_LISTED]:
        print(f"  {key}: {why}", file=sys.stderr)
    if len(entries) > _LISTED:
        print(f"  ... and {len(entries) - _LISTED} more", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    err = Console(stderr=True)
    if not args.cloudtrail and not args.db:
        print("tighten generate: give --cloudtrail (and/or --db with an ingested index)", file=sys.stderr)
        return EXIT_NO_POLICY
    try:
        allowlist = load_allowlist(args.allowlist)
    except AllowlistError as exc:
        print(f"tighten generate: {exc}", file=sys.stderr)
        return EXIT_NO_POLICY
    inputs = None
    if args.current:
        try:
            inputs = read_inputs(args)
        except (AwsError, InputError) as exc:
            print(f"tighten generate: {exc}", file=sys.stderr)
            return EXIT_NO_POLICY
    index = UsageIndex(open_db(args.db or ":memory:", create=bool(args.cloudtrail)))
    if args.cloudtrail:
        try:
            report = ingest_with_progress(args, index, err)
        except (FileNotFoundError, ValueError, BotoCoreError, ClientError) as exc:
            print(f"tighten generate: {exc}", file=sys.stderr)
            return EXIT_NO_POLICY
        _warn_unreadable_entries(report.unreadable)
    arn, problem = _resolve(index, args.principal)
    if arn is None:
        print(f"tighten generate: {problem}", file=sys.stderr)
        unread = index.unread_logs()
        if unread:  # the principal's calls may be in exactly those logs
            _report_unread(unread, "the principal's calls may be in them")
            return EXIT_INCOMPLETE
        return EXIT_NO_POLICY
    if args.format != "json" and ":role/" not in arn:
        print(f"tighten generate: --format {args.format} writes role policies; {arn} is not a role (use --format "
              "json)", file=sys.stderr)
        return EXIT_NO_POLICY
    unread = index.unread_logs(_account_of(arn))
    if unread and not args.allow_partial:
        _report_unread(unread, "refusing to generate from incomplete usage (--allow-partial generates from the "
                               "logs that could be read)")
        return EXIT_INCOMPLETE
    if unread:
        _report_unread(unread, "WARNING: the policy is generated from the others (--allow-partial) and may lack "
                               "calls made in them")
    since = args.since.isoformat() if args.since else None
    until = args.until.isoformat() if args.until else None
    rows = index.usage(arn, since=since, until=until, include_invoked_by=not args.exclude_invoked_by)
    entries = allowlist.for_principal(arn)
    if not rows and not entries:
        window = f" between {since or 'the start'} and {until or 'now'}" if since or until else ""
        denied = len(index.denials(arn))
        extra = f" ({denied} denied calls, which never grant)" if denied else ""
        print(f"tighten generate: no usage by {arn}{window}{extra}; nothing to generate", file=sys.stderr)
        return EXIT_NO_POLICY
    policy = generate_policy(rows, entries, options=GenerateOptions(generalize_threshold=args.generalize_threshold),
                             current=inputs.current if inputs else None)
    if policy.empty:
        print(f"tighten generate: no grantable action for {arn}", file=sys.stderr)
        for note in policy.notes:
            print(f"  note: {note}", file=sys.stderr)
        return EXIT_NO_POLICY
    if args.format == "json":
        print(policy.to_json())
    else:
        print(render(policy.documents, args.format, RoleTarget(role_name=arn.rsplit("/", 1)[-1],
                                                                account=arn.split(":")[4],
                                                                policy_name_prefix=args.policy_prefix)),
              end="")
    print(f"{arn}: {len(policy.actions)} actions, {len(policy.documents)} document(s)", file=sys.stderr)
    for note in policy.notes:
        print(f"  note: {note}", file=sys.stderr)
    if unread:
        print(f"  WARNING: partial: {len(unread)} CloudTrail log(s) could not be read (listed above)", file=sys.stderr)
    if inputs is not None:
        proposed = [parse_policy(d, f"proposed-{i + 1}") for i, d in enumerate(policy.documents)]
        check = check_no_new_access(inputs.current, proposed, inputs.boundary)
        print(f"containment against --current: {check.result.upper()}", file=sys.stderr)
        for line in check.lines():
            print(f"  {line}", file=sys.stderr)
        if not check.passed:
            return EXIT_NO_POLICY
    return 0
