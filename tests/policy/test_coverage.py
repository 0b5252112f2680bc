from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from bot.policy.coverage import CoverageWarning, coverage_warnings


@dataclass
class Row:
    action: str
    count: int
    days: list[str] = field(default_factory=list)
    first_seen: str | None = None
    last_seen: str | None = None


def codes(warnings: list[CoverageWarning]) -> list[str]:
    return [w.code for w in warnings]


def run(**kw: object) -> list[CoverageWarning]:
    args: dict[str, object] = {
        "window_start": "2026-01-01",
        "window_end": "2026-03-31",
        "principal_first_seen": "2026-01-10",
        "principal_created": "2026-01-05",
        "usage": [],
        "data_event_services_present": {"s3", "lambda", "dynamodb"},
    }
    args.update(kw)
    return coverage_warnings(**args)  # type: ignore[arg-type]


def test_clean_case_has_no_warnings() -> None:
    daily = [f"2026-02-{d:02d}" for d in range(1, 28)]
    assert run(usage=[Row("s3:GetObject", 500, daily)]) == []


def test_short_window_and_history() -> None:
    w = run(window_start="2026-03-20", principal_created="2025-06-01")
    assert codes(w) == ["window_short", "window_shorter_than_history"]
    assert "12 days" in w[0].message and "2025-06-01" in w[1].message
    w = run(principal_created=None, principal_first_seen="2026-01-01")
    assert codes(w) == ["window_shorter_than_history"]


def test_seen_once_periodic_and_edge() -> None:
    rows = [
        Row("kms:Decrypt", 1, ["2026-02-14"]),
        Row("ce:GetCostAndUsage", 2, ["2026-01-20", "2026-02-20"]),
        {"action": "ec2:CreateSnapshot", "count": 4, "days": ["2026-01-02", "2026-01-04"]},
        Row("s3:PutObject", 90, [f"2026-03-{d:02d}" for d in range(1, 31)]),
    ]
    w = run(usage=rows)
    assert codes(w) == ["seen_once", "periodic", "near_window_start"]
    assert w[0].actions == ("kms:Decrypt",)
    assert w[1].actions == ("ce:GetCostAndUsage",) and "~every" in w[1].message
    assert w[2].actions == ("ec2:CreateSnapshot",)


def test_data_events_absent() -> None:
    w = run(data_event_services_present={"S3"}, data_event_services_needed={"s3", "lambda"})
    assert codes(w) == ["data_events_absent"] and "lambda" in w[0].message


def test_bad_window_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="bad window"):
        run(window_start="2026-04-01")


def test_rows_of_one_action_on_several_resources_count_as_one_action() -> None:
    # usage rows are per (action, resource): three objects written once each is one action seen three times
    rows = [Row("s3:PutObject", 1, [f"2026-02-{d:02d}"]) for d in (3, 4, 5)]
    rows += [Row("kms:Decrypt", 1, ["2026-02-14"]), Row("kms:Decrypt", 0, [])]
    w = run(usage=rows)
    assert codes(w) == ["seen_once"]
    assert w[0].actions == ("kms:Decrypt",) and w[0].message.startswith("1 action was used only once")


@pytest.mark.parametrize(("granted", "warned"), [
    # CloudTrail User Guide, "Logging data events": S3 object-level calls, Lambda Invoke, DynamoDB item calls
    ([], []),
    (["s3:ListBucket", "lambda:ListFunctions", "dynamodb:DescribeTable"], []),  # control-plane only
    (["s3:GetObject"], ["s3"]),
    (["lambda:InvokeFunction"], ["lambda"]),
    (["dynamodb:GetItem", "s3:PutObject"], ["dynamodb", "s3"]),
])
def test_data_event_warning_only_for_services_whose_data_events_the_role_holds(granted: list[str],
                                                                               warned: list[str]) -> None:
    w = run(data_event_services_present=set(), granted_actions=granted)
    assert [x.message.split(" ")[1] for x in w if x.code == "data_events_absent"] == warned


def test_lookback_is_one_number_in_every_warning() -> None:
    from bot.policy.coverage import lookback_days

    # a 30-day lookback read at 09:30 spans 31 calendar dates but is 30 days long
    assert lookback_days("2026-11-01T09:30:00Z", "2026-12-01T09:30:00Z") == 30
    assert lookback_days("2026-11-01", "2026-11-30") == 30  # dates only: both ends included
    w = run(window_start="2026-11-01T09:30:00Z", window_end="2026-12-01T09:30:00Z",
            principal_created="2026-01-01T00:00:00Z", principal_first_seen=None)
    (history,) = [x for x in w if x.code == "window_shorter_than_history"]
    assert "only the last 30 days" in history.message and "31 days" not in history.message
