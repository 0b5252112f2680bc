"""Cost of the infrastructure-as-code paths: rendering a proposal as Terraform / CloudFormation, and the
permission comparison the inventory runs for roles managed as code (only when a role's policy hash changed).

    python bench/iac.py [--repeat 20]

Cases: a proposal of 60 statements split into several documents; comparing a role that holds exactly the
proposal in another grouping (no expansion needed), a reworded copy (expansion of both sides), and a role still
holding AdministratorAccess (expansion of every catalog action).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.policy.equivalence import same_permissions  # noqa: E402
from bot.policy.iac import RoleTarget, render  # noqa: E402
from bot.policy.model import parse_policy  # noqa: E402


def proposal(statements: int = 60, per_doc: int = 15) -> list[dict[str, Any]]:
    services = ["s3", "dynamodb", "sqs", "sns", "kms", "logs", "ec2", "lambda"]
    out = []
    for i in range(statements):
        service = services[i % len(services)]
        st: dict[str, Any] = {"Sid": f"S{i}", "Effect": "Allow", "Action": [f"{service}:Get*", f"{service}:List*"],
                              "Resource": [f"arn:aws:{service}:us-east-1:123456789012:thing/{i}/${{aws:username}}/*",
                                           f"arn:aws:{service}:us-east-1:123456789012:thing/{i}/common/*"]}
        if i % 3 == 0:
            st["Condition"] = {"StringEquals": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]}}
        out.append(st)
    out.append({"Effect": "Deny", "NotAction": ["iam:Get*"], "NotResource": "*"})
    return [{"Version": "2012-10-17", "Statement": out[i:i + per_doc]} for i in range(0, len(out), per_doc)]


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    fn()  # warm caches (catalog, expansion)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return statistics.median(times) * 1000, peak / 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    docs = proposal()
    target = RoleTarget(role_name="bench-role", account="123456789012", proposal_id="p-bench")
    policies = [parse_policy(d, f"p{i}") for i, d in enumerate(docs)]
    regrouped = [parse_policy({"Version": "2012-10-17", "Statement": [st for d in docs for st in d["Statement"]]})]
    reworded = [parse_policy({"Version": "2012-10-17", "Statement": [
        {**st, "Sid": f"X{i}", "Action": list(reversed(st["Action"])) if "Action" in st else st.get("NotAction")}
        if "Action" in st else st for i, st in enumerate(s for d in docs for s in d["Statement"])]})]
    admin = [parse_policy({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*",
                                                                   "Resource": "*"}]})]
    cases = {
        "render terraform (5 documents, 61 statements)": lambda: render(docs, "terraform", target),
        "render cloudformation (same)": lambda: render(docs, "cloudformation", target),
        "same_permissions: same statements, regrouped": lambda: same_permissions(regrouped, policies),
        "same_permissions: reworded (expansion)": lambda: same_permissions(reworded, policies),
        "same_permissions: AdministratorAccess vs proposal": lambda: same_permissions(admin, policies),
    }
    print(f"{'case':<52} {'median ms':>10} {'peak MB':>8}")
    for name, fn in cases.items():
        ms, mb = timed(fn, args.repeat if "Administrator" not in name else max(3, args.repeat // 5))
        print(f"{name:<52} {ms:>10.2f} {mb:>8.1f}")


if __name__ == "__main__":
    main()
