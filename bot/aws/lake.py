"""CloudTrail Lake as a query engine for the SQL usage source (``bot/trail/sql``), over one event data store.

Same contract as :class:`bot.aws.athena.AthenaEngine`: ``StartQuery``, ``DescribeQuery`` polled with exponential
backoff until ``FINISHED`` (``FAILED``, ``CANCELLED`` and ``TIMED_OUT`` raise
:class:`~bot.trail.sql.rows.QueryFailed`; a query past the timeout is cancelled first), then
``GetQueryResults`` page by page (rows of ``{column: value}`` cells, every value a string). Lake keeps
``requestParameters``/``responseElements`` as string maps; :func:`~bot.trail.sql.rows.unflatten_maps` turns
nested values back into JSON before the rows reach the normalizer.

Cost: Lake bills the bytes a query scans (``BytesScanned``) at a regional price per GB (0.005 USD in most
regions, the same 5 USD per TB as Athena); the estimate uses ``price_per_tb``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bot.aws.athena import error_reason, wait_for_query
from bot.trail.sql.rows import QueryFailed, QueryResult, QueryStats, Row, unflatten_maps

FAILED_STATES = ("FAILED", "CANCELLED", "TIMED_OUT")


@dataclass(frozen=True)
class LakeSettings:
    event_data_store: str  # the ID (last part of the event data store's ARN)
    region: str | None = None
    price_per_tb: float = 5.0
    timeout_seconds: float = 30 * 60
    poll_initial_seconds: float = 0.5
    poll_max_seconds: float = 10.0

    @property
    def source_name(self) -> str:
        return f"lake://{self.event_data_store}"


class LakeEngine:
    """Runs the usage query in CloudTrail Lake. ``client`` is a boto3 CloudTrail client."""

    def __init__(self, client: Any, settings: LakeSettings, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.settings = settings
        self._sleep = sleep
        self._clock = clock

    def run(self, sql: str) -> QueryResult:
        try:
            qid = str(self.client.start_query(QueryStatement=sql)["QueryId"])
        except (ClientError, BotoCoreError) as exc:
            raise QueryFailed(f"lake: could not start the query: {error_reason(exc)}") from exc
        described = self._wait(qid)
        stats = described.get("QueryStatistics") or {}
        scanned = int(stats.get("BytesScanned") or 0)
        return QueryResult(self._rows(qid), QueryStats(
            bytes_scanned=scanned, cost_usd=scanned / 1e12 * self.settings.price_per_tb,
            engine_seconds=int(stats.get("ExecutionTimeInMillis") or 0) / 1000, query_id=qid))

    def _wait(self, qid: str) -> dict[str, Any]:
        s = self.settings
        return wait_for_query(lambda: self._poll(qid), lambda: self._cancel(qid), label=f"lake: query {qid}",
                              timeout=s.timeout_seconds, initial=s.poll_initial_seconds, maximum=s.poll_max_seconds,
                              stopped="cancelled", sleep=self._sleep, clock=self._clock)

    def _poll(self, qid: str) -> tuple[str, dict[str, Any] | None]:
        try:
            described = self.client.describe_query(QueryId=qid)
        except (ClientError, BotoCoreError) as exc:
            raise QueryFailed(f"lake: query {qid}: {error_reason(exc)}") from exc
        state = described.get("QueryStatus", "")
        if state == "FINISHED":
            return state, dict(described)
        if state in FAILED_STATES:
            reason = described.get("ErrorMessage")
            raise QueryFailed(f"lake: query {qid} {state}" + (f": {reason}" if reason else ""))
        return state, None

    def _cancel(self, qid: str) -> None:
        with contextlib.suppress(ClientError, BotoCoreError):
            self.client.cancel_query(QueryId=qid)

    def _rows(self, qid: str) -> Iterator[Row]:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"QueryId": qid, "MaxQueryResults": 1000}
            if token:
                kwargs["NextToken"] = token
            try:
                page = self.client.get_query_results(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise QueryFailed(f"lake: reading the results of {qid}: {error_reason(exc)}") from exc
            for cells in page.get("QueryResultRows") or []:
                row: dict[str, Any] = {}
                for cell in cells:
                    row.update(cell)
                if row.get("calls") is not None:
                    row["calls"] = int(row["calls"])
                yield unflatten_maps(row)
            token = page.get("NextToken")
            if not token:
                return
