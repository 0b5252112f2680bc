"""Seed the embedded AWS (moto on 127.0.0.1) with a small, realistic account for ``tighten demo``.

Roles (in account 123456789012, moto's default):

* ``ci-deployer`` — AdministratorAccess; deploys a Lambda (S3 artifact upload, ``UpdateFunctionCode``,
  ``CreateFunction`` passing ``orders-api-exec``). Used a CloudFormation stack 36 days ago only.
* ``data-analyst`` — PowerUserAccess; Athena, Glue, S3 data-lake reads, EC2 describes; its ``iam:ListUsers``
  calls are denied.
* ``reporting-job`` — inline policy ``reporting-access`` granting ``s3:*``, ``dynamodb:*``, ``athena:*`` on
  ``*``; a nightly job reading DynamoDB and writing reports to S3.
* ``orders-api-exec`` — the Lambda execution role ``ci-deployer`` passes (AWSLambdaBasicExecutionRole).
* the ECS service-linked role (``AWSServiceRoleForECS``) — (never in scope); calls made by ECS on its behalf.
* ``BreakGlassAdmin`` — AdministratorAccess, protected by config (never in scope).
* ``orders-api-OrdersWorkerRole-7XQ2M9K4`` — created by the CloudFormation stack ``orders-api`` (it carries the
  stack's ``aws:cloudformation:*`` tags, so it is managed as code); inline ``s3:*``, ``dynamodb:*``, ``sqs:*`` on
  ``*``; a worker writing orders to DynamoDB and reading incoming files from the data lake.

Logs: ``days`` days of CloudTrail in the organization-trail layout
``AWSLogs/<org-id>/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<ts>_<id>.json.gz``,
one gzip delivery file (``{"Records": [...]}``) per 6-hour slot that had activity.
"""

from __future__ import annotations

import gzip
import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import boto3

from bot.demo.events import RecordFactory, Session, denied

ACCOUNT = "123456789012"
ORG_ID = "o-demo7x2k9q"
REGION = "us-east-1"
TRAIL_BUCKET = "tighten-demo-org-trail"
ARTIFACT_BUCKET = f"demo-artifacts-{ACCOUNT}"
DATALAKE_BUCKET = f"demo-datalake-{ACCOUNT}"
REPORTS_BUCKET = f"demo-reports-{ACCOUNT}"
BREAK_GLASS = "BreakGlassAdmin"
SERVICE_LINKED = "ecs-service-linked"  # key in role_arns for the ECS service-linked role

_LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
_ACCOUNT_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]}

#: The stack that created ``CFN_ROLE`` (``ci-deployer`` created it), and the role's logical ID in it.
CFN_STACK = "orders-api"
CFN_LOGICAL_ID = "OrdersWorkerRole"
CFN_ROLE = f"{CFN_STACK}-{CFN_LOGICAL_ID}-7XQ2M9K4"
WORKER_INLINE = {"Version": "2012-10-17", "Statement": [
    {"Sid": "WorkerData", "Effect": "Allow", "Action": ["s3:*", "dynamodb:*", "sqs:*"], "Resource": "*"}]}

#: The over-broad inline policy of ``reporting-job``.
REPORTING_INLINE = {"Version": "2012-10-17", "Statement": [
    {"Sid": "EverythingData", "Effect": "Allow", "Action": ["s3:*", "dynamodb:*", "athena:*"], "Resource": "*"}]}


@dataclass(frozen=True)
class DemoRole:
    name: str
    description: str
    trust: dict[str, Any]
    managed: tuple[str, ...] = ()  # AWS managed policy names
    inline: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


