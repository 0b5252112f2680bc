"""config/iam/athena.json and lake.json allow the calls the SQL engines make, and no other call of theirs.

The calls are recorded from botocore's ``provide-client-params`` event while the real engines run (Athena
against the moto server, the states moto never reaches and Lake through botocore's Stubber). Athena and Lake
authorize query calls on the workgroup and the event data store (Service Authorization Reference); each call is
checked with Tighten's own policy evaluator. The Glue and S3 statements of athena.json are what Athena reads
and writes with the caller's permissions, not calls of Tighten's: they are checked to stay on the named table,
trail bucket and results location.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from bot.aws.athena import AthenaEngine, AthenaSettings
from bot.aws.lake import LakeEngine, LakeSettings
from bot.policy.evaluate import Decision, evaluate
from bot.policy.model import parse_policy
from bot.trail.sql.rows import QueryFailed

POLICIES = Path(__file__).resolve().parents[2] / "config" / "iam"
WORKGROUP = "arn:aws:athena:us-east-1:123456789012:workgroup/tighten"
STORE = "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/0123abcd-0123-4567-89ab-0123456789ab"


def _policy(name: str) -> dict[str, Any]:
    text = (POLICIES / f"{name}.json").read_text()
    for placeholder, value in {"WORKGROUP": "tighten", "EVENT_DATA_STORE": STORE.rsplit("/", 1)[1]}.items():
        text = text.replace(placeholder, value)
    return json.loads(text)


class Calls(set):
    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.add(f"{model.service_model.signing_name}:{model.name}")


def _recorded(client: Any) -> Calls:
    calls = Calls()
    client.meta.events.register("provide-client-params", calls)
    return calls


def _allows_exactly(name: str, calls: set[str], resource: str, service: str) -> None:
    doc = _policy(name)
    policy = parse_policy(doc)
    refused = [c for c in sorted(calls) if evaluate(c, resource, [policy]) is not Decision.ALLOWED]
    assert refused == [], f"{name}.json does not allow {refused}"
    allowed = {a for st in doc["Statement"] for a in st["Action"] if a.startswith(f"{service}:")}
    assert allowed == calls, f"{name}.json allows {sorted(allowed - calls)} the code never calls"


def test_athena_policy_allows_exactly_the_engine_calls(moto_endpoint: str) -> None:
    settings = AthenaSettings(database="cloudtrail", table="cloudtrail_org", workgroup="tighten",
                              output_location="s3://results/tighten/", timeout_seconds=1)
    client = boto3.client("athena", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_work_group(Name="tighten")
    calls = _recorded(client)
    assert list(AthenaEngine(client, settings).run("SELECT 1").rows) == []
    stubbed = boto3.client("athena", region_name="us-east-1")
    calls_stubbed = _recorded(stubbed)
    stub = Stubber(stubbed)
    stub.add_response("start_query_execution", {"QueryExecutionId": "q"})
    stub.add_response("get_query_execution", {"QueryExecution": {"Status": {"State": "RUNNING"}}})
    stub.add_response("stop_query_execution", {})
    clock = iter([0.0, 5.0])
    with stub, pytest.raises(QueryFailed, match="stopped"):
        AthenaEngine(stubbed, settings, sleep=lambda s: None, clock=lambda: next(clock)).run("SELECT 1")
    _allows_exactly("athena", calls | calls_stubbed, WORKGROUP, "athena")
    # what Athena does with the caller's permissions stays on the named table, trail and results location
    doc = json.loads((POLICIES / "athena.json").read_text())
    others = [st for st in doc["Statement"] if not all(a.startswith("athena:") for a in st["Action"])]
    assert {a.split(":")[0] for st in others for a in st["Action"]} == {"glue", "s3"}
    resources = [r for st in others for r in st["Resource"]]
    assert all(r.endswith(("catalog", "database/DATABASE", "table/DATABASE/TABLE", ":::TRAIL_BUCKET",
                           "TRAIL_BUCKET/AWSLogs/*", ":::RESULTS_BUCKET", "RESULTS_BUCKET/RESULTS_PREFIX/*"))
               for r in resources), resources
    writes = {a for st in others for a in st["Action"] if a in ("s3:PutObject", "s3:AbortMultipartUpload")}
    assert writes and all("RESULTS" in r for st in others for r in st["Resource"]
                          if set(st["Action"]) & writes)


def test_lake_policy_allows_exactly_the_engine_calls() -> None:
    client = boto3.client("cloudtrail", region_name="us-east-1")
    calls = _recorded(client)
    stub = Stubber(client)
    qid = "0123abcd-0123-4567-89ab-0123456789ab"
    stub.add_response("start_query", {"QueryId": qid})
    stub.add_response("describe_query", {"QueryStatus": "FINISHED"})
    stub.add_response("get_query_results", {"QueryResultRows": []})
    stub.add_response("start_query", {"QueryId": qid})
    stub.add_response("describe_query", {"QueryStatus": "RUNNING"})
    stub.add_response("cancel_query", {"QueryId": qid, "QueryStatus": "CANCELLED"})
    settings = LakeSettings(STORE.rsplit("/", 1)[1], timeout_seconds=1)
    with stub:
        assert list(LakeEngine(client, settings).run("SELECT 1").rows) == []
        clock = iter([0.0, 5.0])
        with pytest.raises(QueryFailed, match="cancelled"):
            LakeEngine(client, settings, sleep=lambda s: None, clock=lambda: next(clock)).run("SELECT 1")
    _allows_exactly("lake", calls, STORE, "cloudtrail")
