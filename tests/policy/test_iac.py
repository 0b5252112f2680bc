"""Proposals as Terraform and CloudFormation: read back with the ecosystems' own parsers (python-hcl2, PyYAML with
CloudFormation tags, cfn-lint), they give the same policy documents as the JSON proposal."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

from bot.policy.iac import INLINE, MANAGED, RoleTarget, choose_style, render, target_from_record
from bot.policy.model import PolicyError
from tests.policy.iac_readback import Unreadable, cloudformation_policies, hcl_literal, terraform_policies

ACCOUNT = "123456789012"

#: A split proposal (two documents) with Conditions (several operators, keys and values, a boolean, policy
#: variables in resources and condition values), an Allow on several resources, a conditional Deny, a Deny with
#: NotAction + NotResource, and an Allow with NotResource.
SPLIT = [
    {"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadWriteOwnPrefix", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
         "Resource": ["arn:aws:s3:::reports/${aws:username}/*", "arn:aws:s3:::reports/common/*"],
         "Condition": {"StringEquals": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]},
                       "Bool": {"aws:SecureTransport": True}}},
        {"Sid": "ListOwnPrefix", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::reports",
         "Condition": {"StringLike": {"s3:prefix": ["home/${aws:username}/*", "${aws:PrincipalTag/team}/*"]}}},
        {"Sid": "DenyOutsideOrg", "Effect": "Deny", "Action": "*", "Resource": "*",
         "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}},
        {"Effect": "Deny", "NotAction": ["iam:Get*", "iam:List*"],
         "NotResource": [f"arn:aws:iam::{ACCOUNT}:role/ci-*", f"arn:aws:iam::{ACCOUNT}:policy/ci-*"]},
    ]},
    {"Version": "2012-10-17", "Statement": [
        {"Sid": "OwnItems", "Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Query"],
         "Resource": [f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders",
                      f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders/index/*"],
         "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["${aws:userid}"]},
                       "DateLessThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"},
                       "NumericLessThanEquals": {"s3:max-keys": 10}}},
        {"Sid": "EverythingButSecrets", "Effect": "Allow", "Action": "secretsmanager:ListSecrets",
         "NotResource": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/*"},
    ]},
]

#: Strings each format must carry exactly: quotes, backslashes, a newline, a tab, non-ASCII, HCL's template
#: introducers written literally (``%{``, ``$${``), and an ``Id``.
EDGE = {"Version": "2012-10-17", "Id": "edge-cases", "Statement": [
    {"Sid": "Edge", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::edge/*",
     "Condition": {"StringEquals": {"s3:ExistingObjectTag/note": [
         'say "hi"', "back\\slash", "line\nbreak\ttab", "café", "%{not-a-directive}", "$${doubled}",
         "%%{doubled-percent}"]}}}]}
#: ``&{`` is turned into ``${`` by aws_iam_policy_document: this document must not go through it.
AMPERSAND = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::odd/&{literal}/${aws:username}"}]}
#: Under 2008-10-17 ``${...}`` is literal text, which the data source refuses to write as ``&{``.
OLD_VERSION = {"Version": "2008-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::old/${aws:username}/*"}]}


def normal(doc: dict[str, Any]) -> dict[str, Any]:
    """What IAM evaluates, independent of spelling: statement order kept; action, resource and condition-value
    lists as sets (IAM ORs them, the provider stores actions and resources as sets); values as strings (IAM
    compares condition values as strings; ``true`` and ``"true"`` are the same)."""
    def strings(value: Any) -> list[str]:
        items = value if isinstance(value, list) else [value]
        return sorted({("true" if v else "false") if isinstance(v, bool) else str(v) for v in items})

    out: dict[str, Any] = {"Version": doc.get("Version", "2012-10-17")}
    if "Id" in doc:
        out["Id"] = doc["Id"]
    statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
    out["Statement"] = []
    for st in statements:
        n: dict[str, Any] = {"Effect": st["Effect"]}
        if st.get("Sid"):
            n["Sid"] = st["Sid"]
        for key in ("Action", "NotAction", "Resource", "NotResource"):
            if key in st:
                n[key] = strings(st[key])
        if "Condition" in st:
            n["Condition"] = {op: {k: strings(v) for k, v in block.items()} for op, block in st["Condition"].items()}
        out["Statement"].append(n)
    return out


def target(style: str = MANAGED, **kw: Any) -> RoleTarget:
    values: dict[str, Any] = {"role_name": "reporting-job", "account": ACCOUNT, "proposal_id": "p-0123abcd",
                              "style": style, "current_inline": ("reporting-access",),
                              "current_managed": ("arn:aws:iam::aws:policy/AdministratorAccess",)}
    values.update(kw)
    return RoleTarget(**values)


def cfn_lint(text: str) -> list[str]:
    return [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in lint(text, config=ManualArgs(regions=["us-east-1"]))]


@pytest.mark.parametrize("style", [MANAGED, INLINE])
def test_terraform_round_trip_of_a_split_proposal(style: str) -> None:
    text = render(SPLIT, "terraform", target(style))
    policies = terraform_policies(text)
    assert [normal(p["document"]) for p in policies] == [normal(d) for d in SPLIT]
    assert [p["name"] for p in policies] == ["tighten-reporting-job", "tighten-reporting-job-2"]
    assert {p["role"] for p in policies} == {"reporting-job"} and {p["kind"] for p in policies} == {style}
    # the policy variables are written the way aws_iam_policy_document expects, never as an interpolation
    assert "&{aws:username}" in text and "&{aws:PrincipalTag/team}" in text and "jsonencode" not in text
    assert text.count('data "aws_iam_policy_document"') == 2
    # what it replaces is spelled out
    assert "the inline policy 'reporting-access'" in text
    assert "arn:aws:iam::aws:policy/AdministratorAccess (detach it)" in text


@pytest.mark.parametrize("style", [MANAGED, INLINE])
def test_cloudformation_round_trip_of_a_split_proposal(style: str) -> None:
    text = render(SPLIT, "cloudformation", target(style))
    assert cfn_lint(text) == []
    policies = cloudformation_policies(text)
    assert [normal(p["document"]) for p in policies] == [normal(d) for d in SPLIT]
    assert [p["name"] for p in policies] == ["tighten-reporting-job", "tighten-reporting-job-2"]
    assert {p["role"] for p in policies} == {"reporting-job"} and {p["kind"] for p in policies} == {style}
    assert "${aws:username}" in text and "!Sub" not in text


def test_edge_strings_survive_both_formats() -> None:
    docs = [EDGE, AMPERSAND, OLD_VERSION]
    tf = render(docs, "terraform", target())
    read = terraform_policies(tf)
    assert [normal(p["document"]) for p in read] == [normal(d) for d in docs]
    # the edge document still goes through the data source; the other two cannot
    assert tf.count('data "aws_iam_policy_document"') == 1 and tf.count("jsonencode(") == 2
    cfn = render(docs, "cloudformation", target())
    # cfn-lint's only remark: the 2008 version is outdated (which it is; the policy is carried as it is)
    assert [m.split()[0] for m in cfn_lint(cfn)] == ["W2511"]
    assert [normal(p["document"]) for p in cloudformation_policies(cfn)] == [normal(d) for d in docs]


def test_the_readback_catches_an_unescaped_interpolation() -> None:
    """The oracle is not blind: a policy variable written as-is would be a Terraform interpolation."""
    with pytest.raises(Unreadable):
        hcl_literal("arn:aws:s3:::b/${aws:username}")
    assert hcl_literal("a$${b}%%{c}") == "a${b}%{c}"


def test_a_generated_split_proposal_round_trips() -> None:
    from bot.policy.generate import GenerateOptions, generate_policy

    class Row:
        def __init__(self, action: str, resource: str) -> None:
            self.action, self.resource, self.account = action, resource, ACCOUNT

    rows = [Row("s3:GetObject", f"arn:aws:s3:::bucket-{i}/key") for i in range(12)]
    rows += [Row("ec2:DescribeInstances", "*"), Row("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/app")]
    generated = generate_policy(rows, options=GenerateOptions(max_document_chars=400))
    assert len(generated.documents) > 1
    for fmt, read in (("terraform", terraform_policies), ("cloudformation", cloudformation_policies)):
        text = render(generated.documents, fmt, target())
        assert [normal(p["document"]) for p in read(text)] == [normal(d) for d in generated.documents], fmt
    assert cfn_lint(render(generated.documents, "cloudformation", target())) == []


def test_json_format_prints_what_the_proposal_holds() -> None:
    assert json.loads(render(SPLIT, "json")) == SPLIT
    assert json.loads(render(SPLIT[:1], "json")) == SPLIT[0]


def test_invalid_documents_and_formats_are_refused() -> None:
    bad = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*",
                                                     "Resource": "*"}]}
    for fmt in ("json", "terraform", "cloudformation"):
        with pytest.raises(PolicyError):
            render([bad], fmt, target())
    with pytest.raises(ValueError, match="unknown format"):
        render(SPLIT, "pulumi", target())


def test_role_names_with_every_allowed_character() -> None:
    """IAM role names may hold ``+=,.@_-``: labels and logical IDs stay valid, the name itself is kept."""
    name = "svc+deploy=x,y.z@team_a-1"
    tf = render(SPLIT, "terraform", target(role_name=name))
    assert {p["role"] for p in terraform_policies(tf)} == {name}
    cfn = render(SPLIT, "cloudformation", target(role_name=name, logical_id="DeployRole"))
    assert cfn_lint(cfn) == []
    assert {p["role"] for p in cloudformation_policies(cfn)} == {name}
    assert "!Ref 'DeployRole'" in cfn or "!Ref DeployRole" in cfn


def test_style_follows_what_the_role_holds() -> None:
    small = SPLIT[:1]
    assert choose_style(["inline-a"], [], small) == INLINE
    assert choose_style(["inline-a"], ["arn:aws:iam::aws:policy/ReadOnlyAccess"], small) == MANAGED
    assert choose_style([], [], small) == MANAGED
    big = [{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": [f"arn:aws:s3:::b/{i:05d}" for i in range(600)]}]}]
    assert choose_style(["inline-a"], [], big) == MANAGED  # above AWS's 10,240-character inline total


def test_target_from_an_older_record_lists_the_policy_names() -> None:
    t = target_from_record(role_name="r", account=ACCOUNT, proposal_id="p-1", documents=SPLIT, iac={},
                           current_names=["AdministratorAccess"])
    assert t.current_names == ("AdministratorAccess",) and t.style == MANAGED
    assert "the policy 'AdministratorAccess'" in render(SPLIT, "terraform", t)