DEMO_ROLES: tuple[DemoRole, ...] = (
    DemoRole("ci-deployer", "CI pipeline deploying the orders API", _ACCOUNT_TRUST, ("AdministratorAccess",)),
    DemoRole("data-analyst", "Analysts querying the data lake", _ACCOUNT_TRUST, ("PowerUserAccess",)),
    DemoRole("reporting-job", "Nightly report generator", _LAMBDA_TRUST, inline={"reporting-access": REPORTING_INLINE}),
    DemoRole("orders-api-exec", "Execution role of the orders-api Lambda", _LAMBDA_TRUST,
             ("service-role/AWSLambdaBasicExecutionRole",)),
    DemoRole(BREAK_GLASS, "Emergency access; protected", _ACCOUNT_TRUST, ("AdministratorAccess",),
             tags={"purpose": "break-glass"}),
    DemoRole(CFN_ROLE, "Orders worker (CloudFormation stack orders-api)", _LAMBDA_TRUST,
             inline={"orders-worker-access": WORKER_INLINE},
             tags={"aws:cloudformation:stack-name": CFN_STACK, "aws:cloudformation:logical-id": CFN_LOGICAL_ID,
                   "aws:cloudformation:stack-id": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{CFN_STACK}/"
                                                  "5c3a1f40-0000-11ef-9c1e-0a1b2c3d4e5f"}),
)


@dataclass
class SeedResult:
    account: str
    org_id: str
    region: str
    bucket: str
    source: str  # s3:// URL for ingest
    role_arns: dict[str, str]
    objects: int = 0
    events: int = 0
    denied: int = 0
    data_events: int = 0
    first_event: str = ""
    last_event: str = ""


def seed_account(endpoint_url: str, *, now: datetime, days: int = 40, seed: int = 7,
                 role_age_days: int = 400) -> SeedResult:
    """Create the demo roles and upload ``days`` days of CloudTrail ending at ``now``. Idempotent only on a
    fresh (reset) moto server."""
    iam = boto3.client("iam", endpoint_url=endpoint_url, region_name=REGION)
    s3 = boto3.client("s3", endpoint_url=endpoint_url, region_name=REGION)
    role_ids: dict[str, str] = {}
    role_arns: dict[str, str] = {}
    for role in DEMO_ROLES:
        created = iam.create_role(RoleName=role.name, AssumeRolePolicyDocument=json.dumps(role.trust),
                                  Description=role.description,
                                  Tags=[{"Key": k, "Value": v} for k, v in role.tags.items()])["Role"]
        role_ids[role.name], role_arns[role.name] = created["RoleId"], created["Arn"]
        for policy in role.managed:
            iam.attach_role_policy(RoleName=role.name, PolicyArn=f"arn:aws:iam::aws:policy/{policy}")
        for name, doc in role.inline.items():
            iam.put_role_policy(RoleName=role.name, PolicyName=name, PolicyDocument=json.dumps(doc))
    slr = iam.create_service_linked_role(AWSServiceName="ecs.amazonaws.com")["Role"]
    # moto names it AWSServiceRoleForecs (AWS: AWSServiceRoleForECS); the records use whatever IAM returned
    role_ids[SERVICE_LINKED], role_arns[SERVICE_LINKED] = slr["RoleId"], slr["Arn"]

    backdate_roles(set(role_ids.values()), days=role_age_days)

    s3.create_bucket(Bucket=TRAIL_BUCKET)
    for bucket in (ARTIFACT_BUCKET, DATALAKE_BUCKET, REPORTS_BUCKET):
        s3.create_bucket(Bucket=bucket)

    records = generate_records(role_ids, role_arns, now=now, days=days, seed=seed)
    result = SeedResult(account=ACCOUNT, org_id=ORG_ID, region=REGION, bucket=TRAIL_BUCKET,
                        source=f"s3://{TRAIL_BUCKET}/AWSLogs/", role_arns=role_arns)
    for key, batch in delivery_files(records, seed=seed).items():
        body = gzip.compress(json.dumps({"Records": batch}, separators=(",", ":")).encode(), mtime=0)
        s3.put_object(Bucket=TRAIL_BUCKET, Key=key, Body=body, ContentType="application/json",
                      ContentEncoding="gzip")
        result.objects += 1
    result.events = len(records)
    result.denied = sum(1 for r in records if "errorCode" in r)
    result.data_events = sum(1 for r in records if not r["managementEvent"])
    times = sorted(r["eventTime"] for r in records)
    result.first_event, result.last_event = times[0], times[-1]
    return result


