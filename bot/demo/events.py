"""CloudTrail record builders for the demo account, in the shapes CloudTrail really delivers.

Field names follow real delivery files (``eventVersion`` 1.09): assumed-role sessions carry a
``sessionContext.sessionIssuer`` naming the role; S3 object, DynamoDB item and Lambda invoke calls are *data
events* (``managementEvent: false``, ``eventCategory: Data``, ``resources[]`` filled); denied calls carry
``errorCode``/``errorMessage`` as each service spells them; Lambda's versioned event names
(``CreateFunction20150331``, ``UpdateFunctionCode20150331v2``) are kept as CloudTrail writes them.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.util.clock import iso


@dataclass(frozen=True)
class Session:
    """An assumed-role session: who the demo's calls come from."""

    account: str
    role_name: str
    role_id: str  # AROA... as IAM returned it
    session_name: str
    path: str = "/"
    invoked_by: str | None = None  # AWS service calling on the role's behalf (service-linked roles)
    source_ip: str = "203.0.113.24"
    user_agent: str = "aws-cli/2.17.20 Python/3.11.9 Linux/6.1 botocore/2.4.5"

    @property
    def role_arn(self) -> str:
        return f"arn:aws:iam::{self.account}:role{self.path}{self.role_name}"


class RecordFactory:
    """Builds records with deterministic ids (seeded random) so a seeded demo is reproducible."""

    def __init__(self, seed: int = 7, region: str = "us-east-1") -> None:
        self.rng = random.Random(seed)
        self.region = region

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _access_key(self) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
        return "ASIA" + "".join(self.rng.choice(alphabet) for _ in range(16))

    def identity(self, s: Session, when: datetime) -> dict[str, Any]:
        ident: dict[str, Any] = {
            "type": "AssumedRole",
            "principalId": f"{s.role_id}:{s.session_name}",
            "arn": f"arn:aws:sts::{s.account}:assumed-role/{s.role_name}/{s.session_name}",
            "accountId": s.account,
            "accessKeyId": self._access_key(),
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": s.role_id, "arn": s.role_arn,
                                  "accountId": s.account, "userName": s.role_name},
                "webIdFederationData": {},
                "attributes": {"creationDate": iso(when.replace(minute=0, second=0)), "mfaAuthenticated": "false"},
            },
        }
        if s.invoked_by:
            ident["invokedBy"] = s.invoked_by
        return ident

    def record(self, s: Session, when: datetime, source: str, name: str, *,
               request: dict[str, Any] | None = None, response: dict[str, Any] | None = None,
               resources: list[dict[str, Any]] | None = None, read_only: bool = True, data_event: bool = False,
               error: tuple[str, str] | None = None) -> dict[str, Any]:
        """One CloudTrail record. ``source`` is the service prefix (``s3``), ``name`` the eventName."""
        host = f"{source}.amazonaws.com"
        rec: dict[str, Any] = {
            "eventVersion": "1.09",
            "userIdentity": self.identity(s, when),
            "eventTime": iso(when),
            "eventSource": host,
            "eventName": name,
            "awsRegion": self.region,
            "sourceIPAddress": s.invoked_by or s.source_ip,
            "userAgent": s.invoked_by or s.user_agent,
            "requestParameters": request,
            "responseElements": None if error else response,
            "requestID": self._uuid(),
            "eventID": self._uuid(),
            "readOnly": read_only,
            "eventType": "AwsApiCall",
            "managementEvent": not data_event,
            "recipientAccountId": s.account,
            "eventCategory": "Data" if data_event else "Management",
            "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                           "clientProvidedHostHeader": f"{source}.{self.region}.amazonaws.com"},
        }
        if resources:
            rec["resources"] = resources
        if error:
            rec["errorCode"], rec["errorMessage"] = error
        return rec

    # -- service-specific shapes -------------------------------------------------------------
    def s3_object(self, s: Session, when: datetime, name: str, bucket: str, key: str,
                  error: tuple[str, str] | None = None) -> dict[str, Any]:
        """GetObject / PutObject / HeadObject: a data event with object and bucket resources."""
        return self.record(
            s, when, "s3", name,
            request={"bucketName": bucket, "Host": f"{bucket}.s3.{self.region}.amazonaws.com", "key": key},
            response={"x-amz-server-side-encryption": "AES256"} if name == "PutObject" else None,
            resources=[{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
                       {"accountId": s.account, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}],
            read_only=name != "PutObject", data_event=True, error=error,
        )

    def s3_list(self, s: Session, when: datetime, bucket: str, prefix: str) -> dict[str, Any]:
        """ListObjectsV2 is logged as eventName ``ListObjects`` (a data event on the bucket)."""
        return self.record(
            s, when, "s3", "ListObjects",
            request={"bucketName": bucket, "Host": f"{bucket}.s3.{self.region}.amazonaws.com",
                     "list-type": "2", "prefix": prefix, "delimiter": "/"},
            resources=[{"accountId": s.account, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}],
            data_event=True,
        )

    def dynamodb_item(self, s: Session, when: datetime, name: str, table: str,
                      error: tuple[str, str] | None = None) -> dict[str, Any]:
        """GetItem / Query / PutItem: data events on the table."""
        request: dict[str, Any] = {"tableName": table}
        if name == "Query":
            request.update({"keyConditionExpression": "pk = :pk", "consistentRead": False})
        else:
            request["key"] = {"pk": "HIDDEN_DUE_TO_SECURITY_REASONS"}
        return self.record(
            s, when, "dynamodb", name, request=request,
            resources=[{"accountId": s.account, "type": "AWS::DynamoDB::Table",
                        "ARN": f"arn:aws:dynamodb:{self.region}:{s.account}:table/{table}"}],
            read_only=name != "PutItem", data_event=True, error=error,
        )

    def lambda_create(self, s: Session, when: datetime, function: str, role_arn: str) -> dict[str, Any]:
        """``CreateFunction20150331``: the execution role passed here is the iam:PassRole CloudTrail never logs."""
        fn_arn = f"arn:aws:lambda:{self.region}:{s.account}:function:{function}"
        return self.record(
            s, when, "lambda", "CreateFunction20150331",
            request={"functionName": function, "runtime": "python3.12", "role": role_arn,
                     "handler": "app.handler", "code": {}, "timeout": 30, "memorySize": 256, "publish": True,
                     "packageType": "Zip", "architectures": ["arm64"]},
            response={"functionName": function, "functionArn": fn_arn, "runtime": "python3.12",
                      "role": role_arn, "handler": "app.handler", "state": "Pending"},
            read_only=False,
        )

    def lambda_update_code(self, s: Session, when: datetime, function: str, bucket: str,
                           key: str) -> dict[str, Any]:
        fn_arn = f"arn:aws:lambda:{self.region}:{s.account}:function:{function}"
        return self.record(
            s, when, "lambda", "UpdateFunctionCode20150331v2",
            request={"functionName": function, "s3Bucket": bucket, "s3Key": key, "publish": True,
                     "dryRun": False},
            response={"functionName": function, "functionArn": fn_arn, "lastUpdateStatus": "InProgress"},
            read_only=False,
        )

    def lambda_get(self, s: Session, when: datetime, function: str) -> dict[str, Any]:
        return self.record(s, when, "lambda", "GetFunction20150331v2", request={"functionName": function})


#: errorCode / errorMessage pairs as the services write them for a refused call.
def denied(service: str, role_arn: str, action: str, resource: str) -> tuple[str, str]:
    code = {"ec2": "Client.UnauthorizedOperation", "s3": "AccessDenied"}.get(service, "AccessDenied")
    if service in ("dynamodb", "athena", "glue", "lambda"):
        code = "AccessDeniedException"
    return code, (f"User: {role_arn} is not authorized to perform: {action} on resource: {resource} because no "
                  "identity-based policy allows the {action} action").replace("{action}", action)
