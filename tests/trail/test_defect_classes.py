"""Each defect class found on real CloudTrail, on a real record shape: a bundled sample record where the samples
hold one, else a record in the shape the AWS documentation shows for that call. Every assertion names the ARN
the service itself authorizes (from the API reference / service authorization reference), not what the
normalizer happens to build.

1 empty path segments   2 wrong service prefix   3 how a service authorizes   4 an ARN where a name goes
5 cross-wired ids       6 CopyObject's source    7 dependent actions           8 underived resources
9 events skipped although their permission is known
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.trail.normalize import Normalizer
from bot.trail.reader import iter_raw_records
from bot.trail.records import ANY_RESOURCE, UNKNOWN_RESOURCE, CallRecord
from tests.conftest import SAMPLES

PANTHER = SAMPLES / "panther-labs_panther-analysis" / "panther_aws_cloudtrail_test_events.jsonl"
ACCT = "111122223333"


def _records(path: Path) -> Iterator[dict[str, Any]]:
    for item in iter_raw_records(path.read_bytes(), str(path)):
        if isinstance(item, dict):
            yield item


def sample(event_name: str, contains: str = "", error: str | None = None) -> dict[str, Any]:
    """The first bundled panther record of ``event_name`` whose JSON contains ``contains``."""
    for raw in _records(PANTHER):
        if raw.get("eventName") == event_name and raw.get("errorCode") == error and contains in json.dumps(raw):
            return copy.deepcopy(raw)
    raise LookupError(f"no sample {event_name} {contains!r}")


def documented(source: str, name: str, params: dict[str, Any] | None, *, region: str = "us-east-1",
               response: Any = None, resources: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """A management event in the shape CloudTrail logs it (CloudTrail User Guide, record contents)."""
    event: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLE:ci",
                         "arn": f"arn:aws:sts::{ACCT}:assumed-role/ci/ci", "accountId": ACCT,
                         "sessionContext": {"sessionIssuer": {"type": "Role",
                                                              "arn": f"arn:aws:iam::{ACCT}:role/ci"}}},
        "eventTime": "2026-10-01T12:00:00Z", "eventSource": source, "eventName": name, "awsRegion": region,
        "sourceIPAddress": "192.0.2.10", "userAgent": "aws-cli/2.15.30", "requestParameters": params,
        "responseElements": response, "eventID": "e1", "eventType": "AwsApiCall", "recipientAccountId": ACCT,
    }
    if resources is not None:
        event["resources"] = resources
    return event


@pytest.fixture(scope="module")
def norm() -> Normalizer:
    return Normalizer()


def uses(norm: Normalizer, raw: dict[str, Any]) -> list[tuple[str, str]]:
    rec = norm.normalize(raw)
    assert isinstance(rec, CallRecord), rec
    return [(u.action, u.resource) for u in rec.actions]


# -- 1. empty variables leave empty path segments --------------------------------------------------------

@pytest.mark.parametrize(("name", "param", "kind"), [
    ("ListAttachedRolePolicies", "roleName", "role"),
    ("ListAttachedUserPolicies", "userName", "user"),
    ("ListAttachedGroupPolicies", "groupName", "group"),
])
def test_1_list_attached_policies_names_the_principal_not_a_double_slash(norm: Normalizer, name: str, param: str,
                                                                        kind: str) -> None:
    # PathPrefix is a filter on the policies listed; the request names the role/user/group only
    got = uses(norm, documented("iam.amazonaws.com", name, {param: "app"}))
    assert got == [(f"iam:{name}", f"arn:aws:iam::{ACCT}:{kind}/app")]


def test_1_create_secret_takes_the_exact_arn_from_the_response(norm: Normalizer) -> None:
    arn = f"arn:aws:secretsmanager:us-east-1:{ACCT}:secret:prod/db-password-AbCdEf"
    raw = documented("secretsmanager.amazonaws.com", "CreateSecret",
                     {"name": "prod/db-password", "clientRequestToken": "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE"},
                     response={"aRN": arn, "name": "prod/db-password", "versionId": "EXAMPLE1-90ab"})
    assert uses(norm, raw) == [("secretsmanager:CreateSecret", arn)]
    raw["responseElements"] = None  # no response (e.g. an error): the name with Secrets Manager's suffix
    assert uses(norm, raw) == [("secretsmanager:CreateSecret",
                                f"arn:aws:secretsmanager:us-east-1:{ACCT}:secret:prod/db-password-??????")]


# -- 2. wrong service prefix -------------------------------------------------------------------------------

def test_2_s3_control_plane_calls_are_s3_actions(norm: Normalizer) -> None:
    raw = documented("s3.amazonaws.com", "ListAccessPoints",
                     {"Host": f"{ACCT}.s3-control.us-east-1.amazonaws.com", "maxResults": "1000"})
    assert uses(norm, raw) == [("s3:ListAccessPoints", ANY_RESOURCE)]
    raw = documented("s3.amazonaws.com", "GetAccessPointPolicy",
                     {"Host": f"{ACCT}.s3-control.us-east-1.amazonaws.com", "name": "finance-ap"})
    assert [a for a, _ in uses(norm, raw)] == ["s3:GetAccessPointPolicy"]


# -- 3. how a service really authorizes ---------------------------------------------------------------------

def test_3_log_group_actions_get_the_group_star_form(norm: Normalizer) -> None:
    raw = documented("logs.amazonaws.com", "DescribeLogStreams",
                     {"logGroupName": "/aws/lambda/billing", "descending": True, "orderBy": "LastEventTime"})
    group = f"arn:aws:logs:us-east-1:{ACCT}:log-group:/aws/lambda/billing"
    assert set(uses(norm, raw)) == {("logs:DescribeLogStreams", group), ("logs:DescribeLogStreams", group + ":*")}


def test_3_secret_named_by_name_gets_the_random_suffix_wildcard(norm: Normalizer) -> None:
    raw = documented("secretsmanager.amazonaws.com", "GetSecretValue", {"secretId": "prod/db-password"})
    assert uses(norm, raw) == [("secretsmanager:GetSecretValue",
                                f"arn:aws:secretsmanager:us-east-1:{ACCT}:secret:prod/db-password-??????")]
    full = f"arn:aws:secretsmanager:us-east-1:{ACCT}:secret:prod/db-password-AbCdEf"
    raw = documented("secretsmanager.amazonaws.com", "GetSecretValue", {"secretId": full})
    assert uses(norm, raw) == [("secretsmanager:GetSecretValue", full)]


def test_3_kms_alias_resolves_to_its_key(norm: Normalizer) -> None:
    key = f"arn:aws:kms:us-east-1:{ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    raw = documented("kms.amazonaws.com", "Encrypt", {"keyId": "alias/cafe", "encryptionAlgorithm": "SYMMETRIC_DEFAULT"},
                     resources=[{"accountId": ACCT, "type": "AWS::KMS::Key", "ARN": key}])
    assert uses(norm, raw) == [("kms:Encrypt", key)]  # not ...:key/cafe, which the alias text suggests
    del raw["resources"]
    assert uses(norm, raw) == [("kms:Encrypt", UNKNOWN_RESOURCE)]


# -- 4. a parameter that is already an ARN ---------------------------------------------------------------------

def test_4_cloudtrail_name_given_as_an_arn(norm: Normalizer) -> None:
    trail = "arn:aws:cloudtrail:us-west-2:123456789012:trail/example-trail"
    assert uses(norm, sample("StopLogging")) == [("cloudtrail:StopLogging", trail)]
    assert ("cloudtrail:CreateTrail", trail) in uses(norm, sample("CreateTrail"))


def test_4_rds_copies_and_failover_name_other_regions_by_arn(norm: Normalizer) -> None:
    got = uses(norm, sample("CopyDBSnapshot", "prod-backup-2024"))
    assert ("rds:CopyDBSnapshot", "arn:aws:rds:us-east-1:123456789012:snapshot:prod-backup-2024") in got
    assert ("rds:CopyDBSnapshot", "arn:aws:rds:us-west-2:123456789012:snapshot:prod-backup-2024-copy") in got
    got = uses(norm, sample("CopyDBClusterSnapshot"))
    assert ("rds:CopyDBClusterSnapshot",
            "arn:aws:rds:us-east-1:123456789012:cluster-snapshot:aurora-prod-backup") in got
    got = uses(norm, sample("FailoverGlobalCluster"))
    assert set(got) == {("rds:FailoverGlobalCluster", "arn:aws:rds:eu-west-1:123456789012:cluster:aurora-eu-secondary"),
                        ("rds:FailoverGlobalCluster", "arn:aws:rds::123456789012:global-cluster:global-aurora-cluster")}


def test_4_secret_named_by_arn_is_not_rebuilt_in_the_callers_account(norm: Normalizer) -> None:
    other = "arn:aws:secretsmanager:eu-west-1:444455556666:secret:shared/api-key-Q1w2E3"
    raw = documented("secretsmanager.amazonaws.com", "GetSecretValue", {"secretId": other})
    assert uses(norm, raw) == [("secretsmanager:GetSecretValue", other)]


# -- 5. cross-wired ids ---------------------------------------------------------------------------------------------

def test_5_traffic_mirror_session_ids_land_in_their_own_types(norm: Normalizer) -> None:
    base = "arn:aws:ec2:us-east-1:123123123123:"
    assert set(uses(norm, sample("ModifyTrafficMirrorSession"))) == {
        ("ec2:ModifyTrafficMirrorSession", base + "traffic-mirror-filter/tmf-010db9a7d8056cc2d"),
        ("ec2:ModifyTrafficMirrorSession", base + "traffic-mirror-session/tms-05e1e21760419ecb6"),
        ("ec2:ModifyTrafficMirrorSession", base + "traffic-mirror-target/tmt-0a45c694b91bcea54"),
    }


# -- 6. CopyObject reads its x-amz-copy-source ---------------------------------------------------------------------

def test_6_copy_object_reads_the_source_and_writes_the_destination(norm: Normalizer) -> None:
    got = uses(norm, sample("CopyObject", "ransomware-test-victim"))
    assert ("s3:GetObject", "arn:aws:s3:::ransomware-test-victim-1764604156/customer-database.csv") in got
    assert ("s3:PutObject", "arn:aws:s3:::attacker-exfil-1764604156/customer-database.csv") in got
    assert ("s3:GetObject", "arn:aws:s3:::attacker-exfil-1764604156/customer-database.csv") not in got
    assert not {a for a, _ in got} & {"s3:ListBucket", "s3:PutObjectAcl"}


def test_6_copy_source_version_and_encoding(norm: Normalizer) -> None:
    raw = sample("CopyObject", "ransomware-test-victim")
    raw["requestParameters"]["x-amz-copy-source"] = "/src-bucket/reports/Q3%20summary.pdf?versionId=3sL4kqtJlcpXroDTDmJ"
    raw["requestParameters"]["x-amz-acl"] = "bucket-owner-full-control"
    got = uses(norm, raw)
    assert ("s3:GetObjectVersion", "arn:aws:s3:::src-bucket/reports/Q3 summary.pdf") in got
    assert "s3:GetObject" not in {a for a, _ in got}
    assert ("s3:PutObjectAcl", "arn:aws:s3:::attacker-exfil-1764604156/customer-database.csv") in got


# -- 7. dependent actions only when the call needs them ----------------------------------------------------------

def test_7_create_trail_does_not_write_to_the_bucket(norm: Normalizer) -> None:
    assert [a for a, _ in uses(norm, sample("CreateTrail"))] == ["cloudtrail:CreateTrail"]


def test_7_tag_on_create_only_with_tags_in_the_request(norm: Normalizer) -> None:
    assert "rds:AddTagsToResource" not in {a for a, _ in uses(norm, sample("CopyDBSnapshot", "original-snapshot"))}
    assert [a for a, _ in uses(norm, sample("CreateVpc"))] == ["ec2:CreateVpc"]
    tagged = sample("CreateVpc")
    tagged["requestParameters"]["tagSpecificationSet"] = {
        "items": [{"resourceType": "vpc", "tags": [{"key": "team", "value": "data"}]}]}
    assert ("ec2:CreateTags", "arn:aws:ec2:us-west-2:123456789012:vpc/*") in uses(norm, tagged)
    raw = documented("rds.amazonaws.com", "CreateDBInstance", {
        "dBInstanceIdentifier": "orders", "dBInstanceClass": "db.t3.micro", "engine": "postgres",
        "tags": [{"key": "team", "value": "data"}]})
    assert "rds:AddTagsToResource" in {a for a, _ in uses(norm, raw)}


def test_7_flow_logs_need_log_delivery_only_for_s3_and_firehose(norm: Normalizer) -> None:
    params = {"resourceIdSet": {"items": [{"resourceId": "vpc-0a1b2c3d"}]}, "resourceType": "VPC", "trafficType": "ALL"}
    to_s3 = documented("ec2.amazonaws.com", "CreateFlowLogs", {
        **params, "logDestinationType": "s3", "logDestination": "arn:aws:s3:::flow-logs-archive"})
    assert ("logs:CreateLogDelivery", ANY_RESOURCE) in uses(norm, to_s3)
    role = f"arn:aws:iam::{ACCT}:role/flow-logs-delivery"
    to_logs = documented("ec2.amazonaws.com", "CreateFlowLogs", {
        **params, "logDestinationType": "cloud-watch-logs", "logGroupName": "vpc-flow", "deliverLogsPermissionArn": role})
    got = uses(norm, to_logs)
    assert "logs:CreateLogDelivery" not in {a for a, _ in got}
    assert ("iam:PassRole", role) in got


def test_7_removing_a_role_does_not_pass_it(norm: Normalizer) -> None:
    assert [a for a, _ in uses(norm, sample("RemoveRoleFromDBInstance"))] == ["rds:RemoveRoleFromDBInstance"]


# -- 8. resources that were not derived, and empty accounts ---------------------------------------------------

def test_8_network_interface_security_groups_are_derived(norm: Normalizer) -> None:
    raw = documented("ec2.amazonaws.com", "CreateNetworkInterface", {
        "subnetId": "subnet-0a1b2c3d", "description": "worker eni", "groupSet": {"items": [{"groupId": "sg-0a1b2c3d"}]},
        "privateIpAddressesSet": {}, "ipv6AddressCount": 0})
    base = f"arn:aws:ec2:us-east-1:{ACCT}:"
    assert {("ec2:CreateNetworkInterface", base + "security-group/sg-0a1b2c3d"),
            ("ec2:CreateNetworkInterface", base + "subnet/subnet-0a1b2c3d")} <= set(uses(norm, raw))


def test_8_launch_template_overrides_carry_the_account(norm: Normalizer) -> None:
    raw = sample("RunInstances", "lt-0622a7ff26539376a", error="Client.DryRunOperation")
    raw.pop("errorCode")
    got = {r for _, r in uses(norm, raw)}
    assert "arn:aws:ec2:us-west-2:123123123123:instance/*" in got
    assert not [r for r in got if r.startswith("arn:aws:ec2:us-west-2::") and "image/" not in r
                and "snapshot/" not in r]  # images and snapshots are the only EC2 ARNs without an account


def test_8_run_instances_image_from_the_instances_set(norm: Normalizer) -> None:
    raw = sample("RunInstances", "lt-064c1a4dbc97b01fc", error="Client.DryRunOperation")
    raw.pop("errorCode")
    assert ("ec2:RunInstances", "arn:aws:ec2:us-west-2::image/ami-05074c40f29040248") in uses(norm, raw)


# -- 9. events skipped although their permission is known ----------------------------------------------------------

def test_9_delete_bucket_public_access_block(norm: Normalizer) -> None:
    assert uses(norm, sample("DeleteBucketPublicAccessBlock", "corporate-documents")) == [
        ("s3:PutBucketPublicAccessBlock", "arn:aws:s3:::corporate-documents")]
