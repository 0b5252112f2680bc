"""A proposal as infrastructure code: JSON, Terraform (HCL) or CloudFormation (YAML). Pure: no I/O.

Roles defined in Terraform or CloudFormation must be changed there, or the next deployment puts the old
permissions back. :func:`render` turns the proposed documents into a snippet that replaces what the role holds:

* **Terraform**: one ``aws_iam_policy_document`` data source per document, with one ``statement`` block per
  statement (``sid``, ``effect``, ``actions``/``not_actions``, ``resources``/``not_resources``, one ``condition``
  block per operator and key), and either an ``aws_iam_role_policy`` (inline style) or an ``aws_iam_policy`` +
  ``aws_iam_role_policy_attachment`` (managed style) that uses it. Strings are HCL string literals: ``\\`` and
  ``"`` escaped, control characters as ``\\n``/``\\uNNNN``, a literal ``%{`` as ``%%{``. A policy variable
  ``${aws:username}`` is written ``&{aws:username}``, which the data source turns back into ``${...}`` (AWS
  provider documentation, ``aws_iam_policy_document``); since it turns *every* ``&{`` into ``${``, a document
  holding a literal ``&{`` (or any ``${`` under version ``2008-10-17``, where the provider refuses ``&{``) is
  written as ``jsonencode({...})`` instead, with ``${`` escaped as ``$${``.
* **CloudFormation**: a template with ``AWS::IAM::RolePolicy`` (inline style) or ``AWS::IAM::ManagedPolicy``
  (managed style, ``Roles: [!Ref ...]``) resources holding the documents as YAML mappings. ``${...}`` is literal
  in CloudFormation outside ``Fn::Sub``, and no ``!Sub`` is used, so policy variables are written as they are.
  The role is a parameter named after the role's logical ID when known (its ``aws:cloudformation:logical-id``
  tag), so ``!Ref`` resolves to the role's name both in this template and pasted into the role's own stack.

Both formats keep the statements in order, every Condition (values as strings, as IAM compares them), every
Deny, ``NotAction``/``NotResource`` and every document of a split proposal. Input documents are validated with
:func:`bot.policy.model.parse_policy` first; an invalid one raises :class:`bot.policy.model.PolicyError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from bot.policy.model import Policy, Statement, parse_policy

FORMATS = ("json", "terraform", "cloudformation")
#: File name extension of each format's snippet.
EXTENSIONS = {"json": "json", "terraform": "tf", "cloudformation": "yaml"}
#: AWS's limit on the total size of a role's inline policies (whitespace not counted).
INLINE_TOTAL_MAX_CHARS = 10240
INLINE = "inline"
MANAGED = "managed"


@dataclass(frozen=True)
class RoleTarget:
    """The role the snippet is for and what it holds today (so the snippet can say what it replaces)."""

    role_name: str
    account: str = ""
    proposal_id: str = ""
    style: str = MANAGED  # INLINE: aws_iam_role_policy / AWS::IAM::RolePolicy; MANAGED: a managed policy each
    policy_name_prefix: str = "tighten-"
    current_inline: tuple[str, ...] = ()  # inline policy names the role holds now
    current_managed: tuple[str, ...] = ()  # managed policy ARNs attached now
    current_names: tuple[str, ...] = ()  # policy names when their kind is not known (older proposals)
    logical_id: str | None = None  # the role's CloudFormation logical ID, when it carries the tag
    notes: tuple[str, ...] = field(default_factory=tuple)  # extra comment lines (e.g. "managed by stack X")


def choose_style(current_inline: Sequence[str], current_managed: Sequence[str],
                 documents: Sequence[dict[str, Any]]) -> str:
    """Inline when the role holds only inline policies today and the proposal fits AWS's inline total;
    otherwise one managed policy per document (as Tighten's own apply does)."""
    if current_inline and not current_managed:
        total = sum(len(re.sub(r"\s", "", json.dumps(d, separators=(",", ":")))) for d in documents)
        if total <= INLINE_TOTAL_MAX_CHARS:
            return INLINE
    return MANAGED


def policy_names(target: RoleTarget, count: int) -> list[str]:
    """``tighten-<role>``, ``tighten-<role>-2``, ... (the names Tighten's own apply uses)."""
    base = f"{target.policy_name_prefix}{target.role_name}"
    return [base if i == 0 else f"{base}-{i + 1}" for i in range(count)]


def render(documents: Sequence[dict[str, Any]], fmt: str, target: RoleTarget | None = None) -> str:
    """The snippet for ``documents`` in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "json":
        return render_json(documents)
    if target is None:
        raise ValueError(f"format {fmt!r} needs the role the policy is for")
    if fmt == "terraform":
        return render_terraform(documents, target)
    if fmt == "cloudformation":
        return render_cloudformation(documents, target)
    raise ValueError(f"unknown format {fmt!r} (expected one of: {', '.join(FORMATS)})")


def render_json(documents: Sequence[dict[str, Any]]) -> str:
    """One document as an object, several as a list (as ``tighten generate`` prints them)."""
    for i, doc in enumerate(documents):
        parse_policy(doc, f"document {i + 1}")
    payload: Any = documents[0] if len(documents) == 1 else list(documents)
    return json.dumps(payload, indent=2) + "\n"


# -- Terraform ------------------------------------------------------------------------------------------
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SIMPLE_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def hcl_string(text: str, *, variables: str = "ampersand") -> str:
    """``text`` as an HCL quoted string literal. ``variables``: how ``${`` is written -- ``"ampersand"``
    (``&{``, inside ``aws_iam_policy_document``) or ``"escape"`` (``$${``, a literal anywhere else)."""
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    out = _CONTROL.sub(lambda m: _SIMPLE_ESCAPES.get(m.group(), f"\\u{ord(m.group()):04x}"), out)
    out = out.replace("%{", "%%{")
    out = out.replace("${", "&{" if variables == "ampersand" else "$${")
    return f'"{out}"'


def _hcl_list(values: Sequence[str], variables: str) -> str:
    return "[" + ", ".join(hcl_string(v, variables=variables) for v in values) + "]"


def _label(text: str) -> str:
    """A Terraform block label: letters, digits, ``_`` and ``-``, not starting with a digit."""
    label = re.sub(r"[^A-Za-z0-9_-]", "_", text)
    return label if re.match(r"[A-Za-z_]", label) else f"_{label}"


def _needs_jsonencode(policy: Policy) -> bool:
    strings = [s for st in policy.statements for s in _statement_strings(st)]
    if any("&{" in s for s in strings):
        return True
    return policy.version == "2008-10-17" and any("${" in s for s in strings)


def _statement_strings(st: Statement) -> list[str]:
    out = [*(st.actions or ()), *(st.not_actions or ()), *(st.resources or ()), *(st.not_resources or ())]
    for block in (st.conditions or {}).values():
        for values in block.values():
            out.extend(values)
    return out


def _tf_statement(st: Statement) -> list[str]:
    lines = ["  statement {"]
    if st.sid is not None:
        lines.append(f"    sid    = {hcl_string(st.sid, variables='escape')}")
    lines.append(f"    effect = {hcl_string(st.effect, variables='escape')}")
    for key, values in (("actions", st.actions), ("not_actions", st.not_actions),
                        ("resources", st.resources), ("not_resources", st.not_resources)):
        if values is not None:
            lines.append(f"    {key} = {_hcl_list(values, 'ampersand')}")
    for operator, block in (st.conditions or {}).items():
        for key, values in block.items():
            lines += ["", "    condition {",
                      f"      test     = {hcl_string(operator, variables='escape')}",
                      f"      variable = {hcl_string(key, variables='escape')}",
                      f"      values   = {_hcl_list(values, 'ampersand')}",
                      "    }"]
    lines.append("  }")
    return lines


def _hcl_value(value: Any, indent: int) -> str:
    """A JSON value as an HCL expression for ``jsonencode`` (strings with ``${`` escaped as ``$${``)."""
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        inner = [f"{pad}  {hcl_string(str(k), variables='escape')} = {_hcl_value(v, indent + 1)}"
                 for k, v in value.items()]
        return "{\n" + "\n".join(inner) + f"\n{pad}}}"
    if isinstance(value, list):
        if not value:
            return "[]"
        inner = [f"{pad}  {_hcl_value(v, indent + 1)}," for v in value]
        return "[\n" + "\n".join(inner) + f"\n{pad}]"
    return hcl_string(value if isinstance(value, str) else json.dumps(value), variables="escape")


def _document_from_model(policy: Policy, raw: dict[str, Any]) -> dict[str, Any]:
    """The document with every value a string (as the data source produces it), Id kept."""
    from bot.policy.model import statement_to_dict

    doc: dict[str, Any] = {"Version": policy.version}
    if isinstance(raw.get("Id"), str):
        doc["Id"] = raw["Id"]
    doc["Statement"] = [statement_to_dict(st) for st in policy.statements]
    return doc


def _header(target: RoleTarget, comment: str, documents: int) -> list[str]:
    who = f"role {target.role_name}" + (f" (account {target.account})" if target.account else "")
    first = f"Tighten proposal {target.proposal_id} for {who}" if target.proposal_id else f"Tighten policy for {who}"
    lines = [f"{comment} {first}: {documents} policy document(s), least privilege from CloudTrail usage."]
    lines += [f"{comment} {note}" for note in target.notes]
    removals = ([f"the inline policy {name!r}" for name in target.current_inline]
                + [f"the managed policy {arn} (detach it)" for arn in target.current_managed]
                + [f"the policy {name!r}" for name in target.current_names])
    if removals:
        lines.append(f"{comment} It replaces what the role holds today. Remove from the role's definition:")
        lines += [f"{comment}   - {item}" for item in removals]
    lines.append(f"{comment} Deploy it through your pipeline; Tighten sees the change at its next inventory and "
                 "closes the proposal.")
    return lines


def render_terraform(documents: Sequence[dict[str, Any]], target: RoleTarget) -> str:
    """Terraform HCL: data sources + role policy resources (see the module docstring)."""
    policies = [parse_policy(doc, f"document {i + 1}") for i, doc in enumerate(documents)]
    names = policy_names(target, len(policies))
    base = _label(f"tighten_{target.role_name}")
    labels = [base if i == 0 else f"{base}_{i + 1}" for i in range(len(policies))]
    lines = _header(target, "#", len(policies))
    if target.style == INLINE:
        lines.append("# Inline policies of the role (aws_iam_role_policy); with an inline_policy block on "
                     "aws_iam_role, put the same documents there instead.")
    else:
        lines.append("# Customer managed policies attached to the role; with managed_policy_arns on aws_iam_role, "
                     "list these ARNs there instead of the attachments.")
    role = hcl_string(target.role_name, variables="escape")
    for policy, raw, name, label in zip(policies, documents, names, labels, strict=True):
        if _needs_jsonencode(policy):
            doc_ref = "jsonencode(" + _hcl_value(_document_from_model(policy, raw), 1) + ")"
            lines.append("")
            lines.append(f"# {name}: written with jsonencode because it holds '&{{' or a 2008-10-17 '${{', "
                         "which aws_iam_policy_document would change.")
        else:
            lines += ["", f'data "aws_iam_policy_document" "{label}" {{',
                      f"  version = {hcl_string(policy.version, variables='escape')}"]
            if isinstance(raw.get("Id"), str):
                lines.append(f"  policy_id = {hcl_string(raw['Id'], variables='escape')}")
            for st in policy.statements:
                lines.append("")
                lines += _tf_statement(st)
            lines.append("}")
            doc_ref = f"data.aws_iam_policy_document.{label}.json"
        policy_name = hcl_string(name, variables="escape")
        if target.style == INLINE:
            lines += ["", f'resource "aws_iam_role_policy" "{label}" {{', f"  name   = {policy_name}",
                      f"  role   = {role}", f"  policy = {doc_ref}", "}"]
        else:
            lines += ["", f'resource "aws_iam_policy" "{label}" {{', f"  name   = {policy_name}",
                      f"  policy = {doc_ref}", "}",
                      "", f'resource "aws_iam_role_policy_attachment" "{label}" {{', f"  role       = {role}",
                      f"  policy_arn = aws_iam_policy.{label}.arn", "}"]
    return "\n".join(lines) + "\n"


# -- CloudFormation --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ref:
    """``!Ref name`` in the YAML output."""

    name: str


class _CfnDumper(yaml.SafeDumper):
    pass


def _represent_ref(dumper: yaml.SafeDumper, ref: Ref) -> yaml.Node:
    return dumper.represent_scalar("!Ref", ref.name)


_CfnDumper.add_representer(Ref, _represent_ref)


def _logical_id(text: str) -> str:
    """A CloudFormation logical ID: ASCII letters and digits only."""
    parts = re.split(r"[^A-Za-z0-9]+", text)
    out = "".join(p[:1].upper() + p[1:] for p in parts if p)
    return out if out and out[0].isalpha() else f"R{out}"


def _cfn_document(policy: Policy, raw: dict[str, Any]) -> dict[str, Any]:
    return _document_from_model(policy, raw)


def render_cloudformation(documents: Sequence[dict[str, Any]], target: RoleTarget) -> str:
    """CloudFormation YAML: one role policy resource per document (see the module docstring)."""
    policies = [parse_policy(doc, f"document {i + 1}") for i, doc in enumerate(documents)]
    names = policy_names(target, len(policies))
    parameter = _logical_id(target.logical_id) if target.logical_id else "RoleName"
    base = _logical_id(f"Tighten {target.role_name}")
    resources: dict[str, Any] = {}
    for i, (policy, raw, name) in enumerate(zip(policies, documents, names, strict=True)):
        logical = f"{base}Policy" if i == 0 else f"{base}Policy{i + 1}"
        document = _cfn_document(policy, raw)
        if target.style == INLINE:
            resources[logical] = {"Type": "AWS::IAM::RolePolicy", "Properties": {
                "PolicyName": name, "RoleName": Ref(parameter), "PolicyDocument": document}}
        else:
            resources[logical] = {"Type": "AWS::IAM::ManagedPolicy", "Properties": {
                "ManagedPolicyName": name, "Roles": [Ref(parameter)], "PolicyDocument": document}}
    where = (f"the role's logical ID in its stack ({target.logical_id}): pasted into that stack, drop this "
             "parameter and !Ref resolves to the role") if target.logical_id else "the role's name"
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": (f"Tighten proposal {target.proposal_id} for role {target.role_name}" if target.proposal_id
                        else f"Tighten policy for role {target.role_name}")[:1024],
        "Parameters": {parameter: {"Type": "String", "Default": target.role_name,
                                   "Description": f"Name of the role; named after {where}"[:4000]}},
        "Resources": resources,
    }
    header = _header(target, "#", len(policies))
    body = yaml.dump(template, Dumper=_CfnDumper, sort_keys=False, default_flow_style=False, width=100_000,
                     allow_unicode=False)
    return "\n".join(header) + "\n" + body


def target_from_record(*, role_name: str, account: str, proposal_id: str, documents: Sequence[dict[str, Any]],
                       iac: dict[str, Any], current_names: Sequence[str] = (),
                       policy_name_prefix: str = "tighten-") -> RoleTarget:
    """The snippet target of a stored proposal: ``iac`` is its record (``role_inline``/``role_managed``, what
    the role held; ``managed``, why it is managed as code). Older records without the kinds list the current
    policy names instead."""
    inline = tuple(iac.get("role_inline") or ())
    managed = tuple(iac.get("role_managed") or ())
    known = "role_inline" in iac or "role_managed" in iac
    why = iac.get("managed") or {}
    notes = (f"The role is managed as code: {why['reason']}.",) if why.get("reason") else ()
    return RoleTarget(role_name=role_name, account=account, proposal_id=proposal_id,
                      style=choose_style(inline, managed, documents), policy_name_prefix=policy_name_prefix,
                      current_inline=inline, current_managed=managed,
                      current_names=() if known else tuple(current_names), logical_id=why.get("logical_id"),
                      notes=notes)
