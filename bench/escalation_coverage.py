"""Escalation coverage per public catalogue, and what detection costs.

    python bench/escalation_coverage.py

Coverage: each catalogue entry's required permissions (written by hand from the catalogue's own text in
``tests/policy/escalation_catalogues.py``) are granted on ``*`` to an unknown principal; the entry counts as
detected when an open path cites it. Entries left out (``LEFT_OUT`` in the data, with reasons) are listed.

Cost: one ``escalation_findings`` over AdministratorAccess-like permissions (every catalog action on ``*``) and
over a scoped role; ``role_profile`` for 200 roles; and what the inventory adds per role (``role_privilege``):
200 new roles holding the same admin policy, 200 new roles with distinct small policies, and 200 unchanged
roles (stored profile reused). Each after a warm-up, median of several runs.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.aws.inventory import RoleSnapshot  # noqa: E402
from bot.jobs.role_privilege import role_privilege  # noqa: E402
from bot.policy.escalation import (  # noqa: E402
    ESCALATION_PATHS,
    LEFT_OUT,
    EscalationContext,
    escalation_findings,
    role_profile,
)
from bot.policy.expand import EffectivePermissions, effective_permissions  # noqa: E402
from bot.policy.model import parse_policy  # noqa: E402
from bot.store.roles import KnownRole  # noqa: E402
from tests.policy.escalation_catalogues import CATALOGUES, PATHFINDING_LABS, PATHFINDING_NEWER  # noqa: E402


def _perms(actions: tuple[str, ...] | list[str], resource: str = "*") -> EffectivePermissions:
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": resource}]}
    return effective_permissions([parse_policy(doc)])


def _detected(catalogue: str, ref: str, actions: tuple[str, ...]) -> bool:
    if not actions:
        return False
    findings = escalation_findings(_perms(actions), EscalationContext())
    return any((s.catalogue, s.ref) == (catalogue, ref) for f in findings for s in f.path.sources)


def coverage() -> None:
    left_out = {(x.source.catalogue, x.source.ref): x.reason for x in LEFT_OUT}
    groups = [
        ("pathfinding.cloud, labs index (one-hop + self-escalation to admin)", "pathfinding", PATHFINDING_LABS),
        ("pathfinding.cloud, ids added since", "pathfinding", PATHFINDING_NEWER),
        ("Bishop Fox iam-vulnerable", "iam-vulnerable", CATALOGUES["iam-vulnerable"]),
        ("NCC Group PMapper edge kinds", "pmapper", CATALOGUES["pmapper"]),
        ("Rhino Security Labs methods", "rhino", CATALOGUES["rhino"]),
    ]
    print(f"{len(ESCALATION_PATHS)} paths in the data")
    for title, catalogue, entries in groups:
        missed = [ref for ref, actions in entries.items() if not _detected(catalogue, ref, actions)]
        print(f"{title}: {len(entries) - len(missed)}/{len(entries)} detected")
        for ref in missed:
            reason = left_out.get((catalogue, ref), "NOT DETECTED, no reason recorded")
            print(f"  left out {ref}: {reason}")


def _median(fn: Callable[[], object], runs: int = 5) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cost() -> None:
    admin = _perms(["*"])
    scoped = _perms([a for p in ESCALATION_PATHS[:30] for a in p.actions][:60],
                    "arn:aws:iam::123456789012:role/app-*")
    ctx = EscalationContext("arn:aws:iam::123456789012:role/ci")
    print(f"escalation_findings, every action on * ({len(admin):,} actions): "
          f"{_median(lambda: escalation_findings(admin, ctx)) * 1000:.1f} ms")
    print(f"escalation_findings, {len(scoped)} scoped actions: "
          f"{_median(lambda: escalation_findings(scoped, ctx)) * 1000:.2f} ms")
    arns = [f"arn:aws:iam::123456789012:role/r{i}" for i in range(200)]
    seconds = _median(lambda: [role_profile(a, a, scoped) for a in arns], runs=3)
    print(f"role_profile for 200 roles (permissions already expanded): {seconds * 1000:.0f} ms")
    expand = _median(lambda: _perms(["*"]), runs=3)
    print(f"for scale: expanding every action on * once: {expand * 1000:.0f} ms")
    inventory()


def _snapshot(i: int, document: dict[str, object]) -> RoleSnapshot:
    return RoleSnapshot(account="123456789012", arn=f"arn:aws:iam::123456789012:role/r{i}", name=f"r{i}", path="/",
                        role_id=f"AROA{i}", created="2026-01-01T00:00:00Z", last_used=None, tags={}, attached=[],
                        inline={"p": document}, boundary_arn=None, boundary_document=None, assume_role_policy={})


def inventory() -> None:
    admin = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    same = [_snapshot(i, admin) for i in range(200)]
    distinct = [_snapshot(i, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "lambda:UpdateFunctionCode", "iam:PassRole"],
         "Resource": f"arn:aws:s3:::bucket-{i}/*"}]}) for i in range(200)]
    seconds = _median(lambda: [role_privilege(s, None) for s in same], runs=3)
    print(f"inventory, 200 new roles with the same admin policy: {seconds:.2f} s")
    seconds = _median(lambda: [role_privilege(s, None) for s in distinct], runs=3)
    print(f"inventory, 200 new roles with distinct small policies: {seconds:.2f} s")
    previous = [KnownRole(account=s.account, arn=s.arn, name=s.name, privilege=role_privilege(s, None)) for s in same]
    seconds = _median(lambda: [role_privilege(s, p) for s, p in zip(same, previous, strict=True)], runs=3)
    print(f"inventory, 200 unchanged roles (stored profile reused): {seconds * 1000:.0f} ms")


if __name__ == "__main__":
    coverage()
    cost()
