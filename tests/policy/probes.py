"""A brute-force oracle for "grants nothing new": run the evaluator on many concrete requests (action,
resource, request context) and look for one the proposed policies allow and the current ones do not.

It shares nothing with the generator or the containment proof: it only asks the evaluator, request by request,
what IAM's evaluation logic says (identity policies + boundary, explicit Deny wins).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bot.policy.evaluate import Decision, Evaluator
from bot.policy.model import Policy, parse_policy

Context = Mapping[str, Any]


def policies(*docs: Mapping[str, Any]) -> list[Policy]:
    return [parse_policy(d, f"doc-{i + 1}") for i, d in enumerate(docs)]


def contexts(choices: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the given values per key (None = the key is absent from the request)."""
    keys = sorted(choices)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(choices[k] for k in keys))]


def widenings(current: Sequence[Policy], proposed: Sequence[Policy], boundary: Policy | None,
              actions: Iterable[str], resources: Iterable[str],
              request_contexts: Iterable[Context] = ({},)) -> list[tuple[str, str, dict[str, Any]]]:
    """Requests the proposal allows and the current policies do not (both under ``boundary``)."""
    before, after = Evaluator(current, boundary), Evaluator(proposed, boundary)
    found = []
    ctxs = list(request_contexts)
    for action in actions:
        for resource in resources:
            for ctx in ctxs:
                if (after.evaluate(action, resource, ctx) is Decision.ALLOWED
                        and before.evaluate(action, resource, ctx) is not Decision.ALLOWED):
                    found.append((action, resource, dict(ctx)))
    return found


def allowed(policy_set: Sequence[Policy], boundary: Policy | None, action: str, resource: str,
            ctx: Context | None = None) -> bool:
    return Evaluator(policy_set, boundary).evaluate(action, resource, ctx or {}) is Decision.ALLOWED


def documents(generated: Any) -> list[Policy]:
    return [parse_policy(d, f"proposed-{i + 1}") for i, d in enumerate(generated.documents)]


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}
