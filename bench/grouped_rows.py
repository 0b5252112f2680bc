"""Raw events vs grouped rows of the SQL usage query, and the DuckDB run time, on generated corpora.

    python bench/grouped_rows.py [--events 100000 1000000] [--files 200] [--native]

For each corpus size (bench.corpus.write_corpus, the organization-trail layout), loads the logs into the
Athena-shaped DuckDB table (bot.trail.sql.local.LocalTrail), runs the usage query (transpiled from Athena's
dialect by sqlglot) in both groupings, and prints: raw events, grouped rows, the reduction factor (events
per row), the load time (read + shape + DuckDB's JSON reader), the query time, and the time to normalize
the grouped rows and write them to a fresh index. ``--native`` adds the file ingest (one process) on the
same corpus for reference. Also prints the top event sources by rows, to show where grouping pays.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import write_corpus  # noqa: E402
from bot.ingest import ingest  # noqa: E402
from bot.ingest_sql import DayVersions, ingest_sql  # noqa: E402
from bot.store.db import open_db  # noqa: E402
from bot.store.usage import UsageIndex  # noqa: E402
from bot.trail.sql.local import LocalTrail  # noqa: E402
from bot.trail.sql.query import to_duckdb, usage_query  # noqa: E402
from bot.trail.sql.rows import QueryResult, QueryStats  # noqa: E402


class Replay:
    """An engine that hands back rows already fetched (so the normalize+write time is measured alone)."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows

    def run(self, sql: str) -> QueryResult:
        return QueryResult(iter(self.rows), QueryStats())


def measure(root: Path, native: bool) -> None:
    t0 = time.perf_counter()
    trail = LocalTrail(str(root))
    days = trail.log_dates()  # loads the table
    load = time.perf_counter() - t0
    events = trail.events
    print(f"  load (list, read, shape, DuckDB read_json): {load:.1f} s for {events} events, {len(days)} days")
    for grouping in ("projected", "full"):
        sql = usage_query("cloudtrail", days, grouping=grouping)
        t0 = time.perf_counter()
        to_duckdb(sql)
        transpile = time.perf_counter() - t0
        t0 = time.perf_counter()
        rows = list(trail.run(sql).rows)
        query = time.perf_counter() - t0 - transpile
        calls = sum(r["calls"] for r in rows)
        assert calls == events, (calls, events)
        index = UsageIndex(open_db(":memory:"))
        t0 = time.perf_counter()
        report = ingest_sql(Replay(rows), index, source="bench", days=days, query_for=lambda b: "",
                            versions=DayVersions(fixed="bench"), days_per_query=len(days))
        write = time.perf_counter() - t0
        assert report.errors == {}, report.errors
        print(f"  {grouping:9s}: {len(rows):>8} rows, {events / len(rows):5.1f} events/row; "
              f"transpile {transpile:.2f} s, DuckDB query {query:.2f} s, normalize+write {write:.2f} s")
        if grouping == "projected":
            by_source = Counter(r["eventsource"] for r in rows)
            calls_by_source = Counter()
            for r in rows:
                calls_by_source[r["eventsource"]] += r["calls"]
            top = ", ".join(f"{s.split('.')[0]} {calls_by_source[s] / n:.1f}" for s, n in by_source.most_common(6))
            print(f"    events/row by source (most rows first): {top}")
    trail.close()
    if native:
        index = UsageIndex(open_db(":memory:"))
        t0 = time.perf_counter()
        ingest(str(root), index, workers=1)
        print(f"  native file ingest, one process: {time.perf_counter() - t0:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--native", action="store_true", help="also time the native file ingest (one process)")
    args = ap.parse_args()
    for n in args.events:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            write_corpus(tmp, n_events=n, n_files=args.files)
            print(f"{n} events ({args.files} files, generated in {time.perf_counter() - t0:.0f} s):")
            measure(Path(tmp), args.native)


if __name__ == "__main__":
    main()
