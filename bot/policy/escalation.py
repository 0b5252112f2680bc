"""Privilege-escalation capabilities: sets of actions that let a principal gain more permissions.

This is a documented policy-level list (not derived from the catalog, whose data does not say which
combinations escalate). Sources:

* Rhino Security Labs, "AWS IAM Privilege Escalation -- Methods and Mitigation" (methods 1-21),
  https://rhinosecuritylabs.com/aws/aws-privilege-escalation-methods-mitigation/ and its scanner
  https://github.com/RhinoSecurityLabs/Security-Research/blob/master/tools/aws-pentest-tools/aws_escalate.py
* Bishop Fox, iam-vulnerable (adds SSM, EC2 Instance Connect, CodeBuild, SageMaker paths),
  https://github.com/BishopFox/iam-vulnerable
* AWS IAM User Guide, "Grant a user permissions to pass a role to an AWS service",
  https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html (any service that runs code
  with a passed role -- ECS tasks, CodeBuild, ... -- turns ``iam:PassRole`` into that role's permissions).

A path is open when every required action is granted (on any resource, except the actions listed in
``broad_resource``, which must be granted on a wildcard resource: passing or assuming *some specific* role
is normal, passing or assuming *any* role is escalation). Principals here are roles, so ``Attach/PutRolePolicy``
count on their own: a role can change its own policies. ``lambda:UpdateFunctionCode`` is listed because a
function may run with a stronger role than the caller; that cannot be checked offline.

``can_administer_iam`` is stricter than "has an escalation path": the principal can change IAM permissions
(an IAM action of access level "Permissions management") on a wildcard resource.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.policy.catalog import catalog
from bot.policy.expand import EffectivePermissions, Grant

RHINO = "https://rhinosecuritylabs.com/aws/aws-privilege-escalation-methods-mitigation/"
BISHOP_FOX = "https://github.com/BishopFox/iam-vulnerable"
AWS_PASSROLE = "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html"
PASS_ROLE = "iam:PassRole"


@dataclass(frozen=True, slots=True)
class EscalationPath:
    id: str
    title: str
    required: tuple[str, ...]  # every action must be granted
    source: str  # URL
    broad_resource: tuple[str, ...] = ()  # required actions that must be granted on a wildcard resource


@dataclass(frozen=True, slots=True)
class EscalationFinding:
    path: EscalationPath
    conditional: bool  # at least one required grant depends on a condition


def _path(pid: str, title: str, required: tuple[str, ...], source: str) -> EscalationPath:
    broad = tuple(a for a in required if a in (PASS_ROLE, "sts:AssumeRole"))
    return EscalationPath(pid, title, required, source, broad)


ESCALATION_PATHS: tuple[EscalationPath, ...] = (
    _path("iam-create-policy-version", "Create a new default version of a managed policy",
          ("iam:CreatePolicyVersion",), RHINO),
    _path("iam-set-default-policy-version", "Switch a managed policy to an older, broader version",
          ("iam:SetDefaultPolicyVersion",), RHINO),
    _path("iam-create-access-key", "Create access keys for another user", ("iam:CreateAccessKey",), RHINO),
    _path("iam-create-login-profile", "Create a console password for another user",
          ("iam:CreateLoginProfile",), RHINO),
    _path("iam-update-login-profile", "Change another user's console password",
          ("iam:UpdateLoginProfile",), RHINO),
    _path("iam-attach-user-policy", "Attach any managed policy to a user", ("iam:AttachUserPolicy",), RHINO),
    _path("iam-attach-group-policy", "Attach any managed policy to a group", ("iam:AttachGroupPolicy",), RHINO),
    _path("iam-attach-role-policy", "Attach any managed policy to a role (including itself)",
          ("iam:AttachRolePolicy",), RHINO),
    _path("iam-put-user-policy", "Write an inline policy on a user", ("iam:PutUserPolicy",), RHINO),
    _path("iam-put-group-policy", "Write an inline policy on a group", ("iam:PutGroupPolicy",), RHINO),
    _path("iam-put-role-policy", "Write an inline policy on a role (including itself)",
          ("iam:PutRolePolicy",), RHINO),
    _path("iam-add-user-to-group", "Add a user to a more privileged group", ("iam:AddUserToGroup",), RHINO),
    _path("iam-update-assume-role-policy", "Rewrite a role's trust policy, then assume it",
          ("iam:UpdateAssumeRolePolicy", "sts:AssumeRole"), RHINO),
    _path("sts-assume-any-role", "Assume any role that trusts the account", ("sts:AssumeRole",), RHINO),
    _path("passrole-ec2", "Pass a role to a new EC2 instance", (PASS_ROLE, "ec2:RunInstances"), RHINO),
    _path("passrole-lambda-invoke", "Pass a role to a new Lambda function and invoke it",
          (PASS_ROLE, "lambda:CreateFunction", "lambda:InvokeFunction"), RHINO),
    _path("passrole-lambda-event-source", "Pass a role to a new Lambda function triggered by an event source",
          (PASS_ROLE, "lambda:CreateFunction", "lambda:CreateEventSourceMapping"), RHINO),
    _path("lambda-update-function-code", "Replace the code of a function that runs with a stronger role",
          ("lambda:UpdateFunctionCode",), RHINO),
    _path("passrole-glue-dev-endpoint", "Pass a role to a new Glue development endpoint",
          (PASS_ROLE, "glue:CreateDevEndpoint"), RHINO),
    _path("glue-update-dev-endpoint", "Add an SSH key to an existing Glue development endpoint",
          ("glue:UpdateDevEndpoint",), RHINO),
    _path("passrole-cloudformation", "Pass a role to a new CloudFormation stack",
          (PASS_ROLE, "cloudformation:CreateStack"), RHINO),
    _path("passrole-datapipeline", "Pass a role to a new Data Pipeline",
          (PASS_ROLE, "datapipeline:CreatePipeline", "datapipeline:PutPipelineDefinition"), RHINO),
    _path("passrole-codebuild", "Pass a role to a new CodeBuild project and start a build",
          (PASS_ROLE, "codebuild:CreateProject", "codebuild:StartBuild"), BISHOP_FOX),
    _path("passrole-sagemaker-notebook", "Pass a role to a new SageMaker notebook and open it",
          (PASS_ROLE, "sagemaker:CreateNotebookInstance", "sagemaker:CreatePresignedNotebookInstanceUrl"),
          BISHOP_FOX),
    _path("sagemaker-presigned-notebook-url", "Open an existing SageMaker notebook (and its role)",
          ("sagemaker:CreatePresignedNotebookInstanceUrl",), BISHOP_FOX),
    _path("ssm-send-command", "Run commands on instances (and use their roles)", ("ssm:SendCommand",),
          BISHOP_FOX),
    _path("ssm-start-session", "Open a shell on instances (and use their roles)", ("ssm:StartSession",),
          BISHOP_FOX),
    _path("ec2-instance-connect", "Push an SSH key to instances (and use their roles)",
          ("ec2-instance-connect:SendSSHPublicKey",), BISHOP_FOX),
    _path("passrole-ecs-task", "Pass a role to a new ECS task definition and run it",
          (PASS_ROLE, "ecs:RegisterTaskDefinition", "ecs:RunTask"), AWS_PASSROLE),
)  # fmt: skip


def _is_broad(grant: Grant) -> bool:
    """Granted on ``*`` or on a resource pattern whose resource part holds a wildcard."""
    for pattern in grant.resources:
        if pattern == "*":
            return True
        resource_part = pattern.split(":", 5)[-1]
        if "*" in resource_part or "?" in resource_part:
            return True
    return False


def escalation_findings(perms: EffectivePermissions) -> list[EscalationFinding]:
    """Open escalation paths with whether each depends on a condition."""
    out: list[EscalationFinding] = []
    for path in ESCALATION_PATHS:
        grants = [perms.get(a) for a in path.required]
        if any(g is None for g in grants):
            continue
        present = [g for g in grants if g is not None]
        if any(g.action in path.broad_resource and not _is_broad(g) for g in present):
            continue
        out.append(EscalationFinding(path, conditional=any(g.conditional for g in present)))
    return out


def escalation_paths(perms: EffectivePermissions) -> list[EscalationPath]:
    """Escalation paths open under ``perms`` (conditional grants count: a path might be open)."""
    return [f.path for f in escalation_findings(perms)]


def iam_admin_grants(perms: EffectivePermissions) -> list[Grant]:
    """IAM "Permissions management" grants on wildcard resources."""
    return sorted(
        (
            g
            for name, g in perms.grants.items()
            if name.startswith("iam:") and g.access_level == "Permissions management" and _is_broad(g)
        ),
        key=lambda g: g.action,
    )


def can_administer_iam(perms: EffectivePermissions) -> bool:
    """Can the principal change IAM permissions (Permissions management) on wildcard resources?"""
    return bool(iam_admin_grants(perms))


def unknown_path_actions() -> list[str]:
    """Actions named by :data:`ESCALATION_PATHS` that the catalog does not know (should be empty)."""
    cat = catalog()
    return sorted({a for p in ESCALATION_PATHS for a in p.required if cat.canonical(a) != a})
