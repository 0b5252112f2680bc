"""The usage index: aggregation per day, incremental objects, replacement of changed objects, queries."""

from __future__ import annotations

import pytest

from bot.store.db import open_db
from bot.store.usage import ObjectUsage, UsageIndex
from bot.trail.records import ANY_RESOURCE, ActionUse, CallRecord, Principal

ROLE = Principal("arn:aws:iam::111122223333:role/app", "role", "111122223333")
USER = Principal("arn:aws:iam::111122223333:user/alice", "user", "111122223333")
BUCKET_OBJ = "arn:aws:s3:::data/reports/a.csv"


def rec(t: str, action: str = "s3:GetObject", resource: str = BUCKET_OBJ, *, principal: Principal = ROLE,
        denied: bool = False, invoked_by: str | None = None, eid: str = "") -> CallRecord:
    return CallRecord(event_id=eid or f"e-{t}-{action}", event_time=t, account="111122223333", region="us-east-1",
                      event_source="s3.amazonaws.com", event_name=action.split(":")[1], principal=principal,
                      actions=[ActionUse(action, resource)], error_code="AccessDenied" if denied else None,
                      denied=denied, invoked_by=invoked_by)


def obj(key: str, records: list[CallRecord], etag: str = "1", skipped: dict[str, int] | None = None) -> ObjectUsage:
    o = ObjectUsage(key=key, size=100, etag=etag)
    for r in records:
        o.add(r)
    for reason, n in (skipped or {}).items():
        o.skip(reason, n)
    return o


@pytest.fixture()
def index() -> UsageIndex:
    return UsageIndex(open_db(":memory:"))


def test_days_first_last_count(index: UsageIndex) -> None:
    index.record_objects([obj("f1", [rec("2024-08-01T10:00:00Z"), rec("2024-08-01T09:00:00Z"),
                                     rec("2024-08-03T12:00:00Z")])])
    index.record_objects([obj("f2", [rec("2024-08-05T01:00:00Z"), rec("2024-08-02T00:00:00Z", "s3:PutObject")])])
    rows = index.usage(ROLE.arn)
    assert [(r.action, r.count, r.first_seen, r.last_seen, r.days) for r in rows] == [
        ("s3:GetObject", 4, "2024-08-01T09:00:00Z", "2024-08-05T01:00:00Z",
         ("2024-08-01", "2024-08-03", "2024-08-05")),
        ("s3:PutObject", 1, "2024-08-02T00:00:00Z", "2024-08-02T00:00:00Z", ("2024-08-02",)),
    ]
    assert rows[0].days_seen == 3
    # window by UTC day, both ends inclusive; full timestamps use their date
    window = index.usage(ROLE.arn, since="2024-08-03T23:59:59Z", until="2024-08-04")
    assert [(r.action, r.count, r.days) for r in window] == [("s3:GetObject", 1, ("2024-08-03",))]
    assert index.usage(ROLE.arn, since="2024-09-01") == []


def test_denied_calls_are_not_usage(index: UsageIndex) -> None:
    index.record_objects([obj("f", [rec("2024-08-01T10:00:00Z"),
                                    rec("2024-08-01T11:00:00Z", "s3:DeleteObject", denied=True, eid="d1")])])
    assert [r.action for r in index.usage(ROLE.arn)] == ["s3:GetObject"]
    denials = index.denials(ROLE.arn)
    assert [(d.action, d.resource, d.error_code, d.event_id) for d in denials] == [
        ("s3:DeleteObject", BUCKET_OBJ, "AccessDenied", "d1")]
    assert index.denials(ROLE.arn, since="2024-08-01T11:00:01Z") == []
    (p,) = index.principals()
    assert (p.events, p.denied, p.distinct_actions) == (2, 1, 1)


