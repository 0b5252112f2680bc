"""Policy generation: scoping, * rules, generalization, allowlist merge, splitting, determinism."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from bot.policy.allowlist import AllowEntry
from bot.policy.catalog import catalog
from bot.policy.generate import GenerateOptions, document_size, generate_policy
from bot.trail.records import ANY_RESOURCE, UNKNOWN_RESOURCE


@dataclass
class Row:
    action: str
    resource: str
    count: int = 1
    last_seen: str = "2024-08-01T00:00:00Z"
    days_seen: int = 1
    invoked_by: str | None = None


def statements(policy) -> list[dict]:
    return [st for doc in policy.documents for st in doc["Statement"]]


def grants(policy) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for st in statements(policy):
        res = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        for a in st["Action"]:
            out.setdefault(a, []).extend(res)
    return {a: sorted(r) for a, r in out.items()}


def test_resource_scoping_and_star_rules() -> None:
    p = generate_policy([
        Row("s3:GetObject", "arn:aws:s3:::b/k1"),
        Row("s3:getobject", "arn:aws:s3:::b/k2"),
        Row("s3:ListAllMyBuckets", ANY_RESOURCE),  # no resource type -> *
        Row("ec2:DescribeInstances", ANY_RESOURCE),
        Row("dynamodb:GetItem", UNKNOWN_RESOURCE),  # supports ARNs but not observed -> * with a note
        Row("lambda:InvokeFunction", "arn:aws:s3:::not-a-function"),  # does not fit -> * with a note
    ])
    assert grants(p) == {
        "s3:GetObject": ["arn:aws:s3:::b/k1", "arn:aws:s3:::b/k2"],
        "s3:ListAllMyBuckets": ["*"], "ec2:DescribeInstances": ["*"],
        "dynamodb:GetItem": ["*"], "lambda:InvokeFunction": ["*"],
    }
    assert any("dynamodb:GetItem" in n and "not in the logs" in n for n in p.notes)
    assert any("lambda:InvokeFunction" in n and "fits none" in n for n in p.notes)
    assert p.actions == sorted(grants(p))
    assert {s.count for s in p.sources["s3:GetObject"]} == {1} and len(p.sources["s3:GetObject"]) == 2
    # statements group identical resource sets; one statement holds every * action
    star = [st for st in statements(p) if st["Resource"] == "*"]
    assert len(star) == 1 and star[0]["Action"] == sorted(star[0]["Action"])
    sids = [st["Sid"] for st in statements(p)]
    assert len(set(sids)) == len(sids) and all(s.isalnum() for s in sids)


def test_star_absorbs_specific_arns() -> None:
    p = generate_policy([Row("s3:GetObject", "arn:aws:s3:::b/k"), Row("s3:GetObject", UNKNOWN_RESOURCE)])
    assert grants(p) == {"s3:GetObject": ["*"]}


def test_generalization_of_bucket_objects() -> None:
    rows = [Row("s3:GetObject", f"arn:aws:s3:::data/logs/2024/{i}.gz") for i in range(6)]
    rows += [Row("s3:GetObject", f"arn:aws:s3:::other/x{i}") for i in range(3)]
    p = generate_policy(rows)
    assert grants(p)["s3:GetObject"] == ["arn:aws:s3:::data/logs/2024/*", "arn:aws:s3:::other/x0",
                                         "arn:aws:s3:::other/x1", "arn:aws:s3:::other/x2"]
    assert any("generalized" in n for n in p.notes)
    # exactly the threshold: no generalization; threshold configurable; 0 disables
    assert len(grants(generate_policy(rows[:5]))["s3:GetObject"]) == 5
    assert grants(generate_policy(rows[:3], options=GenerateOptions(generalize_threshold=2)))["s3:GetObject"] == [
        "arn:aws:s3:::data/logs/2024/*"]
    assert len(grants(generate_policy(rows, options=GenerateOptions(generalize_threshold=0)))["s3:GetObject"]) == 9
    # objects without a common prefix: the bucket stays exact
    keys = [Row("s3:PutObject", f"arn:aws:s3:::data/{c}.txt") for c in "abcdefg"]
    assert grants(generate_policy(keys))["s3:PutObject"] == ["arn:aws:s3:::data/*"]
    # plain string prefix when no boundary is wanted
    opts = GenerateOptions(generalize_boundary="")
    assert grants(generate_policy(rows[:6], options=opts))["s3:GetObject"] == ["arn:aws:s3:::data/logs/2024/*"]


def test_generalization_other_types_needs_a_common_path() -> None:
    ssm = [Row("ssm:GetParameter", f"arn:aws:ssm:us-east-1:111122223333:parameter/app/prod/p{i}") for i in range(7)]
    assert grants(generate_policy(ssm))["ssm:GetParameter"] == [
        "arn:aws:ssm:us-east-1:111122223333:parameter/app/prod/*"]
    tables = [Row("dynamodb:GetItem", f"arn:aws:dynamodb:us-east-1:111122223333:table/t{i}") for i in range(7)]
    assert len(grants(generate_policy(tables))["dynamodb:GetItem"]) == 7  # no common path: kept exact
    roles = [Row("iam:PassRole", f"arn:aws:iam::111122223333:role/svc/r{i}") for i in range(9)]
    assert len(grants(generate_policy(roles))["iam:PassRole"]) == 9  # never generalized by default


def test_allowlist_merge_and_sources() -> None:
    p = generate_policy([Row("s3:GetObject", "arn:aws:s3:::b/k")], [
        AllowEntry("iam:PassRole", "arn:aws:iam::111122223333:role/exec", None, "CFN passes it"),
        AllowEntry("s3:GetObject", "arn:aws:s3:::b/extra/*", None, "data events off"),
        AllowEntry("sqs:ListQueues", "*", None, ""),
    ])
    assert grants(p) == {
        "iam:PassRole": ["arn:aws:iam::111122223333:role/exec"],
        "s3:GetObject": ["arn:aws:s3:::b/extra/*", "arn:aws:s3:::b/k"],
        "sqs:ListQueues": ["*"],
    }
    assert [s.kind for s in p.sources["s3:GetObject"]] == ["usage", "allowlist"]
    assert p.sources["iam:PassRole"][0].reason == "CFN passes it"


def test_denied_and_unknown_never_grant() -> None:
    @dataclass
    class Denied(Row):
        denied: bool = True

    p = generate_policy([Denied("s3:DeleteBucket", "arn:aws:s3:::b"), Row("signin:ConsoleLogin", ANY_RESOURCE)])
    assert p.empty and p.documents == []
    assert any("signin:ConsoleLogin" in n for n in p.notes)


def test_every_generated_action_exists_and_output_is_deterministic() -> None:
    rows = [Row(a.full_name, ANY_RESOURCE) for a in catalog().actions_of("ec2")[:40]]
    rows += [Row("s3:GetObject", f"arn:aws:s3:::b{i}/k") for i in range(5)]
    a = generate_policy(rows)
    b = generate_policy(list(reversed(rows)))
    assert json.dumps(a.documents) == json.dumps(b.documents)
    assert a.to_json() == b.to_json()
    assert all(catalog().has_action(x) for x in a.actions)
    assert json.loads(a.to_json())["Version"] == "2012-10-17"


@pytest.mark.parametrize("n_buckets", [400, 2000])
def test_split_above_limit_never_truncates(n_buckets: int) -> None:
    # many exact bucket ARNs (bucket ARNs never generalize) and many actions on *
    rows = [Row("s3:ListBucket", f"arn:aws:s3:::bucket-with-a-long-name-{i:05d}") for i in range(n_buckets)]
    rows += [Row(a.full_name, ANY_RESOURCE) for a in catalog().actions_of("ec2") if a.name.startswith("Describe")]
    p = generate_policy(rows)
    assert len(p.documents) > 1
    assert all(document_size(d) <= 6144 for d in p.documents)
    g = grants(p)
    assert g["s3:ListBucket"] == sorted(r.resource for r in rows[:n_buckets])
    assert set(g) == {r.action for r in rows}
    sids = [st["Sid"] for st in statements(p)]
    assert len(sids) == len(set(sids))
    json.loads(p.to_json())
    assert p == generate_policy(rows) or p.documents == generate_policy(rows).documents


def test_single_statement_split_by_actions() -> None:
    rows = [Row(a.full_name, ANY_RESOURCE) for a in catalog().actions_of("ec2")]  # ~700 actions, one statement
    p = generate_policy(rows)
    assert len(p.documents) > 1 and all(document_size(d) <= 6144 for d in p.documents)
    assert sorted(a for st in statements(p) for a in st["Action"]) == sorted({r.action for r in rows})


def test_small_policy_is_one_document() -> None:
    p = generate_policy([Row("s3:GetObject", "arn:aws:s3:::b/k")])
    assert p.documents == [{"Version": "2012-10-17", "Statement": [
        {"Sid": "S3Scoped", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/k"]}]}]
    assert p.to_json().startswith("{")


def test_passrole_with_unknown_role_is_account_scoped_not_star() -> None:
    @dataclass
    class AcctRow(Row):
        account: str = "111122223333"

    p = generate_policy([AcctRow("iam:PassRole", UNKNOWN_RESOURCE), AcctRow("ec2:RunInstances", UNKNOWN_RESOURCE)])
    assert grants(p) == {"iam:PassRole": ["arn:aws:iam::111122223333:role/*"], "ec2:RunInstances": ["*"]}
    assert any("allowlist the exact role" in n for n in p.notes)
    # no account known: falls back to * with the usual note
    assert grants(generate_policy([Row("iam:PassRole", UNKNOWN_RESOURCE)])) == {"iam:PassRole": ["*"]}


def test_collapse_threshold_for_paths_without_common_prefix() -> None:
    keys = [Row("kms:Decrypt", f"arn:aws:kms:us-east-1:111122223333:key/{i:04x}-k") for i in range(30)]
    assert len(grants(generate_policy(keys))["kms:Decrypt"]) == 30  # default: exact ARNs
    collapsed = generate_policy(keys, options=GenerateOptions(collapse_threshold=20))
    assert grants(collapsed)["kms:Decrypt"] == ["arn:aws:kms:us-east-1:111122223333:key/*"]


@pytest.mark.parametrize("limit", [400, 1000, 6144])
def test_sizes_are_exact_for_any_limit(limit: int) -> None:
    rows = [Row("kms:Decrypt", f"arn:aws:kms:us-east-1:111122223333:key/{i:08x}-0000") for i in range(60)]
    rows += [Row(a.full_name, ANY_RESOURCE) for a in catalog().actions_of("ec2")[:120]]
    rows += [Row("s3:ListBucket", f"arn:aws:s3:::b-{i}") for i in range(30)]
    p = generate_policy(rows, options=GenerateOptions(max_document_chars=limit))
    sizes = [document_size(d) for d in p.documents]
    assert max(sizes) <= limit
    if limit < 6144:
        assert max(sizes) > limit * 0.8  # packing is tight, not merely safe
    g = grants(p)
    assert g["kms:Decrypt"] == sorted(r.resource for r in rows[:60])
    assert set(g) == {r.action for r in rows}


def test_exact_arns_covered_by_a_pattern_are_dropped() -> None:
    p = generate_policy([Row("s3:GetObject", "arn:aws:s3:::b/in/k"), Row("s3:GetObject", "arn:aws:s3:::c/k")],
                        [AllowEntry("s3:GetObject", "arn:aws:s3:::b/*", None, "data events off")])
    assert grants(p) == {"s3:GetObject": ["arn:aws:s3:::b/*", "arn:aws:s3:::c/k"]}
    assert [s.kind for s in p.sources["s3:GetObject"]] == ["usage", "usage", "allowlist"]
