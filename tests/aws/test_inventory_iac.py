"""Roles managed as code: detected in the inventory from CloudFormation's stack tag or configured rules, per
account, with the reason recorded (moto server; the tags are the ones CloudFormation puts on what it creates)."""

from __future__ import annotations

from typing import Any

from bot.aws.inventory import ManagedAsCode, Scope, get_role_snapshot, list_role_snapshots, managed_as_code
from bot.config import Account, Approvers, Config, IacRule
from bot.jobs.scan import scope_from_config
from tests.aws.conftest import make_role

ACCOUNT = "123456789012"
RULES = (IacRule(tool="terraform", tag="ManagedBy=terraform", where="iac.rules[0]"),
         IacRule(tool="terraform", name="tf-*", where="iac.rules[1]"),
         IacRule(tool="cloudformation", path="/cdk/*", where="iac.rules[2]"),
         IacRule(tool="terraform", tag="owner", name="*-svc", where="iac.rules[3]"))


def _roles(iam: Any) -> None:
    make_role(iam, "orders-stack-role", tags={"aws:cloudformation:stack-name": "orders",
                                               "aws:cloudformation:logical-id": "OrdersRole"})
    make_role(iam, "payments", tags={"ManagedBy": "terraform"})
    make_role(iam, "payments-manual", tags={"ManagedBy": "console"})
    make_role(iam, "TF-Deployer")
    make_role(iam, "built", path="/cdk/app/")
    make_role(iam, "api-svc", tags={"owner": "team-a"})
    make_role(iam, "db-svc")  # name matches rule 3, tag missing: every matcher must match
    make_role(iam, "plain")


def test_detection_by_stack_tag_rule_or_neither(iam: Any) -> None:
    _roles(iam)
    result = list_role_snapshots(iam, scope=Scope(iac_rules={"": RULES}))
    found = result.managed_as_code
    names = {arn.rsplit("/", 1)[-1]: why for arn, why in found.items()}
    assert sorted(names) == ["TF-Deployer", "api-svc", "built", "orders-stack-role", "payments"]
    stack = names["orders-stack-role"]
    assert (stack.tool, stack.stack, stack.logical_id, stack.rule) == ("cloudformation", "orders", "OrdersRole", None)
    assert stack.reason == "CloudFormation stack orders (tag aws:cloudformation:stack-name)"
    assert names["payments"].reason == "Terraform by rule iac.rules[0] (tag ManagedBy=terraform)"
    assert names["TF-Deployer"].rule == "iac.rules[1]"  # names match case-insensitively
    assert (names["built"].tool, names["built"].rule) == ("cloudformation", "iac.rules[2]")
    assert names["api-svc"].reason == "Terraform by rule iac.rules[3] (tag owner and name *-svc)"
    # the per-role read used right before an apply sees the same
    single = get_role_snapshot(iam, "payments")
    assert Scope(iac_rules={"": RULES}).managed_as_code(single) == names["payments"]
    assert ManagedAsCode.from_json(stack.to_json()) == stack


def test_the_stack_tag_wins_over_rules_and_needs_no_rule(iam: Any) -> None:
    make_role(iam, "tf-but-stack", tags={"aws:cloudformation:stack-name": "legacy", "ManagedBy": "terraform"})
    snap = get_role_snapshot(iam, "tf-but-stack")
    assert managed_as_code(snap, RULES).stack == "legacy"
    assert managed_as_code(snap).tool == "cloudformation"
    make_role(iam, "nothing")
    assert managed_as_code(get_role_snapshot(iam, "nothing"), RULES) is None


def test_rules_are_per_account(iam: Any) -> None:
    make_role(iam, "tf-app")
    config = Config(accounts=(Account(id=ACCOUNT, name="prod", channel="C0REVIEW01", approvers=Approvers(users=("U0A1B2C3D",)),
                                      iac_rules=(IacRule(tool="cloudformation", name="tf-*",
                                                         where="accounts[0].iac.rules[0]"),)),
                              Account(id="210987654321", name="staging", channel="C0REVIEW01")),
                    iac_rules=(IacRule(tool="terraform", name="tf-*", where="iac.rules[0]"),))
    scope = scope_from_config(config)
    snap = get_role_snapshot(iam, "tf-app")
    assert scope.managed_as_code(snap).rule == "accounts[0].iac.rules[0]"  # the account's own rule first
    other = type(snap)(**{**snap.__dict__, "account": "210987654321"})
    assert scope.managed_as_code(other).rule == "iac.rules[0]"
    unknown = type(snap)(**{**snap.__dict__, "account": "999999999999"})
    assert scope.managed_as_code(unknown).rule == "iac.rules[0]"
    assert config.direct_apply_allowed(ACCOUNT) is False
