"""The grouped SQL query means what the file ingest does: run by DuckDB (transpiled from the very text Athena
runs) over a table shaped like Athena's, it must build the same usage index, row for row, from the same logs.

The oracle is the native file ingest (``bot/ingest.py``), which reads every event one by one; the SQL path
groups identical calls inside the engine and normalizes one event per group. Every bundled sample dataset, in
both groupings, plus the ingest tests' own tree of good and broken files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.ingest import ingest
from bot.ingest_sql import ingest_local
from bot.store.db import open_db
from bot.store.usage import ENTRY, OBJECT, UsageIndex
from tests.conftest import SAMPLES
from tests.test_ingest import make_tree

DATASETS = sorted(p.name for p in SAMPLES.iterdir() if p.is_dir())


def snapshot(index: UsageIndex) -> dict[str, Any]:
    """Everything the rest of Tighten reads from the index."""
    out: dict[str, Any] = {"principals": index.principals(), "skipped": index.skipped_totals(),
                           "not ingested": [(key, error) for kind in (OBJECT, ENTRY)
                                            for key, error, _ in index.ingest_errors(kind)]}
    for p in index.principals():
        out[f"usage {p.arn}"] = index.usage(p.arn)
        out[f"denials {p.arn}"] = index.denials(p.arn)
    return out


def both(path: Path, grouping: str) -> tuple[dict[str, Any], dict[str, Any], int, int]:
    native = UsageIndex(open_db(":memory:"))
    ingest(str(path), native, workers=1)
    sql = UsageIndex(open_db(":memory:"))
    report = ingest_local(str(path), sql, grouping=grouping)
    assert report.queries == 1
    return snapshot(native), snapshot(sql), report.rows, report.events


def test_every_sample_dataset_is_covered() -> None:
    assert len(DATASETS) >= 5


@pytest.mark.parametrize("grouping", ["projected", "full"])
@pytest.mark.parametrize("dataset", DATASETS)
def test_sql_usage_index_equals_file_ingest(dataset: str, grouping: str) -> None:
    native, sql, rows, events = both(SAMPLES / dataset, grouping)
    assert native["principals"], "the dataset yields usage"
    for key in sorted(set(native) | set(sql)):
        assert sql.get(key) == native.get(key), key
    assert 0 < rows <= events


def test_projected_grouping_reads_fewer_rows_than_full() -> None:
    _, _, projected, events = both(SAMPLES / "OTRF_Security-Datasets", "projected")
    _, _, full, _ = both(SAMPLES / "OTRF_Security-Datasets", "full")
    assert projected < full < events


def test_broken_files_are_counted_the_same(tmp_path: Path) -> None:
    make_tree(tmp_path)  # truncated gzip, invalid JSON, a bad JSON line, a non-event line, a denied call
    native, sql, _, _ = both(tmp_path, "projected")
    assert sql == native
    reasons = sorted(error.split(":")[0] for _, error in native["not ingested"])
    assert reasons == ["invalid_json", "truncated_gzip"] and native["skipped"]["invalid_json"] == 1