def backdate_roles(role_ids: set[str], *, days: int) -> int:
    """Make the demo roles ``days`` old, so their history is consistent with the logs (no "insufficient
    history" warning on roles that have 40 days of activity). Emulator only: the moto server runs in this
    process and IAM has no API to change a role's creation date. Returns how many roles were changed."""
    from moto.iam.models import iam_backends

    changed = 0
    backend = iam_backends[ACCOUNT]["global"]
    for role in backend.roles.values():
        if role.id in role_ids:
            role.create_date = role.create_date - timedelta(days=days)
            changed += 1
    return changed


def delivery_files(records: list[dict[str, Any]], *, seed: int = 7) -> dict[str, list[dict[str, Any]]]:
    """Group records into CloudTrail delivery objects: one per (region, 6-hour slot), org-trail key layout."""
    rng = random.Random(seed + 1)
    slots: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        t = datetime.fromisoformat(rec["eventTime"].replace("Z", "+00:00"))
        slot = t.replace(hour=t.hour - t.hour % 6, minute=0, second=0) + timedelta(hours=6, minutes=5)
        slots[(rec["awsRegion"], slot.strftime("%Y%m%dT%H%MZ"))].append(rec)
    files: dict[str, list[dict[str, Any]]] = {}
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    for (region, stamp), batch in sorted(slots.items()):
        batch.sort(key=lambda r: r["eventTime"])
        day = batch[0]["eventTime"][:10].replace("-", "/")
        suffix = "".join(rng.choice(alphabet) for _ in range(16))
        key = (f"AWSLogs/{ORG_ID}/{ACCOUNT}/CloudTrail/{region}/{day}/"
               f"{ACCOUNT}_CloudTrail_{region}_{stamp}_{suffix}.json.gz")
        files[key] = batch
    return files