def test_invoked_by_kept_apart(index: UsageIndex) -> None:
    index.record_objects([obj("f", [rec("2024-08-01T10:00:00Z"),
                                    rec("2024-08-01T10:00:01Z", invoked_by="cloudformation.amazonaws.com")])])
    rows = index.usage(ROLE.arn)
    assert sorted((r.invoked_by or "", r.count) for r in rows) == [("", 1), ("cloudformation.amazonaws.com", 1)]
    assert [r.invoked_by for r in index.usage(ROLE.arn, include_invoked_by=False)] == [None]


def test_incremental_and_changed_object_replaces_old_contribution(index: UsageIndex) -> None:
    assert index.object_count() == 0
    index.record_objects([obj("f", [rec("2024-08-01T10:00:00Z")] * 3, skipped={"unknown_event": 2})])
    assert index.object_count() == 1
    assert not index.needs_ingest("f", 100, "1")
    assert index.needs_ingest("f", 100, "2") and index.needs_ingest("f", 101, "1") and index.needs_ingest("g", 1, "")
    assert index.skipped_totals() == {"unknown_event": 2}
    before = index.usage_fingerprint(ROLE.arn)
    # the same object rewritten with other content: old rows go, no double counting
    index.record_objects([obj("f", [rec("2024-08-02T10:00:00Z", "s3:PutObject")], etag="2")])
    assert [(r.action, r.count) for r in index.usage(ROLE.arn)] == [("s3:PutObject", 1)]
    assert index.principals()[0].events == 1
    assert index.skipped_totals() == {}
    assert index.usage_fingerprint(ROLE.arn) != before
    assert index.ingested() == {"f": (100, "2")}


def test_principals_and_last_activity(index: UsageIndex) -> None:
    slr = Principal("arn:aws:iam::111122223333:role/aws-service-role/x.amazonaws.com/AWSServiceRoleForX", "role",
                    "111122223333", service_linked=True)
    index.record_objects([
        obj("a", [rec("2024-08-01T10:00:00Z"), rec("2024-08-01T10:00:00Z", "sts:GetSessionToken", ANY_RESOURCE,
                                                   principal=USER)]),
        obj("b", [rec("2024-08-09T10:00:00Z", "s3:ListBucket", "arn:aws:s3:::data"),
                  rec("2024-08-09T11:00:00Z", principal=slr)]),
    ])
    ps = {p.arn: p for p in index.principals()}
    assert list(ps) == sorted(ps)
    role = ps[ROLE.arn]
    assert (role.kind, role.events, role.distinct_actions, role.first_seen, role.last_seen) == (
        "role", 2, 2, "2024-08-01T10:00:00Z", "2024-08-09T10:00:00Z")
    assert ps[slr.arn].service_linked and not role.service_linked
    assert ps[USER.arn].kind == "user"
    assert index.last_activity(ROLE.arn) == "2024-08-09T10:00:00Z"
    assert index.last_activity("arn:aws:iam::1:role/none") is None
    assert index.principal(USER.arn) == ps[USER.arn]


def test_fingerprint_tracks_window(index: UsageIndex) -> None:
    index.record_objects([obj("a", [rec("2024-08-01T10:00:00Z")])])
    fp_all, fp_recent = index.usage_fingerprint(ROLE.arn), index.usage_fingerprint(ROLE.arn, "2024-08-05")
    index.record_objects([obj("b", [rec("2024-08-02T10:00:00Z")])])
    assert index.usage_fingerprint(ROLE.arn) != fp_all
    assert index.usage_fingerprint(ROLE.arn, "2024-08-05") == fp_recent  # nothing changed in that window
    index.record_objects([obj("c", [rec("2024-08-06T10:00:00Z")])])
    assert index.usage_fingerprint(ROLE.arn, "2024-08-05") != fp_recent


def test_ingest_errors_cleared_on_success(index: UsageIndex) -> None:
    index.record_error("s3://b/k", "AccessDenied on GetObject")
    assert [e[:2] for e in index.ingest_errors()] == [("s3://b/k", "AccessDenied on GetObject")]
    index.record_objects([obj("s3://b/k", [])])
    assert index.ingest_errors() == []


