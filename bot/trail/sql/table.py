"""The CloudTrail table the usage query runs on: Athena DDL for an organization trail, with partition projection.

The columns are those of the table AWS documents for CloudTrail in Athena ("Create the table for CloudTrail
logs in Athena using partition projection", Amazon Athena User Guide), plus ``useridentity.identityprovider``
(logged for SAML and web-identity callers; the normalizer names federated principals by it) and
``sessioncontext.sourceidentity``. Three projected partitions follow the organization trail's S3 layout
``AWSLogs/<org-id>/<account>/CloudTrail/<region>/YYYY/MM/DD/``: ``account`` and ``region`` (enums) and
``log_date`` (the folder date, ``yyyy/MM/dd``). With projection Athena computes the partitions from the
query's ``WHERE`` instead of a catalog lookup: no ``ALTER TABLE ADD PARTITION`` and no crawler, and a query
for one day reads only that day's folders.

The same column definitions shape the local DuckDB table (``bot/trail/sql/local.py``), so the local run of the
query sees what Athena sees.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

#: Hive column definitions (lower-case, as Athena stores them).
COLUMNS = """\
    eventversion STRING,
    useridentity STRUCT<
        type: STRING,
        principalid: STRING,
        arn: STRING,
        accountid: STRING,
        invokedby: STRING,
        accesskeyid: STRING,
        username: STRING,
        identityprovider: STRING,
        onbehalfof: STRUCT<
            userid: STRING,
            identitystorearn: STRING>,
        sessioncontext: STRUCT<
            attributes: STRUCT<
                mfaauthenticated: STRING,
                creationdate: STRING>,
            sessionissuer: STRUCT<
                type: STRING,
                principalid: STRING,
                arn: STRING,
                accountid: STRING,
                username: STRING>,
            ec2roledelivery: STRING,
            sourceidentity: STRING,
            webidfederationdata: STRUCT<
                federatedprovider: STRING,
                attributes: MAP<STRING, STRING>>>>,
    eventtime STRING,
    eventsource STRING,
    eventname STRING,
    awsregion STRING,
    sourceipaddress STRING,
    useragent STRING,
    errorcode STRING,
    errormessage STRING,
    requestparameters STRING,
    responseelements STRING,
    additionaleventdata STRING,
    requestid STRING,
    eventid STRING,
    readonly STRING,
    resources ARRAY<STRUCT<
        arn: STRING,
        accountid: STRING,
        type: STRING>>,
    eventtype STRING,
    apiversion STRING,
    recipientaccountid STRING,
    serviceeventdetails STRING,
    sharedeventid STRING,
    vpcendpointid STRING,
    vpcendpointaccountid STRING,
    eventcategory STRING,
    addendum STRUCT<
        reason: STRING,
        updatedfields: STRING,
        originalrequestid: STRING,
        originaleventid: STRING>,
    sessioncredentialfromconsole STRING,
    edgedevicedetails STRING,
    tlsdetails STRUCT<
        tlsversion: STRING,
        ciphersuite: STRING,
        clientprovidedhostheader: STRING>"""

PARTITIONS = ("account", "region", "log_date")
DEFAULT_TABLE = "cloudtrail_org"
_S3_PREFIX = re.compile(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[^'\s]*)?$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d+$")


def athena_ddl(location: str, accounts: Sequence[str], regions: Sequence[str], *, table: str = DEFAULT_TABLE,
               start: date = date(2020, 1, 1)) -> str:
    """``CREATE EXTERNAL TABLE`` for the trail under ``location`` (``s3://bucket/AWSLogs/<org-id>/``, or
    ``s3://bucket/AWSLogs/`` for a single account's trail), partitioned by account, region and day."""
    location = location if location.endswith("/") else location + "/"
    if not _S3_PREFIX.match(location):
        raise ValueError(f"not an S3 location (s3://bucket/prefix/): {location!r}")
    if not _NAME.match(table):
        raise ValueError(f"not a table name: {table!r}")
    if not accounts:
        raise ValueError("at least one account is needed (the account partition is an enum)")
    if not regions:
        raise ValueError("at least one region is needed (the region partition is an enum)")
    bad = [a for a in accounts if not _ACCOUNT.match(a)] + [r for r in regions if not _REGION.match(r)]
    if bad:
        raise ValueError(f"not an account ID or region: {', '.join(map(repr, bad))}")
    template = location + "${account}/CloudTrail/${region}/${log_date}"
    props = {
        "projection.enabled": "true",
        "projection.account.type": "enum",
        "projection.account.values": ",".join(sorted(set(accounts))),
        "projection.region.type": "enum",
        "projection.region.values": ",".join(sorted(set(regions))),
        "projection.log_date.type": "date",
        "projection.log_date.format": "yyyy/MM/dd",
        "projection.log_date.range": f"{start:%Y/%m/%d},NOW",
        "projection.log_date.interval": "1",
        "projection.log_date.interval.unit": "DAYS",
        "storage.location.template": template,
    }
    properties = ",\n".join(f"    '{k}'='{v}'" for k, v in props.items())
    return (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {table} (\n{COLUMNS}\n)\n"
        f"PARTITIONED BY (account STRING, region STRING, log_date STRING)\n"
        "ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'\n"
        "STORED AS INPUTFORMAT 'com.amazon.emr.cloudtrail.CloudTrailInputFormat'\n"
        "OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'\n"
        f"LOCATION '{location}'\n"
        f"TBLPROPERTIES (\n{properties}\n)"
    )


#: CloudTrail Lake's schema for CloudTrail events ("Supported SQL schemas for event data stores", CloudTrail
#: User Guide), the columns ``lake_source.sql`` reads, in the same Hive notation. Used to build a Lake-shaped
#: local table for the tests; Lake itself needs no DDL.
LAKE_COLUMNS = """\
    eventversion STRING,
    useridentity STRUCT<
        type: STRING,
        principalid: STRING,
        arn: STRING,
        accountid: STRING,
        accesskeyid: STRING,
        username: STRING,
        sessioncontext: STRUCT<
            attributes: STRUCT<
                creationdate: TIMESTAMP,
                mfaauthenticated: STRING>,
            sessionissuer: STRUCT<
                type: STRING,
                principalid: STRING,
                arn: STRING,
                accountid: STRING,
                username: STRING>,
            webidfederationdata: STRUCT<
                federatedprovider: STRING,
                attributes: MAP<STRING, STRING>>,
            sourceidentity: STRING,
            ec2roledelivery: STRING,
            ec2issuedinvpc: STRING>,
        invokedby: STRING,
        identityprovider: STRING>,
    eventtime TIMESTAMP,
    eventsource STRING,
    eventname STRING,
    awsregion STRING,
    errorcode STRING,
    requestparameters MAP<STRING, STRING>,
    responseelements MAP<STRING, STRING>,
    eventid STRING,
    readonly BOOLEAN,
    resources ARRAY<STRUCT<
        accountid: STRING,
        type: STRING,
        arn: STRING,
        arnprefix: STRING>>,
    eventtype STRING,
    recipientaccountid STRING"""
