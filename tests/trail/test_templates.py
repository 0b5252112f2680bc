"""Template evaluators read only the request keys they declare, and the key guards never change a result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.trail.normalize import Normalizer, load_event_map
from bot.trail.reader import Unreadable, iter_raw_records
from bot.trail.sources import iter_log_objects
from bot.trail.templates import compile_arn, compile_template, top_level_keys

CTX = ("aws", "eu-west-1", "111122223333")
RESERVATION = "arn:${Partition}:ec2:${Region}:${Account}:capacity-reservation/${CapacityReservationId}"


def _templates(entry: dict[str, Any]) -> list[str]:
    return [t for t in [entry.get("o"), *entry.get("v", {}).values(), *entry.get("r", {}).values()]
            if t and ("${" in t or "%%" in t)]


def test_templates_read_only_their_top_level_keys(samples_dir: Path) -> None:
    """Each template of the events in the bundled samples yields the same values from the request parameters
    cut down to :func:`top_level_keys` as from the whole request: the guards that skip a template when none of
    those keys is present rest on this (and the SQL sources keep only these keys)."""
    normalizer = Normalizer()
    events = load_event_map()["events"]
    compiled: dict[str, Any] = {}
    checked = 0
    for obj in iter_log_objects(str(samples_dir)):
        try:
            raws = [r for r in iter_raw_records(obj.read(), obj.key) if r.__class__ is dict]
        except Unreadable:
            continue
        for raw in raws:
            params, source, name = raw.get("requestParameters"), raw.get("eventSource"), raw.get("eventName")
            if params.__class__ is not dict or not isinstance(source, str) or not isinstance(name, str):
                continue
            prefix = normalizer.service_prefix(source)
            for entry in events.get(prefix or "", {}).get(name.lower(), []):
                for template in _templates(entry):
                    if template not in compiled:
                        compiled[template] = (compile_template(template)[0], set(top_level_keys(template)))
                    fn, keys = compiled[template]
                    cut = {k: v for k, v in params.items() if k in keys}
                    assert fn(cut, CTX) == fn(params, CTX), (template, params)
                    checked += 1
    assert checked > 1000 and len(compiled) > 100


def test_a_variable_that_needs_an_absent_nested_parameter_builds_nothing() -> None:
    fn, _ = compile_arn(RESERVATION, {"CapacityReservationId": "${CapacityReservationSpecification."
                                                               "CapacityReservationTarget.CapacityReservationId}"})
    assert fn({"instanceType": "t3.micro"}, CTX) == []
    assert fn({"capacityReservationSpecification": None}, CTX) == []  # present but null: nothing either
    spec = {"capacityReservationSpecification": {"capacityReservationTarget": {"capacityReservationId": "cr-1"}}}
    assert fn(spec, CTX) == ["arn:aws:ec2:eu-west-1:111122223333:capacity-reservation/cr-1"]


def test_a_variable_with_a_value_of_its_own_is_built_without_its_parameter() -> None:
    """``%%iftruthy%..%yes%no%%`` gives ``no`` when the parameter is absent: no guard may skip it."""
    fn, _ = compile_arn(RESERVATION, {"CapacityReservationId": "%%iftruthy%${Reservation.Id}%cr-given%cr-none%%"})
    assert fn({}, CTX) == ["arn:aws:ec2:eu-west-1:111122223333:capacity-reservation/cr-none"]
    assert fn({"reservation": {"id": "x"}}, CTX) == ["arn:aws:ec2:eu-west-1:111122223333:capacity-reservation/cr-given"]
    lists, _ = compile_arn(RESERVATION, {"CapacityReservationId": "%%iftruthy%${Reservations[]}%*%%%"})
    assert lists({}, CTX) == []
    # an EC2 list is also read under the query API's member names (reservationsSet.items[]...)
    assert lists({"reservationSet": {"items": [{"reservationId": "r-1"}]}}, CTX) == [
        "arn:aws:ec2:eu-west-1:111122223333:capacity-reservation/*"]
