"""Athena as a query engine for the SQL usage source (``bot/trail/sql``).

:meth:`AthenaEngine.run` starts the query (``StartQueryExecution`` in the configured workgroup, database and
output location), polls ``GetQueryExecution`` with exponential backoff until a final state, and pages through
``GetQueryResults`` (1,000 rows a page; the first row of the first page is the header). Anything but
``SUCCEEDED`` raises :class:`~bot.trail.sql.rows.QueryFailed` with Athena's reason: a failed, cancelled or
timed-out query (a timed-out one is stopped first) yields no rows, so the caller marks no day done.

Cost: Athena bills the bytes a query scans (``DataScannedInBytes``), rounded up to a whole megabyte with a
10 MB minimum per query, at a regional price per terabyte (5 USD in most regions; see the Athena pricing
page). The estimate uses the configured ``price_per_tb`` and decimal terabytes.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bot.trail.sql.rows import QueryFailed, QueryResult, QueryStats, Row

FINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")
MIN_BILLED_BYTES = 10 * 1_000_000
_NUMERIC = frozenset({"tinyint", "smallint", "integer", "int", "bigint"})


@dataclass(frozen=True)
class AthenaSettings:
    database: str
    table: str
    workgroup: str = "primary"
    output_location: str | None = None  # s3://bucket/prefix/; None: the workgroup's own setting
    catalog: str = "AwsDataCatalog"
    region: str | None = None
    price_per_tb: float = 5.0
    timeout_seconds: float = 30 * 60
    poll_initial_seconds: float = 0.5
    poll_max_seconds: float = 10.0

    @property
    def source_name(self) -> str:
        """The key prefix of this table's day objects in the usage index."""
        return f"athena://{self.catalog}/{self.database}/{self.table}"


def estimated_cost(bytes_scanned: int, price_per_tb: float) -> float:
    billed = max(MIN_BILLED_BYTES, math.ceil(bytes_scanned / 1_000_000) * 1_000_000)
    return billed / 1e12 * price_per_tb


class AthenaEngine:
    """Runs the usage query in Athena. ``client`` is a boto3 Athena client."""

    def __init__(self, client: Any, settings: AthenaSettings, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.settings = settings
        self._sleep = sleep
        self._clock = clock

    def run(self, sql: str) -> QueryResult:
        qid = self._start(sql)
        execution = self._wait(qid)
        stats = execution.get("Statistics") or {}
        scanned = int(stats.get("DataScannedInBytes") or 0)
        result_stats = QueryStats(
            bytes_scanned=scanned,
            cost_usd=estimated_cost(scanned, self.settings.price_per_tb),
            engine_seconds=int(stats.get("EngineExecutionTimeInMillis") or 0) / 1000,
            query_id=qid,
        )
        return QueryResult(self._rows(qid), result_stats)

    # -- steps ---------------------------------------------------------------------------------
    def _start(self, sql: str) -> str:
        s = self.settings
        kwargs: dict[str, Any] = {
            "QueryString": sql,
            "QueryExecutionContext": {"Database": s.database, "Catalog": s.catalog},
            "WorkGroup": s.workgroup,
        }
        if s.output_location:
            kwargs["ResultConfiguration"] = {"OutputLocation": s.output_location}
        try:
            return str(self.client.start_query_execution(**kwargs)["QueryExecutionId"])
        except (ClientError, BotoCoreError) as exc:
            raise QueryFailed(f"athena: could not start the query: {error_reason(exc)}") from exc

    def _wait(self, qid: str) -> dict[str, Any]:
        s = self.settings
        return wait_for_query(lambda: self._poll(qid), lambda: self._stop(qid), label=f"athena: query {qid}",
                              timeout=s.timeout_seconds, initial=s.poll_initial_seconds, maximum=s.poll_max_seconds,
                              stopped="stopped", sleep=self._sleep, clock=self._clock)

    def _poll(self, qid: str) -> tuple[str, dict[str, Any] | None]:
        try:
            execution = self.client.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        except (ClientError, BotoCoreError) as exc:
            raise QueryFailed(f"athena: query {qid}: {error_reason(exc)}") from exc
        status = execution.get("Status") or {}
        state = status.get("State", "")
        if state == "SUCCEEDED":
            return state, execution
        if state in FINAL_STATES:
            reason = status.get("StateChangeReason") or (status.get("AthenaError") or {}).get("ErrorMessage")
            raise QueryFailed(f"athena: query {qid} {state}" + (f": {reason}" if reason else ""))
        return state, None

    def _stop(self, qid: str) -> None:
        # the query is given up either way (Athena's own timeout would end it)
        with contextlib.suppress(ClientError, BotoCoreError):
            self.client.stop_query_execution(QueryExecutionId=qid)

    def _rows(self, qid: str) -> Iterator[Row]:
        token: str | None = None
        names: list[str] | None = None
        numeric: list[bool] = []
        first_page = True
        while True:
            kwargs: dict[str, Any] = {"QueryExecutionId": qid, "MaxResults": 1000}
            if token:
                kwargs["NextToken"] = token
            try:
                page = self.client.get_query_results(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise QueryFailed(f"athena: reading the results of {qid}: {error_reason(exc)}") from exc
            result = page.get("ResultSet") or {}
            if names is None:
                info = (result.get("ResultSetMetadata") or {}).get("ColumnInfo") or []
                names = [c.get("Name") or c.get("Label") or "" for c in info]
                numeric = [(c.get("Type") or "").lower() in _NUMERIC for c in info]
            rows = result.get("Rows") or []
            for i, raw in enumerate(rows):
                values = [d.get("VarCharValue") for d in raw.get("Data") or []]
                if first_page and i == 0 and values == names:
                    continue  # the header row Athena puts first
                if len(values) != len(names):
                    raise QueryFailed(f"athena: a result row of {qid} has {len(values)} values for "
                                      f"{len(names)} columns")
                yield {n: (int(v) if num and v is not None else v)
                       for n, v, num in zip(names, values, numeric, strict=True)}
            first_page = False
            token = page.get("NextToken")
            if not token:
                return


def wait_for_query(poll: Callable[[], tuple[str, dict[str, Any] | None]], stop: Callable[[], None], *, label: str,
                   timeout: float, initial: float, maximum: float, stopped: str,
                   sleep: Callable[[float], None], clock: Callable[[], float]) -> dict[str, Any]:
    """Poll a query engine with exponential backoff (``initial`` seconds, doubling up to ``maximum``) until
    ``poll`` returns ``(state, description)`` with a description (``poll`` raises :class:`QueryFailed` for a
    failed query). Past ``timeout`` seconds the query is given up: ``stop()``, then :class:`QueryFailed`
    ("<label> still <state> after N s: <stopped>")."""
    deadline = clock() + timeout
    delay = initial
    while True:
        state, done = poll()
        if done is not None:
            return done
        if clock() + delay > deadline:
            stop()
            raise QueryFailed(f"{label} still {state or 'unknown'} after {timeout:.0f} s: {stopped}")
        sleep(delay)
        delay = min(delay * 2, maximum)


def error_reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'error')}: {err.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"
