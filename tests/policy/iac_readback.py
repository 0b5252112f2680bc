"""Reading Terraform and CloudFormation snippets back into IAM policy documents, independently of the emitter
(``bot/policy/iac.py``): HCL is parsed by python-hcl2, YAML by PyYAML with a loader that knows CloudFormation's
short-form tags; what each tool then does to the strings is written here from its documentation:

* HCL quoted templates (HCL native syntax spec, "Template Expressions"): ``$${`` is a literal ``${`` and
  ``%%{`` a literal ``%{``; an unescaped ``${`` or ``%{`` is an interpolation or directive, which no policy
  string of ours may contain. (python-hcl2 already resolves backslash escapes.)
* ``aws_iam_policy_document`` (AWS provider docs): every ``&{`` in actions, resources and condition values
  becomes ``${``; statements keep their order; ``Sid`` is omitted when empty, ``Effect`` defaults to Allow;
  condition blocks are merged per test and variable into ``Condition``.
* CloudFormation: ``${...}`` is literal except inside ``Fn::Sub``; short-form ``!Tag value`` means
  ``{"Fn::Tag": value}`` (``!Ref`` -> ``{"Ref": ...}``, ``!Condition`` -> ``{"Condition": ...}``).
"""

from __future__ import annotations

import re
from typing import Any

import hcl2
import yaml
from hcl2 import SerializationOptions

_OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)


class Unreadable(AssertionError):
    pass


# -- HCL ----------------------------------------------------------------------------------------------------
def hcl_literal(text: str) -> str:
    """A quoted HCL string's value after template processing; fails on any interpolation or directive."""
    out = []
    i = 0
    while i < len(text):
        for escaped, literal in (("$${", "${"), ("%%{", "%{")):
            if text.startswith(escaped, i):
                out.append(literal)
                i += 3
                break
        else:
            if text.startswith("${", i) or text.startswith("%{", i):
                raise Unreadable(f"template sequence in a policy string: {text!r}")
            out.append(text[i])
            i += 1
    return "".join(out)


def _provider_string(text: str) -> str:
    return hcl_literal(text).replace("&{", "${")


def _blocks(parsed: dict[str, Any], kind: str, type_name: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for entry in parsed.get(kind, []):
        for name, body in entry.get(type_name, {}).items():
            if name in out:
                raise Unreadable(f"duplicate {kind} {type_name}.{name}")
            out[name] = body
    return out


def _one(value: Any) -> Any:
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def _document_from_data_source(body: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {"Version": hcl_literal(body.get("version", "2012-10-17"))}
    if "policy_id" in body:
        doc["Id"] = hcl_literal(body["policy_id"])
    statements = []
    for st in body.get("statement", []):
        out: dict[str, Any] = {}
        if st.get("sid"):
            out["Sid"] = hcl_literal(st["sid"])
        out["Effect"] = hcl_literal(st.get("effect", "Allow"))
        for key, name in (("actions", "Action"), ("not_actions", "NotAction"), ("resources", "Resource"),
                          ("not_resources", "NotResource")):
            if key in st:
                out[name] = _one([_provider_string(v) for v in st[key]])
        conditions: dict[str, dict[str, list[str]]] = {}
        for cond in st.get("condition", []):
            values = conditions.setdefault(hcl_literal(cond["test"]), {}).setdefault(hcl_literal(cond["variable"]), [])
            values.extend(_provider_string(v) for v in cond["values"])
        if conditions:
            out["Condition"] = {op: {k: _one(v) for k, v in block.items()} for op, block in conditions.items()}
        statements.append(out)
    doc["Statement"] = statements
    return doc


def _unescape_json_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {hcl_literal(k): _unescape_json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unescape_json_value(v) for v in value]
    return hcl_literal(value) if isinstance(value, str) else value


_REF = re.compile(r"^\$\{data\.aws_iam_policy_document\.([A-Za-z0-9_-]+)\.json\}$")
_JSONENCODE = re.compile(r"^\$\{jsonencode\((.*)\)\}$", re.S)


def _policy_argument(value: str, data: dict[str, dict[str, Any]]) -> dict[str, Any]:
    ref = _REF.match(value)
    if ref:
        return _document_from_data_source(data[ref.group(1)])
    encoded = _JSONENCODE.match(value)
    if encoded:
        return _unescape_json_value(hcl2.loads("x = " + encoded.group(1), serialization_options=_OPTIONS)["x"])
    raise Unreadable(f"policy is neither a data source reference nor jsonencode: {value[:80]!r}")


def terraform_policies(text: str) -> list[dict[str, Any]]:
    """``[{"kind": "inline"|"managed", "name", "role", "document"}]`` in resource order. Every managed policy
    must be attached by exactly one attachment to the same role."""
    parsed = hcl2.loads(text, serialization_options=_OPTIONS)
    data = _blocks(parsed, "data", "aws_iam_policy_document")
    inline = _blocks(parsed, "resource", "aws_iam_role_policy")
    managed = _blocks(parsed, "resource", "aws_iam_policy")
    attachments = _blocks(parsed, "resource", "aws_iam_role_policy_attachment")
    out = [{"kind": "inline", "name": hcl_literal(body["name"]), "role": hcl_literal(body["role"]),
            "document": _policy_argument(body["policy"], data)} for body in inline.values()]
    for label, body in managed.items():
        attached = [a for a in attachments.values() if a["policy_arn"] == f"${{aws_iam_policy.{label}.arn}}"]
        if len(attached) != 1:
            raise Unreadable(f"aws_iam_policy.{label} has {len(attached)} attachments")
        out.append({"kind": "managed", "name": hcl_literal(body["name"]), "role": hcl_literal(attached[0]["role"]),
                    "document": _policy_argument(body["policy"], data)})
    if len(attachments) != len(managed):
        raise Unreadable("an attachment refers to no policy of the snippet")
    return out


# -- CloudFormation YAML --------------------------------------------------------------------------------------
class CfnLoader(yaml.SafeLoader):
    """PyYAML's safe loader plus CloudFormation's short-form intrinsic functions."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _intrinsic)


def _find(value: Any, key: str) -> bool:
    if isinstance(value, dict):
        return key in value or any(_find(v, key) for v in value.values())
    if isinstance(value, list):
        return any(_find(v, key) for v in value)
    return False


def cloudformation_policies(text: str) -> list[dict[str, Any]]:
    """``[{"kind", "name", "role", "document"}]`` in resource order; the role is the ``Default`` of the
    parameter the resource refers to with ``Ref``."""
    template = yaml.load(text, Loader=CfnLoader)  # noqa: S506 - a SafeLoader subclass
    parameters = template.get("Parameters", {})
    out = []
    for logical_id, resource in template["Resources"].items():
        props = resource["Properties"]
        document = props["PolicyDocument"]
        if _find(document, "Fn::Sub"):
            raise Unreadable(f"{logical_id}: Fn::Sub in a policy document would substitute ${{...}}")
        if resource["Type"] == "AWS::IAM::RolePolicy":
            kind, name, refs = "inline", props["PolicyName"], [props["RoleName"]]
        elif resource["Type"] == "AWS::IAM::ManagedPolicy":
            kind, name, refs = "managed", props["ManagedPolicyName"], props["Roles"]
        else:
            raise Unreadable(f"{logical_id}: unexpected type {resource['Type']}")
        if len(refs) != 1 or set(refs[0]) != {"Ref"}:
            raise Unreadable(f"{logical_id}: role is not one Ref: {refs}")
        out.append({"kind": kind, "name": name, "role": parameters[refs[0]["Ref"]]["Default"],
                    "document": document})
    return out