@pytest.mark.parametrize(("account", "expected"), [
    ("111122223333", ["/logs/AWSLogs/111122223333/x/pipe.json", "/logs/junk.json",
                      "s3://t/AWSLogs/111122223333/CloudTrail/a.json.gz"]),
    ("444455556666", ["/logs/junk.json"]),
    (None, ["/logs/AWSLogs/111122223333/x/pipe.json", "/logs/junk.json",
            "s3://t/AWSLogs/111122223333/CloudTrail/a.json.gz", "s3://t/AWSLogs/777788889999/b.json.gz"]),
])
def test_unread_logs_per_account(index: UsageIndex, account: str | None, expected: list[str]) -> None:
    index.record_error("s3://t/AWSLogs/111122223333/CloudTrail/a.json.gz", "truncated_gzip: x")
    index.record_error("s3://t/AWSLogs/777788889999/b.json.gz", "read_error: x")
    index.record_error("/logs/junk.json", "invalid_json: x")  # names no account: may hold any
    index.record_error("/logs/pipe.json", "not_a_regular_file: a FIFO", kind="entry")  # blocks nobody
    index.record_error("/logs/AWSLogs/111122223333/x/pipe.json", "not_a_regular_file: a FIFO", kind="entry")
    assert [k for k, _ in index.unread_logs(account)] == expected
    assert [e[0] for e in index.ingest_errors(kind="entry")] == ["/logs/AWSLogs/111122223333/x/pipe.json",
                                                                 "/logs/pipe.json"]


def test_a_store_from_before_error_kinds_gets_the_column(tmp_path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE ingest_errors (key TEXT PRIMARY KEY, error TEXT NOT NULL, at TEXT NOT NULL)")
    conn.execute("INSERT INTO ingest_errors VALUES ('s3://b/k', 'Throttling', '2024-08-01T00:00:00Z')")
    conn.commit()
    conn.close()
    index = UsageIndex(open_db(str(path)))
    assert index.ingest_errors() == [("s3://b/k", "Throttling", "2024-08-01T00:00:00Z")]
    assert index.unread_logs("111122223333") == [("s3://b/k", "Throttling")]


def test_persists_across_reopen(tmp_path) -> None:
    path = tmp_path / "t.db"
    UsageIndex(open_db(path)).record_objects([obj("a", [rec("2024-08-01T10:00:00Z")])])
    again = UsageIndex(open_db(path))
    assert not again.needs_ingest("a", 100, "1")
    assert again.usage(ROLE.arn)[0].count == 1


def test_add_calls_equals_adding_each_call() -> None:
    """A grouped row of n identical calls stores what n single calls store (SQL sources use add_calls)."""
    times = ["2024-08-01T09:00:00Z", "2024-08-01T10:00:00Z", "2024-08-01T11:30:00Z"]
    one_by_one = ObjectUsage(key="a", size=0, etag="1")
    grouped = ObjectUsage(key="a", size=0, etag="1")
    for t in times:
        one_by_one.add(rec(t))
    grouped.add_calls(rec(times[0]), 3, times[-1])
    # denied calls are grouped only with copies of the same event (the query keeps their event IDs apart)
    for _ in range(3):
        one_by_one.add(rec(times[1], denied=True, eid="same"))
    grouped.add_calls(rec(times[1], denied=True, eid="same"), 3, times[1])
    for field in ("events", "usage_events", "denied", "usage", "principals"):
        assert getattr(grouped, field) == getattr(one_by_one, field), field
    assert sorted(grouped.denials) == sorted(one_by_one.denials) and len(grouped.denials) == 3


def test_one_arn_with_two_kinds_keeps_the_greatest_in_any_order(index: UsageIndex) -> None:
    arn = "arn:aws:iam::111122223333:user/tester"
    as_role = Principal(arn, "role", "111122223333")
    as_user = Principal(arn, "user", "111122223333")
    for order in ((as_role, as_user), (as_user, as_role)):
        o = ObjectUsage(key="k", size=0, etag=str(order[0].kind))
        for p in order:
            o.add(rec("2024-08-01T10:00:00Z", principal=p))
        assert o.principals[arn][0] == "user"
