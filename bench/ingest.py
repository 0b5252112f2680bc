"""Ingest throughput vs plain gzip+orjson parsing of the same files.

    python bench/ingest.py [--events 100000] [--files 200] [--workers N] [--repeat 3] [--corpus DIR]

Generates the corpus (bench.corpus.write_corpus) in a temporary directory (or in ``--corpus DIR``, kept and
reused when it already holds .json.gz files: 1M events take a minute or two to generate), then prints:
raw parse time (gzip + orjson.loads of every file, one core), full ingest into a fresh SQLite index
(one worker, and the default worker count), their ratio, and the second, no-op ingest time.

The ratios are the figures to compare across machines: the raw parse is the floor any ingest pays (1x), so a
ratio of 0.5 means reading, normalizing, aggregating and writing cost twice the parse. On the 1M-event corpus
(``--events 1000000 --corpus DIR``, 200 files of 5,000 events) on two shared cores: one worker about 0.5x
(CPU and wall), the default pool of two about 0.8x (wall; its CPU ratio stays near the single one). On a shared
machine the wall ratios move with the load: run it a few times and compare medians, or compare whole
processes under the same load, the CPU ratio being the steadier.
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import write_corpus  # noqa: E402
from bot.ingest import default_workers, ingest  # noqa: E402
from bot.store.db import open_db  # noqa: E402
from bot.store.usage import UsageIndex  # noqa: E402


def cpu_seconds() -> float:
    """CPU time of this process and its finished children: steadier than wall time on a shared machine."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def raw_parse(files: list[Path]) -> tuple[float, int, float]:
    t0, c0 = time.perf_counter(), cpu_seconds()
    n = 0
    for f in files:
        n += len(orjson.loads(gzip.decompress(f.read_bytes()))["Records"])
    return time.perf_counter() - t0, n, cpu_seconds() - c0


def timed_ingest(root: Path, db_path: Path, workers: int | None) -> tuple[float, Any, UsageIndex, float]:
    index = UsageIndex(open_db(db_path))
    t0, c0 = time.perf_counter(), cpu_seconds()
    report = ingest(str(root), index, workers=workers)
    return time.perf_counter() - t0, report, index, cpu_seconds() - c0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--workers", type=int, default=None, help="pool size for the second measurement")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs for each measurement")
    ap.add_argument("--corpus", type=Path, default=None,
                    help="corpus directory: reused when it holds .json.gz files, else generated there and kept")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.corpus or Path(tmp) / "logs"
        files = sorted(root.rglob("*.json.gz")) if args.corpus else []
        if not files:
            files = sorted(write_corpus(root, n_events=args.events, n_files=args.files, seed=0))
        size = sum(f.stat().st_size for f in files)
        print(f"corpus: {len(files)} files ({size / 1e6:.1f} MB gzip), cpus={os.cpu_count()}")
        pool = args.workers or default_workers(len(files))
        # Interleaved rounds (raw parse, ingest with 1 worker, ingest with the pool), best of N each: the
        # machine is shared, so both sides of the ratio see the same load.
        raws: list[tuple[float, int, float]] = []
        runs: dict[int, list] = {1: [], pool: []}
        for rep in range(args.repeat):
            raws.append(raw_parse(files))
            for workers in runs:
                db = Path(tmp) / f"w{workers}-{rep}.db"
                runs[workers].append((*timed_ingest(root, db, workers), db))
        raw, n, _ = min(raws, key=lambda x: x[0])
        raw_cpu = min(r[2] for r in raws)
        print(f"raw gzip+orjson parse (best of {args.repeat}): {raw:.3f} s wall, {raw_cpu:.3f} s CPU "
              f"({n / raw:,.0f} events/s)")
        for workers, results in runs.items():
            secs, report, index, _, db = min(results, key=lambda r: r[0])
            cpu = min(r[3] for r in results)
            print(f"full ingest (best of {args.repeat}), fresh db, workers={workers}: {secs:.3f} s "
                  f"({report.events / secs:,.0f} events/s), ratio to raw parse rate = {raw / secs:.2f}x; "
                  f"usage={report.usage_events} denied={report.denied} skipped={dict(report.skipped)} "
                  f"principals={report.principals}")
            print(f"  CPU (this process + workers): {cpu:.3f} s, raw-parse CPU / ingest CPU = {raw_cpu / cpu:.2f}x")
            again, report2, _, _ = timed_ingest(root, db, workers)
            print(f"  second (no-op) ingest: {again:.3f} s, files read={report2.files_read}, "
                  f"already ingested={report2.files_already_ingested}")
            print(f"  db size {db.stat().st_size / 1e6:.1f} MB, usage rows "
                  f"{index.db.conn.execute('SELECT COUNT(*) FROM usage_days').fetchone()[0]}")

if __name__ == "__main__":
    main()
