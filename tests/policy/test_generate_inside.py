"""Generation inside the current policy, scenario by scenario (policies written from the IAM User Guide's
examples). For each: the generated proposal passes the containment check, the evaluator finds no request it
allows that the current policies do not (tests/policy/probes.py), every observed call is still allowed in
the context it was made in, and widened variants of the proposal fail the check (and really widen)."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

import pytest

from bot.policy.allowlist import AllowEntry
from bot.policy.contain import CONDITION_LOST, DENY_LOST, WIDENING, check_no_new_access
from bot.policy.generate import GenerateOptions, document_size, generate_policy
from bot.policy.keep import ANY_RESOURCE, UNKNOWN_RESOURCE, KeepEntry, keep_entries_from_documents
from bot.policy.model import Policy, parse_policy
from tests.policy.probes import allowed, contexts, doc, documents, policies, widenings

ACCOUNT = "123456789012"
EU = {"aws:RequestedRegion": "eu-west-1"}


@dataclass
class Row:
    action: str
    resource: str
    account: str = ACCOUNT
    count: int = 1


def statements(generated: Any) -> list[dict[str, Any]]:
    return [st for d in generated.documents for st in d["Statement"]]


def check(current: list[Policy], proposed: list[Policy], boundary: Policy | None = None) -> set[str]:
    return {f.kind for f in check_no_new_access(current, proposed, boundary).findings}


def widen(generated: Any, change: Any) -> list[Policy]:
    docs = copy.deepcopy(generated.documents)
    change(docs)
    return [parse_policy(d) for d in docs]


def drop_denies(docs: list[dict[str, Any]]) -> None:
    for d in docs:
        d["Statement"] = [s for s in d["Statement"] if s["Effect"] != "Deny"]


def drop_conditions(docs: list[dict[str, Any]]) -> None:
    for d in docs:
        for s in d["Statement"]:
            if s["Effect"] == "Allow":
                s.pop("Condition", None)


# --------------------------------------------------------------------------------------------
REGION_GUARD = {"Sid": "DenyOutsideEu", "Effect": "Deny",
                "NotAction": ["iam:*", "sts:*", "organizations:*", "support:*"], "Resource": "*",
                "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["eu-west-1", "eu-central-1"]}}}


def test_region_guard_deny_is_carried_over() -> None:
    current = policies(doc({"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}, REGION_GUARD))
    instance = f"arn:aws:ec2:eu-west-1:{ACCOUNT}:instance/i-0abc"
    generated = generate_policy([Row("ec2:DescribeInstances", ANY_RESOURCE), Row("ec2:StartInstances", instance)],
                                current=current)
    proposed = documents(generated)
    assert check(current, proposed) == set()
    assert generated.denies_kept == 1 and REGION_GUARD in statements(generated)
    assert allowed(proposed, None, "ec2:StartInstances", instance, EU)
    assert not allowed(proposed, None, "ec2:StartInstances", instance, {"aws:RequestedRegion": "us-east-1"})
    probes = contexts({"aws:RequestedRegion": ["eu-west-1", "eu-central-1", "us-east-1"]})
    assert widenings(current, proposed, None, ["ec2:DescribeInstances", "ec2:StartInstances", "ec2:RunInstances"],
                     ["*", instance], probes) == []

    dropped = widen(generated, drop_denies)
    assert check(current, dropped) == {DENY_LOST}
    assert widenings(current, dropped, None, ["ec2:StartInstances"], [instance], probes)

    def one_more_region(docs: list[dict[str, Any]]) -> None:
        for s in docs[0]["Statement"]:
            if s["Effect"] == "Deny":
                s["Condition"]["StringNotEquals"]["aws:RequestedRegion"].append("us-east-1")
    assert check(current, widen(generated, one_more_region)) == {DENY_LOST}


def test_mfa_condition_is_kept() -> None:
    """IAM User Guide example: allow only with MFA (``Bool aws:MultiFactorAuthPresent true``)."""
    mfa = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    current = policies(doc({"Sid": "WithMfa", "Effect": "Allow", "Action": ["s3:*"],
                            "Resource": ["arn:aws:s3:::finance", "arn:aws:s3:::finance/*"], "Condition": mfa}))
    generated = generate_policy([Row("s3:GetObject", "arn:aws:s3:::finance/q1.csv"),
                                 Row("s3:ListBucket", "arn:aws:s3:::finance")], current=current)
    proposed = documents(generated)
    assert check(current, proposed) == set()
    assert all(s.get("Condition") == mfa for s in statements(generated))
    assert allowed(proposed, None, "s3:GetObject", "arn:aws:s3:::finance/q1.csv", {"aws:MultiFactorAuthPresent": "true"})
    probes = contexts({"aws:MultiFactorAuthPresent": [None, "true", "false"]})
    assert widenings(current, proposed, None, ["s3:GetObject", "s3:ListBucket"],
                     ["arn:aws:s3:::finance/q1.csv", "arn:aws:s3:::finance"], probes) == []

    loosened = widen(generated, drop_conditions)
    assert check(current, loosened) == {CONDITION_LOST}
    assert widenings(current, loosened, None, ["s3:GetObject"], ["arn:aws:s3:::finance/q1.csv"], probes)

    def if_exists(docs: list[dict[str, Any]]) -> None:
        for s in docs[0]["Statement"]:
            s["Condition"] = {"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}}
    assert check(current, widen(generated, if_exists)) == {CONDITION_LOST}


def test_source_ip_condition_is_kept() -> None:
    """IAM User Guide example: deny or allow by ``aws:SourceIp``; here an Allow limited to a network."""
    table = f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/orders"
    ip = {"IpAddress": {"aws:SourceIp": "10.20.0.0/16"}}
    current = policies(doc({"Effect": "Allow", "Action": "dynamodb:*", "Resource": table, "Condition": ip}))
    generated = generate_policy([Row("dynamodb:GetItem", table), Row("dynamodb:Query", UNKNOWN_RESOURCE)],
                                current=current)
    proposed = documents(generated)
    assert check(current, proposed) == set()
    assert {json.dumps(s.get("Condition"), sort_keys=True) for s in statements(generated)} == {
        json.dumps(ip, sort_keys=True)}
    probes = contexts({"aws:SourceIp": ["10.20.3.4", "10.21.0.1", None]})
    assert widenings(current, proposed, None, ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:DeleteTable"],
                     [table], probes) == []

    def wider_network(docs: list[dict[str, Any]]) -> None:
        for s in docs[0]["Statement"]:
            s["Condition"] = {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    wider = widen(generated, wider_network)
    assert check(current, wider) == {CONDITION_LOST}
    assert widenings(current, wider, None, ["dynamodb:GetItem"], [table], probes)


def test_kms_via_service_condition_is_kept() -> None:
    """``kms:ViaService``: the key may be used only through S3 in us-east-1."""
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    via = {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}
    current = policies(doc({"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
                            "Condition": via},
                           {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}))
    generated = generate_policy([Row("kms:Decrypt", key), Row("kms:GenerateDataKey", UNKNOWN_RESOURCE),
                                 Row("s3:PutObject", "arn:aws:s3:::uploads/a")], current=current)
    proposed = documents(generated)
    assert check(current, proposed) == set()
    kms = [s for s in statements(generated) if any(a.startswith("kms:") for a in s["Action"])]
    assert kms and all(s["Condition"] == via for s in kms)
    probes = contexts({"kms:ViaService": ["s3.us-east-1.amazonaws.com", "ec2.us-east-1.amazonaws.com", None]})
    assert widenings(current, proposed, None, ["kms:Decrypt", "kms:GenerateDataKey"], [key], probes) == []

    def like(docs: list[dict[str, Any]]) -> None:
        for s in docs[0]["Statement"]:
            if "Condition" in s:
                s["Condition"] = {"StringLike": {"kms:ViaService": "*.us-east-1.amazonaws.com"}}
    broader = widen(generated, like)
    assert check(current, broader) == {CONDITION_LOST}
    assert widenings(current, broader, None, ["kms:Decrypt"], [key], probes)


def test_not_resource_guard_is_carried_and_unknown_resources_stay_inside() -> None:
    only_data = {"Sid": "OnlyData", "Effect": "Deny", "Action": "s3:*",
                 "NotResource": ["arn:aws:s3:::data", "arn:aws:s3:::data/*"]}
    current = policies(doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}, only_data))
    generated = generate_policy([Row("s3:GetObject", "arn:aws:s3:::data/2024/a.csv"),
                                 Row("s3:GetObject", UNKNOWN_RESOURCE), Row("s3:ListBucket", "arn:aws:s3:::data")],
                                current=current)
    proposed = documents(generated)
    assert check(current, proposed) == set()
    assert only_data in statements(generated)
    resources = ["arn:aws:s3:::data/x", "arn:aws:s3:::data", "arn:aws:s3:::other/x", "*"]
    assert widenings(current, proposed, None, ["s3:GetObject", "s3:ListBucket"], resources) == []
    dropped = widen(generated, drop_denies)
    assert check(current, dropped) == {DENY_LOST}  # the unknown resource was granted on the statement's '*'
    assert widenings(current, dropped, None, ["s3:GetObject"], resources)


def test_power_user_access_not_action(managed: dict[str, Policy]) -> None:
    current = [managed["PowerUserAccess"]]
    generated = generate_policy(
        [Row("ec2:RunInstances", ANY_RESOURCE), Row("s3:GetObject", "arn:aws:s3:::assets/logo.png"),
         Row("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/app"),  # not allowed by PowerUserAccess
         Row("iam:CreateServiceLinkedRole", f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/x")],
        extra=[KeepEntry("lambda:*", None, "last-accessed", "Lambda used in the last 90 days")], current=current)
    proposed = documents(generated)
    assert check(current, proposed) == set()
    assert "iam:PassRole" not in generated.actions
    assert any("iam:PassRole" in n and "not granted" in n for n in generated.notes)
    assert any("lambda:*" in s["Action"] for s in statements(generated))  # written back as one pattern
    assert allowed(proposed, None, "lambda:InvokeFunction", f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:f")
    probes = ["iam:PassRole", "iam:CreateUser", "organizations:ListAccounts", "lambda:CreateFunction",
              "ec2:RunInstances", "s3:GetObject"]
    assert widenings(current, proposed, None, probes, ["*", "arn:aws:s3:::assets/logo.png"]) == []

    def everything(docs: list[dict[str, Any]]) -> None:
        docs[0]["Statement"].append({"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"})
    wider = widen(generated, everything)
    assert check(current, wider) == {WIDENING}
    assert widenings(current, wider, None, ["organizations:ListAccounts"], ["*"])


def test_generalization_stays_inside_the_statement() -> None:
    current = policies(doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/team-*"},
                           {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"}))
    objects = [f"arn:aws:s3:::b/team-{c}/{i}.csv" for c in "abc" for i in range(3)]
    generated = generate_policy([Row("s3:GetObject", o) for o in objects] + [Row("s3:PutObject", o) for o in objects],
                                current=current)
    # unscoped, both would become b/*; inside the current policy GetObject keeps the statement's own pattern
    assert generated.resources["s3:GetObject"] == ["arn:aws:s3:::b/team-*"]
    assert generated.resources["s3:PutObject"] == ["arn:aws:s3:::b/*"]
    assert check(current, documents(generated)) == set()
    standalone = generate_policy([Row("s3:GetObject", o) for o in objects])
    assert standalone.resources["s3:GetObject"] == ["arn:aws:s3:::b/*"]
    assert check(current, documents(standalone)) == {WIDENING}


def test_resource_policy_usage_is_not_granted() -> None:
    current = policies(doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::mine/*"}))
    generated = generate_policy([Row("s3:GetObject", "arn:aws:s3:::mine/a"),
                                 Row("s3:GetObject", "arn:aws:s3:::shared-by-bucket-policy/b"),
                                 Row("sqs:SendMessage", f"arn:aws:sqs:eu-west-1:{ACCOUNT}:q")], current=current)
    assert generated.resources == {"s3:GetObject": ["arn:aws:s3:::mine/a"]}
    assert generated.not_granted == [
        "s3:GetObject on arn:aws:s3:::shared-by-bucket-policy/b (usage)",
        f"sqs:SendMessage on arn:aws:sqs:eu-west-1:{ACCOUNT}:q (usage)"]
    assert any("resource policy" in n for n in generated.notes)


def test_allowlist_and_other_sources_are_held_to_the_same_rule() -> None:
    current = policies(doc({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::reports/*"}))
    generated = generate_policy(
        [], [AllowEntry("s3:GetObject", "*", None, "data events are not logged"),
             AllowEntry("s3:PutObject", "arn:aws:s3:::other/*", None, "not held today"),
             AllowEntry("iam:PassRole", "*", None, "not held today")],
        extra=[KeepEntry("s3:DeleteObject", "arn:aws:s3:::reports/tmp/*", "last-accessed", "seen by IAM"),
               KeepEntry("s3:ListBucket", "arn:aws:s3:::*", "access-analyzer", "widened placeholder")],
        current=current)
    assert generated.resources["s3:GetObject"] == ["arn:aws:s3:::reports/*"]  # '*' takes the statement's scope
    assert generated.resources["s3:DeleteObject"] == ["arn:aws:s3:::reports/tmp/*"]
    assert "s3:PutObject" not in generated.actions and "iam:PassRole" not in generated.actions
    assert generated.resources["s3:ListBucket"] == ["arn:aws:s3:::reports/*"]  # overlap: the statement's part
    assert {s.kind for s in generated.sources["s3:DeleteObject"]} == {"last-accessed"}
    assert check(current, documents(generated)) == set()


def test_access_analyzer_documents_become_keep_entries() -> None:
    aa = [{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::*/*"},
        {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]}]
    entries = keep_entries_from_documents(aa, kind="access-analyzer", note="generated")
    assert KeepEntry("ec2:*", None, "access-analyzer", "generated") in entries
    current = policies(doc({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::logs/*",
                            "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
                           {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}))
    generated = generate_policy([], extra=entries, current=current)
    proposed = documents(generated)
    assert check(current, proposed) == set()
    assert "s3:PutObject" not in generated.actions
    assert any(s["Action"] == ["ec2:Describe*"] for s in statements(generated))
    assert widenings(current, proposed, None, ["s3:GetObject", "s3:PutObject", "ec2:DescribeInstances",
                                               "ec2:RunInstances"], ["arn:aws:s3:::logs/a", "*"],
                     contexts({"aws:SecureTransport": ["true", "false", None]})) == []


def test_policy_variables_are_kept_as_written() -> None:
    current = policies(doc({"Effect": "Allow", "Action": "s3:GetObject",
                            "Resource": "arn:aws:s3:::home/${aws:username}/*"}))
    generated = generate_policy([Row("s3:GetObject", "arn:aws:s3:::home/alice/notes.txt")], current=current)
    assert generated.resources["s3:GetObject"] == ["arn:aws:s3:::home/${aws:username}/*"]
    assert check(current, documents(generated)) == set()


def test_without_a_current_policy_the_usage_policy_is_unchanged() -> None:
    rows = [Row("s3:GetObject", "arn:aws:s3:::b/k"), Row("dynamodb:GetItem", UNKNOWN_RESOURCE)]
    plain = generate_policy(rows)
    assert not plain.inside_current and plain.denies_kept == 0
    assert plain.resources == {"s3:GetObject": ["arn:aws:s3:::b/k"], "dynamodb:GetItem": ["*"]}


def test_passrole_with_unknown_role_inside_a_wide_statement() -> None:
    current = policies(doc({"Effect": "Allow", "Action": ["iam:PassRole", "ec2:RunInstances"], "Resource": "*"}))
    generated = generate_policy([Row("iam:PassRole", UNKNOWN_RESOURCE)], current=current)
    assert generated.resources["iam:PassRole"] == [f"arn:aws:iam::{ACCOUNT}:role/*"]
    assert check(current, documents(generated)) == set()


@pytest.mark.parametrize("limit", [900, 2000, 6144])
def test_split_documents_stay_under_the_limit_with_conditions_and_denies(limit: int) -> None:
    mfa = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    current = policies(doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": mfa},
                           {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
                           {"Sid": "Guard", "Effect": "Deny", "Action": ["s3:DeleteBucket", "ec2:DeleteVpc"],
                            "Resource": "*"}))
    rows = [Row("s3:GetObject", f"arn:aws:s3:::bucket-{i}/key") for i in range(60)]
    rows += [Row(f"ec2:{name}", ANY_RESOURCE) for name in ("DescribeInstances", "DescribeVpcs", "DescribeSubnets")]
    generated = generate_policy(rows, current=current, options=GenerateOptions(max_document_chars=limit))
    assert all(document_size(d) <= limit for d in generated.documents)
    assert check(current, documents(generated)) == set()
    conditioned = [s for s in statements(generated) if s["Effect"] == "Allow" and "Condition" in s]
    assert conditioned and all(s["Condition"] == mfa for s in conditioned)
    granted = {r for s in conditioned for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])}
    assert granted == {f"arn:aws:s3:::bucket-{i}/key" for i in range(60)}  # nothing truncated
