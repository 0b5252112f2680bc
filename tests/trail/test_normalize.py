"""bot.trail.normalize on the bundled real samples (tests/data/cloudtrail) and on small handmade records."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path

import pytest

from bot.policy.catalog import catalog
from bot.trail.normalize import SKIP_REASONS, Normalizer, Skip, is_denied
from bot.trail.reader import Unreadable, iter_raw_records
from bot.trail.records import ANY_RESOURCE, UNKNOWN_RESOURCE, CallRecord
from bot.trail.sources import iter_log_objects


def _run(folder: Path, normalizer: Normalizer) -> tuple[list[CallRecord], Counter[str]]:
    records: list[CallRecord] = []
    counts: Counter[str] = Counter()
    for obj in iter_log_objects(str(folder)):
        try:
            items = list(iter_raw_records(obj.read(), obj.key))
        except Unreadable as exc:  # the object as a whole (e.g. a policy document among the logs)
            counts[exc.reason] += 1
            continue
        for item in items:
            result = item if isinstance(item, Skip) else normalizer.normalize(item)
            if isinstance(result, Skip):
                assert result.reason in SKIP_REASONS
                counts[result.reason] += 1
            else:
                records.append(result)
                counts["denied" if result.denied else "record"] += 1
    return records, counts


EXPECTED = {
    "DataDog_stratus-red-team": {"record": 255, "denied": 51, "permissionless": 3, "not_api_call": 1},
    "OTRF_Security-Datasets": {"record": 103},
    "flosell_trailscraper": {"record": 7, "not_cloudtrail": 1},  # tests/smoke/policy-to-guess.json
    "grycap_cloudtrail-tracker": {"record": 142},
    # DeleteBucketPublicAccessBlock (one allowed, one denied) is known since the event aliases
    "panther-labs_panther-analysis": {"record": 337, "denied": 36, "missing_fields": 23, "not_api_call": 41,
                                      "permissionless": 7, "unknown_event": 19, "unknown_event_source": 1},
}


@pytest.mark.parametrize("folder", sorted(EXPECTED))
def test_samples_read_with_known_counts(samples_dir: Path, normalizer: Normalizer, folder: str) -> None:
    records, counts = _run(samples_dir / folder, normalizer)
    assert dict(counts) == EXPECTED[folder]
    cat = catalog()
    for rec in records:
        assert len(rec.event_time) == 20 and rec.event_time.endswith("Z")
        for use in rec.actions:
            assert cat.canonical(use.action) == use.action
            assert use.resource in (ANY_RESOURCE, UNKNOWN_RESOURCE) or use.resource.startswith("arn:")
            if use.resource == ANY_RESOURCE:
                assert not cat.action(use.action).supports_resource_arns
            if use.action == "iam:PassRole":
                assert use.resource == UNKNOWN_RESOURCE or ":role/" in use.resource


def test_every_sample_folder_is_covered(samples_dir: Path) -> None:
    assert sorted(p.name for p in samples_dir.iterdir() if p.is_dir()) == sorted(EXPECTED)


def test_otrf_timestamp_fallback_and_assumed_role(samples_dir: Path, normalizer: Normalizer) -> None:
    records, _ = _run(samples_dir / "OTRF_Security-Datasets", normalizer)
    roles = {r.principal.arn for r in records if r.principal.kind == "role"}
    assert "arn:aws:iam::123456789123:role/MordorNginxStack-BankingWAFRole-9S3E0UAE1MM0" in roles
    listing = [r for r in records if r.event_name == "ListObjects"]
    assert listing and all(
        [(u.action, u.resource) for u in r.actions] == [("s3:ListBucket", "arn:aws:s3:::mordors3stack-s3bucket-llp2yingx64a")]
        for r in listing
    )
    assert all(r.event_time.startswith("2020-09-1") for r in records)


def test_stratus_versioned_lambda_name_and_denied(samples_dir: Path, normalizer: Normalizer) -> None:
    records, _ = _run(samples_dir / "DataDog_stratus-red-team", normalizer)
    update = [r for r in records if r.event_name == "UpdateFunctionCode20150331v2"]
    assert update and update[0].actions[0].action == "lambda:UpdateFunctionCode"
    assert update[0].actions[0].resource.startswith("arn:aws:lambda:") and ":function:" in update[0].actions[0].resource
    denied = [r for r in records if r.denied]
    assert {r.error_code for r in denied} <= {"AccessDenied", "Client.UnauthorizedOperation", "AccessDeniedException"}
    assert all(r.actions for r in denied)  # denied calls still say what was attempted


def test_service_linked_role_flagged(samples_dir: Path, normalizer: Normalizer) -> None:
    records, _ = _run(samples_dir / "panther-labs_panther-analysis", normalizer)
    linked = {r.principal.arn for r in records if r.principal.service_linked}
    assert "arn:aws:iam::111122223333:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling" in linked
    passed = {u.resource for r in records for u in r.actions if u.action == "iam:PassRole"}
    assert "arn:aws:iam::123456789012:role/RDS-S3-Import-Role" in passed  # AddRoleToDBInstance roleArn
    assert not any(p.endswith("role/*") for p in passed)  # "any role" placeholders are never produced


# -- handmade records -----------------------------------------------------------------------------

BASE = {
    "eventVersion": "1.09",
    "userIdentity": {
        "type": "AssumedRole",
        "arn": "arn:aws:sts::111122223333:assumed-role/app/session-1",
        "accountId": "111122223333",
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/team/app"}},
    },
    "eventTime": "2024-06-01T10:00:00Z",
    "awsRegion": "eu-west-1",
    "eventType": "AwsApiCall",
    "recipientAccountId": "111122223333",
    "eventID": "e-1",
}


def _event(source: str, name: str, params: dict | None = None, **extra: object) -> dict:
    ev = copy.deepcopy(BASE)
    ev.update({"eventSource": source, "eventName": name, "requestParameters": params})
    ev.update(extra)
    return ev


def _uses(rec: CallRecord | Skip) -> list[tuple[str, str]]:
    assert isinstance(rec, CallRecord), rec
    return [(u.action, u.resource) for u in rec.actions]


def test_create_function_passes_exact_role(normalizer: Normalizer) -> None:
    rec = normalizer.normalize(_event("lambda.amazonaws.com", "CreateFunction20150331", {
        "functionName": "worker", "runtime": "python3.12",
        "role": "arn:aws:iam::111122223333:role/service/lambda-exec"}))
    assert _uses(rec) == [
        ("lambda:CreateFunction", "arn:aws:lambda:eu-west-1:111122223333:function:worker"),
        ("iam:PassRole", "arn:aws:iam::111122223333:role/service/lambda-exec"),
    ]
    assert rec.principal.arn == "arn:aws:iam::111122223333:role/team/app"  # type: ignore[union-attr]


def test_run_instances_with_instance_profile_passes_unknown_role(normalizer: Normalizer) -> None:
    rec = normalizer.normalize(_event("ec2.amazonaws.com", "RunInstances", {
        "instancesSet": {"items": [{"imageId": "ami-1", "minCount": 1, "maxCount": 1}]},
        "subnetId": "subnet-1", "iamInstanceProfile": {"arn": "arn:aws:iam::111122223333:instance-profile/web"}}))
    uses = _uses(rec)
    assert ("iam:PassRole", UNKNOWN_RESOURCE) in uses
    assert ("ec2:RunInstances", "arn:aws:ec2:eu-west-1:111122223333:subnet/subnet-1") in uses
    # the AMI is logged as instancesSet.items[].imageId (not the SDK's ImageId) and lifted to it
    assert ("ec2:RunInstances", "arn:aws:ec2:eu-west-1::image/ami-1") in uses
    # no security group in the request (the default one is used): a required type not observed
    assert ("ec2:RunInstances", UNKNOWN_RESOURCE) in uses
    plain = normalizer.normalize(_event("ec2.amazonaws.com", "RunInstances", {"subnetId": "subnet-1"}))
    assert not any(a == "iam:PassRole" for a, _ in _uses(plain))


def test_head_object_and_versioned_read(normalizer: Normalizer) -> None:
    rec = normalizer.normalize(_event("s3.amazonaws.com", "HeadObject", {"bucketName": "b1", "key": "k/1.txt"}))
    assert _uses(rec) == [("s3:GetObject", "arn:aws:s3:::b1/k/1.txt")]
    rec = normalizer.normalize(_event("s3.amazonaws.com", "HeadObject",
                                      {"bucketName": "b1", "key": "k/1.txt", "versionId": "v7"}))
    assert _uses(rec) == [("s3:GetObjectVersion", "arn:aws:s3:::b1/k/1.txt")]


def test_s3_list_names(normalizer: Normalizer) -> None:
    for name in ("ListObjects", "ListObjectsV2"):
        rec = normalizer.normalize(_event("s3.amazonaws.com", name, {"bucketName": "b2", "list-type": "2"}))
        assert _uses(rec) == [("s3:ListBucket", "arn:aws:s3:::b2")]
    assert _uses(normalizer.normalize(_event("s3.amazonaws.com", "ListBuckets"))) == [("s3:ListAllMyBuckets", "*")]


def test_reencrypt_two_actions_and_kms_resources(normalizer: Normalizer) -> None:
    src = "arn:aws:kms:eu-west-1:111122223333:key/1111aaaa-1111-2222-3333-444455556666"
    dst = "arn:aws:kms:eu-west-1:111122223333:key/9999bbbb-1111-2222-3333-444455556666"
    rec = normalizer.normalize(_event("kms.amazonaws.com", "ReEncrypt", {"sourceKeyId": src, "destinationKeyId": dst}))
    assert _uses(rec) == [("kms:ReEncryptFrom", src), ("kms:ReEncryptTo", dst)]
    rec = normalizer.normalize(_event("kms.amazonaws.com", "Decrypt", {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"},
                                      resources=[{"ARN": src, "type": "AWS::KMS::Key"}]))
    assert _uses(rec) == [("kms:Decrypt", src)]
    rec = normalizer.normalize(_event("kms.amazonaws.com", "Decrypt", {}))
    assert _uses(rec) == [("kms:Decrypt", UNKNOWN_RESOURCE)]


def test_permissionless_and_not_api_call(normalizer: Normalizer) -> None:
    assert normalizer.normalize(_event("sts.amazonaws.com", "GetCallerIdentity")) == Skip(
        "permissionless", "sts:GetCallerIdentity")
    signin = _event("signin.amazonaws.com", "ConsoleLogin", eventType="AwsConsoleSignIn")
    assert normalizer.normalize(signin).reason == "not_api_call"  # type: ignore[union-attr]


def test_unknown_source_and_event_are_counted_not_guessed(normalizer: Normalizer) -> None:
    assert normalizer.normalize(_event("nosuch.amazonaws.com", "DoIt")) == Skip(
        "unknown_event_source", "nosuch.amazonaws.com")
    assert normalizer.normalize(_event("s3.amazonaws.com", "FrobnicateBucket")) == Skip(
        "unknown_event", "s3.amazonaws.com:FrobnicateBucket")


def test_event_source_rename(normalizer: Normalizer) -> None:
    rec = normalizer.normalize(_event("monitoring.amazonaws.com", "ListMetrics", {"namespace": "App"}))
    assert [a for a, _ in _uses(rec)] == ["cloudwatch:ListMetrics"]


@pytest.mark.parametrize("drop", ["eventSource", "eventName", "userIdentity", "eventTime"])
def test_missing_fields(normalizer: Normalizer, drop: str) -> None:
    ev = _event("s3.amazonaws.com", "ListBuckets")
    del ev[drop]
    result = normalizer.normalize(ev)
    assert isinstance(result, Skip) and result.reason == "missing_fields"
    assert drop in result.detail


def test_bad_field_types_and_times(normalizer: Normalizer) -> None:
    assert normalizer.normalize(_event("s3.amazonaws.com", "ListBuckets", userIdentity="x")).reason == "missing_fields"  # type: ignore[union-attr]
    assert normalizer.normalize(_event("s3.amazonaws.com", "ListBuckets", eventTime="yesterday")).reason == "missing_fields"  # type: ignore[union-attr]
    assert normalizer.normalize(_event(["s3"], "ListBuckets")).reason == "missing_fields"  # type: ignore[arg-type,union-attr]
    assert normalizer.normalize({"eventName": 1}).reason == "missing_fields"  # type: ignore[union-attr]
    rec = normalizer.normalize(_event("s3.amazonaws.com", "ListBuckets", eventTime="2024-06-01T12:00:00.123+02:00"))
    assert rec.event_time == "2024-06-01T10:00:00Z"  # type: ignore[union-attr]


def test_principal_kinds(normalizer: Normalizer) -> None:
    def principal(ident: dict) -> tuple[str, str]:
        rec = normalizer.normalize(_event("s3.amazonaws.com", "ListBuckets", userIdentity=ident))
        assert isinstance(rec, CallRecord)
        return rec.principal.arn, rec.principal.kind

    assert principal({"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/ann", "accountId": "111122223333"}) == (
        "arn:aws:iam::111122223333:user/ann", "user")
    assert principal({"type": "Root", "arn": "arn:aws:iam::111122223333:root", "accountId": "111122223333"}) == (
        "arn:aws:iam::111122223333:root", "root")
    # no sessionIssuer: rebuilt from the assumed-role ARN (path unknown)
    assert principal({"type": "AssumedRole", "arn": "arn:aws-cn:sts::111122223333:assumed-role/r1/s"}) == (
        "arn:aws-cn:iam::111122223333:role/r1", "role")
    assert principal({"type": "SAMLUser", "principalId": "p", "userName": "bob",
                      "identityProvider": "arn:aws:iam::111122223333:saml-provider/Okta"}) == (
        "arn:aws:iam::111122223333:saml-provider/Okta/bob", "federated")
    assert principal({"type": "AWSService", "invokedBy": "events.amazonaws.com"}) == ("events.amazonaws.com", "service")
    assert principal({"type": "AWSAccount", "principalId": "AIDX", "accountId": "999988887777"})[1] == "unknown"


def test_invoked_by_and_errors(normalizer: Normalizer) -> None:
    ident = copy.deepcopy(BASE["userIdentity"])
    ident["invokedBy"] = "cloudformation.amazonaws.com"  # type: ignore[index]
    rec = normalizer.normalize(_event("s3.amazonaws.com", "ListBuckets", userIdentity=ident))
    assert rec.invoked_by == "cloudformation.amazonaws.com"  # type: ignore[union-attr]
    throttled = normalizer.normalize(_event("s3.amazonaws.com", "ListBuckets", errorCode="ThrottlingException"))
    assert throttled.error_code == "ThrottlingException" and not throttled.denied  # type: ignore[union-attr]
    for code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Client.UnauthorizedOperation",
                 "UnauthorizedAccess"):
        assert is_denied(code)
    assert not is_denied("NoSuchEntity")


def test_denied_record_keeps_actions(normalizer: Normalizer) -> None:
    rec = normalizer.normalize(_event("s3.amazonaws.com", "GetObject", {"bucketName": "b", "key": "x"},
                                      errorCode="AccessDenied"))
    assert rec.denied and _uses(rec) == [("s3:GetObject", "arn:aws:s3:::b/x")]  # type: ignore[union-attr]


def test_ec2_item_sets_iam_paths_and_default_mapping(normalizer: Normalizer) -> None:
    rec = normalizer.normalize(_event("ec2.amazonaws.com", "StopInstances",
                                      {"instancesSet": {"items": [{"instanceId": "i-1"}, {"instanceId": "i-2"}]}}))
    assert _uses(rec) == [("ec2:StopInstances", "arn:aws:ec2:eu-west-1:111122223333:instance/i-1"),
                          ("ec2:StopInstances", "arn:aws:ec2:eu-west-1:111122223333:instance/i-2")]
    # optional IAM path: absent or "/" -> no path; "/team/" -> kept
    for params, arn in (({"userName": "bob"}, "user/bob"), ({"userName": "bob", "path": "/"}, "user/bob"),
                        ({"userName": "bob", "path": "/team/"}, "user/team/bob")):
        rec = normalizer.normalize(_event("iam.amazonaws.com", "CreateUser", params))
        assert _uses(rec) == [("iam:CreateUser", f"arn:aws:iam::111122223333:{arn}")]
    # the 2022 map has no resource mapping here: ${InstanceId} <- the instanceId parameter
    rec = normalizer.normalize(_event("ec2.amazonaws.com", "DescribeInstanceAttribute",
                                      {"attribute": "userData", "instanceId": "i-9"}))
    assert _uses(rec) == [("ec2:DescribeInstanceAttribute", "arn:aws:ec2:eu-west-1:111122223333:instance/i-9")]


def test_rebuilt_role_arn_does_not_shadow_exact_one() -> None:
    fresh = Normalizer()
    bare = {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/app/s", "accountId": "111122223333"}
    first = fresh.normalize(_event("s3.amazonaws.com", "ListBuckets", userIdentity=bare))
    assert first.principal.arn == "arn:aws:iam::111122223333:role/app"  # type: ignore[union-attr]
    full = dict(bare, sessionContext={"sessionIssuer": {"arn": "arn:aws:iam::111122223333:role/team/app"}})
    second = fresh.normalize(_event("s3.amazonaws.com", "ListBuckets", userIdentity=full))
    assert second.principal.arn == "arn:aws:iam::111122223333:role/team/app"  # type: ignore[union-attr]


def test_ssm_parameter_arn_has_no_double_slash() -> None:
    from bot.trail.normalize import Normalizer

    event = {
        "eventSource": "ssm.amazonaws.com", "eventName": "GetParameter", "eventTime": "2026-01-01T00:00:00Z",
        "eventType": "AwsApiCall", "awsRegion": "us-east-1", "recipientAccountId": "123456789012",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/u", "accountId": "123456789012"},
        "requestParameters": {"name": "/app/db/password", "withDecryption": True},
    }
    rec = Normalizer().normalize(event)
    assert [u.resource for u in rec.actions] == ["arn:aws:ssm:us-east-1:123456789012:parameter/app/db/password"]


def test_principal_does_not_depend_on_event_order() -> None:
    """One session ARN logged with two issuers, and once without: each event resolves from its own identity
    (User Guide, userIdentity element: the session issuer names the role), in either order."""
    session = "arn:aws:sts::111122223333:assumed-role/app/s"
    one = {"type": "AssumedRole", "arn": session, "accountId": "111122223333",
           "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::111122223333:role/team/app"}}}
    other = dict(one, sessionContext={"sessionIssuer": {"arn": "arn:aws:iam::111122223333:role/other/app"}})
    bare = {"type": "AssumedRole", "arn": session, "accountId": "111122223333"}
    expected = ["arn:aws:iam::111122223333:role/team/app", "arn:aws:iam::111122223333:role/other/app",
                "arn:aws:iam::111122223333:role/app"]
    idents = [one, other, bare]
    for order in ([0, 1, 2], [2, 1, 0], [1, 2, 0]):
        fresh = Normalizer()
        got = {i: fresh.normalize(_event("s3.amazonaws.com", "ListBuckets", userIdentity=idents[i])).principal.arn
               for i in order}  # type: ignore[union-attr]
        assert [got[i] for i in range(3)] == expected


def test_same_arn_as_user_and_as_session_keeps_kinds_apart() -> None:
    fresh = Normalizer()
    arn = "arn:aws:iam::111122223333:user/tester"
    as_session = {"type": "AssumedRole", "arn": arn, "accountId": "111122223333",
                  "sessionContext": {"sessionIssuer": {"arn": arn}}}
    first = fresh.normalize(_event("s3.amazonaws.com", "ListBuckets", userIdentity=as_session))
    second = fresh.normalize(_event("s3.amazonaws.com", "ListBuckets",
                                    userIdentity={"type": "IAMUser", "arn": arn, "accountId": "111122223333"}))
    assert (first.principal.kind, second.principal.kind) == ("role", "user")  # type: ignore[union-attr]


def test_resources_arn_in_lower_case_is_read(normalizer: Normalizer) -> None:
    """Some exports (Panther's) spell resources[].ARN as arn; Athena's JSON reader ignores the case too."""
    key = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    for field in ("ARN", "arn"):
        rec = normalizer.normalize(_event("kms.amazonaws.com", "Decrypt", {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"},
                                          resources=[{field: key, "type": "AWS::KMS::Key"}]))
        assert _uses(rec) == [("kms:Decrypt", key)]
