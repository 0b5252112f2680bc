"""The deployment examples are valid and say the same as the rest of the repository.

CloudFormation templates: checked with cfn-lint (the ecosystem's linter, with AWS's resource schemas), and their
policy documents compared with ``config/iam/*.json`` (which ``tests/aws/test_own_permissions.py`` checks
against the calls the code makes). ECS task definition: validated by botocore against the ECS API's own
``RegisterTaskDefinition`` input shape, and compared with the Dockerfile and with what ``tighten serve`` reads.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "config" / "cloudformation"
IAM = REPO / "config" / "iam"
TASK_DEFINITION = REPO / "ecs-task-definition.json"


def _lint(text: str) -> list[str]:
    """Errors and warnings, what the ``cfn-lint`` command reports by default (informational rules left out)."""
    from cfnlint.api import lint_all

    return [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in lint_all(text) if m.rule.id[0] in "EW"]


def _template(name: str) -> dict[str, Any]:
    return yaml.safe_load((TEMPLATES / name).read_text())


def _iam(name: str) -> dict[str, Any]:
    return json.loads((IAM / f"{name}.json").read_text())


@pytest.mark.parametrize("name", sorted(p.name for p in TEMPLATES.glob("*.yaml")))
def test_cloudformation_template_passes_cfn_lint(name: str) -> None:
    assert _lint((TEMPLATES / name).read_text()) == []


def test_cfn_lint_does_find_mistakes() -> None:
    """The linter really runs: a misspelt property of a role fails."""
    broken = (TEMPLATES / "account-roles.yaml").read_text().replace("AssumeRolePolicyDocument:",
                                                                    "AssumeRolePolicyDocumnt:", 1)
    assert any("AssumeRolePolicyDocumnt" in problem for problem in _lint(broken))


def test_account_roles_hold_exactly_the_policies_in_config_iam() -> None:
    resources = _template("account-roles.yaml")["Resources"]
    assert resources["TightenBoundary"]["Properties"]["PolicyDocument"] == _iam("boundary")
    for role, policy in (("TightenReader", "reader"), ("TightenApplier", "applier")):
        props = resources[role]["Properties"]
        assert props["RoleName"] == role and props["Path"] == "/"  # runtime.json names role/<name> at path /
        assert [p["PolicyDocument"] for p in props["Policies"]] == [_iam(policy)]
        assert props["PermissionsBoundary"] == {"Ref": "TightenBoundary"}
        trust = props["AssumeRolePolicyDocument"]["Statement"]
        assert trust == [{"Effect": "Allow", "Principal": {"AWS": {"Ref": "RuntimeRoleArn"}},
                          "Action": "sts:AssumeRole"}]
    assert resources["TightenBoundary"]["Properties"]["ManagedPolicyName"] == "TightenBoundary"


def test_runtime_role_is_runtime_json_with_the_bucket_filled_in() -> None:
    props = _template("runtime-role.yaml")["Resources"]["TightenRuntime"]["Properties"]
    (policy,) = props["Policies"]

    def fill(node: Any) -> Any:  # Fn::Sub of ${TrailBucket} -> the placeholder runtime.json uses
        if isinstance(node, dict):
            if set(node) == {"Fn::Sub"}:
                return node["Fn::Sub"].replace("${TrailBucket}", "TRAIL_BUCKET")
            return {k: fill(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fill(v) for v in node]
        return node

    assert fill(policy["PolicyDocument"]) == _iam("runtime")
    principals = [s["Principal"] for s in props["AssumeRolePolicyDocument"]["Statement"]]
    assert principals == [{"Service": "ecs-tasks.amazonaws.com"}]


def test_task_definition_is_a_valid_register_task_definition_request() -> None:
    import botocore.session
    from botocore.validate import ParamValidator

    shape = botocore.session.get_session().get_service_model("ecs").operation_model(
        "RegisterTaskDefinition").input_shape
    report = ParamValidator().validate(json.loads(TASK_DEFINITION.read_text()), shape)
    assert not report.has_errors(), report.generate_report()


def test_task_definition_matches_the_dockerfile_and_serve() -> None:
    from bot.commands.serve import slack_secrets

    task = json.loads(TASK_DEFINITION.read_text())
    (container,) = task["containerDefinitions"]
    dockerfile = (REPO / "Dockerfile").read_text()
    health = re.search(r'HEALTHCHECK .*\n\s*CMD \["sh", "-c", "(.*)"\]', dockerfile)
    assert health, "no HEALTHCHECK in the Dockerfile"
    assert container["healthCheck"]["command"] == ["CMD-SHELL", health.group(1).replace('\\"', '"')]
    uid = re.search(r"useradd --system --uid (\d+)", dockerfile)
    assert uid and container["user"] == uid.group(1)
    assert 'VOLUME ["/data"]' in dockerfile
    assert [m["containerPath"] for m in container["mountPoints"]] == ["/data"]
    assert container["stopTimeout"] <= 120  # Fargate's maximum; serve finishes the item in hand meanwhile
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["TIGHTEN_CONFIG"] in dockerfile
    # the Slack secrets socket mode (the default) needs come from Secrets Manager, never from plain environment
    needed = slack_secrets("socket", {"SLACK_BOT_TOKEN": "x", "SLACK_APP_TOKEN": "xapp-x"})
    assert {s["name"] for s in container["secrets"]} == {k for k, v in needed.items() if v}
    assert not {"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"} & set(env)
    assert task["taskRoleArn"].endswith(":role/TightenRuntime")
