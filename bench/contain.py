"""Benchmark: generation inside the current policy, and the containment check, on the benchmark corpus.

    python bench/contain.py [--events 100000] [--files 200]

Ingests the generated corpus once (not timed), then for every principal, against a current policy of the
usual shape (a broad Allow with conditions, a region-guard Deny, a NotResource guard, PowerUserAccess-style
NotAction) and a boundary: times the plain usage policy vs the policy built inside the current one (ratio in
the same run), and the containment check of each result. Also times the check on one large proposal
(~700 ec2 actions plus 300 object ARNs split over several documents).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import write_corpus  # noqa: E402
from bot.ingest import ingest  # noqa: E402
from bot.policy.catalog import catalog  # noqa: E402
from bot.policy.contain import check_no_new_access  # noqa: E402
from bot.policy.generate import generate_policy  # noqa: E402
from bot.policy.model import parse_policy  # noqa: E402
from bot.store.db import open_db  # noqa: E402
from bot.store.usage import UsageIndex  # noqa: E402

CURRENT = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Broad", "Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"], "Resource": "*"},
    {"Sid": "Iam", "Effect": "Allow", "Action": ["iam:PassRole", "iam:Get*", "iam:List*"], "Resource": "*"},
    {"Sid": "Kms", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:ReEncrypt*"], "Resource": "*",
     "Condition": {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}}},
    {"Sid": "RegionGuard", "Effect": "Deny", "NotAction": ["iam:*", "sts:*", "organizations:*"], "Resource": "*",
     "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]}}},
    {"Sid": "NoDeletes", "Effect": "Deny", "Action": ["s3:DeleteBucket", "dynamodb:DeleteTable"], "Resource": "*"},
]}
BOUNDARY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "*", "Resource": "*"},
    {"Effect": "Deny", "Action": "s3:*", "Resource": ["arn:aws:s3:::audit-logs", "arn:aws:s3:::audit-logs/*"]},
]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--files", type=int, default=200)
    args = ap.parse_args()
    current, boundary = [parse_policy(CURRENT, "current")], parse_policy(BOUNDARY, "boundary")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "logs"
        write_corpus(root, n_events=args.events, n_files=args.files, seed=0)
        index = UsageIndex(open_db(Path(tmp) / "c.db"))
        ingest(str(root), index)
        rows = {p.arn: index.usage(p.arn) for p in index.principals()}

    for r in rows.values():  # warm the catalog and pattern caches for both, so the ratio compares like with like
        generate_policy(r)
        generate_policy(r, current=current)
    t0 = time.perf_counter()
    plain = {arn: generate_policy(r) for arn, r in rows.items()}
    t_plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    inside = {arn: generate_policy(r, current=current) for arn, r in rows.items()}
    t_inside = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = [check_no_new_access(current, [parse_policy(d) for d in g.documents], boundary)
               for g in inside.values()]
    t_check = time.perf_counter() - t0
    n = max(1, len(rows))
    print(f"{len(rows)} principals, {sum(len(r) for r in rows.values())} usage rows")
    print(f"generate, usage policy:          {t_plain:.3f} s ({t_plain / n * 1e3:.1f} ms per principal)")
    print(f"generate, inside current policy: {t_inside:.3f} s ({t_inside / n * 1e3:.1f} ms per principal); "
          f"ratio {t_inside / max(t_plain, 1e-9):.2f}x")
    print(f"containment check of each:       {t_check:.3f} s ({t_check / n * 1e3:.1f} ms per principal); "
          f"{sum(r.passed for r in results)}/{len(results)} PASS")
    widened = sum(not check_no_new_access(current, [parse_policy(d) for d in g.documents], boundary).passed
                  for g in plain.values())
    print(f"usage policies (built beside the current one) that would widen it: {widened}/{len(plain)}")

    ec2 = [a.full_name for a in catalog().actions_of("ec2")]
    big_rows = [type("Row", (), {"action": a, "resource": "*", "account": "111111111111"})() for a in ec2]
    big_rows += [type("Row", (), {"action": "s3:GetObject", "resource": f"arn:aws:s3:::bucket-{i}/key",
                                  "account": "111111111111"})() for i in range(300)]
    big = generate_policy(big_rows, current=current)
    proposed = [parse_policy(d) for d in big.documents]
    t0 = time.perf_counter()
    result = check_no_new_access(current, proposed, boundary)
    t_big = time.perf_counter() - t0
    print(f"large proposal ({len(big.actions)} actions, {len(big.documents)} documents): check "
          f"{t_big * 1e3:.0f} ms, {result.result.upper()} over {result.cells} cells")


if __name__ == "__main__":
    main()
