"""Escalation checks in scans: the inventory stores what each role could do, a scan judges named roles with it
(moto IAM, the real planner, scan and stores)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from bot.jobs.planner import plan_scans
from bot.jobs.scan import run_scan
from tests.jobs.conftest import ACCOUNT, Env, policy


def statements(*items: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(items)}


def _ci(env: Env, name: str, passable: list[str]) -> str:
    arn = env.role(name, statements(
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": passable},
        {"Effect": "Allow", "Action": ["lambda:CreateFunction", "lambda:InvokeFunction", "ssm:SendCommand", "s3:*"],
         "Resource": "*"},
    ))
    env.use(arn, "lambda:CreateFunction", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:deploy")
    env.use(arn, "iam:PassRole", passable[0])
    return arn


def test_a_proposal_that_keeps_passing_an_admin_role_says_so(env: Env) -> None:
    admin = env.role("deploy-admin", policy("*"))
    reader = env.role("reader", policy("s3:GetObject"))
    ci = _ci(env, "ci", [admin, reader])
    env.ctx.config = dataclasses.replace(env.ctx.config, protected_roles=("deploy-admin",))
    plan_scans(env.ctx)  # the inventory: every role, in scope or protected, with what it could do
    stored = env.ctx.roles.get(admin)
    assert stored is not None and not stored.in_scope and stored.privilege is not None
    assert stored.privilege["iam_admin"] is True
    assert env.ctx.roles.get(reader).privilege["paths"] == []  # type: ignore[union-attr]

    outcome = run_scan(env.ctx, ACCOUNT, ci, requested_by="U0ALICE001")
    assert outcome.proposal is not None
    proposal = env.ctx.proposals.get(outcome.proposal.id)
    assert proposal is not None
    check = proposal.checks["escalation"]
    assert [o["id"] for o in check["open"]] == ["lambda-passrole-create-function"]
    assert check["open"][0]["text"] == "can pass admin role `deploy-admin` to Lambda"
    assert check["open"][0]["via"][0]["arn"] == admin and check["open"][0]["new"] is False
    assert "ssm-send-command" in [c["id"] for c in check["closed"]]
    assert [(h["kind"], h["role"]["name"]) for h in check["high_risk_kept"]] == [("pass-role", "deploy-admin")]
    assert check["unresolved_roles"] == []
    # the diff text names it right after the summary, and the risk counts it
    assert "still open lambda-passrole-create-function: can pass admin role `deploy-admin` to Lambda" in \
        proposal.diff_text.split("\n\nKEPT")[0]
    assert any("lambda-passrole-create-function" in r for r in proposal.risk_reasons)


def test_passing_a_read_only_role_is_not_an_open_path(env: Env) -> None:
    reader = env.role("reader", policy("s3:GetObject"))
    ci = _ci(env, "ci", [reader])
    plan_scans(env.ctx)
    outcome = run_scan(env.ctx, ACCOUNT, ci, requested_by=None)
    assert outcome.proposal is not None
    check = outcome.proposal.checks["escalation"]
    assert check["open"] == [] and check["high_risk_kept"] == [] and check["unresolved_roles"] == []


def test_roles_the_inventory_has_not_seen_are_unresolved_not_trusted(env: Env) -> None:
    admin = env.role("deploy-admin", policy("*"))
    ci = _ci(env, "ci", [admin])
    outcome = run_scan(env.ctx, ACCOUNT, ci, requested_by=None)  # no inventory yet
    assert outcome.proposal is not None
    check = outcome.proposal.checks["escalation"]
    assert check["unresolved_roles"] == [admin]
    assert "lambda-passrole-create-function" not in [o["id"] for o in check["open"]]


def test_inventory_recomputes_a_role_only_when_its_policy_changes(env: Env) -> None:
    arn = env.role("builder", policy("s3:GetObject"))
    env.use(arn, "s3:GetObject")
    plan_scans(env.ctx)
    first = env.ctx.roles.get(arn)
    assert first is not None and first.privilege is not None and first.privilege["paths"] == []
    env.clock.advance(hours=1)
    plan_scans(env.ctx)
    assert env.ctx.roles.get(arn).privilege == first.privilege  # type: ignore[union-attr]
    env.iam.put_role_policy(RoleName="builder", PolicyName="more",
                            PolicyDocument=json.dumps(policy("lambda:UpdateFunctionCode")))
    env.clock.advance(hours=1)
    plan_scans(env.ctx)
    again = env.ctx.roles.get(arn)
    assert again is not None and again.privilege is not None
    assert again.privilege["paths"] == ["lambda-update-function-code"]
    assert again.privilege["policy_hash"] != first.privilege["policy_hash"]
