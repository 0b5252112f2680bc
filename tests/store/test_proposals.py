from __future__ import annotations

import threading
from pathlib import Path

from bot.store.db import open_db
from bot.store.proposals import (
    APPLIED,
    APPLYING,
    APPROVED,
    PENDING,
    REJECTED,
    SUPERSEDED,
    AuditLog,
    ProposalStore,
)

DOC = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}


def new(store: ProposalStore, role: str = "app") -> str:
    p = store.create(account="111122223333", principal_arn=f"arn:aws:iam::111122223333:role/{role}",
                     role_name=role, documents=[DOC], risk_reasons=["r"], stats={"removed": 3})
    return p.id


def test_round_trip_and_life_cycle(tmp_path: Path) -> None:
    store = ProposalStore(open_db(tmp_path / "s.db"))
    pid = new(store)
    p = store.get(pid)
    assert p is not None and p.state == PENDING and p.documents == [DOC] and p.stats == {"removed": 3}
    assert store.transition(pid, APPROVED, decided_by="U1") is not None
    assert store.transition(pid, REJECTED) is None  # no longer pending
    assert store.transition(pid, APPLYING) is not None
    done = store.transition(pid, APPLIED, change_id="c-1")
    assert done is not None and done.change_id == "c-1" and done.decided_by == "U1"


def test_new_scan_supersedes_pending(tmp_path: Path) -> None:
    store = ProposalStore(open_db(tmp_path / "s.db"))
    old = new(store)
    fresh = new(store)
    assert store.get(old).state == SUPERSEDED and store.get(fresh).state == PENDING


def test_concurrent_approvals_have_one_winner(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    pid = new(ProposalStore(open_db(path)))
    winners: list[str] = []
    lock = threading.Lock()

    def approve(user: str) -> None:
        if ProposalStore(open_db(path)).transition(pid, APPROVED, decided_by=user):
            with lock:
                winners.append(user)

    threads = [threading.Thread(target=approve, args=(f"U{i}",)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1


def test_audit_log(tmp_path: Path) -> None:
    audit = AuditLog(open_db(tmp_path / "s.db"))
    audit.record("U1", "approve", "p-1", reason="ok")
    assert audit.entries("p-1")[0]["detail"] == {"reason": "ok"}
