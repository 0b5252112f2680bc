"""The Athena engine: start, poll with backoff, page, cost, fail closed.

End to end against moto's Athena (the moto server on 127.0.0.1): moto does not run SQL, so the rows it hands
back are the ones the same query produced in DuckDB over a sample dataset, put in Athena's result shape (every
value a string, NULL absent, a header row first). States moto does not produce (RUNNING, FAILED, CANCELLED,
a query that never finishes) and paging use botocore's Stubber on the same client API.
"""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

import boto3
import pytest
import requests
from botocore.stub import Stubber

from bot.aws.athena import AthenaEngine, AthenaSettings, estimated_cost
from bot.commands import ingest as ingest_command
from bot.ingest_sql import ingest_local
from bot.store.db import open_db
from bot.store.usage import UsageIndex
from bot.trail.sql.local import LocalTrail
from bot.trail.sql.query import COLUMNS, usage_query
from bot.trail.sql.rows import QueryFailed
from tests.conftest import SAMPLES
from tests.trail.sql.test_equivalence import snapshot

DATASET = SAMPLES / "grycap_cloudtrail-tracker"
SETTINGS = AthenaSettings(database="cloudtrail", table="cloudtrail_org", output_location="s3://results/tighten/")


def athena_result(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows as GetQueryResults returns them: a header row, then strings; NULL has no VarCharValue."""
    def cell(value: Any) -> dict[str, str]:
        return {} if value is None else {"VarCharValue": str(value)}

    info = [{"Name": c, "Label": c, "Type": "bigint" if c == "calls" else "varchar", "CatalogName": "hive",
             "SchemaName": "", "TableName": "", "Precision": 0, "Scale": 0, "Nullable": "UNKNOWN",
             "CaseSensitive": True} for c in COLUMNS]
    data = [{"Data": [{"VarCharValue": c} for c in COLUMNS]}]
    data += [{"Data": [cell(r[c]) for c in COLUMNS]} for r in rows]
    return {"rows": data, "column_info": info}


def duckdb_rows(day: date) -> list[dict[str, Any]]:
    trail = LocalTrail(str(DATASET))
    try:
        return list(trail.run(usage_query("cloudtrail", [day])).rows)
    finally:
        trail.close()


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tighten")
    sub = parser.add_subparsers(dest="command", required=True)
    ingest_command.add_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_ingest_athena_end_to_end_equals_the_local_run(moto_endpoint: str, tmp_path, capsys) -> None:
    trail = LocalTrail(str(DATASET))
    (day,) = trail.log_dates()
    trail.close()
    rows = duckdb_rows(day)
    resp = requests.post(f"{moto_endpoint}/moto-api/static/athena/query-results",
                         json={"region": "us-east-1", "results": [athena_result(rows)]}, timeout=10)
    assert resp.status_code == 201
    db = str(tmp_path / "t.db")
    argv = ["ingest", "--athena", "--athena-database", "cloudtrail", "--athena-output", "s3://results/tighten/",
            "--athena-region", "us-east-1", "--endpoint-url", moto_endpoint, "--db", db,
            "--since", day.isoformat(), "--until", day.isoformat()]
    assert cli(argv) == 0
    out = capsys.readouterr().out
    assert f"queries: 1, {len(rows)} grouped rows" in out and "estimated cost $0.000050" in out

    local = UsageIndex(open_db(":memory:"))
    ingest_local(str(DATASET), local)
    athena_index = UsageIndex(open_db(db))
    assert snapshot(athena_index) == snapshot(local)  # Athena's all-string results read back the same

    client = boto3.client("athena", endpoint_url=moto_endpoint, region_name="us-east-1")
    (qid,) = client.list_query_executions()["QueryExecutionIds"]
    sent = client.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
    assert f"t.log_date IN ('{day:%Y/%m/%d}')" in sent["Query"]
    assert sent["QueryExecutionContext"]["Database"] == "cloudtrail"
    # the day is over: running again costs no query
    assert cli(argv) == 0
    assert "queries: 0" in capsys.readouterr().out
    assert client.list_query_executions()["QueryExecutionIds"] == [qid]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def stubbed(settings: AthenaSettings = SETTINGS) -> tuple[AthenaEngine, Stubber, Clock]:
    client = boto3.client("athena", region_name="us-east-1")
    clock = Clock()
    return AthenaEngine(client, settings, sleep=clock.sleep, clock=lambda: clock.now), Stubber(client), clock


def execution(state: str, **status: Any) -> dict[str, Any]:
    return {"QueryExecution": {"QueryExecutionId": "q-1", "Status": {"State": state, **status},
                               "Statistics": {"DataScannedInBytes": 1_234_567_890,
                                              "EngineExecutionTimeInMillis": 4200}}}


START = {"QueryString": "SELECT 1", "WorkGroup": "primary",
         "QueryExecutionContext": {"Database": "cloudtrail", "Catalog": "AwsDataCatalog"},
         "ResultConfiguration": {"OutputLocation": "s3://results/tighten/"}}


def test_polls_with_backoff_and_pages_through_results() -> None:
    engine, stub, clock = stubbed()
    stub.add_response("start_query_execution", {"QueryExecutionId": "q-1"}, START)
    for state in ("QUEUED", "RUNNING", "RUNNING", "RUNNING", "RUNNING", "RUNNING"):
        stub.add_response("get_query_execution", execution(state), {"QueryExecutionId": "q-1"})
    stub.add_response("get_query_execution", execution("SUCCEEDED"), {"QueryExecutionId": "q-1"})
    row = {c: None for c in COLUMNS} | {"log_date": "2024/08/01", "eventname": "GetObject", "calls": 12}
    page1 = athena_result([row, row | {"calls": 3}])
    page2 = athena_result([row | {"eventname": "PutObject"}])
    stub.add_response("get_query_results", {"ResultSet": {"Rows": page1["rows"], "ResultSetMetadata": {
        "ColumnInfo": page1["column_info"]}}, "NextToken": "t2"}, {"QueryExecutionId": "q-1", "MaxResults": 1000})
    stub.add_response("get_query_results", {"ResultSet": {"Rows": page2["rows"][1:], "ResultSetMetadata": {
        "ColumnInfo": page2["column_info"]}}},
        {"QueryExecutionId": "q-1", "MaxResults": 1000, "NextToken": "t2"})
    with stub:
        result = engine.run("SELECT 1")
        rows = list(result.rows)
        stub.assert_no_pending_responses()
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]  # doubling, capped
    assert [(r["eventname"], r["calls"]) for r in rows] == [("GetObject", 12), ("GetObject", 3), ("PutObject", 12)]
    assert rows[0]["errorcode"] is None and rows[0]["log_date"] == "2024/08/01"
    assert result.stats.bytes_scanned == 1_234_567_890 and result.stats.query_id == "q-1"
    assert result.stats.cost_usd == pytest.approx(1235 * 1e6 / 1e12 * 5)  # whole MB, 5 USD per TB


@pytest.mark.parametrize("state,status,expected", [
    ("FAILED", {"StateChangeReason": "HIVE_BAD_DATA: Error parsing field value"}, "FAILED: HIVE_BAD_DATA"),
    ("CANCELLED", {}, "q-1 CANCELLED"),
    ("FAILED", {"AthenaError": {"ErrorCategory": 2, "ErrorMessage": "Table not found"}}, "Table not found"),
])
def test_a_failed_or_cancelled_query_yields_nothing(state: str, status: dict, expected: str) -> None:
    engine, stub, _ = stubbed()
    stub.add_response("start_query_execution", {"QueryExecutionId": "q-1"}, START)
    stub.add_response("get_query_execution", execution("RUNNING"), {"QueryExecutionId": "q-1"})
    stub.add_response("get_query_execution", execution(state, **status), {"QueryExecutionId": "q-1"})
    with stub, pytest.raises(QueryFailed, match=expected):
        engine.run("SELECT 1")


def test_a_query_past_its_timeout_is_stopped() -> None:
    engine, stub, clock = stubbed(AthenaSettings(database="cloudtrail", table="t", timeout_seconds=5,
                                                 output_location="s3://results/tighten/"))
    stub.add_response("start_query_execution", {"QueryExecutionId": "q-1"}, START)
    for _ in range(4):  # polls at 0, 0.5, 1.5, 3.5 s; the next wait would pass 5 s
        stub.add_response("get_query_execution", execution("RUNNING"), {"QueryExecutionId": "q-1"})
    stub.add_response("stop_query_execution", {}, {"QueryExecutionId": "q-1"})
    with stub, pytest.raises(QueryFailed, match="still RUNNING after 5 s: stopped"):
        engine.run("SELECT 1")
    stub.assert_no_pending_responses()
    assert clock.now < 5


def test_a_refused_start_is_a_failed_query() -> None:
    engine, stub, _ = stubbed()
    stub.add_client_error("start_query_execution", "InvalidRequestException",
                          "Database cloudtrail does not exist", expected_params=START)
    with stub, pytest.raises(QueryFailed, match="InvalidRequestException: Database cloudtrail does not exist"):
        engine.run("SELECT 1")


def test_cost_estimate_bills_whole_megabytes_with_a_10_mb_minimum() -> None:
    assert estimated_cost(0, 5.0) == pytest.approx(10e6 / 1e12 * 5)
    assert estimated_cost(10_000_001, 5.0) == pytest.approx(11e6 / 1e12 * 5)
    assert estimated_cost(10**12, 5.0) == pytest.approx(5.0)
