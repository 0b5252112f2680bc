"""A generated, realistic CloudTrail corpus for benchmarks (shared with ``bench/ingest.py``).

``write_corpus(dir)`` writes gzip delivery files (``{"Records": [...]}``) in the organization-trail layout
``AWSLogs/<o-id>/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<stamp>_<id>.json.gz``.
The mix: assumed-role sessions of several roles (CI, app, data pipeline, admin), IAM users, S3 data events
with ``resources[]`` (GetObject/PutObject/HeadObject/ListObjects), KMS Decrypt/ReEncrypt, DynamoDB item
calls, Lambda ``CreateFunction20150331`` passing a role and ``UpdateFunctionCode20150331v2``, EC2
``RunInstances`` with an instance profile, STS ``GetCallerIdentity``/``AssumeRole``, denied calls
(``AccessDenied``/``Client.UnauthorizedOperation``), throttled calls, service-invoked calls (``invokedBy``),
service-linked roles and console sign-ins. Deterministic for a given seed.
"""

from __future__ import annotations

import gzip
import os
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

ORG_ID = "o-a1b2c3d4e5"
ACCOUNTS = ("111111111111", "222222222222", "333333333333")
REGIONS = ("us-east-1", "eu-west-1")
START = datetime(2024, 5, 1, tzinfo=UTC)
DAYS = 30

_ROLES = ("ci-deployer", "app-backend", "data-pipeline", "ops-admin", "reporting")
_USERS = ("alice", "bob", "svc-legacy")
_BUCKETS = ("app-assets", "data-lake-raw", "reports-out")
_AGENTS = (
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1 exe/x86_64 prompt/off command/s3.cp",
    "Boto3/1.34.84 md/Botocore#1.34.84 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.11.8",
    "aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.2 md/GOOS#linux md/GOARCH#amd64 api/dynamodb#1.31.1",
    "[aws-sdk-java/2.25.31 Linux/6.1 OpenJDK_64-Bit_Server_VM/17.0.10 Java/17.0.10 vendor/Amazon.com_Inc.]",
)


def _principal(rng: random.Random, account: str, now: datetime) -> dict[str, Any]:
    r = rng.random()
    if r < 0.78:
        role = rng.choice(_ROLES)
        session = f"{role}-{rng.randrange(40)}"
        return {
            "type": "AssumedRole",
            "principalId": f"AROA{account[:4]}{role.upper()[:8]}:{session}",
            "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
            "accountId": account,
            "accessKeyId": f"ASIA{rng.randrange(10**12):012d}",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": f"AROA{account[:4]}{role.upper()[:8]}",
                    "arn": f"arn:aws:iam::{account}:role/{role}",
                    "accountId": account,
                    "userName": role,
                },
                "webIdFederationData": {},
                "attributes": {"creationDate": (now - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                               "mfaAuthenticated": "false"},
            },
        }
    if r < 0.95:
        user = rng.choice(_USERS)
        return {
            "type": "IAMUser",
            "principalId": f"AIDA{account[:6]}{user.upper()}",
            "arn": f"arn:aws:iam::{account}:user/{user}",
            "accountId": account,
            "accessKeyId": f"AKIA{rng.randrange(10**12):012d}",
            "userName": user,
        }
    name = "AWSServiceRoleForAutoScaling"
    return {
        "type": "AssumedRole",
        "principalId": f"AROA{account[:4]}ASG:AutoScaling",
        "arn": f"arn:aws:sts::{account}:assumed-role/{name}/AutoScaling",
        "accountId": account,
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": f"AROA{account[:4]}ASG",
                "arn": f"arn:aws:iam::{account}:role/aws-service-role/autoscaling.amazonaws.com/{name}",
                "accountId": account,
                "userName": name,
            },
            "attributes": {"creationDate": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "mfaAuthenticated": "false"},
        },
        "invokedBy": "autoscaling.amazonaws.com",
    }


