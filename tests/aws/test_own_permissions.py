"""config/iam: the bot's own policies allow exactly the AWS calls the code makes, and nothing more.

Every call is recorded from botocore's ``provide-client-params`` event while the real code runs against the
moto server (inventory, apply, rollback with version and boundary restores, sessions, trail listing) and
against the Stubber (Access Analyzer, IAM's service-last-accessed data). Each call becomes (IAM action, resource ARN) through iam-dataset's
``map.json``; each is checked with the policy evaluator, and every action a policy allows must be used.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from bot.aws.access_analyzer import AccessAnalyzerQuota, GenerationFailed, generate_policy
from bot.aws.apply import rollback_change, start_change
from bot.aws.inventory import (
    get_role_snapshot,
    get_user_snapshot,
    list_account_snapshots,
    list_role_snapshots,
)
from bot.aws.last_accessed import read_last_accessed
from bot.aws.sessions import AccountSessions
from bot.policy.evaluate import Decision, evaluate
from bot.policy.model import parse_policy
from bot.store.db import open_db
from bot.trail.sources import iter_log_objects
from tests.aws.conftest import ADMIN, INLINE, PROPOSED, make_role
from tests.conftest import MAPPINGS

POLICIES = Path(__file__).resolve().parents[2] / "config" / "iam"
ACCOUNT = "123456789012"
BUCKET = "org-trail-logs"
ACCESS_ROLE = f"arn:aws:iam::{ACCOUNT}:role/service-role/AccessAnalyzerMonitorServiceRole_X1"
CONTEXT = {"aws:ResourceTag/tighten:protected": None, "iam:PassedToService": "access-analyzer.amazonaws.com"}
# Not in map.json (2022): StartPolicyGeneration passes the access role to the service (IAM User Guide,
# "IAM Access Analyzer policy generation", required permissions: iam:PassRole on the service role).
EXTRA_ACTIONS: dict[str, list[tuple[str, Callable[[dict[str, Any]], str]]]] = {
    "AccessAnalyzer.StartPolicyGeneration": [("iam:PassRole", lambda p: p["cloudTrailDetails"]["accessRole"])],
}

Call = tuple[str, str]  # (action, resource)


def _sdk_map() -> dict[str, Any]:
    return json.loads(gzip.decompress((MAPPINGS / "map.json.gz").read_bytes()))["sdk_method_iam_mappings"]


def _resource(service: str, params: dict[str, Any]) -> str:
    if "Arn" in params:  # GenerateServiceLastAccessedDetails: the principal
        return str(params["Arn"])
    if "RoleName" in params:  # role actions (AttachRolePolicy too) authorize on the role
        return f"arn:aws:iam::{ACCOUNT}:role/{params['RoleName']}"
    if "PolicyArn" in params:
        return params["PolicyArn"]
    if "PolicyName" in params:  # CreatePolicy
        return f"arn:aws:iam::{ACCOUNT}:policy{params.get('Path', '/')}{params['PolicyName']}"
    if "RoleArn" in params:
        return params["RoleArn"]
    if "Bucket" in params:
        return f"arn:aws:s3:::{params['Bucket']}" + (f"/{params['Key']}" if "Key" in params else "")
    return "*"


class Recorder:
    def __init__(self) -> None:
        self.sdk = _sdk_map()
        self.calls: set[Call] = set()

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.service_id.replace(" ", "")
        key = f"{service}.{model.name}"
        entries = self.sdk.get(key)
        assert entries, f"{key} is not in map.json"
        for entry in entries:
            self.calls.add((entry["action"], _resource(service, params)))
        for action, resource_of in EXTRA_ACTIONS.get(key, []):
            self.calls.add((action, resource_of(params)))

    def watch(self, emitter: Any) -> None:
        emitter.register("provide-client-params", self)


def _policy(name: str) -> dict[str, Any]:
    return json.loads((POLICIES / f"{name}.json").read_text().replace("TRAIL_BUCKET", BUCKET))


def _allowed_actions(doc: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for stmt in doc["Statement"]:
        if stmt["Effect"] == "Allow":
            actions = stmt["Action"]
            out.update([actions] if isinstance(actions, str) else actions)
    return out


def _check(name: str, calls: set[Call]) -> None:
    policy, boundary = parse_policy(_policy(name)), parse_policy(_policy("boundary"))
    refused = [(a, r, evaluate(a, r, [policy], boundary=boundary, context=CONTEXT).value) for a, r in sorted(calls)
               if evaluate(a, r, [policy], boundary=boundary, context=CONTEXT) is not Decision.ALLOWED]
    assert refused == [], f"{name}.json does not allow calls the code makes"
    unused = _allowed_actions(_policy(name)) - {a for a, _ in calls}
    assert unused == set(), f"{name}.json allows actions the code never calls"


@contextmanager
def _recording(client: Any) -> Iterator[Recorder]:
    rec = Recorder()
    client.meta.events.register("provide-client-params", rec)
    try:
        yield rec
    finally:
        client.meta.events.unregister("provide-client-params", rec)


def _apply_and_roll_back(iam: Any, setup: Any, role: str, change_boundary: str | None) -> None:
    db = open_db(":memory:")
    expected = get_role_snapshot(iam, role).policy_hash()
    result = start_change(db, iam, role_name=role, proposed_documents=[PROPOSED], expected_policy_hash=expected,
                          proposal_id=None, requested_by="U1")
    assert result.state == "applied", result.message
    if change_boundary:
        setup.put_role_permissions_boundary(RoleName=role, PermissionsBoundary=change_boundary)
    back = rollback_change(db, iam, result.change_id, requested_by="U2")
    assert back.state == "rolled_back", back.message


def test_policies_allow_exactly_the_calls_the_code_makes(moto_endpoint: str) -> None:
    setup = boto3.client("iam", endpoint_url=moto_endpoint, region_name="us-east-1")
    make_role(setup, "app")
    setup.put_role_permissions_boundary(RoleName="app", PermissionsBoundary=ADMIN)
    make_role(setup, "web")
    arn = setup.create_policy(PolicyName="tighten-web", PolicyDocument=json.dumps(INLINE),
                              Description="Tighten least-privilege policy for role web")["Policy"]["Arn"]
    for i in range(4):
        setup.create_policy_version(PolicyArn=arn, SetAsDefault=True, PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                     "Resource": f"arn:aws:s3:::b{i}/*"}]}))

    applier = boto3.client("iam", endpoint_url=moto_endpoint, region_name="us-east-1")
    with _recording(applier) as applier_calls:
        list_role_snapshots(applier)
        _apply_and_roll_back(applier, setup, "app", change_boundary="arn:aws:iam::aws:policy/ReadOnlyAccess")
        _apply_and_roll_back(applier, setup, "web", change_boundary=ADMIN)
    _check("applier", applier_calls.calls)

    reader = boto3.client("iam", endpoint_url=moto_endpoint, region_name="us-east-1")
    analyzer = boto3.client("accessanalyzer", region_name="us-east-1")
    setup.create_group(GroupName="ops")
    setup.put_group_policy(GroupName="ops", PolicyName="g", PolicyDocument=json.dumps(INLINE))
    setup.attach_group_policy(GroupName="ops", PolicyArn=ADMIN)
    setup.create_user(UserName="alice")
    setup.add_user_to_group(GroupName="ops", UserName="alice")
    setup.put_user_policy(UserName="alice", PolicyName="own", PolicyDocument=json.dumps(INLINE))
    setup.attach_user_policy(UserName="alice", PolicyArn=ADMIN)
    setup.create_access_key(UserName="alice")
    with _recording(reader) as reader_calls:
        list_role_snapshots(reader)
        get_role_snapshot(reader, "app")
        list_account_snapshots(reader, access_keys=True)  # roles and users (read-only inventory)
        get_user_snapshot(reader, "alice", access_keys=True)
    reader_calls.calls |= _access_analyzer_calls(analyzer)
    reader_calls.calls |= _last_accessed_calls(boto3.client("iam", region_name="us-east-1"))
    _check("reader", reader_calls.calls)

    base = boto3.Session(region_name="us-east-1")
    runtime_calls = Recorder()
    runtime_calls.watch(base.events)
    sessions = AccountSessions(base_session=base, endpoint_url=moto_endpoint)
    for role in ("TightenReader", "TightenApplier", "TightenOrgReader"):
        sessions.session(ACCOUNT, role)
    s3 = base.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    _write_trail_log(boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1"))
    logs = list(iter_log_objects(f"s3://{BUCKET}/AWSLogs/", s3_client=s3))
    assert logs and logs[0].read()
    _check("runtime", runtime_calls.calls)

    boto3.client("organizations", endpoint_url=moto_endpoint, region_name="us-east-1").create_organization(
        FeatureSet="ALL")
    org_calls = Recorder()
    org_session = boto3.Session(region_name="us-east-1")
    org_calls.watch(org_session.events)
    AccountSessions(base_session=org_session, endpoint_url=moto_endpoint).organization_accounts()
    _check("org-reader", org_calls.calls)

    everything = applier_calls.calls | reader_calls.calls | runtime_calls.calls | org_calls.calls
    assert _allowed_actions(_policy("boundary")) == {a for a, _ in everything}


def _access_analyzer_calls(client: Any) -> set[Call]:
    start = datetime(2026, 8, 1, tzinfo=UTC)
    stub = Stubber(client)
    stub.add_response("start_policy_generation", {"jobId": "j"})
    stub.add_response("get_generated_policy", {
        "jobDetails": {"jobId": "j", "status": "IN_PROGRESS", "startedOn": start},
        "generatedPolicyResult": {"properties": {"principalArn": "x"}}})
    stub.add_response("cancel_policy_generation", {})
    with _recording(client) as rec, stub, pytest.raises(GenerationFailed, match="cancelled"):
        generate_policy(client, AccessAnalyzerQuota(open_db(":memory:")), principal_arn=f"arn:aws:iam::{ACCOUNT}:role/app",
                        trail_arn="arn:aws:cloudtrail:us-east-1:123456789012:trail/t", access_role_arn=ACCESS_ROLE,
                        start=start, sleep=lambda s: None, clock=_jumping_clock(start), timeout=timedelta(minutes=1))
    return rec.calls


def _last_accessed_calls(client: Any) -> set[Call]:
    """IAM's service-last-accessed API (moto lacks it): the adapter's calls, through the Stubber."""
    role = f"arn:aws:iam::{ACCOUNT}:role/app"
    stub = Stubber(client)
    stub.add_response("generate_service_last_accessed_details", {"JobId": "EXAMPLE1-0000-4000-8000-0000000000aa"},
                      {"Arn": role, "Granularity": "ACTION_LEVEL"})
    stub.add_response("get_service_last_accessed_details", {
        "JobStatus": "COMPLETED", "JobCreationDate": datetime(2026, 8, 1, tzinfo=UTC), "ServicesLastAccessed": [],
        "JobCompletionDate": datetime(2026, 8, 1, tzinfo=UTC), "IsTruncated": False}, {"JobId": "EXAMPLE1-0000-4000-8000-0000000000aa"})
    with _recording(client) as rec, stub:
        assert read_last_accessed(client, role, sleep=lambda s: None) == []
    return rec.calls


def _jumping_clock(start: datetime) -> Any:
    ticks = iter(range(0, 10**6, 3600))
    return lambda: start + timedelta(seconds=next(ticks))


def _write_trail_log(s3: Any) -> None:
    s3.create_bucket(Bucket=BUCKET)
    key = f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/11/01/{ACCOUNT}_CloudTrail_us-east-1_20261101T0000Z_a.json.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(json.dumps({"Records": []}).encode()))


def test_applier_refuses_what_tighten_must_never_do() -> None:
    applier, boundary = parse_policy(_policy("applier")), parse_policy(_policy("boundary"))

    def decide(action: str, resource: str, tagged: bool = False) -> Decision:
        context = {**CONTEXT, "aws:ResourceTag/tighten:protected": "true" if tagged else None}
        return evaluate(action, resource, [applier], boundary=boundary, context=context)

    role = f"arn:aws:iam::{ACCOUNT}:role/"
    assert decide("iam:DetachRolePolicy", role + "app") is Decision.ALLOWED
    assert decide("iam:DetachRolePolicy", role + "app", tagged=True) is Decision.EXPLICIT_DENY
    assert decide("iam:AttachRolePolicy", role + "TightenApplier") is Decision.EXPLICIT_DENY
    assert decide("iam:PutRolePolicy", role + "aws-service-role/support.amazonaws.com/X") is Decision.EXPLICIT_DENY
    assert decide("iam:CreatePolicy", f"arn:aws:iam::{ACCOUNT}:policy/other") is Decision.IMPLICIT_DENY
    assert decide("iam:DeletePolicy", f"arn:aws:iam::{ACCOUNT}:policy/TightenBoundary") is not Decision.ALLOWED
    assert decide("iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/x") is Decision.IMPLICIT_DENY
    assert decide("iam:UpdateAssumeRolePolicy", role + "app") is Decision.IMPLICIT_DENY
