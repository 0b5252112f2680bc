"""Benchmark: 1,000 (action, resource) checks against AdministratorAccess + a permissions boundary.

Run: ``python bench/evaluate.py``. Prints compile time and per-check time (cold and warm).
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.policy.catalog import catalog  # noqa: E402
from bot.policy.evaluate import Evaluator, evaluate  # noqa: E402
from bot.policy.model import parse_policy  # noqa: E402

ADMINISTRATOR_ACCESS = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
BOUNDARY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["iam:Get*", "iam:List*", "iam:PassRole"], "Resource": "*"},
        {"Effect": "Deny", "Action": ["s3:DeleteBucket*", "kms:ScheduleKeyDeletion"], "Resource": "*"},
        {
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["eu-west-1", "us-east-1"]}},
        },
        {"Effect": "Deny", "Action": "s3:*", "Resource": ["arn:aws:s3:::audit-logs", "arn:aws:s3:::audit-logs/*"]},
    ],
}


def main() -> None:
    rng = random.Random(7)
    actions = [a.full_name for a in catalog().all_actions()]
    checks = [(rng.choice(actions), f"arn:aws:s3:::bucket-{rng.randrange(50)}/key/{i}") for i in range(1000)]
    contexts = [{"aws:RequestedRegion": rng.choice(["eu-west-1", "us-east-1", "ap-south-1"])} for _ in checks]

    admin, boundary = parse_policy(ADMINISTRATOR_ACCESS), parse_policy(BOUNDARY)
    t0 = time.perf_counter()
    ev = Evaluator([admin], boundary)
    t1 = time.perf_counter()
    decisions = [ev.evaluate(a, r) for a, r in checks]
    t2 = time.perf_counter()
    decisions_ctx = [ev.evaluate(a, r, c) for (a, r), c in zip(checks, contexts, strict=True)]
    t3 = time.perf_counter()
    one_shot = [evaluate(a, r, [admin], boundary) for a, r in checks]
    t4 = time.perf_counter()
    assert one_shot == decisions

    def tally(ds: list) -> str:
        counts: dict[str, int] = {}
        for d in ds:
            counts[d.value] = counts.get(d.value, 0) + 1
        return ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))

    print(f"compile AdministratorAccess + boundary: {(t1 - t0) * 1e3:.2f} ms")
    print(f"1,000 checks, no context (Evaluator):   {(t2 - t1) * 1e3:.2f} ms  [{tally(decisions)}]")
    print(f"1,000 checks, with context:             {(t3 - t2) * 1e3:.2f} ms  [{tally(decisions_ctx)}]")
    print(f"1,000 checks via evaluate() one-shot:   {(t4 - t3) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
