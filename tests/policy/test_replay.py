"""bot.policy.replay: every call replayed against a policy, cases written from the IAM User Guide's evaluation
logic (explicit deny wins, an allow is needed from the identity policy and from the boundary, wildcards in
resource ARNs) and from how a call with an unlogged resource must be treated (any resource it may touch)."""

from __future__ import annotations

from bot.policy.model import parse_policy
from bot.policy.replay import ReplayCall, format_probes, replay, scope_of

ACCT = "111122223333"
OBJ = "arn:aws:s3:::reports/2026/q3.csv"


def _policy(*statements: dict) -> object:
    return parse_policy({"Version": "2012-10-17", "Statement": list(statements)})


def allow(actions: str | list[str], resources: str | list[str], **extra: object) -> dict:
    return {"Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def deny(actions: str | list[str], resources: str | list[str], **extra: object) -> dict:
    return {"Effect": "Deny", "Action": actions, "Resource": resources, **extra}


def call(*uses: tuple[str, str | None], event: str = "GetObject", time: str = "2026-10-01T10:00:00Z",
         count: int = 1) -> ReplayCall:
    return ReplayCall(uses=tuple(uses), event=event, time=time, count=count, account=ACCT)


def test_all_allowed_counts_calls_and_days() -> None:
    policy = _policy(allow("s3:GetObject", "arn:aws:s3:::reports/*"))
    result = replay([call(("s3:GetObject", OBJ)), call(("s3:GetObject", OBJ), time="2026-10-02T09:00:00Z", count=4)],
                    [policy])
    assert result.ok and result.calls == 5 and result.days == 2 and result.checked == 1
    assert result.summary() == "replayed 5 calls from 2 days: all allowed"
    assert result.as_check() == {"calls": 5, "days": 2, "denied": 0}


def test_implicit_and_explicit_denies_are_listed_with_the_call() -> None:
    policy = _policy(allow("s3:GetObject", "arn:aws:s3:::reports/2026/*"),
                     deny("s3:GetObject", "arn:aws:s3:::reports/2026/secret/*"))
    secret = "arn:aws:s3:::reports/2026/secret/k.txt"
    other = "arn:aws:s3:::archive/old.csv"
    result = replay([call(("s3:GetObject", OBJ)), call(("s3:GetObject", secret)), call(("s3:GetObject", other))],
                    [policy])
    assert not result.ok
    assert {(d.action, d.resource, d.decision) for d in result.denied} == {
        ("s3:GetObject", secret, "explicit_deny"), ("s3:GetObject", other, "implicit_deny")}
    assert result.summary().endswith(": 2 denied")
    assert "GetObject 2026-10-01T10:00:00Z s3:GetObject arn:aws:s3:::archive/old.csv: implicit deny" in [
        d.line() for d in result.denied]


def test_a_call_is_denied_when_any_action_it_needs_is() -> None:
    policy = _policy(allow("kms:ReEncryptFrom", "*"))
    key = f"arn:aws:kms:us-east-1:{ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    result = replay([call(("kms:ReEncryptFrom", key), ("kms:ReEncryptTo", key), event="ReEncrypt")], [policy])
    assert [(d.event, d.action) for d in result.denied] == [("ReEncrypt", "kms:ReEncryptTo")]


def test_boundary_must_allow_too() -> None:
    identity = _policy(allow("*", "*"))
    boundary = _policy(allow("s3:*", "*"))
    result = replay([call(("s3:GetObject", OBJ)), call(("iam:GetRole", f"arn:aws:iam::{ACCT}:role/x"))],
                    [identity], boundary)
    assert [d.action for d in result.denied] == ["iam:GetRole"]


def test_repeated_denials_are_counted_once_per_request() -> None:
    result = replay([call(("s3:GetObject", OBJ), count=3), call(("s3:GetObject", OBJ), count=2)],
                    [_policy(allow("s3:PutObject", "*"))])
    assert len(result.denied) == 1 and result.denied[0].count == 5 and result.denied_calls == 5


def test_pattern_resources_are_replayed_literally() -> None:
    new_instance = f"arn:aws:ec2:us-east-1:{ACCT}:instance/*"
    secret = f"arn:aws:secretsmanager:us-east-1:{ACCT}:secret:prod/db-??????"
    broad = _policy(allow("ec2:RunInstances", f"arn:aws:ec2:us-east-1:{ACCT}:*"),
                    allow("secretsmanager:GetSecretValue", f"arn:aws:secretsmanager:us-east-1:{ACCT}:secret:prod/*"))
    assert replay([call(("ec2:RunInstances", new_instance)), call(("secretsmanager:GetSecretValue", secret))],
                  [broad]).ok
    narrow = _policy(allow("ec2:RunInstances", f"arn:aws:ec2:us-east-1:{ACCT}:instance/i-1"),
                     allow("secretsmanager:GetSecretValue",
                           f"arn:aws:secretsmanager:us-east-1:{ACCT}:secret:prod/db-AbCdEf"))
    assert len(replay([call(("ec2:RunInstances", new_instance)), call(("secretsmanager:GetSecretValue", secret))],
                      [narrow]).denied) == 2


def test_unobserved_resource_needs_every_resource_the_action_may_touch() -> None:
    passrole = call(("iam:PassRole", None), event="RunInstances")
    assert format_probes("iam:PassRole", "aws", ACCT) == [f"arn:aws:iam::{ACCT}:role/*"]
    assert replay([passrole], [_policy(allow("iam:PassRole", f"arn:aws:iam::{ACCT}:role/*"))]).ok
    assert replay([passrole], [_policy(allow("iam:PassRole", "*"))]).ok
    narrow = replay([passrole], [_policy(allow("iam:PassRole", f"arn:aws:iam::{ACCT}:role/app-*"))])
    assert [(d.resource, d.observed) for d in narrow.denied] == [(f"arn:aws:iam::{ACCT}:role/*", False)]
    assert "(resource not in the log)" in narrow.denied[0].line()
    assert format_probes("s3:ListAllMyBuckets", "aws", ACCT) == ["*"]


def test_unobserved_resource_inside_the_current_scope() -> None:
    current = [_policy(allow(["s3:GetObject", "s3:PutObject"], "arn:aws:s3:::reports/*"))]
    scope = scope_of(current)
    unknown = call(("s3:GetObject", None))
    assert scope("s3:GetObject", unknown) == ["arn:aws:s3:::reports/*"]
    same = _policy(allow("s3:GetObject", "arn:aws:s3:::reports/*"))
    assert replay([unknown], [same], unknown_scope=scope).ok
    assert not replay([unknown], [same]).ok  # without the current scope: any bucket, which it does not grant
    narrower = _policy(allow("s3:GetObject", "arn:aws:s3:::reports/2026/*"))
    assert not replay([unknown], [narrower], unknown_scope=scope).ok


def test_current_star_scope_is_narrowed_to_the_action_formats() -> None:
    scope = scope_of([_policy(allow("*", "*"))])
    passrole = call(("iam:PassRole", None))
    assert replay([passrole], [_policy(allow("iam:PassRole", f"arn:aws:iam::{ACCT}:role/*"))], unknown_scope=scope).ok


def test_not_action_and_not_resource_in_the_current_scope() -> None:
    scope = scope_of([parse_policy({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::data/*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::secret/*"}]})])
    assert scope("s3:GetObject", call()) == ["*", "arn:aws:s3:::data/*"]
    assert scope("iam:GetRole", call()) == []


def test_conditions_the_replay_cannot_evaluate_are_counted_not_denied() -> None:
    policy = _policy(allow("s3:GetObject", "*", Condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}))
    result = replay([call(("s3:GetObject", OBJ))], [policy])
    assert result.ok and result.conditional == 1
    assert result.as_check() == {"calls": 1, "days": 1, "denied": 0, "conditional": 1}


def test_actions_without_resource_types_need_star() -> None:
    result = replay([call(("s3:ListAllMyBuckets", "*"), event="ListBuckets")],
                    [_policy(allow("s3:ListAllMyBuckets", "arn:aws:s3:::*"))])
    assert [d.action for d in result.denied] == ["s3:ListAllMyBuckets"]
