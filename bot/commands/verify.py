"""``tighten verify --cloudtrail SRC --principal ARN --policy FILE [--boundary FILE] [--since DATE] [--until DATE]``.

Replays every successful call the principal made in the logs against the policy (one document or a JSON list,
as ``tighten diff`` reads them) with the policy evaluator (:mod:`bot.policy.replay`). Prints each call that
would be denied (event name, time, action, resource) and exits 3 when there is one; otherwise prints
"N calls replayed, all allowed" and exits 0. Unreadable input (policy file, log source) or a principal with no
successful call: a one-line error, exit 2. A log object that cannot be used (truncated, not CloudTrail, over the
reader's limits) is named on stderr and, since a replay over incomplete logs proves nothing, makes the command
exit 2 unless ``--allow-partial`` (then the logs that could be read are replayed). Reads only; creates nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from datetime import date

from botocore.exceptions import BotoCoreError, ClientError

from bot.commands.diff import InputError, load_documents
from bot.commands.ingest import iso_date, s3_client_for
from bot.policy.model import PolicyError, parse_policy
from bot.policy.replay import ReplayCall, replay
from bot.trail.normalize import Normalizer, Skip, partition_of
from bot.trail.reader import Unreadable, iter_raw_records
from bot.trail.records import UNKNOWN_RESOURCE, CallRecord
from bot.trail.sources import iter_log_objects

EXIT_DENIED = 3
EXIT_BAD_INPUT = 2


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "verify", help="replay a principal's calls from CloudTrail against a policy",
        description="Replay every successful call of a principal found in CloudTrail against a policy. Lists "
                    "the calls the policy would deny (exit 3), or says that all are allowed (exit 0).",
    )
    parser.add_argument("--cloudtrail", required=True, metavar="PATH_OR_S3_URL",
                        help="a log file, a directory tree, or s3://bucket[/prefix] of a trail")
    parser.add_argument("--principal", required=True, metavar="ARN",
                        help="role/user ARN (a role or user name works when it is unambiguous)")
    parser.add_argument("--policy", required=True, metavar="FILE", help="policy file (one document or a list)")
    parser.add_argument("--boundary", metavar="FILE", help="permissions boundary that also applies")
    parser.add_argument("--since", type=iso_date, metavar="DATE", help="first UTC day (YYYY-MM-DD)")
    parser.add_argument("--until", type=iso_date, metavar="DATE", help="last UTC day, inclusive")
    parser.add_argument("--endpoint-url", metavar="URL", help="S3 endpoint (e.g. a local test server)")
    parser.add_argument("--allow-partial", action="store_true",
                        help="replay the logs that could be read when some cannot (they are listed on stderr)")
    parser.set_defaults(func=run)
    return parser


class VerifyError(Exception):
    """Input that cannot be used; the message says why (one line)."""


def _load_policies(path: str, what: str) -> list:
    try:
        return [parse_policy(doc, name) for name, doc in load_documents(path)]
    except InputError as exc:
        raise VerifyError(str(exc)) from None
    except PolicyError as exc:
        raise VerifyError(f"{path}: not a valid {what}: {exc}") from None


def read_calls(source: str, *, since: date | None, until: date | None, s3_client: object = None,
               unusable: list[str] | None = None) -> Iterator[CallRecord]:
    """Every normalized call in ``source`` inside the window (by UTC day). A log object that cannot be read
    raises :class:`VerifyError`. One the reader refuses as a whole (``key: reason: detail``) is appended to
    ``unusable`` and skipped (its calls are discarded); without that list it raises :class:`VerifyError` too."""
    normalizer = Normalizer()
    first = since.isoformat() if since else ""
    last = until.isoformat() if until else ""
    for obj in iter_log_objects(source, since=since, until=until, s3_client=s3_client):
        try:
            data = obj.read()
        except (OSError, BotoCoreError, ClientError) as exc:
            raise VerifyError(f"{obj.key}: cannot read: {exc}") from None
        found: list[CallRecord] = []
        try:
            for raw in iter_raw_records(data, obj.key):
                if isinstance(raw, Skip):
                    continue
                rec = normalizer.normalize(raw)
                if isinstance(rec, CallRecord) and (not first or rec.day >= first) and (not last or rec.day <= last):
                    found.append(rec)
        except Unreadable as exc:
            if unusable is None:
                raise VerifyError(f"{obj.key}: {exc}") from None
            unusable.append(f"{obj.key}: {exc}")
            continue
        yield from found


def replay_calls(records: list[CallRecord]) -> list[ReplayCall]:
    """Successful calls as replay items (an unknown resource becomes None: not observable)."""
    return [ReplayCall(uses=tuple((u.action, None if u.resource == UNKNOWN_RESOURCE else u.resource)
                                  for u in rec.actions),
                       event=rec.event_name, time=rec.event_time, account=rec.account,
                       partition=partition_of(rec.region) if rec.region else rec.principal.arn.split(":")[1])
            for rec in records if not rec.denied and rec.actions]


def _resolve(wanted: str, arns: set[str], window: str) -> str:
    if wanted in arns:
        return wanted
    if not wanted.startswith("arn:"):
        named = sorted(a for a in arns if "/" in a and a.rsplit("/", 1)[1].lower() == wanted.lower())
        if len(named) == 1:
            return named[0]
        if named:
            raise VerifyError(f"{wanted!r} is ambiguous: {', '.join(named)}")
    raise VerifyError(f"no call by {wanted!r} in the logs{window} ({len(arns)} principals seen)")


def run(args: argparse.Namespace) -> int:
    try:
        policies = _load_policies(args.policy, "policy")
        boundary = _load_policies(args.boundary, "boundary") if args.boundary else []
        if len(boundary) > 1:
            raise VerifyError(f"{args.boundary}: a permissions boundary is one policy document")
        unusable: list[str] = []
        records = list(read_calls(args.cloudtrail, since=args.since, until=args.until,
                                  s3_client=s3_client_for(args.cloudtrail, args.endpoint_url), unusable=unusable))
        if unusable:
            for line in unusable:
                print(f"  {line}", file=sys.stderr)
            if not args.allow_partial:
                raise VerifyError(f"{len(unusable)} log object(s) above could not be read; a replay over incomplete "
                                  "logs proves nothing (--allow-partial replays the logs that could be read)")
        window = " in that window" if args.since or args.until else ""
        arn = _resolve(args.principal, {r.principal.arn for r in records}, window)
        calls = replay_calls([r for r in records if r.principal.arn == arn])
        if not calls:
            raise VerifyError(f"no successful call by {arn} in the logs{window}")
    except VerifyError as exc:
        print(f"tighten verify: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (FileNotFoundError, ValueError, BotoCoreError, ClientError) as exc:
        print(f"tighten verify: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    result = replay(calls, policies, boundary[0] if boundary else None)
    unobserved = sum(1 for c in calls for _, r in c.uses if r is None)
    notes = []
    if unobserved:
        notes.append(f"{unobserved} action use(s) without a logged resource, replayed as any resource they may touch")
    if result.conditional:
        notes.append(f"{result.conditional} request(s) allowed only under a condition the replay cannot evaluate")
    if result.denied:
        print(f"{arn}: {result.denied_calls} of {result.calls} calls would be denied:")
        for denied in result.denied:
            print(f"  {denied.line()}")
        for note in notes:
            print(f"  note: {note}")
        return EXIT_DENIED
    print(f"{result.calls} calls replayed, all allowed ({arn}, {result.days} days)")
    for note in notes:
        print(f"  note: {note}")
    return 0
