"""Time to generate policies for every principal of the benchmark corpus.

    python bench/generate.py [--events 100000] [--files 200]

Ingests the generated corpus once (not timed here, see bench/ingest.py), then times, for all principals:
the usage queries alone, and usage query + generate_policy.
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
from bot.policy.generate import generate_policy  # noqa: E402
from bot.store.db import open_db  # noqa: E402
from bot.store.usage import UsageIndex  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--files", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "logs"
        write_corpus(root, n_events=args.events, n_files=args.files, seed=0)
        index = UsageIndex(open_db(Path(tmp) / "g.db"))
        ingest(str(root), index)
        principals = [p.arn for p in index.principals()]
        t0 = time.perf_counter()
        rows = {arn: index.usage(arn) for arn in principals}
        t_query = time.perf_counter() - t0
        t0 = time.perf_counter()
        policies = {arn: generate_policy(index.usage(arn)) for arn in principals}
        t_all = time.perf_counter() - t0
        n_rows = sum(len(r) for r in rows.values())
        n_actions = sum(len(p.actions) for p in policies.values())
        n_docs = sum(len(p.documents) for p in policies.values())
        print(f"{len(principals)} principals, {n_rows} usage rows, {n_actions} actions, {n_docs} documents")
        print(f"usage queries only: {t_query:.3f} s")
        print(f"usage query + generate for all principals: {t_all:.3f} s "
              f"({t_all / max(1, len(principals)) * 1000:.1f} ms per principal)")


if __name__ == "__main__":
    main()
