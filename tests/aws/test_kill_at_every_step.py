"""The process is killed right before, and right after, each AWS call of an apply and of a rollback; a fresh
process then finishes what was interrupted (once the dead one's lease has expired). Every single time the role
ends either fully applied or fully restored, byte for byte: the inline policy's exact text, the managed policies,
and no ``tighten-*`` policy left behind after a restore.

The kill is a ``BaseException`` raised from botocore's ``before-call``/``after-call`` events of the real client
talking to moto_server ("after" = IAM did the call, the process never saw the answer). Dying right after a read
is the same as dying right before the next call, so "after" is exercised for every write and for the last call
(after which only the store is written)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.handlers import json_decode_policies

from bot.aws.apply import resume_incomplete, rollback_change, start_change
from bot.aws.inventory import get_role_snapshot
from bot.store import changes as cs
from bot.store.changes import ChangeStore
from bot.store.db import open_db
from bot.util.clock import utcnow
from tests.aws.conftest import ADMIN, INLINE, PROPOSED, TRUST
from tests.aws.test_rollback_keeps_others import role_state

PRETTY = json.dumps(INLINE, indent=2) + "\n"


class Killed(BaseException):
    """The process dies here (not an Exception: nothing in the code under test may catch it)."""


class KillAt:
    """Raise :class:`Killed` at the ``n``-th IAM call (counting from 1), before or after it reaches IAM."""

    def __init__(self, iam: Any, n: int, when: str) -> None:
        self.iam, self.n, self.when, self.seen = iam, n, when, 0
        self.names: list[str] = []

    def __enter__(self) -> KillAt:
        self.iam.meta.events.register(f"{self.when}-call.iam", self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.iam.meta.events.unregister(f"{self.when}-call.iam", self)

    def __call__(self, model: Any, **_: Any) -> None:
        self.seen += 1
        self.names.append(model.name)
        if self.seen == self.n:
            raise Killed(f"{self.when} call {self.n}")


def kill_points(iam: Any, run: Callable[[], Any]) -> list[tuple[int, str]]:
    """(call number, before|after) for every call ``run`` makes: before each; after each write and the last."""
    counter = KillAt(iam, 0, "before")
    with counter:
        run()
    points = []
    for n, name in enumerate(counter.names, 1):
        points.append((n, "before"))
        if not name.startswith(("Get", "List")) or n == len(counter.names):
            points.append((n, "after"))
    return points


def make_role(iam: Any, name: str) -> None:
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))
    iam.attach_role_policy(RoleName=name, PolicyArn=ADMIN)
    iam.put_role_policy(RoleName=name, PolicyName="legacy", PolicyDocument=PRETTY)


def restored(raw: Any, name: str) -> bool:
    return (role_state(raw, name) == {"attached": [ADMIN], "inline": {"legacy": PRETTY}, "boundary": None}
            and not _policy_exists(raw, f"tighten-{name}"))


def applied(raw: Any, name: str) -> bool:
    arn = f"arn:aws:iam::123456789012:policy/tighten-{name}"
    if role_state(raw, name) != {"attached": [arn], "inline": {}, "boundary": None}:
        return False
    meta = raw.get_policy(PolicyArn=arn)["Policy"]
    text = raw.get_policy_version(PolicyArn=arn, VersionId=meta["DefaultVersionId"])["PolicyVersion"]["Document"]
    from urllib.parse import unquote

    return json.loads(text if text.lstrip().startswith("{") else unquote(text)) == PROPOSED


def _policy_exists(raw: Any, name: str) -> bool:
    return any(p["PolicyName"] == name for p in raw.list_policies(Scope="Local")["Policies"])


def _start(db: Any, iam: Any, name: str) -> Any:
    return start_change(db, iam, role_name=name, proposed_documents=[PROPOSED],
                        expected_policy_hash=get_role_snapshot(iam, name).policy_hash(), proposal_id=None,
                        requested_by="U1", owner="first-process")


def _restart(db: Any, iam: Any) -> list[Any]:
    """A new process, after the killed one's lease has expired, finishes whatever was interrupted."""
    later = utcnow() + cs.CHANGE_LEASE + timedelta(seconds=1)
    assert resume_incomplete(db, iam, clock=lambda: later, owner="second-process") is not None
    return resume_incomplete(db, iam, clock=lambda: later, owner="third-process")  # nothing left


@pytest.fixture()
def raw(moto_endpoint: str) -> Any:
    client = boto3.client("iam", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.meta.events.unregister("after-call.iam", json_decode_policies)
    return client


def test_killed_before_or_after_any_apply_call_ends_applied_or_restored(iam: Any, raw: Any) -> None:
    make_role(iam, "probe")
    points = kill_points(iam, lambda: _start(open_db(":memory:"), iam, "probe"))
    assert len(points) >= 12
    outcomes = []
    for n, when in points:
        name = f"k{n:02d}{when[0]}"
        make_role(iam, name)
        db = open_db(":memory:")
        with KillAt(iam, n, when), pytest.raises(Killed):
            _start(db, iam, name)
        assert _restart(db, iam) == []
        state = "applied" if applied(raw, name) else "restored" if restored(raw, name) else "broken"
        assert state != "broken", (n, when, role_state(raw, name), ChangeStore(db).list())
        assert not ChangeStore(db).incomplete()
        outcomes.append(state)
    assert "applied" in outcomes and "restored" in outcomes


def test_killed_before_or_after_any_rollback_call_ends_restored_byte_for_byte(iam: Any, raw: Any) -> None:
    make_role(iam, "probe")
    probe_db = open_db(":memory:")
    change = _start(probe_db, iam, "probe")
    points = kill_points(iam, lambda: rollback_change(probe_db, iam, change.change_id, requested_by="U2"))
    assert restored(raw, "probe") and len(points) >= 8
    for n, when in points:
        name = f"r{n:02d}{when[0]}"
        make_role(iam, name)
        db = open_db(":memory:")
        result = _start(db, iam, name)
        assert result.state == cs.APPLIED, result.message
        with KillAt(iam, n, when), pytest.raises(Killed):
            rollback_change(db, iam, result.change_id, requested_by="U2", owner="first-process")
        _restart(db, iam)
        state = ChangeStore(db).get(result.change_id).state
        if state == cs.APPLIED:  # killed before the rollback began: untouched, and it can be asked again
            assert applied(raw, name), (n, when)
            later = utcnow() + cs.CHANGE_LEASE + timedelta(seconds=1)
            again = rollback_change(db, iam, result.change_id, requested_by="U2", clock=lambda t=later: t)
            assert again.state == cs.ROLLED_BACK, (n, when, again.message)
        else:
            assert state == cs.ROLLED_BACK, (n, when, state)
        assert restored(raw, name), (n, when, role_state(raw, name))
