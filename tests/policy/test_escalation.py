"""Escalation paths: catalogue coverage, one case per family (on ``*`` / harmless resource / enabling action
missing), named roles through a lookup, AWS managed policies, the stored check structure.

Every expectation here is written by hand from the catalogues' texts (``escalation_catalogues.py``) and the
IAM User Guide, never read back from ``bot/policy/data/escalation_paths.yaml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.policy.escalation import (
    ESCALATION_PATHS,
    LEFT_OUT,
    EscalationContext,
    RoleProfile,
    can_administer_iam,
    escalation_check,
    escalation_findings,
    high_risk_kept,
    profile_lookup,
    role_profile,
    unknown_path_actions,
    unresolved_roles,
)
from bot.policy.escalation_paths import EscalationDataError, data_problems, load_paths
from bot.policy.expand import EffectivePermissions, effective_permissions
from bot.policy.model import Policy, parse_policy
from tests.policy.escalation_catalogues import CATALOGUES, IAM_VULNERABLE_OUT_OF_REACH

ACCOUNT = "111122223333"
ME = f"arn:aws:iam::{ACCOUNT}:role/ci"
ADMIN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/deploy-admin"
READER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/reader"
ESCALATING_ROLE = f"arn:aws:iam::{ACCOUNT}:role/builder"
PROFILES = [
    RoleProfile(ADMIN_ROLE, "deploy-admin", iam_admin=True, paths=("iam-put-role-policy",)),
    RoleProfile(READER_ROLE, "reader", iam_admin=False),
    RoleProfile(ESCALATING_ROLE, "builder", iam_admin=False, paths=("lambda-update-function-code",)),
]
CTX = EscalationContext(principal_arn=ME, lookup=profile_lookup(PROFILES))


def perms_of(*statements: dict[str, Any]) -> EffectivePermissions:
    return effective_permissions([parse_policy({"Version": "2012-10-17", "Statement": list(statements)})])


def grant(actions: list[str] | tuple[str, ...], resources: dict[str, str] | None = None) -> EffectivePermissions:
    """``actions`` on ``*``, except those given another resource in ``resources``."""
    resources = resources or {}
    statements = [{"Effect": "Allow", "Action": a, "Resource": resources.get(a, "*")} for a in actions]
    return perms_of(*statements)


def ids(perms: EffectivePermissions, ctx: EscalationContext | None = CTX) -> set[str]:
    return {f.id for f in escalation_findings(perms, ctx)}


# --------------------------------------------------------------------------------------------
def test_data_is_well_formed() -> None:
    assert unknown_path_actions() == []
    assert data_problems() == []
    assert len({p.id for p in ESCALATION_PATHS}) == len(ESCALATION_PATHS)
    assert all(s.url.startswith("https://") for p in ESCALATION_PATHS for s in p.sources)
    assert all(p.reaches in ("self", "passed-role", "user", "role") for p in ESCALATION_PATHS)


def test_a_malformed_data_file_is_refused(tmp_path: Path) -> None:
    head = "catalogues: {x: {title: X, url: 'https://x/{ref}'}}\n"
    cases = {
        "unknown scope": "paths: [{id: a, name: A, reaches: self, sources: [x 1],"
                         " requires: [{action: iam:PassRole, resource: role, scope: some}]}]",
        "needs a resource type": "paths: [{id: a, name: A, reaches: self, sources: [x 1],"
                                 " requires: [{action: iam:PassRole, scope: all}]}]",
        "unknown catalogue": "paths: [{id: a, name: A, reaches: self, sources: [y 1],"
                             " requires: [{action: iam:PassRole}]}]",
        "not an earlier requirement": "paths: [{id: a, name: A, reaches: self, sources: [x 1],"
                                      " requires: [{action: iam:PassRole, same_as: sts:AssumeRole}]}]",
        "duplicate path ids": "paths: [{id: a, name: A, reaches: self, sources: [x 1],"
                              " requires: [{action: s3:GetObject}]}, {id: a, name: A, reaches: self,"
                              " sources: [x 1], requires: [{action: s3:GetObject}]}]",
    }
    path = tmp_path / "paths.yaml"
    for message, body in cases.items():
        path.write_text(head + body)
        with pytest.raises(EscalationDataError, match=message):
            load_paths(str(path))
    # the catalog catches what the shape cannot: a misspelt action, a resource type the action does not take
    path.write_text(head + "paths: [{id: a, name: A, reaches: self, sources: [x 1],"
                           " requires: [{action: iam:PassRoles}, {action: ssm:SendCommand, resource: role}]}]")
    problems = data_problems(load_paths(str(path)).paths)
    assert len(problems) == 2 and "iam:PassRoles" in problems[0] and "'role'" in problems[1]


@pytest.mark.parametrize("catalogue", sorted(CATALOGUES))
def test_every_catalogue_entry_on_star_opens_a_path_that_cites_it(catalogue: str) -> None:
    missed = []
    for ref, actions in CATALOGUES[catalogue].items():
        if catalogue == "iam-vulnerable" and ref in IAM_VULNERABLE_OUT_OF_REACH:
            continue
        findings = escalation_findings(grant(actions), EscalationContext())
        if not any((s.catalogue, s.ref) == (catalogue, ref) for f in findings for s in f.path.sources):
            missed.append(ref)
    assert missed == []


def test_left_out_entries_are_listed_with_a_reason() -> None:
    assert {(x.source.catalogue, x.source.ref) for x in LEFT_OUT} == {("iam-vulnerable", "privesc-assumerole")}
    assert all(len(x.reason) > 40 for x in LEFT_OUT)


# --------------------------------------------------------------------------------------------
# one case per family: (path, permissions on *, the enabling action, a harmless resource for some action)
FAMILIES: list[tuple[str, tuple[str, ...], str, dict[str, str] | None]] = [
    ("iam-put-role-policy", ("iam:PutRolePolicy",), "iam:PutRolePolicy",
     {"iam:PutRolePolicy": f"arn:aws:iam::{ACCOUNT}:role/someone-else"}),
    ("iam-attach-role-policy", ("iam:AttachRolePolicy",), "iam:AttachRolePolicy",
     {"iam:AttachRolePolicy": f"arn:aws:iam::{ACCOUNT}:user/bob"}),
    ("iam-create-policy-version", ("iam:CreatePolicyVersion",), "iam:CreatePolicyVersion",
     {"iam:CreatePolicyVersion": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
    ("iam-set-default-policy-version", ("iam:SetDefaultPolicyVersion",), "iam:SetDefaultPolicyVersion",
     {"iam:SetDefaultPolicyVersion": "arn:aws:iam::aws:policy/*"}),
    ("iam-create-access-key", ("iam:CreateAccessKey",), "iam:CreateAccessKey",
     {"iam:CreateAccessKey": f"arn:aws:iam::{ACCOUNT}:role/*"}),
    ("iam-create-login-profile", ("iam:CreateLoginProfile",), "iam:CreateLoginProfile", None),
    ("iam-update-login-profile", ("iam:UpdateLoginProfile",), "iam:UpdateLoginProfile", None),
    ("iam-add-user-to-group", ("iam:AddUserToGroup",), "iam:AddUserToGroup", None),
    ("iam-update-assume-role-policy", ("iam:UpdateAssumeRolePolicy",), "iam:UpdateAssumeRolePolicy", None),
    ("iam-put-role-policy-assume", ("iam:PutRolePolicy", "sts:AssumeRole"), "sts:AssumeRole",
     {"iam:PutRolePolicy": f"arn:aws:iam::{ACCOUNT}:role/app", "sts:AssumeRole": f"arn:aws:iam::{ACCOUNT}:role/other"}),
    ("sts-assume-role", ("sts:AssumeRole",), "sts:AssumeRole", {"sts:AssumeRole": READER_ROLE}),
    ("ec2-passrole-run-instances", ("iam:PassRole", "ec2:RunInstances"), "ec2:RunInstances",
     {"iam:PassRole": READER_ROLE}),
    ("ec2-passrole-spot-instances", ("iam:PassRole", "ec2:RequestSpotInstances"), "ec2:RequestSpotInstances",
     {"iam:PassRole": READER_ROLE}),
    ("ec2-passrole-associate-instance-profile", ("iam:PassRole", "ec2:AssociateIamInstanceProfile"),
     "ec2:AssociateIamInstanceProfile", {"iam:PassRole": READER_ROLE}),
    ("ec2-modify-user-data", ("ec2:ModifyInstanceAttribute", "ec2:StopInstances", "ec2:StartInstances"),
     "ec2:ModifyInstanceAttribute", {"ec2:ModifyInstanceAttribute": f"arn:aws:ec2:us-east-1:{ACCOUNT}:volume/*"}),
    ("ec2-launch-template-version", ("ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate"),
     "ec2:ModifyLaunchTemplate", None),
    ("ec2-instance-connect", ("ec2-instance-connect:SendSSHPublicKey",), "ec2-instance-connect:SendSSHPublicKey", None),
    ("autoscaling-passrole-launch-configuration",
     ("iam:PassRole", "autoscaling:CreateLaunchConfiguration", "autoscaling:CreateAutoScalingGroup"),
     "autoscaling:CreateLaunchConfiguration", {"iam:PassRole": READER_ROLE}),
    ("ssm-send-command", ("ssm:SendCommand",), "ssm:SendCommand",
     {"ssm:SendCommand": f"arn:aws:ssm:us-east-1:{ACCOUNT}:document/AWS-RunShellScript"}),
    ("ssm-start-session", ("ssm:StartSession",), "ssm:StartSession",
     {"ssm:StartSession": f"arn:aws:ssm:us-east-1:{ACCOUNT}:document/SSM-SessionManagerRunShell"}),
    ("ssm-passrole-automation", ("iam:PassRole", "ssm:CreateDocument", "ssm:StartAutomationExecution"),
     "ssm:StartAutomationExecution", {"iam:PassRole": READER_ROLE}),
    ("lambda-passrole-create-function", ("iam:PassRole", "lambda:CreateFunction"), "lambda:CreateFunction",
     {"iam:PassRole": READER_ROLE}),
    ("lambda-passrole-update-configuration", ("iam:PassRole", "lambda:UpdateFunctionConfiguration"),
     "lambda:UpdateFunctionConfiguration", {"iam:PassRole": READER_ROLE}),
    ("lambda-update-function-code", ("lambda:UpdateFunctionCode",), "lambda:UpdateFunctionCode", None),
    ("glue-passrole-dev-endpoint", ("iam:PassRole", "glue:CreateDevEndpoint"), "glue:CreateDevEndpoint",
     {"iam:PassRole": READER_ROLE}),
    ("glue-update-dev-endpoint", ("glue:UpdateDevEndpoint",), "glue:UpdateDevEndpoint", None),
    ("glue-passrole-job", ("iam:PassRole", "glue:UpdateJob", "glue:CreateTrigger"), "glue:CreateTrigger",
     {"iam:PassRole": READER_ROLE}),
    ("glue-passrole-interactive-session", ("iam:PassRole", "glue:CreateSession", "glue:RunStatement"),
     "glue:RunStatement", {"iam:PassRole": READER_ROLE}),
    ("cloudformation-passrole-create-stack", ("iam:PassRole", "cloudformation:CreateStack"),
     "cloudformation:CreateStack", {"iam:PassRole": READER_ROLE}),
    ("cloudformation-update-stack", ("cloudformation:UpdateStack",), "cloudformation:UpdateStack", None),
    ("cloudformation-change-set", ("cloudformation:CreateChangeSet", "cloudformation:ExecuteChangeSet"),
     "cloudformation:ExecuteChangeSet", None),
    ("cloudformation-passrole-stack-set",
     ("iam:PassRole", "cloudformation:CreateStackSet", "cloudformation:CreateStackInstances"),
     "cloudformation:CreateStackInstances", {"iam:PassRole": READER_ROLE}),
    ("cloudformation-passrole-update-stack-set", ("iam:PassRole", "cloudformation:UpdateStackSet"),
     "cloudformation:UpdateStackSet", {"iam:PassRole": READER_ROLE}),
    ("codebuild-passrole-project", ("iam:PassRole", "codebuild:CreateProject", "codebuild:StartBuildBatch"),
     "codebuild:CreateProject", {"iam:PassRole": READER_ROLE}),
    ("codebuild-start-build", ("codebuild:StartBuild",), "codebuild:StartBuild", None),
    ("ecs-passrole-task-definition", ("iam:PassRole", "ecs:RegisterTaskDefinition", "ecs:CreateService"),
     "ecs:RegisterTaskDefinition", {"iam:PassRole": READER_ROLE}),
    ("ecs-passrole-task-override", ("iam:PassRole", "ecs:StartTask"), "ecs:StartTask",
     {"iam:PassRole": READER_ROLE}),
    ("ecs-execute-command", ("ecs:ExecuteCommand", "ecs:DescribeTasks"), "ecs:ExecuteCommand", None),
    ("sagemaker-passrole-notebook", ("iam:PassRole", "sagemaker:CreateNotebookInstance"),
     "sagemaker:CreateNotebookInstance", {"iam:PassRole": READER_ROLE}),
    ("sagemaker-passrole-training-job", ("iam:PassRole", "sagemaker:CreateTrainingJob"),
     "sagemaker:CreateTrainingJob", {"iam:PassRole": READER_ROLE}),
    ("sagemaker-passrole-processing-job", ("iam:PassRole", "sagemaker:CreateProcessingJob"),
     "sagemaker:CreateProcessingJob", {"iam:PassRole": READER_ROLE}),
    ("sagemaker-presigned-notebook-url", ("sagemaker:CreatePresignedNotebookInstanceUrl",),
     "sagemaker:CreatePresignedNotebookInstanceUrl", None),
    ("sagemaker-notebook-lifecycle-config",
     ("sagemaker:CreateNotebookInstanceLifecycleConfig", "sagemaker:UpdateNotebookInstance",
      "sagemaker:StopNotebookInstance", "sagemaker:StartNotebookInstance"),
     "sagemaker:UpdateNotebookInstance", None),
    ("datapipeline-passrole", ("iam:PassRole", "datapipeline:CreatePipeline", "datapipeline:PutPipelineDefinition"),
     "datapipeline:PutPipelineDefinition", {"iam:PassRole": READER_ROLE}),
    ("apprunner-passrole-create-service", ("iam:PassRole", "apprunner:CreateService"), "apprunner:CreateService",
     {"iam:PassRole": READER_ROLE}),
    ("apprunner-update-service", ("apprunner:UpdateService",), "apprunner:UpdateService", None),
    ("bedrock-passrole-code-interpreter",
     ("iam:PassRole", "bedrock-agentcore:CreateCodeInterpreter", "bedrock-agentcore:StartCodeInterpreterSession",
      "bedrock-agentcore:InvokeCodeInterpreter"),
     "bedrock-agentcore:CreateCodeInterpreter", {"iam:PassRole": READER_ROLE}),
    ("bedrock-code-interpreter-session",
     ("bedrock-agentcore:StartCodeInterpreterSession", "bedrock-agentcore:InvokeCodeInterpreter"),
     "bedrock-agentcore:InvokeCodeInterpreter", None),
    ("batch-passrole-job-definition", ("iam:PassRole", "batch:RegisterJobDefinition", "batch:SubmitJob"),
     "batch:RegisterJobDefinition", {"iam:PassRole": READER_ROLE}),
    ("emr-passrole-run-job-flow", ("iam:PassRole", "elasticmapreduce:RunJobFlow"), "elasticmapreduce:RunJobFlow",
     {"iam:PassRole": READER_ROLE}),
    ("cognito-identity-passrole-pool-roles", ("iam:PassRole", "cognito-identity:SetIdentityPoolRoles"),
     "cognito-identity:SetIdentityPoolRoles", {"iam:PassRole": READER_ROLE}),
]


@pytest.mark.parametrize(("path", "actions", "enabling", "harmless"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_family(path: str, actions: tuple[str, ...], enabling: str, harmless: dict[str, str] | None) -> None:
    assert path in ids(grant(actions)), "granted on *"
    assert path not in ids(grant([a for a in actions if a != enabling])), f"without {enabling}"
    if harmless is not None:
        assert path not in ids(grant(actions, harmless)), f"on {harmless}"


def test_self_paths_follow_the_principal() -> None:
    on_me = grant(["iam:PutRolePolicy", "iam:AttachRolePolicy"], {"iam:PutRolePolicy": ME, "iam:AttachRolePolicy": ME})
    assert {"iam-put-role-policy", "iam-attach-role-policy"} <= ids(on_me)
    pattern = grant(["iam:PutRolePolicy"], {"iam:PutRolePolicy": f"arn:aws:iam::{ACCOUNT}:role/c*"})
    assert "iam-put-role-policy" in ids(pattern)
    # a role cannot use a user's inline policy on itself; a user can
    user_paths = grant(["iam:PutUserPolicy", "iam:AttachUserPolicy"])
    assert not {"iam-put-user-policy", "iam-attach-user-policy"} & ids(user_paths)
    bob = EscalationContext(principal_arn=f"arn:aws:iam::{ACCOUNT}:user/bob")
    assert {"iam-put-user-policy", "iam-attach-user-policy"} <= ids(user_paths, bob)
    # principal unknown: only a grant on every role counts as "its own"
    assert "iam-put-role-policy" not in ids(grant(["iam:PutRolePolicy"], {"iam:PutRolePolicy": ME}), None)
    assert "iam-put-role-policy" in ids(grant(["iam:PutRolePolicy"]), None)


def test_same_target_for_policy_then_assume() -> None:
    same = f"arn:aws:iam::{ACCOUNT}:role/app"
    perms = grant(["iam:AttachRolePolicy", "sts:AssumeRole"], {"iam:AttachRolePolicy": same, "sts:AssumeRole": same})
    assert "iam-attach-role-policy-assume" in ids(perms)
    other = grant(["iam:AttachRolePolicy", "sts:AssumeRole"],
                  {"iam:AttachRolePolicy": same, "sts:AssumeRole": f"arn:aws:iam::{ACCOUNT}:role/other"})
    assert "iam-attach-role-policy-assume" not in ids(other)


# --------------------------------------------------------------------------------------------
# named roles
def test_passing_an_admin_role_is_open_and_named() -> None:
    perms = grant(["iam:PassRole", "lambda:CreateFunction"], {"iam:PassRole": ADMIN_ROLE})
    (finding,) = [f for f in escalation_findings(perms, CTX) if f.id == "lambda-passrole-create-function"]
    assert [r.name for r in finding.via] == ["deploy-admin"]
    assert finding.text == "can pass admin role `deploy-admin` to Lambda"


def test_passing_a_read_only_role_is_not_open() -> None:
    perms = grant(["iam:PassRole", "lambda:CreateFunction"], {"iam:PassRole": READER_ROLE})
    assert "lambda-passrole-create-function" not in ids(perms)


def test_passing_a_role_that_escalates_is_open() -> None:
    perms = grant(["iam:PassRole", "ecs:RunTask"], {"iam:PassRole": ESCALATING_ROLE})
    (finding,) = [f for f in escalation_findings(perms, CTX) if f.id == "ecs-passrole-task-override"]
    assert finding.text == "can pass role `builder` (which can escalate: lambda-update-function-code) to ECS"


def test_a_role_pattern_is_looked_up_role_by_role() -> None:
    perms = grant(["iam:PassRole", "ec2:RunInstances"], {"iam:PassRole": f"arn:aws:iam::{ACCOUNT}:role/deploy-*"})
    (finding,) = [f for f in escalation_findings(perms, CTX) if f.id == "ec2-passrole-run-instances"]
    assert [r.arn for r in finding.via] == [ADMIN_ROLE]
    readers = grant(["iam:PassRole", "ec2:RunInstances"], {"iam:PassRole": f"arn:aws:iam::{ACCOUNT}:role/read*"})
    assert "ec2-passrole-run-instances" not in ids(readers)


def test_assuming_an_admin_role_is_open_and_itself_is_not() -> None:
    assume = grant(["sts:AssumeRole"], {"sts:AssumeRole": ADMIN_ROLE})
    (finding,) = escalation_findings(assume, CTX)
    assert finding.id == "sts-assume-role" and finding.text == "can assume admin role `deploy-admin`"
    me_admin = EscalationContext(ME, profile_lookup([RoleProfile(ME, "ci", iam_admin=True)]))
    assert ids(grant(["sts:AssumeRole"], {"sts:AssumeRole": ME}), me_admin) == set()


def test_named_roles_without_a_lookup_or_unknown_to_it_are_unresolved() -> None:
    perms = grant(["iam:PassRole", "lambda:CreateFunction"], {"iam:PassRole": ADMIN_ROLE})
    assert "lambda-passrole-create-function" not in ids(perms, EscalationContext(ME))
    unknown = f"arn:aws:iam::{ACCOUNT}:role/ghost"
    ghost = grant(["iam:PassRole", "sts:AssumeRole"], {"iam:PassRole": unknown, "sts:AssumeRole": READER_ROLE})
    assert unresolved_roles(ghost, CTX) == [unknown]
    assert unresolved_roles(ghost, EscalationContext(ME)) == sorted([unknown, READER_ROLE])
    assert unresolved_roles(grant(["iam:PassRole"]), CTX) == []  # any role: judged, not unresolved


# --------------------------------------------------------------------------------------------
def test_aws_managed_policies_are_not_modifiable_targets() -> None:
    managed = grant(["iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion"],
                    {"iam:CreatePolicyVersion": "arn:aws:iam::aws:policy/*",
                     "iam:SetDefaultPolicyVersion": "arn:aws:iam::aws:policy/AdministratorAccess"})
    assert ids(managed) == set()
    assert not can_administer_iam(managed)
    customer = grant(["iam:CreatePolicyVersion"], {"iam:CreatePolicyVersion": f"arn:aws:iam::{ACCOUNT}:policy/*"})
    assert ids(customer) == {"iam-create-policy-version"} and can_administer_iam(customer)


def test_resource_type_of_the_step_matters() -> None:
    on_instances = grant(["ssm:SendCommand"], {"ssm:SendCommand": f"arn:aws:ec2:*:{ACCOUNT}:instance/*"})
    assert "ssm-send-command" in ids(on_instances)
    managed = grant(["ssm:SendCommand"], {"ssm:SendCommand": f"arn:aws:ssm:*:{ACCOUNT}:managed-instance/mi-1"})
    assert "ssm-send-command" in ids(managed)


def test_a_deny_carving_out_the_whole_grant_closes_the_path() -> None:
    perms = perms_of({"Effect": "Allow", "Action": "lambda:UpdateFunctionCode", "Resource": "*"},
                     {"Effect": "Deny", "Action": "lambda:UpdateFunctionCode", "Resource": "*"})
    assert "lambda-update-function-code" not in ids(perms)


def test_conditional_grant_gives_conditional_finding() -> None:
    perms = perms_of({"Effect": "Allow", "Action": "iam:PutRolePolicy", "Resource": "*",
                      "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}})
    (finding,) = escalation_findings(perms, CTX)
    assert finding.id == "iam-put-role-policy" and finding.conditional
    assert can_administer_iam(perms)


def test_scoped_iam_permission_management_is_not_admin() -> None:
    perms = grant(["iam:PutRolePolicy"], {"iam:PutRolePolicy": f"arn:aws:iam::{ACCOUNT}:role/app"})
    assert not can_administer_iam(perms)


# --------------------------------------------------------------------------------------------
def test_managed_policies(managed: dict[str, Policy]) -> None:
    admin = effective_permissions([managed["AdministratorAccess"]])
    assert ids(admin, EscalationContext()) == {p.id for p in ESCALATION_PATHS}
    assert can_administer_iam(admin)
    iam_full = effective_permissions([managed["IAMFullAccess"]])
    found = ids(iam_full)
    assert can_administer_iam(iam_full) and "iam-attach-role-policy" in found
    assert "ec2-passrole-run-instances" not in found  # IAM alone runs no code
    power = effective_permissions([managed["PowerUserAccess"]])
    found = ids(power)
    assert not can_administer_iam(power)
    assert {"lambda-update-function-code", "ssm-send-command", "codebuild-start-build"} <= found
    assert not any(p.startswith("iam-") for p in found)
    assert not any("passrole" in p for p in found)  # PowerUserAccess passes no role
    for name in ("ReadOnlyAccess", "AWSLambdaBasicExecutionRole", "AmazonS3FullAccess"):
        perms = effective_permissions([managed[name]])
        assert ids(perms) == set(), name
        assert not role_profile(ME, "ci", perms).escalates, name


def test_role_profile() -> None:
    profile = role_profile(ADMIN_ROLE, "deploy-admin", grant(["iam:*"]))
    assert profile.iam_admin and "iam-put-role-policy" in profile.paths and profile.escalates
    assert RoleProfile.from_json(profile.to_json()) == profile
    builder = role_profile(ESCALATING_ROLE, "builder", grant(["lambda:UpdateFunctionCode", "s3:GetObject"]))
    assert not builder.iam_admin and builder.paths == ("lambda-update-function-code",)


def test_check_structure_for_a_proposal() -> None:
    current = grant(["iam:PassRole", "lambda:CreateFunction", "lambda:UpdateFunctionCode", "iam:CreateRole",
                     "s3:GetObject"])
    proposed = grant(["iam:PassRole", "lambda:CreateFunction", "iam:CreateRole"], {"iam:PassRole": ADMIN_ROLE})
    check = escalation_check(current, proposed, CTX)
    assert [o["id"] for o in check["open"]] == ["lambda-passrole-create-function"]
    opened = check["open"][0]
    assert opened["text"] == "can pass admin role `deploy-admin` to Lambda" and opened["new"] is False
    assert opened["via"][0]["arn"] == ADMIN_ROLE and opened["source"].startswith("https://")
    assert any(s["catalogue"] == "pmapper" and s["ref"] == "lambda_edges:create-function" for s in opened["sources"])
    assert [c["id"] for c in check["closed"]] == ["lambda-update-function-code"]
    kinds = [(h["kind"], (h.get("role") or {}).get("name")) for h in check["high_risk_kept"]]
    assert kinds == [("pass-role", "deploy-admin"), ("iam-write", None)]
    assert check["high_risk_kept"][1]["actions"] == ["iam:CreateRole"]
    assert check["counts"] == {"open_before": 2, "open_after": 1, "closed": 1, "opened": 0}
    assert check["iam_admin"] == {"before": False, "after": False}
    assert check["unresolved_roles"] == []


def test_high_risk_kept_any_role() -> None:
    items = high_risk_kept(grant(["iam:PassRole", "sts:AssumeRole"]), CTX)
    assert [i["text"] for i in items] == ["can pass any role", "can assume any role"]
