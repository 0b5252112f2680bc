"""Allowlist loading, validation with clear errors, per-principal selection, add/save round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.policy.allowlist import AllowEntry, Allowlist, AllowlistError, parse_allowlist
from bot.store.allowlist import load_allowlist, save_allowlist

REPO = Path(__file__).resolve().parents[2]
ROLE = "arn:aws:iam::111122223333:role/deployer"


def test_shipped_example_loads_and_its_commented_examples_are_valid() -> None:
    text = (REPO / "config" / "allowlist.yaml").read_text()
    assert load_allowlist(REPO / "config" / "allowlist.yaml").entries == []
    examples = text.split("# Examples", 1)[1].split("\n", 1)[1]
    body = "\n".join(line[1:] for line in examples.splitlines() if line.startswith("#"))
    parsed = parse_allowlist("entries:\n" + body, "examples")
    assert [e.action for e in parsed.entries] == ["iam:PassRole", "s3:GetObject", "sqs:ListQueues"]


def test_for_principal_by_arn_name_and_global() -> None:
    al = parse_allowlist(yaml.safe_dump({"entries": [
        {"action": "sqs:listqueues"},
        {"action": "iam:PassRole", "resource": "arn:aws:iam::111122223333:role/exec", "principal": ROLE},
        {"action": "s3:GetObject", "resource": "arn:aws:s3:::r/*", "principal": "Deployer", "reason": "data events"},
        {"action": "s3:PutObject", "principal": "arn:aws:iam::111122223333:role/other"},
    ]}))
    assert al.entries[0] == AllowEntry("sqs:ListQueues", "*", None, "")
    assert [e.action for e in al.for_principal(ROLE)] == ["sqs:ListQueues", "iam:PassRole", "s3:GetObject"]
    assert [e.action for e in al.for_principal("arn:aws:iam::999:role/path/deployer")] == [
        "sqs:ListQueues", "s3:GetObject"]
    assert [e.action for e in al.for_principal("arn:aws:iam::111122223333:user/bob")] == ["sqs:ListQueues"]


@pytest.mark.parametrize(("entry", "message"), [
    ({"action": "signin:ConsoleLogin"}, "unknown IAM action 'signin:ConsoleLogin'"),
    ({"resource": "*"}, "'action' is required"),
    ({"action": "s3:GetObject", "resource": "bucket/x"}, "must be '*' or an ARN"),
    ({"action": "s3:ListAllMyBuckets", "resource": "arn:aws:s3:::b"}, "takes no resource ARN"),
    ({"action": "s3:GetObject", "resource": "arn:aws:iam::1:role/x"}, "does not fit"),
    ({"action": "s3:GetObject", "colour": "red"}, "unknown key(s): colour"),
])
def test_bad_entries_name_file_and_entry(entry: dict, message: str) -> None:
    text = yaml.safe_dump({"entries": [{"action": "sqs:ListQueues"}, entry]})
    with pytest.raises(AllowlistError) as err:
        parse_allowlist(text, "conf/allow.yaml")
    assert str(err.value).startswith("conf/allow.yaml: entry 2")
    assert message in str(err.value)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(AllowlistError, match="invalid YAML"):
        parse_allowlist("entries: [", "x.yaml")
    with pytest.raises(AllowlistError, match="'entries' list"):
        parse_allowlist("- a\n- b\n", "x.yaml")
    with pytest.raises(AllowlistError, match="cannot read allowlist"):
        load_allowlist(tmp_path / "missing.yaml")
    assert load_allowlist(None).entries == []
    assert parse_allowlist("", "empty").entries == []


def test_add_and_save_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "allow.yaml"
    al = Allowlist()
    al.add(ROLE, "IAM:passrole", "arn:aws:iam::111122223333:role/exec", "passed via CFN")
    al.add(None, "sqs:ListQueues")
    al.add(ROLE, "iam:PassRole", "arn:aws:iam::111122223333:role/exec", "passed via CloudFormation")  # updates
    assert len(al.entries) == 2 and al.entries[0].reason == "passed via CloudFormation"
    with pytest.raises(AllowlistError, match="unknown IAM action"):
        al.add(ROLE, "iam:PassRoles")
    save_allowlist(al, path)
    assert path.read_text().startswith("# Tighten allowlist")
    assert load_allowlist(path).entries == al.entries
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


@pytest.mark.parametrize(("action", "resource", "expected"), [
    ("s3:GetObject", "arn:aws:s3:::reports/2026/out.csv", "arn:aws:s3:::reports/2026/out.csv"),
    ("s3:GetObject", "arn:aws:s3:::reports/" + "\U0001F600" * 256, "arn:aws:s3:::reports/" + "\U0001F600" * 256),
    ("s3:ListBucket", "arn:aws:s3:::reports", "arn:aws:s3:::reports"),
    # not recorded by CloudTrail: no entry can name exactly it
    ("s3:GetObject", "?", None),
    ("s3:GetObject", "", None),
    ("s3:GetObject", "*", None),
    # characters an entry would read as wildcards or a policy variable (IAM User Guide, "Resource" element)
    ("s3:GetObject", "arn:aws:s3:::reports/a*b", None),
    ("s3:GetObject", "arn:aws:s3:::reports/a?b", None),
    ("s3:GetObject", "arn:aws:s3:::reports/${aws:username}", None),
    # a bucket is not an object: GetObject acts on objects only (Service Authorization Reference for S3)
    ("s3:GetObject", "arn:aws:s3:::reports", None),
    # an action that takes no resource ARN: "*" is exactly the call, and nothing else fits
    ("sts:GetCallerIdentity", "", "*"),
    ("sts:GetCallerIdentity", "arn:aws:iam::111122223333:role/x", None),
    ("notaservice:DoThing", "*", None),
])
def test_exact_resource_never_widens(action: str, resource: str, expected: str | None) -> None:
    from bot.policy.allowlist import exact_resource

    assert exact_resource(action, resource) == expected
