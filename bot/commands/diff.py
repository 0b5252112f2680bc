"""``tighten diff --current FILE_OR_ROLE_ARN --proposed FILE [--boundary FILE]``.

Prints the one-line summary and the grouped diff (by service and access level) of what the proposed
policies change against the current ones. A FILE holds one policy document or a JSON list of documents.
With a role ARN (or ``role/NAME``) the role's attached and inline policies and its permissions boundary
are read from IAM (``--endpoint-url`` points at a local moto server in tests). The boundary, given or
read, limits both sides: it stays attached when the proposal is applied.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bot.policy.diff import diff_permissions, render_grouped, unified_text_diff
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
    parser.add_argument(
        "--current", required=True, metavar="FILE_OR_ROLE_ARN",
        help="policy file (one document or a JSON list) or a role ARN to read from IAM",
    )  # fmt: skip
    parser.add_argument("--proposed", required=True, metavar="FILE", help="proposed policy file")
    parser.add_argument("--boundary", metavar="FILE", help="permissions boundary (default: the role's own)")
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
    parser.add_argument("--endpoint-url", help="IAM endpoint (a local moto server in tests)")
    parser.add_argument("--region", default="us-east-1", help="AWS region for the IAM client")
    parser.set_defaults(func=run)
    return parser


def _is_role_reference(value: str) -> bool:
    return value.startswith("arn:") and ":role/" in value


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


def _parse_all(docs: NamedDocs) -> list[Policy]:
    policies = []
    for name, doc in docs:
        try:
            policies.append(parse_policy(doc, name=name))
        except PolicyError as exc:
            raise InputError(f"{name}: {exc}") from None
    return policies


def _role_documents(args: argparse.Namespace) -> tuple[NamedDocs, dict[str, Any] | None]:
    import boto3

    from bot.aws.inventory import get_role_snapshot

    iam = boto3.client("iam", endpoint_url=args.endpoint_url, region_name=args.region)
    snapshot = get_role_snapshot(iam, args.current)
    return snapshot.identity_documents(), snapshot.boundary_document


def run(args: argparse.Namespace) -> int:
    try:
        boundary_doc: dict[str, Any] | None = None
        if _is_role_reference(args.current):
            from botocore.exceptions import BotoCoreError, ClientError

            try:
                current_docs, boundary_doc = _role_documents(args)
            except ClientError as exc:
                err = exc.response.get("Error", {})
                print(
                    f"{args.current}: IAM error {err.get('Code', '?')}: {err.get('Message', '')}",
                    file=sys.stderr,
                )
                return EXIT_AWS_ERROR
            except BotoCoreError as exc:
                print(f"{args.current}: cannot reach IAM: {exc}", file=sys.stderr)
                return EXIT_AWS_ERROR
        elif args.current.startswith("arn:"):
            raise InputError(f"{args.current}: not a role ARN (expected arn:aws:iam::ACCOUNT:role/NAME, or a "
                             "policy file)")
        else:
            current_docs = load_documents(args.current)
        proposed_docs = load_documents(args.proposed)
        if args.boundary:
            boundary_docs = load_documents(args.boundary)
            if len(boundary_docs) != 1:
                raise InputError(f"{args.boundary}: a permissions boundary is a single policy document")
            boundary_doc = boundary_docs[0][1]
        current = _parse_all(current_docs)
        proposed = _parse_all(proposed_docs)
        boundary = _parse_all([("boundary", boundary_doc)])[0] if boundary_doc is not None else None
    except InputError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT

    diff = diff_permissions(
        effective_permissions(current, boundary), effective_permissions(proposed, boundary)
    )
    print(render_grouped(diff, list_up_to=args.list_up_to))
    if args.full:
        print()
        print(unified_text_diff(current_docs, proposed_docs) or "(documents are identical)")
    return 0
