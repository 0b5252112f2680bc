"""The scheduler and the worker of ``tighten serve``, in a child process of their own.

Scans, plans and ingests are CPU-heavy Python. Run in the Slack process, they held its interpreter lock and
their large heaps made the garbage collector's full collections long, while Slack waited for acks (with 200
roles being scanned, the p99 ack went from about 20 ms to over 300 ms). In a process of their own, the Slack
process only answers Slack, however much work runs (``bench/ack_latency.py``).

The child is started with the ``spawn`` method (a fresh interpreter: no threads or locks inherited from the
Slack process) and talks to the parent over a pipe:

* child -> ``("started", recovered)`` once recovery ran and the scheduler and worker run, or
  ``("failed", "Type: message")``;
* parent -> ``("health",)`` -> ``("health", worker_alive, scheduler_running)``;
* parent -> ``("stop", timeout)`` -> ``("stopped", finished_in_time)``: the worker finishes the item in hand.

The child ignores SIGINT and SIGTERM (the parent decides when to stop, so a Ctrl-C sent to the whole process
group cannot cut an apply short) and stops by itself, the same way, when the parent goes away.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

from bot.config import Config

log = logging.getLogger("tighten.serve")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
START_TIMEOUT = 600.0  # recovery may finish interrupted IAM changes first


class JobsProcessError(RuntimeError):
    pass


class JobsProcess:
    """The same life cycle as ``bot.jobs.scheduler.SchedulerService`` (``start``, ``recovered``,
    ``shutdown``), with the scheduler and the worker in a child process."""

    def __init__(self, cfg: Config, *, bot_token: str, slack_api_url: str | None, worker_name: str,
                 log_level: int = logging.INFO) -> None:
        self.cfg = cfg
        self._bot_token = bot_token  # handed to the child through the pipe, never logged
        self.slack_api_url = slack_api_url
        self.worker_name = worker_name
        self.log_level = log_level
        self.recovered: dict[str, Any] = {}
        self.process: Any = None  # multiprocessing.Process (spawn context)
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"JobsProcess(pid={self.pid}, worker={self.worker_name!r})"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        context = multiprocessing.get_context("spawn")
        parent_end, child_end = context.Pipe()
        self.process = context.Process(
            target=run_child, name="tighten-jobs", daemon=False,
            args=(child_end, self.cfg, self._bot_token, self.slack_api_url, self.worker_name, self.log_level))
        self.process.start()
        child_end.close()
        self._conn = parent_end
        reply = self._receive(timeout)
        if reply is None:
            self._kill()
            raise JobsProcessError(f"the jobs process did not start within {timeout:.0f} s")
        if reply[0] != "started":
            self.process.join(10)
            raise JobsProcessError(f"the jobs process failed to start: {reply[1] if len(reply) > 1 else reply}")
        self.recovered = dict(reply[1])

    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def health(self) -> tuple[bool, bool]:
        """(worker thread alive, scheduler running) in the child; (False, False) when it is gone."""
        if not self.alive():
            return False, False
        with self._lock:
            try:
                assert self._conn is not None
                self._conn.send(("health",))
                reply = self._receive(10)
            except (OSError, EOFError, AssertionError):
                return False, False
        if reply is None or reply[0] != "health":
            return False, False
        return bool(reply[1]), bool(reply[2])

    def shutdown(self, timeout: float = 60.0) -> bool:
        """Stop the scheduler, let the worker finish its item, end the child. True when the worker stopped
        within ``timeout`` (or the child was already gone); the child is killed if it does not exit soon after."""
        if self.process is None:
            return True
        finished = True
        if self.alive():
            with self._lock:
                try:
                    assert self._conn is not None
                    self._conn.send(("stop", timeout))
                    reply = self._receive(timeout + 30)
                    finished = bool(reply and reply[0] == "stopped" and reply[1])
                except (OSError, EOFError, AssertionError):
                    finished = False
        self.process.join(15)
        if self.process.is_alive():
            log.warning("the jobs process (pid %s) did not exit: killing it", self.pid)
            self._kill()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        return finished

    def _receive(self, timeout: float) -> tuple[Any, ...] | None:
        assert self._conn is not None
        try:
            if not self._conn.poll(timeout):
                return None
            reply = self._conn.recv()
        except (EOFError, OSError):
            return ("failed", f"the jobs process exited (exit code {self.process.exitcode})")
        return tuple(reply)

    def _kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
            self.process.join(10)


def run_child(conn: Connection, cfg: Config, bot_token: str, slack_api_url: str | None, worker_name: str,
              log_level: int) -> None:
    """The child's main function: build the job context, run the scheduler and worker, answer the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=log_level, stream=sys.stderr, format=LOG_FORMAT)
    try:
        from bot.aws.account_access import aws_access, last_accessed_access
        from bot.jobs.context import JobContext
        from bot.jobs.scheduler import SchedulerService
        from bot.slack.app import make_client
        from bot.slack.context import AppContext
        from bot.slack.notify import Notifier

        client = make_client(bot_token, base_url=slack_api_url)
        app_ctx = AppContext(db_path=cfg.db_path, config=cfg)
        job_ctx = JobContext(db_path=cfg.db_path, config=cfg, iam_for=aws_access(cfg),
                             notifier=Notifier(client, app_ctx), worker_name=worker_name,
                             last_accessed_for=last_accessed_access(cfg))
        jobs = SchedulerService(job_ctx)
        jobs.start()
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which stops with the reason
        with contextlib.suppress(OSError):
            conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("started", jobs.recovered))
    try:
        while True:
            if not conn.poll(1.0):
                continue
            try:
                message = tuple(conn.recv())
            except (EOFError, OSError):  # the parent is gone: stop the same way
                log.warning("the serve process went away: stopping the scheduler and the worker")
                message = ("stop", 60.0)
                conn = None  # type: ignore[assignment]
            if message[0] == "health":
                worker = jobs.thread is not None and jobs.thread.is_alive()
                conn.send(("health", worker, bool(jobs.scheduler.running)))
            elif message[0] == "stop":
                finished = jobs.shutdown(float(message[1]))
                if conn is not None:
                    with contextlib.suppress(OSError):
                        conn.send(("stopped", finished))
                return
    finally:
        with contextlib.suppress(Exception):
            job_ctx.close()
