"""The usage query text, its projection table, and the Athena DDL it runs on (checked with sqlglot)."""

from __future__ import annotations

from datetime import date

import pytest
import sqlglot
from sqlglot import exp

from bot.trail.sql.fields import kept_fields
from bot.trail.sql.query import COLUMNS, TABLE_NAME, to_duckdb, usage_query
from bot.trail.sql.table import PARTITIONS, athena_ddl

DAYS = [date(2024, 5, 2), date(2024, 5, 1)]


def _ddl() -> exp.Create:
    text = athena_ddl("s3://org-trail/AWSLogs/o-a1b2c3d4e5/", ["111111111111", "222222222222"],
                      ["us-east-1", "eu-west-1"], table="cloudtrail.cloudtrail_org", start=date(2023, 1, 1))
    parsed = sqlglot.parse_one(text, read="athena")
    assert isinstance(parsed, exp.Create)
    return parsed


def _ddl_columns(create: exp.Create) -> dict[str, exp.DataType]:
    return {c.name: c.args["kind"] for c in create.this.expressions}


def _struct_fields(dtype: exp.DataType) -> dict[str, exp.DataType]:
    if dtype.this == exp.DataType.Type.ARRAY:
        dtype = dtype.expressions[0]
    return {f.name: f.args["kind"] for f in dtype.expressions}


def test_query_is_trino_with_the_partition_filter_and_the_documented_columns() -> None:
    sql = usage_query("cloudtrail.cloudtrail_org", DAYS, accounts=["111111111111"], regions=["eu-west-1"])
    tree = sqlglot.parse_one(sql, read="trino")
    assert [e.alias_or_name for e in tree.expressions] == list(COLUMNS)
    where = tree.find(exp.With).find(exp.Where).sql("trino")
    assert "t.log_date IN ('2024/05/01', '2024/05/02')" in where
    assert "t.account IN ('111111111111')" in where and "t.region IN ('eu-west-1')" in where
    assert to_duckdb(sql)  # transpiles


def test_query_reads_only_columns_the_ddl_defines() -> None:
    """Every t.<column>[.<field>...] the query reads exists in the table `tighten athena-ddl` creates."""
    columns = _ddl_columns(_ddl())
    tree = sqlglot.parse_one(usage_query("db.t", DAYS), read="trino")
    read = set()
    for col in tree.find_all(exp.Column):
        parts = [p.name for p in col.parts]
        node = col
        while isinstance(node.parent, exp.Dot) and node.parent.this is node:  # t.a.b.c.d: Dot(Column, d)
            node = node.parent
            parts.append(node.expression.name)
        if parts[0] != "t":
            continue
        read.add(".".join(parts[1:]))
        name, *fields = parts[1:]
        assert name in columns or name in PARTITIONS, name
        if fields:
            dtype = columns[name]
            for field in fields:
                found = _struct_fields(dtype)
                assert field in found, f"{name}.{'.'.join(fields)}"
                dtype = found[field]
    assert {"useridentity.sessioncontext.sessionissuer.arn", "requestparameters", "resources", "log_date"} <= read


def test_ddl_partition_projection_follows_the_organization_layout() -> None:
    create = _ddl()
    assert create.this.this.sql() == "cloudtrail.cloudtrail_org"
    props = {p.name: p.text("value") for p in create.find_all(exp.Property) if p.name}
    text = create.sql("athena")
    assert "PARTITIONED BY" in text or "partitioned_by" in text
    assert props["projection.enabled"] == "true"
    assert props["projection.account.values"] == "111111111111,222222222222"
    assert props["projection.region.values"] == "eu-west-1,us-east-1"
    assert props["projection.log_date.format"] == "yyyy/MM/dd"
    assert props["projection.log_date.range"] == "2023/01/01,NOW"
    # CloudTrail's organization trail layout (User Guide, "Finding your CloudTrail log files")
    assert props["storage.location.template"] == \
        "s3://org-trail/AWSLogs/o-a1b2c3d4e5/${account}/CloudTrail/${region}/${log_date}"
    assert {"eventtime", "eventsource", "requestparameters", "responseelements", "errorcode", "eventid",
            "recipientaccountid"} <= set(_ddl_columns(create))


@pytest.mark.parametrize("bad", [
    dict(location="https://bucket/x"), dict(accounts=[]), dict(regions=["moon-1"]), dict(table="x; DROP"),
])
def test_ddl_refuses_bad_input(bad: dict) -> None:
    args = dict(location="s3://org-trail/AWSLogs/", accounts=["111111111111"], regions=["us-east-1"])
    table = bad.pop("table", "t")
    args.update(bad)
    with pytest.raises(ValueError):
        athena_ddl(args["location"], args["accounts"], args["regions"], table=table)


@pytest.mark.parametrize("table", ["t; DROP TABLE x", "a.b.c.d", "", "db.t--"])
def test_query_refuses_unsafe_names_and_values(table: str) -> None:
    assert not TABLE_NAME.match(table)
    with pytest.raises(ValueError):
        usage_query(table, DAYS)
    with pytest.raises(ValueError):
        usage_query("db.t", DAYS, accounts=["1' OR '1'='1"])
    with pytest.raises(ValueError):
        usage_query("db.t", [])


def test_kept_fields_cover_the_documented_resource_parameters() -> None:
    """Request parameters that name the resource of a call (AWS API references) are kept; values that only tell
    calls apart are dropped before grouping."""
    kept = kept_fields()
    s3, ddb, sts, kms = (set(kept[f"{s}.amazonaws.com"]) for s in ("s3", "dynamodb", "sts", "kms"))
    assert {"bucketname", "key"} <= s3  # GetObject: Bucket, Key
    assert "tablename" in ddb and "key" not in ddb  # GetItem: TableName; Key is the item, not the resource
    assert "rolearn" in sts and "rolesessionname" not in sts  # AssumeRole: RoleArn
    assert "keyid" in kms and "encryptioncontext" not in kms  # Decrypt: KeyId; the context varies per call
    assert all(name == name.lower() for names in kept.values() for name in names)
    assert "monitoring.amazonaws.com" in kept  # CloudWatch's event source differs from its IAM prefix
