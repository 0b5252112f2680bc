"""Reader + normalizer throughput on the generated corpus, as a ratio to plain gzip + orjson parsing.

Usage: ``python bench/normalize.py [N_EVENTS] [REPEATS]`` (defaults 100000, 3). Writes the corpus once to a
temporary directory (``bench/corpus.py``), reads every file into memory, then times (best of REPEATS):

* raw: ``orjson.loads(gzip.decompress(data))`` for every file (the floor any ingest pays);
* trail: ``iter_raw_records`` + ``Normalizer.normalize`` for every event.

Times are process CPU time (``time.process_time``); each file is timed REPEATS times per side, alternately,
and the per-file minima are summed, so that bursts of other work on a shared machine disturb the ratio
less. Both loops run in this one process on one core; GC stays on; the outcome counting is included.
"""

from __future__ import annotations

import gzip
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import write_corpus  # noqa: E402
from bot.trail.normalize import Normalizer, Skip  # noqa: E402
from bot.trail.reader import iter_raw_records  # noqa: E402
from bot.trail.sources import iter_log_objects  # noqa: E402


def main() -> int:
    n_events = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with tempfile.TemporaryDirectory() as tmp:
        write_corpus(tmp, n_events=n_events)
        blobs = [(obj.read(), obj.key) for obj in iter_log_objects(tmp)]
    # Per file, raw parsing and reader+normalize are timed REPEATS times each, alternately, and the minimum
    # of each is kept: both sides see the same machine load (other processes on a shared machine), and the
    # sums over all files are compared. Repeat r uses its own Normalizer, which sees every file exactly once,
    # in order, as in an ingest (so its plan/principal/ARN caches are never warmed by a repeat of a file).
    normalizers = [Normalizer() for _ in range(repeats)]
    outcome: Counter[str] = Counter()
    raw_best = trail_best = 0.0
    for data, key in blobs:
        raw_min = trail_min = float("inf")
        for rep in range(repeats):
            t0 = time.process_time()
            orjson.loads(gzip.decompress(data))
            raw_min = min(raw_min, time.process_time() - t0)
            t0 = time.process_time()
            for item in iter_raw_records(data, key):
                result = item if item.__class__ is Skip else normalizers[rep].normalize(item)
                if rep == 0:
                    outcome[result.reason if result.__class__ is Skip else "record"] += 1
            trail_min = min(trail_min, time.process_time() - t0)
        raw_best += raw_min
        trail_best += trail_min
    # Whole passes too (best of REPEATS), more exposed to load bursts but with no per-file repetition.
    pass_raw = pass_trail = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        for data, _key in blobs:
            orjson.loads(gzip.decompress(data))
        pass_raw = min(pass_raw, time.process_time() - t0)
        fresh = Normalizer()
        t0 = time.process_time()
        for data, key in blobs:
            for item in iter_raw_records(data, key):
                if item.__class__ is not Skip:
                    fresh.normalize(item)
        pass_trail = min(pass_trail, time.process_time() - t0)
    total = sum(outcome.values())
    print(f"events: {total} in {len(blobs)} files; outcome: {dict(outcome)}")
    print(f"raw gzip+orjson: {raw_best:.3f} s = {total / raw_best:,.0f} events/s")
    print(f"reader+normalize: {trail_best:.3f} s = {total / trail_best:,.0f} events/s "
          f"({(trail_best - raw_best) / total * 1e6:.2f} us/event over raw parsing)")
    print(f"ratio to raw parsing: {raw_best / trail_best:.2f} (target >= 0.5; per-file paired minima)")
    print(f"whole passes: raw {pass_raw:.3f} s, reader+normalize {pass_trail:.3f} s, ratio {pass_raw / pass_trail:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
