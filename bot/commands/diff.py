"""``tighten diff --current FILE_OR_ROLE_ARN --proposed FILE [--boundary FILE]``.

Prints the one-line summary and the grouped diff (by service and access level) of what the proposed
policies change against the current ones, with the Conditions and Denies they lose (CONDITIONS AND DENIES).
A FILE holds one policy document or a JSON list of documents. With a role ARN the role's attached and inline
policies and its permissions boundary are read from IAM (a user ARN: the user's and its groups' policies;
``--endpoint-url`` points at a local moto server in tests). The boundary, given or read, limits both sides:
it stays attached when the proposal is applied. The argument handling here is shared with
``check-no-new-access`` and ``generate --current``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.policy.diff import diff_permissions, guard_changes, render_grouped, unified_text_diff
from bot.policy.expand import effective_permissions
from bot.policy.model import Policy, PolicyError, parse_policy

EXIT_BAD_INPUT = 2
EXIT_AWS_ERROR = 1

NamedDocs = list[tuple[str, dict[str, Any]]]


class InputError(Exception):
    """A file or argument the user gave cannot be used; the message says why."""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "diff",
        help="show what a proposed policy removes, keeps and adds against the current one",
        description="Summary and grouped diff of current vs proposed effective permissions.",
    )
    add_policy_arguments(parser)
    parser.add_argument(
        "--full", action="store_true", help="also print the unified diff of the JSON documents"
    )
    parser.add_argument(
        "--list-up-to",
        type=int,
        default=15,
        metavar="N",
        help="list removed actions of a service when it has at most N (default 15)",
    )
    parser.set_defaults(func=run)
    return parser


def _is_principal_reference(value: str) -> bool:
    return value.startswith("arn:") and (":role/" in value or ":user/" in value)


def load_documents(path: str) -> NamedDocs:
    """Documents in ``path``: one policy document, or a JSON list of them."""
    file = Path(path)
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    except ValueError as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from None
    if isinstance(raw, dict):
        return [(file.name, raw)]
    if isinstance(raw, list) and raw and all(isinstance(d, dict) for d in raw):
        return [(f"{file.name}[{i}]", d) for i, d in enumerate(raw)]
    raise InputError(f"{path}: expected a policy document or a non-empty JSON list of documents")


def parse_all(docs: NamedDocs) -> list[Policy]:
    policies = []
    for name, doc in docs:
        try:
            policies.append(parse_policy(doc, name=name))
        except PolicyError as exc:
            raise InputError(f"{name}: {exc}") from None
    return policies


class AwsError(Exception):
    """IAM could not be read; the message is one line."""


def _principal_documents(args: argparse.Namespace) -> tuple[NamedDocs, dict[str, Any] | None]:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from bot.aws.inventory import get_role_snapshot, get_user_snapshot

    iam = boto3.client("iam", endpoint_url=args.endpoint_url, region_name=args.region)
    try:
        snapshot: Any = (get_user_snapshot(iam, args.current) if ":user/" in args.current
                         else get_role_snapshot(iam, args.current))
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise AwsError(f"{args.current}: IAM error {err.get('Code', '?')}: {err.get('Message', '')}") from None
    except BotoCoreError as exc:
        raise AwsError(f"{args.current}: cannot reach IAM: {exc}") from None
    return snapshot.identity_documents(), snapshot.boundary_document


@dataclass
class PolicyInputs:
    """``--current`` (files, or what IAM holds for a role or user), ``--proposed`` and the boundary."""

    current_docs: NamedDocs
    current: list[Policy]
    boundary: Policy | None
    proposed_docs: NamedDocs = field(default_factory=list)
    proposed: list[Policy] = field(default_factory=list)


def add_policy_arguments(parser: argparse.ArgumentParser, *, proposed: bool = True,
                         current_required: bool = True, endpoint: bool = True) -> None:
    """``--current``, ``--proposed``, ``--boundary``, ``--endpoint-url``, ``--region`` (shared by the commands
    that compare or build policies; ``endpoint=False`` when the command has its own ``--endpoint-url``)."""
    parser.add_argument(
        "--current", required=current_required, metavar="FILE_OR_ROLE_ARN",
        help="policy file (one document or a JSON list) or a role (or user) ARN to read from IAM",
    )  # fmt: skip
    if proposed:
        parser.add_argument("--proposed", required=True, metavar="FILE", help="proposed policy file")
    parser.add_argument("--boundary", metavar="FILE", help="permissions boundary (default: the role's own)")
    if endpoint:
        parser.add_argument("--endpoint-url", help="IAM endpoint (a local moto server in tests)")
    parser.add_argument("--region", default="us-east-1", help="AWS region for the IAM client")


def read_inputs(args: argparse.Namespace) -> PolicyInputs:
    """Load and parse the inputs; raises :class:`InputError` (exit 2) or :class:`AwsError` (exit 1)."""
    boundary_doc: dict[str, Any] | None = None
    if _is_principal_reference(args.current):
        current_docs, boundary_doc = _principal_documents(args)
    elif args.current.startswith("arn:"):
        raise InputError(f"{args.current}: not a role ARN (expected arn:aws:iam::ACCOUNT:role/NAME, a user ARN, "
                         "or a policy file)")
    else:
        current_docs = load_documents(args.current)
    proposed_docs = load_documents(args.proposed) if getattr(args, "proposed", None) else []
    if args.boundary:
        boundary_docs = load_documents(args.boundary)
        if len(boundary_docs) != 1:
            raise InputError(f"{args.boundary}: a permissions boundary is a single policy document")
        boundary_doc = boundary_docs[0][1]
    return PolicyInputs(
        current_docs=current_docs, current=parse_all(current_docs),
        boundary=parse_all([("boundary", boundary_doc)])[0] if boundary_doc is not None else None,
        proposed_docs=proposed_docs, proposed=parse_all(proposed_docs))


def run(args: argparse.Namespace) -> int:
    try:
        inputs = read_inputs(args)
    except AwsError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_AWS_ERROR
    except InputError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT

    guards = guard_changes(inputs.current, inputs.proposed, inputs.boundary)
    diff = diff_permissions(effective_permissions(inputs.current, inputs.boundary),
                            effective_permissions(inputs.proposed, inputs.boundary), guards=guards)
    print(render_grouped(diff, list_up_to=args.list_up_to))
    if args.full:
        print()
        print(unified_text_diff(inputs.current_docs, inputs.proposed_docs) or "(documents are identical)")
    return 0
