"""A second, deliberately simple derivation of the resource ARNs a CloudTrail call touched.

Written apart from the normalizer and sharing no code with it (nothing from ``bot``): no map, no templates, no
catalog. Per service a handful of rules read the request parameters, ``resources[]`` and ``responseElements``
and build ARNs in the formats of the AWS Service Authorization Reference:

* IAM: the named role/user/group/instance profile (with the path a Create call gives); a policy ARN only when
  no role, user or group is named (for AttachRolePolicy & co. the role is the resource); a SAML provider ARN.
* S3: the object (bucket/key) when a key is given, else the bucket; CopyObject's ``x-amz-copy-source`` object.
* Lambda ``functionName`` (name or ARN, version qualifier dropped), DynamoDB ``tableName``, SQS ``queueUrl``.
* SSM parameters (``name``/``names``; the ARN has no leading slash), instance targets (``i-`` EC2 instances,
  ``mi-`` managed instances), sessions.
* CloudWatch Logs: a group as ``log-group:NAME`` and ``log-group:NAME:*``; a stream under its group.
* KMS: the key ARNs CloudTrail lists in ``resources[]``; else a key id or key ARN parameter.
* CloudTrail trail ``name`` (a name or an ARN).
* RDS instance, snapshot, cluster, cluster snapshot and global cluster identifiers (ARN or name); a role ARN
  passed to an Add/Create/Start/Restore call.
* EC2 ids in the request (instance, volume, snapshot, image, security group, subnet, VPC, ENI, key pair,
  launch template, traffic-mirror ids, flow logs); ``Describe*`` calls take no resource and yield nothing,
  except ``Describe<Type>Attribute`` on the resource it names.
* Secrets Manager: ``secretId`` (ARN as is; a name gets the ``-??????`` suffix of every secret ARN), the exact
  ARN from a CreateSecret response.

``oracle_arns(event)`` returns None for services it does not model.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

SERVICES = ("iam", "s3", "lambda", "dynamodb", "sqs", "ssm", "logs", "kms", "cloudtrail", "rds", "ec2",
            "secretsmanager")

EC2_ID_TYPES = {
    "i-": "instance", "vol-": "volume", "sg-": "security-group", "subnet-": "subnet", "vpc-": "vpc",
    "eni-": "network-interface", "lt-": "launch-template", "tmf-": "traffic-mirror-filter",
    "tmt-": "traffic-mirror-target", "tms-": "traffic-mirror-session", "fl-": "vpc-flow-log",
    "igw-": "internet-gateway", "rtb-": "route-table", "acl-": "network-acl",
}
NO_ACCOUNT = {"snap-": "snapshot", "ami-": "image"}  # EC2 snapshots and images have no account in their ARN


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def oracle_arns(event: dict[str, Any]) -> set[str] | None:
    source = str(event.get("eventSource") or "")
    service = source.split(".")[0]
    if service not in SERVICES:
        return None
    params = event.get("requestParameters")
    if not isinstance(params, dict):
        params = {}
    if len(params) == 1 and isinstance(next(iter(params.values())), dict) and next(iter(params)).endswith("Request"):
        params = next(iter(params.values()))  # EC2 query-API wrapper {"XRequest": {...}}
    region = str(event.get("awsRegion") or "")
    account = str(event.get("recipientAccountId") or "")
    ctx = (partition(region), region, account)
    rule = RULES[service]
    return rule(str(event.get("eventName") or ""), params, event, ctx)


def _first(params: dict[str, Any], *names: str) -> str:
    for name in names:
        value = params.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def _iam(name: str, p: dict[str, Any], event: dict[str, Any], ctx: tuple[str, str, str]) -> set[str]:
    part, _, account = ctx
    base = f"arn:{part}:iam::{account}:"
    path = _first(p, "path")
    prefix = path.strip("/") + "/" if name.startswith("Create") and path.strip("/") else ""
    out = set()
    for key, kind in (("roleName", "role"), ("userName", "user"), ("groupName", "group"),
                      ("instanceProfileName", "instance-profile")):
        value = _first(p, key)
        if value:
            out.add(f"{base}{kind}/{prefix}{value}")
    if not out and _first(p, "policyArn"):
        out.add(_first(p, "policyArn"))
    if _first(p, "sAMLProviderArn"):
        out.add(_first(p, "sAMLProviderArn"))
    if name == "CreateSAMLProvider" and _first(p, "name"):
        out.add(f"{base}saml-provider/{_first(p, 'name')}")
    return out


def _s3(name: str, p: dict[str, Any], event: dict[str, Any], ctx: tuple[str, str, str]) -> set[str]:
    part = ctx[0]
    bucket, key = _first(p, "bucketName"), _first(p, "key")
    out = set()
    if bucket:
        out.add(f"arn:{part}:s3:::{bucket}/{key}" if key else f"arn:{part}:s3:::{bucket}")
    source = _first(p, "x-amz-copy-source")
    if source:
        path = unquote(source.split("?")[0].lstrip("/"))
        if "/" in path:
            out.add(f"arn:{part}:s3:::{path}")
    return out


def _lambda(name: str, p: dict[str, Any], event: dict[str, Any], ctx: tuple[str, str, str]) -> set[str]:
    part, region, account = ctx
    fn = _first(p, "functionName")
    if not fn:
        return set()
    if fn.startswith("arn:"):
        return {":".join(fn.split(":")[:7])}
    return {f"arn:{part}:lambda:{region}:{account}:function:{fn.split(':')[0]}"}


def _dynamodb(name: str, p: dict[str, Any], event: dict[str, Any], ctx: tuple[str, str, str]) -> set[str]:
    part, region, account = ctx
    table = _first(p, "tableName")
    return {f"arn:{part}:dynamodb:{region}:{account}:table/{table}"} if table else set()


def _sqs(name: str, p: dict[str, Any], event: dict[str, Any], ctx: tuple[str, str, str]) -> set[str]:
    part = ctx[0]
    url = _first(p, "queueUrl")
    m = re.match(r"https://(?:sqs\.)?([a-z0-9-]+)\.(?:queue\.)?amazonaws\.com/(\d{12})/([^/?]+)", url)
    if m:
        return {f"arn:{part}:sqs:{m.group(1)}:{m.group(2)}:{m.group(3)}"}
    if _first(p, "queueName"):
        return {f"arn:{part}:sqs:{ctx[1]}:{ctx[2]}:{_first(p, 'queueName')}"}
    return set()


def _ssm(name: str, p: dict[str, Any], event: dict[str, Any], ctx: tuple[str, str, str]) -> set[str]:
    part, region, account = ctx
    out = set()
    if "Parameter" in name:
        names = [_first(p, "name")] + [n for n in p.get("names") or [] if isinstance(n, str)]
        out |= {f"arn:{part}:ssm:{region}:{account}:parameter/{n.lstrip('/')}" for n in names if n}
    target = _first(p, "target")
    ids = [target] + [i for i in p.get("instanceIds") or [] if isinstance(i, str)]
    out |= {f"arn:{part}:ec2:{region}:{account}:instance/{i}" for i in ids if i.startswith("i-")}
    out |= {f"arn:{part}:ssm:{region}:{account}:managed-instance/{i}" for i in ids if i.startswith("mi-")}
    if _first(p, "sessionId"):
        out.add(f"arn:{part}:ssm:{region}:{account}:session/{_first(p, 'sessionId')}")
    return out


def _logs(name: str, p: dict[str, Any], event: dict[str, Any], ctx: tuple[str, str, str]) -> set[str]:
    part, region, account = ctx
    group, stream = _first(p, "logGroupName"), _first(p, "logStreamName")
    if not group:
        return set()
    base = f"arn:{part}:logs:{region}:{account}:log-group:{group}"
    return {f"{base}:log-stream:{stream}"} if stream else {base, base + ":*"}


def _kms(name: str, p: dict[str, Any], event: dict[str, Any], ctx: tuple[str, str, str]) -> set[str]:
    part, region, account = ctx
    listed = {str(r.get("ARN") or r.get("arn")) for r in event.get("resources") or []
              if isinstance(r, dict) and ":key/" in str(r.get("ARN") or r.get("arn") or "")}
    if listed:
        return listed
    key = _first(p, "keyId")
    if key.startswith("arn:") and ":key/" in key:
        return {key}
    if key and not key.startswith(("arn:", "alias/")):  # a key id (a UUID, or mrk-... for multi-Region keys)
        return {f"arn:{part}:kms:{region}:{account}:key/{key}"}
    return set()


def _cloudtrail(name: str, p: dict[str, Any], event: dict[str, Any], ctx: tuple[str, str, str]) -> set[str]:
    part, region, account = ctx
    trail = _first(p, "name", "trailName")
    if not trail:
        return set()
    return {trail if trail.startswith("arn:") else f"arn:{part}:cloudtrail:{region}:{account}:trail/{trail}"}


RDS_IDS = {
    "dBInstanceIdentifier": "db", "sourceDBInstanceIdentifier": "db", "dBSnapshotIdentifier": "snapshot",
    "sourceDBSnapshotIdentifier": "snapshot", "targetDBSnapshotIdentifier": "snapshot",
    "dBClusterIdentifier": "cluster", "targetDbClusterIdentifier": "cluster",
    "dBClusterSnapshotIdentifier": "cluster-snapshot", "sourceDBClusterSnapshotIdentifier": "cluster-snapshot",
    "targetDBClusterSnapshotIdentifier": "cluster-snapshot", "dBSecurityGroupName": "secgrp",
}


def _rds(name: str, p: dict[str, Any], event: dict[str, Any], ctx: tuple[str, str, str]) -> set[str]:
    part, region, account = ctx
    out = set()
    for key, kind in RDS_IDS.items():
        value = _first(p, key)
        if value:
            out.add(value if value.startswith("arn:") else f"arn:{part}:rds:{region}:{account}:{kind}:{value}")
    if _first(p, "resourceArn").startswith("arn:"):
        out.add(_first(p, "resourceArn"))
    if _first(p, "globalClusterIdentifier"):
        out.add(f"arn:{part}:rds::{account}:global-cluster:{_first(p, 'globalClusterIdentifier')}")
    if name.startswith(("Add", "Create", "Start", "Restore")) and _first(p, "roleArn", "iamRoleArn"):
        out.add(_first(p, "roleArn", "iamRoleArn"))
    return out


def _ec2_ids(value: Any) -> list[str]:
    """Every string in the request that looks like an EC2 id."""
    if isinstance(value, str):
        return [value] if re.fullmatch(r"[a-z0-9]+-[0-9a-zA-Z]+", value) else []
    if isinstance(value, dict):
        if "content" in value:  # raw query-API member
            return _ec2_ids(value["content"])
        return [i for v in value.values() for i in _ec2_ids(v)]
    if isinstance(value, list):
        return [i for v in value for i in _ec2_ids(v)]
    return []


def _ec2(name: str, p: dict[str, Any], event: dict[str, Any], ctx: tuple[str, str, str]) -> set[str]:
    part, region, account = ctx
    if name.startswith("Describe") and not name.endswith("Attribute"):
        return set()  # Describe calls take no resource, except Describe<Type>Attribute on the one it names
    out = set()
    for ident in _ec2_ids(p):
        for table, owner in ((EC2_ID_TYPES, account), (NO_ACCOUNT, "")):
            prefix = next((k for k in table if ident.startswith(k)), None)
            if prefix:
                out.add(f"arn:{part}:ec2:{region}:{owner}:{table[prefix]}/{ident}")
    key_name = _first(p, "keyName")
    for item in (p.get("instancesSet") or {}).get("items") or []:
        if isinstance(item, dict) and isinstance(item.get("keyName"), str):
            key_name = item["keyName"]
    if key_name:
        out.add(f"arn:{part}:ec2:{region}:{account}:key-pair/{key_name}")
    return out


def _secretsmanager(name: str, p: dict[str, Any], event: dict[str, Any], ctx: tuple[str, str, str]) -> set[str]:
    part, region, account = ctx
    response = event.get("responseElements")
    if isinstance(response, dict) and isinstance(response.get("aRN"), str):
        return {response["aRN"]}
    ids = [_first(p, "secretId", "name")] + [i for i in p.get("secretIdList") or [] if isinstance(i, str)]
    return {i if i.startswith("arn:") else f"arn:{part}:secretsmanager:{region}:{account}:secret:{i}-??????"
            for i in ids if i}


RULES = {
    "iam": _iam, "s3": _s3, "lambda": _lambda, "dynamodb": _dynamodb, "sqs": _sqs, "ssm": _ssm, "logs": _logs,
    "kms": _kms, "cloudtrail": _cloudtrail, "rds": _rds, "ec2": _ec2, "secretsmanager": _secretsmanager,
}


def comparable(arn: str, oracle: set[str]) -> bool:
    """Is a normalizer ARN one the oracle should have derived? Exact ARNs of the modelled services; wildcard
    ARNs (a new resource: ``instance/*``) only when the oracle derives the same text."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] not in SERVICES:
        return False
    return ("*" not in arn and "?" not in arn) or arn in oracle
