"""CloudTrail Lake as the engine: the Lake variant of the query (same text, another source), run by DuckDB over
a table shaped like Lake's documented schema, builds the usage the file ingest builds; the client path
(start, poll, page, unflatten the string maps, fail closed) with botocore's Stubber (moto has no Lake queries).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import boto3
import orjson
import pytest
import sqlglot
from botocore.stub import Stubber

from bot.aws.lake import LakeEngine, LakeSettings
from bot.ingest import ingest
from bot.ingest_sql import DayVersions, ingest_sql
from bot.store.db import open_db
from bot.store.usage import UsageIndex
from bot.trail.sql.local import LocalTrail
from bot.trail.sql.query import COLUMNS, LAKE_MAX_QUERY, lake_query
from bot.trail.sql.rows import QueryFailed, event_of
from tests.conftest import SAMPLES
from tests.trail.sql.test_equivalence import DATASETS, snapshot

STORE = "lakeeds0001"  # an ID that is also a plain SQL identifier, for the local table


def test_lake_query_is_the_usage_query_over_an_adapted_source() -> None:
    sql = lake_query("EXAMPLEf852-4e8f-8bd1-bcf6cEXAMPLE", [date(2024, 8, 1), date(2024, 8, 3)])
    assert len(sql) <= LAKE_MAX_QUERY  # StartQuery's limit (botocore model)
    assert "FROM EXAMPLEf852-4e8f-8bd1-bcf6cEXAMPLE" in sql  # Lake names the event data store by its ID
    assert "eventtime >= TIMESTAMP '2024-08-01 00:00:00' AND eventtime < TIMESTAMP '2024-08-04 00:00:00'" in sql
    tree = sqlglot.parse_one(lake_query(STORE, [date(2024, 8, 1)]), read="trino")
    assert [e.alias_or_name for e in tree.expressions] == list(COLUMNS)
    with pytest.raises(ValueError):
        lake_query("x; DROP TABLE y", [date(2024, 8, 1)])


@pytest.mark.parametrize("dataset", DATASETS)
def test_lake_variant_builds_the_same_usage(dataset: str) -> None:
    """Usage, principals and denials equal the file ingest's. Skip counts may differ only by records Lake cannot
    hold: those without a readable event time (Lake's eventTime is a timestamp) and what the reader refused."""
    path = SAMPLES / dataset
    native = UsageIndex(open_db(":memory:"))
    ingest(str(path), native, workers=1)
    lake = UsageIndex(open_db(":memory:"))
    trail = LocalTrail(str(path), lake_table=STORE)
    days = trail.log_dates()
    report = ingest_sql(trail, lake, source="lake://x", days=days, query_for=lambda b: lake_query(STORE, b),
                        versions=DayVersions(fixed="x"), days_per_query=len(days))
    trail.close()
    assert report.queries == 1
    assert report.errors == {}
    mine, theirs = snapshot(lake), snapshot(native)
    files = ("skipped", "not ingested")  # Lake holds events, not files: what the reader refused never reaches it
    assert {k: v for k, v in mine.items() if k not in files} == {k: v for k, v in theirs.items() if k not in files}
    assert sorted(trail.errors) == [key for key, _ in theirs["not ingested"]]
    untimed = trail.events - report.events  # loaded, but in no day
    assert sum(theirs["skipped"].values()) - sum(mine["skipped"].values()) == untimed + sum(trail.skipped.values())


def cells(row: dict[str, Any]) -> list[dict[str, str]]:
    return [{c: str(row[c])} for c in COLUMNS if row.get(c) is not None]


def test_client_polls_pages_and_unflattens_string_maps() -> None:
    client = boto3.client("cloudtrail", region_name="us-east-1")
    sleeps: list[float] = []
    engine = LakeEngine(client, LakeSettings(STORE), sleep=sleeps.append, clock=lambda: 0.0)
    stub = Stubber(client)
    qid = "0123abcd-0123-4567-89ab-0123456789ab"
    stub.add_response("start_query", {"QueryId": qid}, {"QueryStatement": "SELECT 1"})
    stub.add_response("describe_query", {"QueryStatus": "QUEUED"}, {"QueryId": qid})
    stub.add_response("describe_query", {"QueryStatus": "RUNNING"}, {"QueryId": qid})
    stub.add_response("describe_query", {"QueryStatus": "FINISHED", "QueryStatistics": {
        "BytesScanned": 2_000_000_000, "ExecutionTimeInMillis": 900}}, {"QueryId": qid})
    # Lake keeps requestParameters as map(varchar, varchar): the EC2 item set arrives as JSON text
    request = {"instancesSet": '{"items":[{"imageId":"ami-1"}]}', "instanceType": "t3.micro"}
    row = {c: None for c in COLUMNS} | {
        "log_date": "2024/08/01", "eventsource": "ec2.amazonaws.com", "eventname": "RunInstances",
        "identity_type": "IAMUser", "identity_arn": "arn:aws:iam::111122223333:user/u", "calls": 2,
        "request": orjson.dumps(request).decode(), "first_time": "2024-08-01T10:00:00Z"}
    stub.add_response("get_query_results", {"QueryResultRows": [cells(row)], "NextToken": "next"},
                      {"QueryId": qid, "MaxQueryResults": 1000})
    stub.add_response("get_query_results", {"QueryResultRows": [cells(row | {"calls": 5})]},
                      {"QueryId": qid, "MaxQueryResults": 1000, "NextToken": "next"})
    with stub:
        result = engine.run("SELECT 1")
        rows = list(result.rows)
    assert sleeps == [0.5, 1.0]
    assert [r["calls"] for r in rows] == [2, 5]
    assert event_of(rows[0])["requestParameters"] == {"instancesSet": {"items": [{"imageId": "ami-1"}]},
                                                      "instanceType": "t3.micro"}
    assert result.stats.bytes_scanned == 2_000_000_000 and result.stats.cost_usd == pytest.approx(0.01)


@pytest.mark.parametrize("state", ["FAILED", "CANCELLED", "TIMED_OUT"])
def test_a_query_that_does_not_finish_yields_nothing(state: str) -> None:
    client = boto3.client("cloudtrail", region_name="us-east-1")
    engine = LakeEngine(client, LakeSettings(STORE), sleep=lambda s: None, clock=lambda: 0.0)
    stub = Stubber(client)
    qid = "0123abcd-0123-4567-89ab-0123456789ab"
    stub.add_response("start_query", {"QueryId": qid}, {"QueryStatement": "SELECT 1"})
    stub.add_response("describe_query", {"QueryStatus": state, "ErrorMessage": "Query exceeded limits"},
                      {"QueryId": qid})
    with stub, pytest.raises(QueryFailed, match=f"{state}: Query exceeded limits"):
        engine.run("SELECT 1")