def _call(rng: random.Random, account: str, region: str) -> tuple[str, str, dict, list[dict] | None, bool]:
    """(eventSource, eventName, requestParameters, resources, readOnly)."""
    k = rng.random()
    bucket = f"{rng.choice(_BUCKETS)}-{account}"
    key = f"{rng.choice(('in', 'out', 'tmp'))}/{rng.randrange(2000):05d}.parquet"
    if k < 0.35:
        name = rng.choice(("GetObject", "GetObject", "PutObject", "HeadObject", "ListObjects"))
        params: dict[str, Any] = {"bucketName": bucket, "Host": f"{bucket}.s3.{region}.amazonaws.com"}
        res = [{"type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}", "accountId": account}]
        if name != "ListObjects":
            params["key"] = key
            res.insert(0, {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"})
        else:
            params.update({"prefix": "in/", "list-type": "2"})
        return "s3.amazonaws.com", name, params, res, name != "PutObject"
    if k < 0.45:
        key_id = f"{rng.randrange(16**8):08x}-1111-2222-3333-{rng.randrange(4):012d}"
        arn = f"arn:aws:kms:{region}:{account}:key/{key_id}"
        if rng.random() < 0.1:
            return ("kms.amazonaws.com", "ReEncrypt",
                    {"sourceKeyId": arn, "destinationKeyId": arn}, [{"type": "AWS::KMS::Key", "ARN": arn}], False)
        return ("kms.amazonaws.com", "Decrypt", {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"},
                [{"type": "AWS::KMS::Key", "ARN": arn, "accountId": account}], True)
    if k < 0.60:
        name = rng.choice(("GetItem", "PutItem", "Query", "UpdateItem", "BatchWriteItem"))
        table = rng.choice(("orders", "sessions", "inventory"))
        return ("dynamodb.amazonaws.com", name, {"tableName": table, "key": {"pk": {"S": "x"}}},
                [{"accountId": account, "type": "AWS::DynamoDB::Table",
                  "ARN": f"arn:aws:dynamodb:{region}:{account}:table/{table}"}], name in ("GetItem", "Query"))
    if k < 0.66:
        return "sts.amazonaws.com", "GetCallerIdentity", {}, None, True
    if k < 0.70:
        role = rng.choice(_ROLES)
        return ("sts.amazonaws.com", "AssumeRole",
                {"roleArn": f"arn:aws:iam::{account}:role/{role}", "roleSessionName": f"s-{rng.randrange(99)}"},
                [{"ARN": f"arn:aws:iam::{account}:role/{role}", "accountId": account, "type": "AWS::IAM::Role"}],
                False)
    if k < 0.74:
        fn = f"svc-{rng.randrange(12)}"
        if rng.random() < 0.5:
            return ("lambda.amazonaws.com", "CreateFunction20150331",
                    {"functionName": fn, "runtime": "python3.12", "handler": "app.handler",
                     "role": f"arn:aws:iam::{account}:role/lambda-exec-{fn}",
                     "code": {}, "timeout": 30, "memorySize": 256}, None, False)
        return ("lambda.amazonaws.com", "UpdateFunctionCode20150331v2",
                {"functionName": fn, "publish": True, "dryRun": False}, None, False)
    if k < 0.77:
        return ("ec2.amazonaws.com", "RunInstances",
                {"instancesSet": {"items": [{"imageId": "ami-0abcdef1234567890", "minCount": 1, "maxCount": 1}]},
                 "instanceType": "t3.micro", "subnetId": "subnet-0123456789abcdef0",
                 "iamInstanceProfile": {"arn": f"arn:aws:iam::{account}:instance-profile/web"}}, None, False)
    if k < 0.92:
        name = rng.choice(("DescribeInstances", "DescribeSecurityGroups", "DescribeVolumes", "DescribeSubnets"))
        return "ec2.amazonaws.com", name, {"filterSet": {}, "maxResults": 100}, None, True
    if k < 0.96:
        name = rng.choice(("GetParameter", "GetParametersByPath"))
        return ("ssm.amazonaws.com", name, {"name": f"/app/{rng.randrange(30)}", "withDecryption": True}, None,
                True)
    return ("logs.amazonaws.com", "CreateLogStream",
            {"logGroupName": f"/aws/lambda/svc-{rng.randrange(12)}", "logStreamName": uuid.UUID(int=rng.getrandbits(128)).hex},
            None, False)


def make_event(rng: random.Random, account: str, region: str, when: datetime) -> dict[str, Any]:
    source, name, params, resources, read_only = _call(rng, account, region)
    ident = _principal(rng, account, when)
    ev: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": ident,
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
        "userAgent": rng.choice(_AGENTS),
        "requestParameters": params or None,
        "responseElements": None,
        "requestID": uuid.UUID(int=rng.getrandbits(128)).hex.upper()[:16],
        "eventID": str(uuid.UUID(int=rng.getrandbits(128))),
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": source not in ("s3.amazonaws.com", "dynamodb.amazonaws.com") or name == "ListBuckets",
        "recipientAccountId": account,
        "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                       "clientProvidedHostHeader": f"{source.split('.')[0]}.{region}.amazonaws.com"},
    }
    if resources:
        ev["resources"] = resources
    if not ev["managementEvent"]:
        ev["eventCategory"] = "Data"
        ev["sharedEventID"] = str(uuid.UUID(int=rng.getrandbits(128)))
    r = rng.random()
    if r < 0.03:
        if source == "ec2.amazonaws.com":
            ev["errorCode"] = "Client.UnauthorizedOperation"
        else:
            ev["errorCode"] = "AccessDenied"
        ev["errorMessage"] = f"User: {ident['arn']} is not authorized to perform: {name}"
    elif r < 0.04:
        ev["errorCode"] = "ThrottlingException"
        ev["errorMessage"] = "Rate exceeded"
    elif r < 0.045:
        ev = {
            "eventVersion": "1.09",
            "userIdentity": ident,
            "eventTime": ev["eventTime"],
            "eventSource": "signin.amazonaws.com",
            "eventName": "ConsoleLogin",
            "awsRegion": region,
            "sourceIPAddress": ev["sourceIPAddress"],
            "userAgent": "Mozilla/5.0",
            "requestParameters": None,
            "responseElements": {"ConsoleLogin": "Success"},
            "eventID": ev["eventID"],
            "readOnly": False,
            "eventType": "AwsConsoleSignIn",
            "managementEvent": True,
            "recipientAccountId": account,
            "eventCategory": "Management",
        }
    return ev


def write_corpus(dir: str | os.PathLike[str], n_events: int = 100_000, n_files: int = 200, seed: int = 0) -> list[Path]:
    """Write ``n_events`` events into ``n_files`` gzip delivery files below ``dir``; return their paths."""
    rng = random.Random(seed)
    root = Path(dir)
    paths: list[Path] = []
    per_file = [n_events // n_files + (1 if i < n_events % n_files else 0) for i in range(n_files)]
    for i, count in enumerate(per_file):
        account = ACCOUNTS[i % len(ACCOUNTS)]
        region = REGIONS[(i // len(ACCOUNTS)) % len(REGIONS)]
        start = START + timedelta(minutes=(i * DAYS * 24 * 60) // n_files)
        events = [make_event(rng, account, region, start + timedelta(seconds=rng.randrange(300)))
                  for _ in range(count)]
        events.sort(key=lambda e: e["eventTime"])
        stamp = start.strftime("%Y%m%dT%H%MZ")
        folder = root / "AWSLogs" / ORG_ID / account / "CloudTrail" / region / start.strftime("%Y/%m/%d")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{account}_CloudTrail_{region}_{stamp}_{rng.getrandbits(64):016x}.json.gz"
        path.write_bytes(gzip.compress(orjson.dumps({"Records": events}), compresslevel=6, mtime=0))
        paths.append(path)
    return paths


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "corpus"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    files = write_corpus(out, n_events=n)
    print(f"wrote {n} events in {len(files)} files under {out}")
