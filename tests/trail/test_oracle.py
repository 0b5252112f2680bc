"""The normalizer's ARNs against an independent derivation (tests/trail/oracle.py) over every bundled sample.

A record's ARNs are compared where the oracle models the service: every ARN the oracle derives must be among
the normalizer's ("missing" otherwise: the call would be denied, or fall back to a wider scope), and every
exact ARN of a modelled service the normalizer emits must be one the oracle derives ("extra" otherwise: a
resource the call did not touch). A difference fails the test unless ``oracle_expected_differences.json``
lists it with its reason.
"""

from __future__ import annotations

import fnmatch
import json
from collections import Counter
from pathlib import Path

from bot.trail.normalize import Normalizer
from bot.trail.reader import Unreadable, iter_raw_records
from bot.trail.records import CallRecord
from bot.trail.sources import iter_log_objects
from tests.trail.oracle import comparable, oracle_arns

EXPECTED = json.loads((Path(__file__).with_name("oracle_expected_differences.json")).read_text())["differences"]


def _expected(kind: str, event: str, arn: str) -> bool:
    return any(d["kind"] == kind and fnmatch.fnmatchcase(event, d["event"]) and fnmatch.fnmatchcase(arn, d["arn"])
               for d in EXPECTED)


def test_oracle_agrees_with_the_normalizer_on_every_sample(samples_dir: Path) -> None:
    normalizer = Normalizer()
    compared: Counter[str] = Counter()
    unexpected: list[tuple[str, str, str, str]] = []
    used: set[int] = set()
    for obj in iter_log_objects(str(samples_dir)):
        try:
            raws = list(iter_raw_records(obj.read(), obj.key))
        except Unreadable as exc:  # the policy document beside trailscraper's logs
            assert exc.reason == "not_cloudtrail" and obj.key.endswith("policy-to-guess.json"), (obj.key, exc)
            continue
        for raw in raws:
            if not isinstance(raw, dict):
                continue
            rec = normalizer.normalize(raw)
            oracle = oracle_arns(raw)
            if not isinstance(rec, CallRecord) or oracle is None:
                continue
            compared["records"] += 1
            compared["oracle_arns"] += len(oracle)
            got = {u.resource for u in rec.actions}
            differences = [("missing", a) for a in oracle - got]
            differences += [("extra", a) for a in got if comparable(a, oracle) and a not in oracle]
            for kind, arn in differences:
                hits = [i for i, d in enumerate(EXPECTED) if d["kind"] == kind
                        and fnmatch.fnmatchcase(rec.event_name, d["event"]) and fnmatch.fnmatchcase(arn, d["arn"])]
                used.update(hits)
                if not hits:
                    unexpected.append((kind, rec.event_name, arn, obj.key.rsplit("/", 1)[-1]))
    assert compared["records"] > 400 and compared["oracle_arns"] > 300, compared
    assert unexpected == [], "\n".join(map(str, sorted(unexpected)))
    assert used == set(range(len(EXPECTED))), "an expected difference no longer occurs: remove it"


def test_expected_differences_stay_short_and_justified() -> None:
    assert len(EXPECTED) <= 8
    assert all(len(d["reason"]) > 30 for d in EXPECTED)


def test_oracle_sees_what_the_normalizer_got_wrong_before() -> None:
    """The oracle is not a copy of the normalizer: on the shapes of the defect classes it states the right
    ARN on its own (here checked against hand-written expectations, not against the normalizer)."""
    event = {"eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging", "awsRegion": "us-west-2",
             "recipientAccountId": "123456789012",
             "requestParameters": {"name": "arn:aws:cloudtrail:us-west-2:123456789012:trail/example-trail"}}
    assert oracle_arns(event) == {"arn:aws:cloudtrail:us-west-2:123456789012:trail/example-trail"}
    event = {"eventSource": "s3.amazonaws.com", "eventName": "CopyObject", "awsRegion": "us-east-1",
             "recipientAccountId": "123456789012",
             "requestParameters": {"bucketName": "dst", "key": "a.txt", "x-amz-copy-source": "src/in%20box/a.txt"}}
    assert oracle_arns(event) == {"arn:aws:s3:::dst/a.txt", "arn:aws:s3:::src/in box/a.txt"}
    event = {"eventSource": "iam.amazonaws.com", "eventName": "ListAttachedRolePolicies", "awsRegion": "us-east-1",
             "recipientAccountId": "123456789012", "requestParameters": {"roleName": "app"}}
    assert oracle_arns(event) == {"arn:aws:iam::123456789012:role/app"}
    assert not _expected("missing", "GetRole", "arn:aws:iam::123456789012:role/app")
