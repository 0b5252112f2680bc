from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from bot.store.db import open_db
from bot.store.queue import DONE, FAILED, PENDING, RUNNING, WorkQueue
from bot.util.clock import FakeClock


def make_queue(tmp_path: Path) -> WorkQueue:
    return WorkQueue(open_db(tmp_path / "q.db"), clock=FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))


def test_priority_then_fifo_and_positions(tmp_path: Path) -> None:
    q = make_queue(tmp_path)
    low, _ = q.enqueue("scan", {"role": "low"}, priority=1)
    high, _ = q.enqueue("scan", {"role": "high"}, priority=9)
    low2, _ = q.enqueue("scan", {"role": "low2"}, priority=1)
    assert [q.position(i.id) for i in (high, low, low2)] == [1, 2, 3]
    first = q.claim("w")
    assert first is not None and first.payload["role"] == "high"
    assert [i.payload["role"] for i in q.pending()] == ["high", "low", "low2"]  # running first
    claimed = q.claim("w")
    assert claimed is not None and claimed.payload["role"] == "low"


def test_dedupe_returns_existing_item(tmp_path: Path) -> None:
    q = make_queue(tmp_path)
    first, created = q.enqueue("scan", {"role": "a"}, dedupe_key="scan:a")
    again, created_again = q.enqueue("scan", {"role": "a"}, dedupe_key="scan:a")
    assert created and not created_again and again.id == first.id
    item = q.claim("w")
    assert item is not None
    q.complete(item.id)
    _, created_after_done = q.enqueue("scan", {"role": "a"}, dedupe_key="scan:a")
    assert created_after_done


def test_claim_is_exclusive_across_threads(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    q = WorkQueue(open_db(path))
    for i in range(40):
        q.enqueue("scan", {"n": i})
    claimed: list[int] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        wq = WorkQueue(open_db(path))
        while (item := wq.claim(name)) is not None:
            with lock:
                claimed.append(item.id)
            wq.complete(item.id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 40


def test_recover_returns_running_items_and_finished_stay_finished(tmp_path: Path) -> None:
    q = make_queue(tmp_path)
    a, _ = q.enqueue("apply", {"p": "a"})
    b, _ = q.enqueue("apply", {"p": "b"})
    first = q.claim("dead-worker")
    assert first is not None and first.id == a.id
    q.complete(first.id)
    second = q.claim("dead-worker")
    assert second is not None and q.get(second.id).state == RUNNING
    # the process dies here; a new one starts
    q2 = WorkQueue(open_db(tmp_path / "q.db"))
    assert q2.recover() == 1
    assert q2.get(b.id).state == PENDING and q2.get(a.id).state == DONE
    again = q2.claim("new-worker")
    assert again is not None and again.id == b.id and again.attempts == 2
    assert q2.claim("new-worker") is None


def test_retry_until_max_attempts(tmp_path: Path) -> None:
    q = make_queue(tmp_path)
    item, _ = q.enqueue("scan", {})
    for _ in range(3):
        claimed = q.claim("w")
        assert claimed is not None
        q.fail(claimed.id, "boom", retry=True)
    assert q.get(item.id).state == FAILED and q.claim("w") is None


def test_not_before_delays(tmp_path: Path) -> None:
    q = make_queue(tmp_path)
    q.enqueue("scan", {}, not_before="2026-01-01T01:00:00Z")
    assert q.claim("w") is None
    q.clock.advance(hours=2)  # type: ignore[attr-defined]
    assert q.claim("w") is not None


def test_dedupe_raises_priority_and_records_the_person_asking(tmp_path: Path) -> None:
    q = make_queue(tmp_path)
    planned, _ = q.enqueue("scan", {"role": "a", "requested_by": None}, priority=5, dedupe_key="scan:a")
    manual, created = q.enqueue("scan", {"role": "a", "requested_by": "U1"}, priority=100,
                                dedupe_key="scan:a", requested_by="U1")
    assert not created and manual.id == planned.id
    assert manual.priority == 100 and manual.requested_by == "U1" and manual.payload["requested_by"] == "U1"
    again, _ = q.enqueue("scan", {"role": "a"}, priority=1, dedupe_key="scan:a")
    assert again.priority == 100 and again.requested_by == "U1"


def test_a_live_lease_is_never_taken_an_expired_one_is(tmp_path: Path) -> None:
    q = make_queue(tmp_path)
    item, _ = q.enqueue("apply", {"p": "a"})
    claimed = q.claim("serve-1")
    assert claimed is not None and claimed.lease_until == "2026-01-01T00:02:00Z"
    q.clock.advance(seconds=100)  # type: ignore[attr-defined]
    assert q.recover() == 0  # another process starting now leaves it alone
    assert q.heartbeat(item.id, "serve-1")  # renewed: now + 120 s
    q.clock.advance(seconds=100)  # type: ignore[attr-defined]
    assert q.recover() == 0 and q.get(item.id).claimed_by == "serve-1"
    q.clock.advance(seconds=21)  # type: ignore[attr-defined] - no heartbeat for 121 s: the owner is gone
    assert q.recover() == 1
    taken = q.claim("worker-2")
    assert taken is not None and taken.id == item.id and taken.attempts == 2
    # the old owner wakes up: it can neither renew nor finish what is no longer its item
    assert not q.heartbeat(item.id, "serve-1")
    assert not q.complete(item.id, {"r": 1}, worker="serve-1")
    assert not q.fail(item.id, "late", retry=True, worker="serve-1")
    assert q.get(item.id).state == RUNNING and q.complete(item.id, {"r": 2}, worker="worker-2")
    assert q.get(item.id).result == {"r": 2}


def test_requester_of_a_queued_item_is_never_replaced(tmp_path: Path) -> None:
    q = make_queue(tmp_path)
    first, _ = q.enqueue("scan", {"role": "a", "requested_by": "U1"}, dedupe_key="scan:a", requested_by="U1")
    again, created = q.enqueue("scan", {"role": "a", "requested_by": "U2"}, priority=100, dedupe_key="scan:a",
                               requested_by="U2")
    assert not created and again.id == first.id and again.priority == 100
    assert again.requested_by == "U1" and again.payload["requested_by"] == "U1"
