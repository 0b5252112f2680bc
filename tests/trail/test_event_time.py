"""Event times are parsed and validated: a real UTC timestamp between CloudTrail's launch (November 2013) and
a day past now, in CloudTrail's form or OTRF's ``@timestamp`` form; anything else is skipped, never stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.trail.normalize import Normalizer, Skip
from bot.trail.records import CallRecord

BASE = {
    "eventVersion": "1.08", "eventSource": "s3.amazonaws.com", "eventName": "ListBuckets",
    "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice", "accountId": "111122223333"},
    "awsRegion": "us-east-1", "eventType": "AwsApiCall", "recipientAccountId": "111122223333",
}


def _fmt(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(("given", "stored"), [
    ("2024-08-01T10:00:00Z", "2024-08-01T10:00:00Z"),
    ("2024-02-29T23:59:59Z", "2024-02-29T23:59:59Z"),  # a leap day
    ("2013-11-01T00:00:00Z", "2013-11-01T00:00:00Z"),  # the earliest accepted
    ("2020-09-08T21:45:03.000Z", "2020-09-08T21:45:03Z"),  # OTRF @timestamp: milliseconds dropped
    ("2020-09-08T23:45:03+02:00", "2020-09-08T21:45:03Z"),  # an offset is converted to UTC
    ("2020-09-08T21:45:03", "2020-09-08T21:45:03Z"),  # no offset: UTC
])
def test_valid_times_are_stored_in_utc(normalizer: Normalizer, given: str, stored: str) -> None:
    rec = normalizer.normalize(dict(BASE, eventTime=given))
    assert isinstance(rec, CallRecord) and rec.event_time == stored
    otrf = normalizer.normalize({k: v for k, v in dict(BASE, **{"@timestamp": given}).items()})
    assert isinstance(otrf, CallRecord) and otrf.event_time == stored


@pytest.mark.parametrize("given", [
    "<!channel>123456789Z",  # 20 characters ending in Z: accepted before times were validated
    "9999-99-99T99:99:99Z",
    "2024-13-01T00:00:00Z",
    "2023-02-29T00:00:00Z",  # not a leap year
    "2024-08-01T24:00:01Z",
    "9999-12-31T23:59:59Z",  # real, but far in the future
    "2013-10-31T23:59:59Z",  # before CloudTrail existed
    "0001-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "",
    "now",
    1722506400,
    None,
    ["2024-08-01T10:00:00Z"],
])
def test_invalid_times_are_skipped(normalizer: Normalizer, given: object) -> None:
    result = normalizer.normalize(dict(BASE, eventTime=given))
    assert isinstance(result, Skip) and result.reason == "missing_fields"
    assert len(result.detail) < 80


def test_the_future_bound_follows_the_clock(normalizer: Normalizer) -> None:
    now = datetime.now(UTC)
    soon = normalizer.normalize(dict(BASE, eventTime=_fmt(now + timedelta(hours=12))))  # clock skew
    assert isinstance(soon, CallRecord)
    late = normalizer.normalize(dict(BASE, eventTime=_fmt(now + timedelta(days=3))))
    assert isinstance(late, Skip) and late.reason == "missing_fields"


def test_a_bad_time_is_not_cached_as_good(normalizer: Normalizer) -> None:
    bad = "2024-08-01T10:00:00Z".replace("08", "88")
    for _ in range(2):
        assert isinstance(normalizer.normalize(dict(BASE, eventTime=bad)), Skip)
    assert isinstance(normalizer.normalize(dict(BASE, eventTime="2024-08-01T10:00:00Z")), CallRecord)


def test_a_valid_minute_does_not_vouch_for_bad_seconds(normalizer: Normalizer) -> None:
    assert isinstance(normalizer.normalize(dict(BASE, eventTime="2024-08-01T10:07:00Z")), CallRecord)
    for bad in ("2024-08-01T10:07:61Z", "2024-08-01T10:07:6xZ", "2024-08-01T10:07:00z", "2024-08-01T10:07:0Z",
                "2024-08-01T10:07:00ZZ"):
        result = normalizer.normalize(dict(BASE, eventTime=bad))
        assert isinstance(result, Skip), bad
    assert normalizer.normalize(dict(BASE, eventTime="2024-08-01T10:07:59Z")).event_time == "2024-08-01T10:07:59Z"
