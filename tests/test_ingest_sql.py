"""SQL ingest orchestration: incremental day partitions, fail-closed queries and rows, the denied family."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import pytest

from bot.ingest_sql import COMPLETE, PARTIAL, DayVersions, ingest_local, ingest_sql, window
from bot.store.db import open_db
from bot.store.usage import UsageIndex
from bot.trail.normalize import _DENIED_EXACT, Normalizer, is_denied
from bot.trail.reader import Unreadable, iter_raw_records
from bot.trail.sources import iter_log_objects
from bot.trail.sql.query import usage_query
from bot.trail.sql.rows import QueryFailed, QueryResult, QueryStats, Row
from tests.conftest import SAMPLES
from tests.test_ingest import ROLE_ARN, event

DAY1, DAY2 = date(2024, 8, 1), date(2024, 8, 2)


def grouped_row(day: date, **over: object) -> dict:
    row = {
        "log_date": day.strftime("%Y/%m/%d"), "eventsource": "s3.amazonaws.com", "eventname": "GetObject",
        "eventtype": "AwsApiCall", "awsregion": "us-east-1", "recipientaccountid": "111122223333",
        "identity_type": "AssumedRole", "identity_arn": "arn:aws:sts::111122223333:assumed-role/app",
        "identity_account": "111122223333", "issuer_arn": ROLE_ARN,
        "request": '{"bucketName":"data","key":"a.csv"}', "resources": None, "errorcode": None,
        "denied_event_id": None, "calls": 3, "first_time": f"{day}T01:00:00Z", "last_time": f"{day}T02:00:00Z",
    }
    row.update(over)
    return row


class FakeEngine:
    """Hands back prepared rows per query, or fails; records the SQL it was given."""

    def __init__(self, rows: list[dict] | None = None, fail: str | None = None) -> None:
        self.rows, self.fail, self.queries = rows or [], fail, []

    def run(self, sql: str) -> QueryResult:
        self.queries.append(sql)
        if self.fail:
            raise QueryFailed(self.fail)

        def rows() -> Iterator[Row]:
            yield from self.rows

        return QueryResult(rows(), QueryStats(bytes_scanned=20_000_000, cost_usd=0.0001))


def run(engine: FakeEngine, index: UsageIndex, days: list[date], now: datetime, per_query: int = 1):
    return ingest_sql(engine, index, source="athena://c/db/t", days=days,
                      query_for=lambda batch: usage_query("db.t", batch), versions=DayVersions(now=now),
                      days_per_query=per_query)


@pytest.fixture()
def index() -> UsageIndex:
    return UsageIndex(open_db(":memory:"))


def test_finished_days_cost_no_query_and_open_days_are_replaced(index: UsageIndex) -> None:
    engine = FakeEngine([grouped_row(DAY1), grouped_row(DAY2, calls=2)])
    late = datetime(2024, 8, 2, 12, 0, tzinfo=UTC)  # day 1 finished, day 2 still being written
    report = run(engine, index, [DAY1, DAY2], late, per_query=2)
    assert (report.queries, report.days_read, report.rows, report.events) == (1, 2, 2, 5)
    assert index.ingested_version("athena://c/db/t/2024-08-01") == (3, COMPLETE)
    assert index.ingested_version("athena://c/db/t/2024-08-02") == (2, PARTIAL)
    assert report.bytes_scanned == 20_000_000
    engine.rows = [grouped_row(DAY2, calls=7)]
    again = run(engine, index, [DAY1, DAY2], datetime(2024, 8, 3, 3, 0, tzinfo=UTC))
    assert (again.days_already_ingested, again.queries) == (1, 1)
    assert "'2024/08/02'" in engine.queries[-1] and "'2024/08/01'" not in engine.queries[-1]
    assert sum(r.count for r in index.usage(ROLE_ARN)) == 3 + 7  # the open day's first version was replaced
    third = run(engine, index, [DAY1, DAY2], datetime(2024, 8, 4, tzinfo=UTC))
    assert (third.queries, third.days_already_ingested) == (0, 2)


def test_a_failed_query_marks_none_of_its_days_done(index: UsageIndex) -> None:
    now = datetime(2024, 9, 1, tzinfo=UTC)
    report = run(FakeEngine(fail="athena: query q1 FAILED: HIVE_BAD_DATA"), index, [DAY1, DAY2], now, per_query=2)
    assert set(report.errors) == {"athena://c/db/t/2024-08-01", "athena://c/db/t/2024-08-02"}
    assert index.object_count() == 0 and index.principals() == []
    assert [e[0] for e in index.ingest_errors()] == sorted(report.errors)
    assert "HIVE_BAD_DATA" in index.ingest_errors()[0][1]
    retry = run(FakeEngine([grouped_row(DAY1)]), index, [DAY1, DAY2], now, per_query=2)
    assert retry.errors == {} and index.ingest_errors() == [] and index.object_count() == 2


def test_denied_calls_grouped_without_event_ids_fail_the_day_closed(index: UsageIndex) -> None:
    """A row the normalizer calls denied must carry its event ID (one row per call); else nothing is stored."""
    rows = [grouped_row(DAY1), grouped_row(DAY1, errorcode="AccessDenied", calls=4)]
    report = run(FakeEngine(rows), index, [DAY1], datetime(2024, 9, 1, tzinfo=UTC))
    assert "grouped without their event IDs" in report.errors["athena://c/db/t/2024-08-01"]
    assert index.object_count() == 0
    ok = [grouped_row(DAY1), grouped_row(DAY1, errorcode="AccessDenied", denied_event_id="e-9", calls=1)]
    report = run(FakeEngine(ok), index, [DAY1], datetime(2024, 9, 1, tzinfo=UTC))
    assert report.errors == {} and [d.event_id for d in index.denials(ROLE_ARN)] == ["e-9"]


def test_a_row_for_a_day_not_asked_for_is_refused(index: UsageIndex) -> None:
    report = run(FakeEngine([grouped_row(DAY2)]), index, [DAY1], datetime(2024, 9, 1, tzinfo=UTC))
    assert "did not ask for" in report.errors["athena://c/db/t/2024-08-01"] and index.object_count() == 0


def _sample_error_codes() -> set[str]:
    codes: set[str] = set()
    for obj in iter_log_objects(str(SAMPLES)):
        try:
            for rec in iter_raw_records(obj.read(), obj.key):
                if isinstance(rec, dict) and isinstance(rec.get("errorCode"), str):
                    codes.add(rec["errorCode"])
        except Unreadable:  # not CloudTrail (a policy document among the samples)
            continue
    return codes


def test_the_query_keeps_event_ids_of_every_code_the_normalizer_calls_denied(tmp_path: Path) -> None:
    """The query's denied family is never narrower than bot.trail.normalize.is_denied: every such code from the
    normalizer's own list and from the samples goes through DuckDB and keeps one denial per call."""
    codes = sorted(c for c in _DENIED_EXACT | _sample_error_codes() if is_denied(c))
    assert len(codes) >= len(_DENIED_EXACT)
    events = [event(i, error=code) for i, code in enumerate(codes)]
    events += [event(1000 + i, error=code) for i, code in enumerate(codes)]  # two calls per code
    (tmp_path / "t.json.gz").write_bytes(gzip.compress(orjson.dumps({"Records": events})))
    index = UsageIndex(open_db(":memory:"))
    report = ingest_local(str(tmp_path), index)
    assert report.errors == {} and report.denied == 2 * len(codes)
    assert len(index.denials(ROLE_ARN)) == 2 * len(codes)
    assert Normalizer().normalize(events[0]).denied  # type: ignore[union-attr]


def test_local_run_is_incremental_by_file_versions(tmp_path: Path) -> None:
    (tmp_path / "a.json.gz").write_bytes(gzip.compress(orjson.dumps({"Records": [event(i) for i in range(4)]})))
    index = UsageIndex(open_db(":memory:"))
    first = ingest_local(str(tmp_path), index)
    assert (first.days_read, first.queries, first.events) == (1, 1, 4)
    again = ingest_local(str(tmp_path), index)
    assert (again.days_already_ingested, again.queries) == (1, 0)
    (tmp_path / "b.json.gz").write_bytes(gzip.compress(orjson.dumps({"Records": [event(9)]})))
    third = ingest_local(str(tmp_path), index)
    assert third.queries == 1 and sum(r.count for r in index.usage(ROLE_ARN)) == 5  # replaced, not added


def test_window_defaults_to_the_lookback_and_stops_today() -> None:
    today = date(2024, 8, 10)
    assert window(None, None, lookback_days=2, today=today) == [date(2024, 8, 8), date(2024, 8, 9), today]
    assert window(date(2024, 8, 9), date(2030, 1, 1), lookback_days=90, today=today) == [date(2024, 8, 9), today]
    assert window(date(2024, 8, 11), None, lookback_days=1, today=today) == []
