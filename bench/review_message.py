"""Benchmark: building the review message and escaping outside text.

    python bench/review_message.py [--repeat 200]

Times (median of ``--repeat`` runs) the review message of a small proposal, of one with a 20,000-character diff and
80 open escalation paths, and of one whose role name is 3,000 emoji; and the escaping rule (``code``) on plain
ASCII ARNs (the common case) and on ARNs holding ``<``, ``&`` and emoji, in values per second.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import Account, Approvers, Config  # noqa: E402
from bot.slack.approvals import approval_gate  # noqa: E402
from bot.slack.escaping import code  # noqa: E402
from bot.slack.review import review_message  # noqa: E402
from bot.store.proposals import PENDING, Proposal  # noqa: E402

ACCOUNT = "111122223333"
CONFIG = Config(accounts=(Account(id=ACCOUNT, name="prod", channel="C0REVIEW01",
                                  approvers=Approvers(users=("U0ALICE001",), groups=("S0APPROVE1",))),))


def proposal(role: str, diff: str, open_paths: int) -> Proposal:
    paths = [{"id": f"path-{i:03d}", "name": f"Catalogued escalation path {i}", "via": []} for i in range(open_paths)]
    return Proposal(
        id="p-0123abcd", account=ACCOUNT, principal_arn=f"arn:aws:iam::{ACCOUNT}:role/x", role_name=role,
        state=PENDING, created_at="2026-12-01T12:00:00Z", updated_at="2026-12-01T12:00:00Z", documents=[],
        summary="removes 22,316 actions across 457 services; keeps 5 actions in 3 services", diff_text=diff,
        window_start="2026-11-01T12:00:00Z", window_end="2026-12-01T12:00:00Z", risk_score=90.0,
        risk_reasons=["can administer IAM"], warnings=[{"code": "seen_once", "message": "1 action was used once"}],
        stats={"current_actions": 22321, "proposed_actions": 5, "current_services": 457, "proposed_services": 3,
               "current_write": 11907, "proposed_write": 4}, requested_by="U0BOB00001",
        checks={"containment": {"result": "pass"}, "replay": {"calls": 1234, "days": 30, "denied": 0},
                "escalation": {"open": paths, "closed": [], "high_risk_kept": [], "unresolved_roles": [],
                               "counts": {"open_before": 71, "open_after": open_paths, "closed": 0}}})


def median_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    cases = {
        "small": proposal("ci-deployer", "- iam:*\n+ s3:GetObject", 1),
        "20k diff, 80 open paths": proposal("ci-deployer", "\n".join(f"  REMOVED svc{i}:Action" for i in range(1000)),
                                           80),
        "3,000-emoji role name": proposal("\U0001F600" * 3000, "- iam:*", 1),
    }
    for name, p in cases.items():
        gate = approval_gate(CONFIG, p)
        print(f"review message, {name}: {median_ms(lambda p=p, g=gate: review_message(p, g), args.repeat):.2f} ms")
    plain = [f"arn:aws:s3:::reports/2026/part-{i:05d}.csv" for i in range(10_000)]
    hostile = [f"arn:aws:s3:::reports/<!here>&{i}\U0001F600" for i in range(10_000)]
    for name, values in (("plain ASCII ARNs", plain), ("ARNs with <, & and emoji", hostile)):
        ms = median_ms(lambda v=values: [code(x) for x in v], max(5, args.repeat // 20))
        print(f"escaping, {name}: {len(values) / ms * 1000:,.0f} values/s")


if __name__ == "__main__":
    main()
