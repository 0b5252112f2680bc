"""Peak memory of ``tighten ingest`` on hostile inputs and on a large ordinary corpus.

    python bench/ingest_bounds.py [--cases bomb,big,big-gz,zero,entries,events] [--events 1000000]
                                  [--kill-above-mb 2000] [--timeout 600] [--corpus DIR]

Each case is a directory holding one bad input beside one good delivery file; ``tighten ingest`` runs on it
in a child process (a fresh index each time). Reported per case: exit code, wall time, the peak RSS of the
largest process of the run (``ru_maxrss`` from ``os.wait4``, which covers the pool workers the child reaped),
the peak RSS and PSS of the whole process tree (sampled from ``/proc`` every 20 ms; PSS does not count pages
that forked workers share with their parent twice), and the summary lines.
A run is killed when its tree grows past ``--kill-above-mb`` or runs past ``--timeout`` (reported as such),
so a regression cannot take the machine down.

Cases:

* ``bomb``: 2 MB of gzip (32 members) that inflates to 2 GiB of JSON whitespace inside ``{"Records": [...]}``;
* ``big``: a 200 MB plain delivery file (one realistic record repeated);
* ``big-gz``: the same document gzip-compressed;
* ``zero``: a symlink ``zero.json`` to ``/dev/zero``;
* ``entries``: a FIFO ``pipe.json``, a symlink loop, a dangling symlink and a symlink to ``/dev/zero``;
* ``events``: ``--events`` ordinary events (``bench.corpus``) in ``--events / 500`` delivery files.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpus import make_event, write_corpus  # noqa: E402

GOOD_NAME = "111111111111_CloudTrail_us-east-1_20240501T0000Z_good.json.gz"


def _one_record() -> dict:
    return make_event(random.Random(1), "111111111111", "us-east-1", datetime(2024, 5, 1, tzinfo=UTC))


def _good_file(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(2)
    events = [make_event(rng, "111111111111", "us-east-1", datetime(2024, 5, 1, tzinfo=UTC)) for _ in range(50)]
    (folder / GOOD_NAME).write_bytes(gzip.compress(orjson.dumps({"Records": events})))


def _bomb(path: Path, inflated: int = 2 << 30, members: int = 32) -> None:
    """``members`` identical gzip members (a valid multi-member stream) of JSON whitespace, ~2 MB in all."""
    comp = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    member = comp.compress(b" " * (inflated // members)) + comp.flush()
    with open(path, "wb") as fh:
        fh.write(gzip.compress(b'{"Records": ['))
        for _ in range(members):
            fh.write(member)
        fh.write(gzip.compress(b"]}"))


def _big_document(path: Path, size: int = 200_000_000, compressed: bool = False) -> None:
    record = orjson.dumps(_one_record())
    n = size // (len(record) + 1)
    opener = gzip.open if compressed else open
    with opener(path, "wb") as fh:  # type: ignore[operator]
        fh.write(b'{"Records":[')
        block = b",".join([record] * 1000)
        for i in range(n // 1000):
            fh.write((b"," if i else b"") + block)
        fh.write(b"]}")


def build_case(name: str, folder: Path, events: int) -> None:
    _good_file(folder)
    if name == "bomb":
        _bomb(folder / "bomb.json.gz")
    elif name == "big":
        _big_document(folder / "big.json")
    elif name == "big-gz":
        _big_document(folder / "big.json.gz", compressed=True)
    elif name == "zero":
        os.symlink("/dev/zero", folder / "zero.json")
    elif name == "entries":
        os.mkfifo(folder / "pipe.json")
        os.symlink(folder / "loop.json", folder / "loop.json")
        os.symlink(folder / "gone.json.gz", folder / "dangling.json.gz")
        os.symlink("/dev/zero", folder / "zero.json")
    elif name == "events":
        write_corpus(folder / "corpus", n_events=events, n_files=max(1, events // 500), seed=0)
    else:
        raise SystemExit(f"unknown case {name!r}")


def _tree_memory_kib(root_pid: int) -> tuple[int, int]:
    """(RSS, PSS) summed over ``root_pid`` and its descendants. Forked pool workers share pages with their
    parent, which RSS counts once per process and PSS splits between them: PSS is the honest total."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    rss = pss = 0
    todo = [root_pid]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii", errors="replace") as fh:
                for line in fh:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
        todo.extend(children.get(pid, []))
    return rss, pss


def run_case(folder: Path, db: Path, kill_above_kib: int, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "bot.cli", "ingest", "--cloudtrail", str(folder), "--db", str(db)]
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        peak_tree = peak_pss = 0
        killed = ""
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            tree, pss = _tree_memory_kib(proc.pid)
            peak_tree, peak_pss = max(peak_tree, tree), max(peak_pss, pss)
            if not killed and tree > kill_above_kib:
                killed = f"killed above {kill_above_kib // 1024} MB"
            elif not killed and time.perf_counter() - started > timeout:
                killed = f"killed after {timeout:.0f} s"
            if killed:
                os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    return {"exit": proc.returncode, "seconds": time.perf_counter() - started, "max_rss_mb": usage.ru_maxrss / 1024,
            "tree_mb": peak_tree / 1024, "pss_mb": peak_pss / 1024, "killed": killed, "output": text}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default="bomb,big,big-gz,zero,entries,events")
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--kill-above-mb", type=int, default=2000)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--corpus", type=Path, help="events case: an existing corpus directory instead of a new one")
    args = ap.parse_args()
    for name in args.cases.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / name
            t0 = time.perf_counter()
            if name == "events" and args.corpus:
                folder = args.corpus
            else:
                build_case(name, folder, args.events)
            built = time.perf_counter() - t0
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
            res = run_case(folder, Path(tmp) / "index.db", args.kill_above_mb * 1024, args.timeout)
            print(f"== {name}: {size / 1e6:.1f} MB on disk (built in {built:.1f} s)")
            print(f"   exit {res['exit']} {res['killed']}  {res['seconds']:.1f} s  peak RSS: largest process "
                  f"{res['max_rss_mb']:.0f} MB; whole tree (sampled) RSS {res['tree_mb']:.0f} MB, PSS {res['pss_mb']:.0f} MB")
            lines = [line for line in res["output"].splitlines() if line.strip()]
            for line in lines[-8:]:
                print(f"   | {line[:160]}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
