"""Which request/response keys a SQL source must keep per event source, derived from the event map.

The grouped query (``usage.sql``) keeps, for each eventSource, only the top-level keys of
``requestParameters`` and ``responseElements`` that the normalizer can read for that service; every other key
(pagination tokens, encryption contexts, session names, item keys, ...) only tells calls apart and is dropped
before grouping. The list is a superset of what the normalizer reads, derived from the same data it runs on:

* every template of the derived event map (``bot/trail/data/event_map.json.gz``) for the service: resource
  variables, ARN overrides, condition parameters (:func:`bot.trail.templates.parameter_keys`);
* every ARN-format variable of the service's actions in the IAM catalog (the normalizer fills an unmapped
  action's ARN from the request parameter named like the variable);
* the keys the normalizer's service quirks read (``bot.trail.normalize.QUIRK_KEYS``) and the map's tag
  parameters (tag-on-create is granted only when the request carries tags).

An event source the normalizer would map to no catalog service is absent from the table; the query then keeps
its whole request and response (and the normalizer skips the event as ``unknown_event_source``).
"""

from __future__ import annotations

import functools
from collections import defaultdict

from bot.policy.catalog import Catalog, catalog
from bot.trail.normalize import QUIRK_KEYS, load_event_map
from bot.trail.templates import format_variables, parameter_keys

_CONTEXT_VARIABLES = frozenset({"Partition", "Region", "Account"})


def service_keys(cat: Catalog | None = None) -> dict[str, frozenset[str]]:
    """IAM service prefix -> lower-cased top-level parameter keys the normalizer may read for it."""
    cat = cat if cat is not None else catalog()
    emap = load_event_map()
    keys: dict[str, set[str]] = defaultdict(set)
    for prefix, events in emap["events"].items():
        for entries in events.values():
            for entry in entries:
                texts = [entry.get("o") or "", *entry.get("v", {}).values(), *entry.get("r", {}).values()]
                cond = entry.get("c")
                if cond:
                    texts.append("${" + cond[0] + "}")
                for text in texts:
                    keys[prefix] |= parameter_keys(text)
    for prefix in cat.services:
        for action in cat.actions_of(prefix):
            for rt in cat.arn_formats(action.full_name):
                names = [v for v in format_variables(rt.arn) if v not in _CONTEXT_VARIABLES]
                for name in names:
                    keys[prefix] |= parameter_keys("${" + name + "}")
    # keys the service quirks read, and the tag parameters that decide tag-on-create, for every service
    tags = {name.lower() for name in emap.get("tag_parameters", ())}
    for prefix in set(keys) | set(cat.services):
        keys[prefix] |= tags | QUIRK_KEYS.get(prefix, frozenset())
    return {prefix: frozenset(names) for prefix, names in keys.items()}


@functools.lru_cache(maxsize=1)
def kept_fields() -> dict[str, tuple[str, ...]]:
    """eventSource -> sorted keys to keep, for every event source the normalizer maps to a catalog service.

    Sources come from the map's renames (``monitoring.amazonaws.com`` -> ``cloudwatch``) and the
    ``<prefix>.amazonaws.com`` default the normalizer falls back to.
    """
    cat = catalog()
    per_service = service_keys(cat)
    renames: dict[str, str] = load_event_map()["event_sources"]
    out: dict[str, tuple[str, ...]] = {}
    for prefix in cat.services:
        source = f"{prefix}.amazonaws.com"
        if source not in renames:
            out[source] = tuple(sorted(per_service.get(prefix, ())))
    for source, prefix in renames.items():
        if cat.has_service(prefix):
            out[source] = tuple(sorted(per_service.get(prefix.lower(), ())))
    return dict(sorted(out.items()))
