"""The structural lint of derived ARNs and the action-prefix rule.

Lint cases are written from the ARN formats of the AWS Service Authorization Reference (region and account
present or not per resource type), not from the normalizer's output.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import orjson
import pytest

from bot.ingest import ingest
from bot.policy.catalog import catalog
from bot.store.db import open_db
from bot.store.usage import UsageIndex
from bot.trail.build_event_map import CORRECTIONS_PATH, EVENT_MAP_PATH
from bot.trail.normalize import LINT_REASONS, Normalizer, _Shape, arn_problem
from bot.trail.records import UNKNOWN_RESOURCE, CallRecord
from tests.trail.test_defect_classes import documented


def _shapes(action: str) -> tuple[_Shape, ...]:
    return tuple(_Shape(rt) for rt in catalog().arn_formats(action))


@pytest.mark.parametrize(("action", "arn", "problem"), [
    # well-formed
    ("iam:GetRole", "arn:aws:iam::111122223333:role/service-role/app", ""),
    ("iam:GetPolicy", "arn:aws:iam::aws:policy/ReadOnlyAccess", ""),  # AWS-managed policies: account "aws"
    ("s3:GetObject", "arn:aws:s3:::bucket/logs//2024/", ""),  # any text is an S3 key, even // and a trailing /
    ("s3:ListBucket", "arn:aws:s3:::bucket", ""),
    ("ec2:RunInstances", "arn:aws:ec2:us-east-1::image/ami-1", ""),  # images have no account
    ("ec2:RunInstances", "arn:aws:ec2:us-east-1:111122223333:instance/*", ""),
    ("logs:DescribeLogStreams", "arn:aws:logs:us-east-1:111122223333:log-group:/aws/x:*", ""),
    ("rds:FailoverGlobalCluster", "arn:aws:rds::111122223333:global-cluster:g1", ""),  # no region
    # broken
    ("iam:GetRole", "arn:aws:iam::111122223333:role//app", "double_slash"),
    ("s3:ListBucket", "arn:aws:s3:::bad//bucket", "double_slash"),
    ("secretsmanager:CreateSecret", "arn:aws:secretsmanager:us-east-1:111122223333:secret:", "trailing_separator"),
    ("s3:GetObject", "arn:aws:s3:::bucket/", "trailing_separator"),  # an object needs a key
    ("iam:GetRole", "arn:aws:iam::111122223333:role/app/", "trailing_separator"),
    ("cloudtrail:StopLogging",
     "arn:aws:cloudtrail:us-east-1:111122223333:trail/arn:aws:cloudtrail:us-east-1:111122223333:trail/t", "nested_arn"),
    ("iam:GetRole", "arn:aws:iam::111122223333:role/${RoleName}", "template_residue"),
    ("iam:GetRole", "arn:aws:iam::111122223333:role/%%regex%x%%", "template_residue"),
    ("ec2:RunInstances", "arn:aws:ec2:us-west-2::instance/*", "account"),
    ("ec2:RunInstances", "arn:aws:ec2:us-west-2:111122223333:image/ami-1", "account"),
    ("iam:GetUser", "arn:aws:iam::987654321:user/alice", "account"),  # 9 digits
    ("iam:GetUser", "arn:aws:iam:us-east-1:111122223333:user/alice", "region"),
    ("ec2:StopInstances", "arn:aws:ec2::111122223333:instance/i-1", "region"),
    ("s3:GetObject", "arn:aws:ec2:us-east-1:111122223333:instance/i-1", "format"),
])
def test_lint_table(action: str, arn: str, problem: str) -> None:
    assert arn_problem(arn, _shapes(action)) == problem
    assert problem == "" or problem in LINT_REASONS


def test_a_failing_value_becomes_unknown_with_its_reason_and_is_counted(tmp_path: Path) -> None:
    raw = documented("iam.amazonaws.com", "UpdateLoginProfile", {"userName": "alice"})
    raw["recipientAccountId"] = "987654321"  # hand-edited samples carry such accounts
    rec = Normalizer().normalize(raw)
    assert isinstance(rec, CallRecord)
    assert [(u.action, u.resource, u.rejected) for u in rec.actions] == [
        ("iam:UpdateLoginProfile", UNKNOWN_RESOURCE, "account")]
    ok = documented("iam.amazonaws.com", "UpdateLoginProfile", {"userName": "bob"})
    (tmp_path / "log.json").write_text(json.dumps({"Records": [raw, raw, ok]}))
    report = ingest(str(tmp_path), UsageIndex(open_db(":memory:")), workers=1)
    assert dict(report.unknown_resources) == {"account": 2}
    assert any("resources refused (kept as unknown) by reason: account=2" in line for line in report.summary_lines())


def test_sample_summary_counts_lint_reasons(samples_dir: Path) -> None:
    report = ingest(str(samples_dir), UsageIndex(open_db(":memory:")), workers=1)
    # the hand-edited panther samples carry 9- and 10-digit accounts; nothing else in the samples is refused
    assert set(report.unknown_resources) == {"account"}


# -- the action-prefix rule --------------------------------------------------------------------------------

def _shipped() -> dict:
    return orjson.loads(gzip.decompress(EVENT_MAP_PATH.read_bytes()))


def test_shipped_map_yields_other_services_only_as_listed_dependencies() -> None:
    corrections = json.loads(CORRECTIONS_PATH.read_text())
    anywhere = {d["action"] for d in corrections["dependent_actions"] if "sdk" not in d}
    listed = {d["action"] for d in corrections["dependent_actions"]}
    other = [(prefix, event, e["a"]) for prefix, table in _shipped()["events"].items()
             for event, entries in table.items() for e in entries if e["a"].split(":")[0] != prefix]
    assert other, "PassRole at least"
    assert all(action in listed for _, _, action in other)
    by_event = {(p, ev) for p, ev, a in other if a not in anywhere}
    assert by_event == {("ec2", "createflowlogs")}
    assert len(listed) <= 5, "the list of dependent actions stays short"


def test_normalizer_refuses_an_other_service_action_without_the_dependency_flag() -> None:
    norm = Normalizer()
    norm._events = {"cloudtrail": {"createtrail": [  # an upstream-style entry: the bucket write the trail does
        {"a": "cloudtrail:CreateTrail", "v": {"TrailName": "${Name}"}},
        {"a": "s3:PutObject", "v": {"BucketName": "${S3BucketName}", "ObjectName": "*"}}]}}
    rec = norm.normalize(documented("cloudtrail.amazonaws.com", "CreateTrail",
                                    {"name": "org", "s3BucketName": "trail-bucket"}))
    assert isinstance(rec, CallRecord)
    assert [u.action for u in rec.actions] == ["cloudtrail:CreateTrail"]


def test_unmatched_dependency_drops_the_action_instead_of_asking_for_everything() -> None:
    rec = Normalizer().normalize(documented("lambda.amazonaws.com", "UpdateFunctionConfiguration20150331v2",
                                            {"functionName": "billing", "timeout": 30}))
    assert isinstance(rec, CallRecord)
    assert [u.action for u in rec.actions] == ["lambda:UpdateFunctionConfiguration"]  # no role in the request
