"""bot.policy.rare_use: what IAM's last-accessed data says to keep beyond the CloudTrail window, for what the role
holds today only."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.aws.last_accessed import ActionAccess, ServiceAccess
from bot.policy.keep import KeepEntry
from bot.policy.rare_use import RareUse, keep_entries_for, rare_uses

NOW = datetime(2026, 10, 1, tzinfo=UTC)
WINDOW = "2026-07-03T00:00:00Z"  # 90 days


def _svc(ns: str, last: str | None, *actions: tuple[str, str], tracked: bool = False) -> ServiceAccess:
    return ServiceAccess(ns, ns.upper(), last, tuple(ActionAccess(f"{ns}:{a}", t) for a, t in actions),
                         action_level=tracked or bool(actions))


def _keep(services: list[ServiceAccess], used: set[str], horizon: int = 400) -> list[RareUse]:
    return rare_uses(services, used, now=NOW, window_start=WINDOW, horizon_days=horizon)


def test_tracked_action_used_before_the_window_is_kept_with_its_note() -> None:
    keeps = _keep([_svc("iam", "2026-06-03T08:30:00Z", ("CreateRole", "2026-06-03T08:30:00Z"),
                        ("GetRole", "2026-09-30T10:00:00Z"))], {"iam:GetRole"})
    assert [(k.pattern, k.kind, k.days_ago) for k in keeps] == [("iam:CreateRole", "action", 119)]
    assert keeps[0].note == "iam:CreateRole: used 119 days ago according to IAM, outside the CloudTrail window"


def test_service_without_action_detail_and_without_window_calls_is_kept_whole() -> None:
    keeps = _keep([_svc("sqs", "2025-12-24T00:00:00Z")], {"s3:GetObject"})
    assert [(k.pattern, k.kind) for k in keeps] == [("sqs:*", "service")]
    assert "used 281 days ago according to IAM" in keeps[0].note


def test_service_with_window_calls_is_not_kept_at_service_level() -> None:
    assert _keep([_svc("s3", "2026-05-01T00:00:00Z")], {"s3:GetObject"}) == []


def test_tracked_actions_that_explain_the_service_use_keep_only_themselves() -> None:
    keeps = _keep([_svc("ec2", "2026-06-01T00:00:00Z", ("StartInstances", "2026-06-01T00:00:00Z"))], set())
    assert [k.pattern for k in keeps] == ["ec2:StartInstances"]
    # the last use is later than any tracked action: an untracked action was used, the service is kept too
    keeps = _keep([_svc("ec2", "2026-06-20T00:00:00Z", ("StartInstances", "2026-06-01T00:00:00Z"))], set())
    assert [k.pattern for k in keeps] == ["ec2:StartInstances", "ec2:*"]


def test_horizon_and_switch_off() -> None:
    old = [_svc("sqs", "2025-10-01T00:00:00Z")]  # 365 days ago
    assert [k.pattern for k in _keep(old, set(), horizon=400)] == ["sqs:*"]
    assert _keep(old, set(), horizon=300) == []
    assert _keep(old, set(), horizon=0) == []
    assert _keep([_svc("sqs", None)], set()) == []  # never used


def test_used_inside_the_window_but_absent_from_the_logs() -> None:
    keeps = _keep([_svc("dynamodb", "2026-09-20T00:00:00Z")], set())
    assert keeps[0].note == "dynamodb:*: used 11 days ago according to IAM, but not in the CloudTrail logs"


def test_keep_entries_only_for_what_the_role_holds() -> None:
    uses = [RareUse("iam:CreateRole", "action", "n1", "2026-06-03T08:30:00Z", 119),
            RareUse("sqs:*", "service", "n2", "2025-12-24T00:00:00Z", 281),
            RareUse("kms:Decrypt", "action", "n3", "2026-06-03T08:30:00Z", 119)]
    held = ["iam:CreateRole", "sqs:SendMessage", "sqs:ReceiveMessage", "s3:GetObject"]
    assert keep_entries_for(uses, held) == [
        KeepEntry("iam:CreateRole", None, "last-accessed", "n1"),
        KeepEntry("sqs:ReceiveMessage", None, "last-accessed", "n2"),
        KeepEntry("sqs:SendMessage", None, "last-accessed", "n2"),
    ]