def generate_records(role_ids: dict[str, str], role_arns: dict[str, str], *, now: datetime, days: int = 40,
                     seed: int = 7) -> list[dict[str, Any]]:
    """The demo account's activity over ``days`` days ending at ``now`` (deterministic for a seed)."""
    f = RecordFactory(seed=seed, region=REGION)
    rng = f.rng
    start = (now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    out: list[dict[str, Any]] = []

    def session(role: str, name: str, invoked_by: str | None = None) -> Session:
        arn = role_arns[role]
        path = arn.split(":role", 1)[1].rsplit("/", 1)[0] + "/"
        return Session(ACCOUNT, role, role_ids[role], name, path=path, invoked_by=invoked_by)

    def at(day: int, hour: int) -> datetime:
        moment = start + timedelta(days=day, hours=hour, minutes=rng.randrange(60), seconds=rng.randrange(60))
        return min(moment, now - timedelta(minutes=20))  # logs reach S3 ~15 minutes after the call

    fn, exec_role = "orders-api", role_arns["orders-api-exec"]
    for day in range(days):
        weekday = (start + timedelta(days=day)).weekday()
        # ci-deployer: deploys on working days
        if weekday < 5:
            ci = session("ci-deployer", f"gha-deploy-{1000 + day}")
            sha = f"{rng.getrandbits(40):010x}"
            t = at(day, 14)
            out.append(f.record(ci, t, "sts", "GetCallerIdentity", request=None))
            out.append(f.s3_object(ci, t, "PutObject", ARTIFACT_BUCKET, f"builds/{sha}.zip"))
            out.append(f.lambda_get(ci, t, fn))
            out.append(f.lambda_update_code(ci, t, fn, ARTIFACT_BUCKET, f"builds/{sha}.zip"))
        if day == 4:  # the stack was created once, long ago: outside a 30-day lookback
            ci = session("ci-deployer", "gha-deploy-bootstrap")
            out.append(f.record(ci, at(day, 10), "cloudformation", "CreateStack",
                                request={"stackName": "orders-api", "capabilities": ["CAPABILITY_IAM"]},
                                response={"stackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/"
                                          "orders-api/5c3a1f40-0000-11ef-9c1e-0a1b2c3d4e5f"},
                                read_only=False))
        if day == days - 12:  # a new function version: passes the execution role
            ci = session("ci-deployer", "gha-deploy-newfn")
            out.append(f.lambda_create(ci, at(day, 15), "orders-api-worker", exec_role))

        # data-analyst: business days
        if weekday < 5:
            da = session("data-analyst", "alice@example.com")
            for _ in range(rng.randint(2, 4)):
                t = at(day, rng.randint(9, 17))
                qid = f.rng.getrandbits(64)
                out.append(f.record(da, t, "glue", "GetTable",
                                    request={"databaseName": "analytics", "name": "orders"}))
                out.append(f.record(
                    da, t, "athena", "StartQueryExecution",
                    request={"queryString": "***OMITTED***", "workGroup": "primary",
                             "queryExecutionContext": {"database": "analytics"}},
                    response={"queryExecutionId": f"{qid:016x}-demo"}, read_only=False))
                out.append(f.record(da, t, "athena", "GetQueryResults",
                                    request={"queryExecutionId": f"{qid:016x}-demo"}))
                out.append(f.s3_list(da, t, DATALAKE_BUCKET, "curated/orders/"))
                part = rng.randrange(8)
                out.append(f.s3_object(
                    da, t, "GetObject", DATALAKE_BUCKET, f"curated/orders/part-{part:05d}.parquet"))
            if day % 3 == 0:
                out.append(f.record(da, at(day, 11), "ec2", "DescribeInstances",
                                    request={"instancesSet": {}, "filterSet": {}}))
            if day % 9 == 2:  # PowerUserAccess excludes IAM: refused, not usage
                out.append(f.record(
                    da, at(day, 16), "iam", "ListUsers", request=None,
                    error=denied("iam", f"arn:aws:sts::{ACCOUNT}:assumed-role/data-analyst/alice@example.com",
                                 "iam:ListUsers", f"arn:aws:iam::{ACCOUNT}:user/")))

        # reporting-job: every night
        rj = session("reporting-job", "nightly-report")
        t = at(day, 2)
        out.append(f.dynamodb_item(rj, t, "Query", "orders"))
        out.append(f.dynamodb_item(rj, t, "GetItem", "customers"))
        stamp = (start + timedelta(days=day)).strftime("%Y-%m-%d")
        out.append(f.s3_object(rj, t, "PutObject", REPORTS_BUCKET, f"daily/{stamp}.csv"))
        if day % 7 == 0:
            out.append(f.s3_object(rj, t, "GetObject", REPORTS_BUCKET, "templates/weekly.xlsx"))

        # the orders worker (CloudFormation stack orders-api): writes orders, reads incoming files
        ow = session(CFN_ROLE, "orders-worker")
        t = at(day, 5)
        out.append(f.dynamodb_item(ow, t, "PutItem", "orders"))
        out.append(f.s3_object(ow, t, "GetObject", DATALAKE_BUCKET, f"incoming/orders-{day:03d}.json"))

        # orders-api-exec: the Lambda writes its logs
        ex = session("orders-api-exec", fn)
        out.append(f.record(ex, at(day, 8), "logs", "CreateLogStream",
                            request={"logGroupName": f"/aws/lambda/{fn}",
                                     "logStreamName": f"2024/01/01/[$LATEST]{rng.getrandbits(64):016x}"},
                            read_only=False))

        # the ECS service-linked role: calls made by ECS itself
        if day % 2 == 0:
            slr = session(SERVICE_LINKED, "ecs-service-scheduler", invoked_by="ecs.amazonaws.com")
            out.append(f.record(slr, at(day, 6), "ec2", "DescribeNetworkInterfaces",
                                request={"networkInterfaceIdSet": {}, "filterSet": {}}))

    # break-glass: one emergency session 20 days ago
    bg = session(BREAK_GLASS, "oncall-incident-4711")
    out.append(f.record(bg, at(days - 20, 3), "iam", "ListRoles", request=None))
    out.append(f.record(bg, at(days - 20, 3), "iam", "GetRole", request={"roleName": "ci-deployer"}))
    out.sort(key=lambda r: r["eventTime"])
    return out
