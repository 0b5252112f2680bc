"""Replay observed calls against a policy: would it allow every call the principal made? (pure: no I/O)

Used by ``tighten verify`` (calls read from CloudTrail) and by every scan before a proposal is stored
(calls from the usage index). The policy evaluator (:mod:`bot.policy.evaluate`) decides each distinct
(action, resource) once.

What counts as denied:

* ``IMPLICIT_DENY`` or ``EXPLICIT_DENY`` for any (action, resource) a call needed: the call is denied.
* ``CONDITIONAL`` (a Condition the offline replay cannot evaluate: the request context of the original call is
  not kept) is not a denial: the call succeeded once under the same conditions. Such uses are counted
  (:attr:`ReplayResult.conditional`) and reported.
* A resource that was not observable (``None``) could have been any resource the call may touch. It is
  replayed as every *probe* pattern for the action: by default the action's ARN formats with every variable a
  wildcard, in the call's partition and account (``arn:aws:iam::123456789012:role/*`` for ``iam:PassRole``;
  ``arn:aws:s3:::*/*`` for an object); with ``unknown_scope`` (the scan passes the current policy's resource
  patterns for the action), those patterns instead. The policy must allow each probe as a literal resource,
  so a narrower grant than the probe is a denial. This is conservative on purpose. A current pattern ``*``
  is narrowed to the action's ARN formats (a call can only touch resources of its action's types).
* A resource that is itself a pattern (``arn:aws:ec2:r:a:instance/*`` for a new instance,
  ``secret:name-??????``) is replayed literally: a policy allows it when one of its patterns covers it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.policy.catalog import catalog
from bot.policy.evaluate import Decision, Evaluator, action_regex
from bot.policy.model import Policy

#: (action, call) -> resource patterns an unobserved resource of that call may be
UnknownScope = Callable[[str, "ReplayCall"], Sequence[str]]


@dataclass(frozen=True, slots=True)
class ReplayCall:
    """One successful call, or ``count`` identical ones: the (action, resource) pairs it needed.

    ``resource`` None means the resource was not observable in the log. ``days`` are the UTC days the calls
    happened on (empty: the day of ``time``).
    """

    uses: tuple[tuple[str, str | None], ...]
    event: str = ""  # CloudTrail eventName, "" for calls aggregated from the usage index
    time: str = ""  # event time, or the last time for aggregated calls
    count: int = 1
    account: str = ""
    partition: str = "aws"
    days: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DeniedCall:
    event: str
    time: str
    action: str
    resource: str  # the resource, or the probe pattern an unobserved resource was replayed as
    decision: str  # "implicit_deny" | "explicit_deny"
    count: int = 1
    observed: bool = True  # False: the resource was not in the log (replayed as a probe)

    def line(self) -> str:
        what = self.resource if self.observed else f"{self.resource} (resource not in the log)"
        when = f" {self.time}" if self.time else ""
        name = self.event or "(calls)"
        times = f" x{self.count}" if self.count > 1 else ""
        return f"{name}{when} {self.action} {what}: {self.decision.replace('_', ' ')}{times}"

    def as_dict(self) -> dict[str, Any]:
        return {"event": self.event, "time": self.time, "action": self.action, "resource": self.resource,
                "decision": self.decision, "count": self.count, "observed": self.observed}


@dataclass
class ReplayResult:
    calls: int = 0  # calls replayed (each call once, however many actions it needed)
    days: int = 0  # distinct UTC days those calls happened on
    checked: int = 0  # distinct (action, resource) requests decided
    conditional: int = 0  # requests allowed only under a condition the replay cannot evaluate
    denied: list[DeniedCall] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.denied

    @property
    def denied_calls(self) -> int:
        return sum(d.count for d in self.denied)

    def summary(self) -> str:
        """``replayed 1,204 calls from 88 days: all allowed`` (or ``: 3 denied``)."""
        days = f"{self.days} day" + ("" if self.days == 1 else "s")
        calls = f"{self.calls:,} call" + ("" if self.calls == 1 else "s")
        verdict = "all allowed" if self.ok else f"{len(self.denied)} denied"
        return f"replayed {calls} from {days}: {verdict}"

    def as_check(self) -> dict[str, Any]:
        """What a proposal records in ``checks["replay"]``."""
        out: dict[str, Any] = {"calls": self.calls, "days": self.days, "denied": len(self.denied)}
        if self.conditional:
            out["conditional"] = self.conditional
        return out


def replay(calls: Iterable[ReplayCall], policies: Sequence[Policy], boundary: Policy | None = None, *,
           unknown_scope: UnknownScope | None = None, limit: int = 200) -> ReplayResult:
    """Replay ``calls`` against the identity ``policies`` (and ``boundary``). At most ``limit`` denied
    (action, resource) pairs are listed (each once, with the number of calls that needed it)."""
    evaluator = Evaluator(policies, boundary)
    decided: dict[tuple[str, str], Decision] = {}
    result = ReplayResult()
    days: set[str] = set()
    denied: dict[tuple[str, str, bool], DeniedCall] = {}
    for call in calls:
        result.calls += call.count
        days.update(call.days or ((call.time[:10],) if call.time else ()))
        for action, resource in call.uses:
            observed = resource is not None
            requests = [resource] if resource is not None else _probes(action, call, unknown_scope)
            for request in requests:
                key = (action, request)
                decision = decided.get(key)
                if decision is None:
                    decision = decided[key] = evaluator.evaluate(action, request)
                    result.checked += 1
                    if decision is Decision.CONDITIONAL:
                        result.conditional += 1
                if decision in (Decision.IMPLICIT_DENY, Decision.EXPLICIT_DENY):
                    dkey = (action, request, observed)
                    known = denied.get(dkey)
                    if known is not None:
                        denied[dkey] = DeniedCall(known.event, known.time, action, request, known.decision,
                                                  known.count + call.count, observed)
                    elif len(denied) < limit:
                        denied[dkey] = DeniedCall(call.event, call.time, action, request, decision.value,
                                                  call.count, observed)
    result.days = len(days)
    result.denied = sorted(denied.values(), key=lambda d: (d.time, d.event, d.action, d.resource))
    return result


def _probes(action: str, call: ReplayCall, unknown_scope: UnknownScope | None) -> list[str]:
    formats = format_probes(action, call.partition or "aws", call.account)
    if unknown_scope is not None:
        scoped = {p for p in unknown_scope(action, call) if p}
        if scoped:
            # "*" is narrowed to what the action can touch at all (its ARN formats in the call's account)
            return sorted((scoped - {"*"}) | (set(formats) if "*" in scoped else set()))
    return formats


def format_probes(action: str, partition: str, account: str) -> list[str]:
    """The action's ARN formats with every variable a wildcard, in ``partition`` and ``account`` (any account
    when unknown); ``["*"]`` for an action that takes no resource ARN."""
    out = []
    for rt in catalog().arn_formats(action):
        arn = rt.arn.replace("${Partition}", partition).replace("${Account}", account or "*")
        while "${" in arn:
            start = arn.index("${")
            arn = arn[:start] + "*" + arn[arn.index("}", start) + 1:]
        out.append(arn)
    return sorted(set(out)) or ["*"]


def scope_of(policies: Sequence[Policy]) -> UnknownScope:
    """``unknown_scope`` from a principal's current policies: the resource patterns of every Allow statement
    that names the action (``*`` for a NotResource statement). A call whose resource was not logged succeeded
    under these, so it touched a resource inside them."""
    allows = [st for p in policies for st in p.statements if st.is_allow]
    memo: dict[str, list[str]] = {}

    def scope(action: str, call: ReplayCall) -> list[str]:
        found = memo.get(action)
        if found is None:
            found = []
            for st in allows:
                hit = any(action_regex(p).fullmatch(action) for p in st.action_patterns)
                if st.actions is None:  # NotAction
                    hit = not hit
                if hit:
                    found.extend(["*"] if st.resources is None else st.resource_patterns)
            memo[action] = found = sorted(set(found))
        return found

    return scope
