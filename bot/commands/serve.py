"""``tighten serve --config FILE``: the Slack app and the scheduler in one process.

Start-up order, each checked before the next: config (every problem reported, exit 2, nothing started), Slack
tokens from the environment (never logged), the Slack app (``auth.test``; the HTTP port is bound), the jobs
process (``bot.commands._serve_jobs``: the store is recovered, items a dead process left running are re-queued
and interrupted IAM changes finished, then the scheduler and the worker run there, apart from the Slack
process so that acks never wait for a scan) and finally the Slack connection
(Socket Mode by default, or HTTP on ``slack.http`` host and port, 127.0.0.1:3000 unless set; ``--host`` and
``--port`` override them).

SIGTERM or SIGINT -> clean shutdown, in reverse: stop taking Slack requests, stop the scheduler (no new
triggers; running triggers finish), let the worker finish the item in hand, release anything still claimed
by this process back to ``pending``, close the store. Work items are always left consistent. If the jobs
process dies, serve stops with exit status 1 (so that a supervisor restarts it).

``--healthcheck`` (the Docker HEALTHCHECK) exits 0 when a serve process wrote its heartbeat recently and the
store answers, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bot.config import Config, ConfigError, load_config
from bot.errors import EXIT_FAILED, UserError
from bot.util.clock import iso, parse_iso, utcnow

log = logging.getLogger("tighten.serve")

EXIT_CONFIG = 2
HEARTBEAT_SECONDS = 30.0
HEARTBEAT_MAX_AGE = 180
WORKER_NAME_PREFIX = "serve"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "serve", help="run the Slack app and the scheduler (tokens from SLACK_* environment variables)",
        description="Run the Slack app (Socket Mode by default) and the scheduler in one process. Tokens come "
                    "from the environment: SLACK_BOT_TOKEN, and SLACK_APP_TOKEN (socket mode) or "
                    "SLACK_SIGNING_SECRET (http mode). SIGTERM shuts down cleanly.",
    )
    parser.add_argument("--config", default=os.environ.get("TIGHTEN_CONFIG"), metavar="FILE",
                        help="the YAML config file (default: $TIGHTEN_CONFIG)")
    parser.add_argument("--mode", choices=("socket", "http"), default=None,
                        help="override slack.mode from the config")
    parser.add_argument("--host", default=None,
                        help="http mode: address to listen on (default slack.http.host, 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="http mode: port (default slack.http.port, 3000)")
    parser.add_argument("--slack-api-url", default=None, metavar="URL",
                        help="Slack Web API base URL (default Slack's; e.g. a proxy, or a local fake in tests)")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    parser.add_argument("--healthcheck", action="store_true",
                        help="exit 0 if a serve process is alive (recent heartbeat) and the store answers")
    parser.add_argument("--max-age", type=int, default=HEARTBEAT_MAX_AGE, metavar="SECONDS",
                        help=f"healthcheck: oldest acceptable heartbeat (default {HEARTBEAT_MAX_AGE})")
    parser.set_defaults(func=run)
    return parser


# -- tokens ----------------------------------------------------------------------------------------------------
class MissingSecret(ValueError):
    pass


def slack_secrets(mode: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """The Slack secrets ``mode`` needs, from the environment only. Raises naming the missing variables
    (never their values)."""
    env = dict(os.environ) if env is None else env
    needed = ["SLACK_BOT_TOKEN"] + (["SLACK_APP_TOKEN"] if mode == "socket" else ["SLACK_SIGNING_SECRET"])
    missing = [name for name in needed if not env.get(name)]
    if missing:
        raise MissingSecret(f"{mode} mode needs {', '.join(missing)} in the environment")
    if mode == "socket" and not env["SLACK_APP_TOKEN"].startswith("xapp-"):
        raise MissingSecret("SLACK_APP_TOKEN must be an app-level token (xapp-...) with connections:write")
    out = {name: env[name] for name in needed}
    out.setdefault("SLACK_SIGNING_SECRET", env.get("SLACK_SIGNING_SECRET", ""))
    return out


def verify_slack(client: Any) -> None:
    """``auth.test`` before anything starts, so a rejected token or an unreachable Slack is one clear line."""
    import urllib.error

    from slack_sdk.errors import SlackApiError

    try:
        client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else exc
        raise UserError(f"Slack rejected SLACK_BOT_TOKEN ({error}): check the bot token (xoxb-...) on the app's "
                        "Install App page; nothing was started", EXIT_FAILED) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise UserError(f"cannot reach Slack at {client.base_url} ({reason}): check the network, the proxy or "
                        "--slack-api-url; nothing was started", EXIT_FAILED) from None


# -- heartbeat / healthcheck -----------------------------------------------------------------------------------
def heartbeat_path(cfg: Config) -> Path:
    return Path(f"{cfg.db_path}.heartbeat")


def write_heartbeat(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({**state, "at": iso(utcnow())}))
    os.replace(tmp, path)


def healthcheck(cfg: Config, max_age: int = HEARTBEAT_MAX_AGE) -> tuple[bool, str]:
    """(healthy, why). Healthy: heartbeat younger than ``max_age`` seconds, worker and scheduler alive, and
    the store answers a query."""
    path = heartbeat_path(cfg)
    try:
        beat = json.loads(path.read_text())
        age = (utcnow() - parse_iso(beat["at"])).total_seconds()
    except (OSError, ValueError, KeyError) as exc:
        return False, f"no heartbeat at {path} ({type(exc).__name__})"
    if age > max_age:
        return False, f"heartbeat is {age:.0f} s old (max {max_age})"
    dead = [part for part in ("worker", "scheduler") if not beat.get(part)]
    if dead:
        return False, f"not running: {', '.join(dead)}"
    try:
        from bot.store.db import open_db

        db = open_db(cfg.db_path, create=False)
        db.conn.execute("SELECT COUNT(*) FROM work_items WHERE state = 'running'").fetchone()
        db.conn.close()
    except Exception as exc:  # noqa: BLE001 - any store failure means unhealthy
        return False, f"store {cfg.db_path}: {type(exc).__name__}: {exc}"
    return True, f"ok (heartbeat {age:.0f} s ago, pid {beat.get('pid')})"


# -- the service ---------------------------------------------------------------------------------------------
class Service:
    """Everything ``serve`` runs; :meth:`start` then :meth:`stop` (idempotent)."""

    def __init__(self, cfg: Config, mode: str, secrets: dict[str, str], *, host: str | None = None,
                 port: int | None = None, slack_api_url: str | None = None, jobs_process: bool = False,
                 iam_for: Any = None, s3_client: Any = None, slack_client: Any = None,
                 scheduler_factory: Any = None, log_level: int = logging.INFO, last_accessed_for: Any = None) -> None:
        """With ``jobs_process`` the scheduler and the worker run in a child process (``tighten serve``);
        otherwise in this process, on ``scheduler_factory(job_ctx)`` (default ``SchedulerService``), which lets
        tests pass their own AWS and Slack clients and a short idle wait."""
        self.cfg = cfg
        self.mode = mode
        self._secrets = secrets  # never logged, never put in repr
        self.host = cfg.http_host if host is None else host
        self.port = cfg.http_port if port is None else port
        self.slack_api_url = slack_api_url
        self.jobs_process = jobs_process
        self.log_level = log_level
        self.iam_for = iam_for
        self.last_accessed_for = last_accessed_for
        self.s3_client = s3_client
        self.slack_client = slack_client
        self.scheduler_factory = scheduler_factory
        self.worker_name = f"{WORKER_NAME_PREFIX}-{socket.gethostname()}-{os.getpid()}"
        self.stop_event = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None
        self.jobs: Any = None  # SchedulerService (APScheduler triggers + the worker thread) or JobsProcess
        self.slack_handler: Any = None  # SocketModeHandler
        self.http_server: Any = None  # BoltHttpServer
        self.job_ctx: Any = None
        self.app_ctx: Any = None
        self.recovered: dict[str, Any] = {}
        self._stopped = False

    def __repr__(self) -> str:
        return f"Service(mode={self.mode!r}, db={self.cfg.db_path!r})"

    def start(self) -> None:
        from bot.jobs.context import JobContext
        from bot.jobs.scheduler import SchedulerService
        from bot.slack.app import build_app, make_client
        from bot.slack.context import AppContext
        from bot.slack.notify import Notifier

        client = self.slack_client or make_client(self._secrets["SLACK_BOT_TOKEN"], base_url=self.slack_api_url)
        self.app_ctx = AppContext(db_path=self.cfg.db_path, config=self.cfg)
        # Slack first: a bad token fails auth.test here, and the HTTP port is bound, before any work runs
        verify_slack(client)
        app = build_app(self.app_ctx, signing_secret=self._secrets.get("SLACK_SIGNING_SECRET", ""), client=client)
        if self.mode == "socket":
            from bot.slack.app import socket_mode_handler

            self.slack_handler = socket_mode_handler(app, self._secrets["SLACK_APP_TOKEN"])
        else:
            from bot.slack.app import BoltHttpServer

            self.http_server = BoltHttpServer(app, self._secrets["SLACK_SIGNING_SECRET"], self.host, self.port)

        # the scheduler service re-queues items a dead process left running and finishes interrupted IAM
        # changes before its worker thread takes anything
        if self.jobs_process:
            from bot.commands._serve_jobs import JobsProcess

            self.jobs = JobsProcess(self.cfg, bot_token=self._secrets["SLACK_BOT_TOKEN"],
                                    slack_api_url=self.slack_api_url, worker_name=self.worker_name,
                                    log_level=self.log_level)
        else:
            self.job_ctx = JobContext(db_path=self.cfg.db_path, config=self.cfg, iam_for=self.iam_for,
                                      notifier=Notifier(client, self.app_ctx), worker_name=self.worker_name,
                                      last_accessed_for=self.last_accessed_for)
            if self.s3_client is not None:
                self.job_ctx.s3_client = self.s3_client
            self.jobs = (self.scheduler_factory or SchedulerService)(self.job_ctx)
        self.jobs.start()
        self.recovered = dict(getattr(self.jobs, "recovered", {}))
        where = f"in process {self.jobs.pid}" if self.jobs_process else "in this process"
        log.info("store %s ready (recovered %s); scheduler and worker running %s", self.cfg.db_path,
                 self.recovered, where)

        if self.slack_handler is not None:
            self.slack_handler.connect()
            log.info("connected to Slack over Socket Mode")
        else:
            self.http_server.start()
            log.info("listening for Slack on %s", self.http_server.url)
        self._heartbeat_thread = threading.Thread(target=self._heartbeat, name="tighten-heartbeat", daemon=True)
        self._heartbeat_thread.start()

    def _heartbeat(self) -> None:
        path = heartbeat_path(self.cfg)
        while not self.stop_event.is_set():
            try:
                write_heartbeat(path, self.status())
            except OSError as exc:
                log.warning("could not write heartbeat %s: %s", path, exc)
            self.stop_event.wait(HEARTBEAT_SECONDS)

    def jobs_health(self) -> tuple[bool, bool]:
        """(worker alive, scheduler running)."""
        jobs = self.jobs
        if jobs is None:
            return False, False
        if hasattr(jobs, "health"):
            return jobs.health()
        return bool(jobs.thread is not None and jobs.thread.is_alive()), bool(jobs.scheduler.running)

    def status(self) -> dict[str, Any]:
        worker, scheduler = self.jobs_health()
        return {"pid": os.getpid(), "mode": self.mode, "worker": worker, "scheduler": scheduler}

    def wait(self) -> bool:
        """Until stopped (True), or until the jobs process died (False)."""
        while not self.stop_event.wait(1.0):
            if self.jobs_process and self.jobs is not None and not self.jobs.alive():
                log.error("the jobs process (pid %s) exited with status %s: stopping", self.jobs.pid,
                          self.jobs.process.exitcode)
                return False
        return True

    def stop(self, timeout: float = 60.0) -> None:
        """Clean shutdown; safe to call twice and after a failed start."""
        if self._stopped:
            return
        self._stopped = True
        self.stop_event.set()
        if self.slack_handler is not None:
            _quietly(self.slack_handler.close, "Slack connection")
        if self.http_server is not None:
            _quietly(self.http_server.stop, "HTTP server")  # also when bound but never served
        if self.jobs is not None:
            finished: list[bool] = []
            _quietly(lambda: finished.append(self.jobs.shutdown(timeout)), "scheduler and worker")
            if finished and not finished[0]:
                log.warning("worker still busy after %.0f s; its item is released for the next start", timeout)
        if self.jobs is not None:
            released = self._release()
            if released:
                log.info("released %d work item(s) back to pending", released)
        if self.job_ctx is not None:
            _quietly(self.job_ctx.close, "store")
        if self._heartbeat_thread is not None:
            self._heartbeat_thread.join(5)
        with contextlib.suppress(OSError):
            heartbeat_path(self.cfg).unlink(missing_ok=True)
        log.info("stopped cleanly")

    def _release(self) -> int:
        """Items this process still holds as ``running`` go back to ``pending`` (handlers are idempotent)."""
        from bot.store.db import open_db
        from bot.store.queue import WorkQueue

        db = open_db(self.cfg.db_path)
        try:
            return WorkQueue(db).recover(worker=self.worker_name)
        finally:
            db.conn.close()


def _quietly(call: Any, what: str) -> None:
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - shutdown continues whatever one part does
        log.warning("stopping %s: %s: %s", what, type(exc).__name__, exc)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=getattr(logging, args.log_level), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.config:
        print("tighten serve: --config FILE (or TIGHTEN_CONFIG) is required", file=sys.stderr)
        return EXIT_CONFIG
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"{args.config}: {len(exc.problems)} problem(s); nothing was started:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    if args.healthcheck:
        healthy, why = healthcheck(cfg, args.max_age)
        print(why)
        return 0 if healthy else 1
    mode = args.mode or cfg.slack_mode
    try:
        secrets = slack_secrets(mode)
    except MissingSecret as exc:
        print(f"tighten serve: {exc}; nothing was started", file=sys.stderr)
        return EXIT_CONFIG
    # Read once, then out of the environment: no library picks them up on its own (Bolt would otherwise read
    # SLACK_BOT_TOKEN beside the client built here and warn that one of the two is unused) and no child
    # process inherits them.
    for name in secrets:
        os.environ.pop(name, None)
    from bot.store.db import ensure_store_directory

    ensure_store_directory(cfg.db_path)

    service = Service(cfg, mode, secrets, host=args.host, port=args.port, slack_api_url=args.slack_api_url,
                      jobs_process=True, log_level=getattr(logging, args.log_level))

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("%s received: shutting down", signal.Signals(signum).name)
        service.stop_event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started = time.monotonic()
    try:
        service.start()
        log.info("Tighten serving (%s mode) in %.1f s", mode, time.monotonic() - started)
        healthy = service.wait()
    except Exception:
        service.stop()
        raise  # bot.cli reports it in one line (the traceback with --debug)
    service.stop()
    return 0 if healthy else 1
