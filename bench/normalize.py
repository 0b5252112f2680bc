"""Reader + normalizer throughput on the generated corpus, as a ratio to plain gzip + orjson parsing.

Usage: ``python bench/normalize.py [N_EVENTS] [REPEATS]`` (defaults 100000, 3). Writes the corpus once to a
temporary directory (``bench/corpus.py``), reads every file into memory, then times (best of REPEATS):

* raw: ``orjson.loads(gzip.decompress(data))`` for every file (the floor any ingest pays);
* trail: ``iter_raw_records`` + ``Normalizer.normalize`` for every event.

Times are process CPU time (``time.process_time``), best of REPEATS, so that other work on a shared machine
disturbs the ratio less; both loops run in this one process on one core.
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
    raw_best = trail_best = float("inf")
    outcome: Counter[str] = Counter()
    for _ in range(repeats):
        t0 = time.process_time()
        for data, _key in blobs:
            orjson.loads(gzip.decompress(data))
        raw_best = min(raw_best, time.process_time() - t0)

        normalizer = Normalizer()  # fresh: plan compilation and principal caching are part of the cost
        outcome.clear()
        t0 = time.process_time()
        for data, key in blobs:
            for item in iter_raw_records(data, key):
                result = item if item.__class__ is Skip else normalizer.normalize(item)
                outcome[result.reason if result.__class__ is Skip else "record"] += 1
        trail_best = min(trail_best, time.process_time() - t0)
    total = sum(outcome.values())
    print(f"events: {total} in {len(blobs)} files; outcome: {dict(outcome)}")
    print(f"raw gzip+orjson: {raw_best:.3f} s = {total / raw_best:,.0f} events/s")
    print(f"reader+normalize: {trail_best:.3f} s = {total / trail_best:,.0f} events/s "
          f"({(trail_best - raw_best) / total * 1e6:.2f} us/event over raw parsing)")
    print(f"ratio to raw parsing: {raw_best / trail_best:.2f} (target >= 0.5)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
