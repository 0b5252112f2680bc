"""Grouped rows of the usage query, the engines that produce them, and the event each row stands for.

An engine (Athena in ``bot/aws/athena.py``, DuckDB in ``bot/trail/sql/local.py``) runs the query and yields
rows as ``{column: str | int | None}``; :func:`event_of` turns one row back into a CloudTrail-shaped event
with only the fields the query kept, which the normalizer reads as it reads a raw event. The row's
``calls``/``first_time``/``last_time`` say how many such calls there were and when.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

Row = Mapping[str, Any]


class QueryFailed(Exception):
    """The engine did not finish the query (failed, cancelled, timed out, refused): nothing of it is usable."""


@dataclass
class QueryStats:
    bytes_scanned: int = 0
    cost_usd: float = 0.0
    engine_seconds: float = 0.0
    query_id: str = ""


@dataclass
class QueryResult:
    rows: Iterator[Row]
    stats: QueryStats = field(default_factory=QueryStats)


class QueryEngine(Protocol):
    """Runs one SQL text to completion. Raises :class:`QueryFailed` unless every row can be read."""

    #: SQL dialect of :meth:`run`'s input as sqlglot names it ("trino" for Athena and CloudTrail Lake)
    dialect: str

    def run(self, sql: str) -> QueryResult: ...


def _json(text: Any) -> Any:
    if text is None or text.__class__ is not str:
        return text
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text  # kept as the string it was; the normalizer treats a non-object as no parameters


def event_of(row: Row) -> dict[str, Any]:
    """The CloudTrail event a grouped row stands for (``eventTime`` = the first call of the group)."""
    ident: dict[str, Any] = {}
    for key, column in (("type", "identity_type"), ("arn", "identity_arn"), ("accountId", "identity_account"),
                        ("principalId", "identity_principal_id"), ("userName", "identity_user_name"),
                        ("identityProvider", "identity_provider"), ("invokedBy", "identity_invoked_by")):
        value = row.get(column)
        if value is not None:
            ident[key] = value
    issuer = row.get("issuer_arn")
    if issuer is not None:
        ident["sessionContext"] = {"sessionIssuer": {"arn": issuer}}
    event: dict[str, Any] = {
        "eventSource": row.get("eventsource"),
        "eventName": row.get("eventname"),
        "eventTime": row.get("first_time"),
        "awsRegion": row.get("awsregion"),
        "recipientAccountId": row.get("recipientaccountid"),
        "requestParameters": _json(row.get("request")),
        "responseElements": _json(row.get("response")),
        "resources": _json(row.get("resources")),
    }
    if ident:  # no userIdentity at all (or null): absent, as a reader would see it
        event["userIdentity"] = ident
    for key, column in (("eventType", "eventtype"), ("errorCode", "errorcode"), ("eventID", "denied_event_id")):
        value = row.get(column)
        if value is not None:
            event[key] = value
    return event


def calls_of(row: Row) -> int:
    return int(row.get("calls") or 0)


def _unflatten(text: Any) -> Any:
    if text.__class__ is not str:
        return text
    try:
        mapping = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    if mapping.__class__ is not dict:
        return text
    out = {}
    for key, value in mapping.items():
        if value.__class__ is str and value[:1] in ("{", "["):
            with contextlib.suppress(orjson.JSONDecodeError):  # a string that only looks like JSON stays one
                value = orjson.loads(value)
        out[key] = value
    return orjson.dumps(out).decode()


def unflatten_maps(row: dict[str, Any]) -> dict[str, Any]:
    """CloudTrail Lake stores requestParameters/responseElements as map(varchar, varchar): a nested object or
    list arrives as its JSON text. Parse such values back, so the row reads like one from Athena."""
    row["request"] = _unflatten(row.get("request"))
    row["response"] = _unflatten(row.get("response"))
    return row
