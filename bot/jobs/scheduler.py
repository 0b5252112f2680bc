"""The one scheduler: APScheduler 3 cron triggers that *enqueue* work items, and a worker thread that runs them.

APScheduler only triggers (memory job store, never shared, never pickled); the work lives in our own SQLite
queue with atomic claims and dedupe keys, so a trigger firing twice or a restart never doubles work. Triggers
(``schedules`` in the config, UTC):

* ``ingest`` -> an ``ingest`` item (read new CloudTrail objects);
* ``plan`` -> a ``plan`` item (rank in-scope roles, enqueue scans);
* ``expire`` -> an ``expire`` item (pending proposals older than ``apply.proposal_ttl_days``);
* ``watch`` -> a ``watch`` item (denials after applied changes);
* each ``slack.digests`` entry -> a ``digest`` item for its channel.

Scans themselves run as soon as the worker is free (in priority order). :class:`SchedulerService` runs the scheduler and a worker thread together and
shuts both down cleanly (the item in hand is finished; an interrupted one is recovered at the next start).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.jobs.context import JobContext
from bot.jobs.worker import Worker

log = logging.getLogger(__name__)

#: Queue priorities of triggered items (applies 200 and rollbacks 300 come from Slack; planned scans < 100).
PRIORITIES = {"watch": 250, "ingest": 150, "plan": 120, "expire": 110, "digest": 105}


def enqueue_job(ctx: JobContext, kind: str, payload: dict[str, Any] | None = None, key: str | None = None) -> int:
    """What a trigger does: one work item, deduplicated while one is still pending or running."""
    item, created = ctx.queue.enqueue(kind, payload or {}, priority=PRIORITIES.get(kind, 100),
                                      dedupe_key=key or kind, requested_by="scheduler")
    if created:
        log.info("queued %s (item %s)", kind, item.id)
    return item.id


def scheduled_jobs(ctx: JobContext) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(job id, cron expression, work kind, payload) for every trigger the config asks for."""
    s = ctx.config.schedules
    jobs: list[tuple[str, str, str, dict[str, Any]]] = [
        ("ingest", s.ingest, "ingest", {}),
        ("plan", s.plan, "plan", {}),
        ("expire", s.expire, "expire", {}),
        ("watch", s.watch, "watch", {}),
    ]
    if not ctx.config.cloudtrail_source:
        jobs = [j for j in jobs if j[0] != "ingest"]
    for digest in ctx.config.digests:
        jobs.append((f"digest:{digest.channel}:{digest.kind}", digest.cron, "digest",
                     {"channel": digest.channel, "kind": digest.kind}))
    return jobs


def build_scheduler(ctx: JobContext) -> BackgroundScheduler:
    """A configured, not yet started BackgroundScheduler (memory job store, one trigger thread)."""
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        timezone="UTC",
    )
    for job_id, cron, kind, payload in scheduled_jobs(ctx):
        scheduler.add_job(enqueue_job, CronTrigger.from_crontab(cron, timezone="UTC"), id=job_id, name=job_id,
                          args=[ctx, kind, payload, job_id], replace_existing=True)
    return scheduler


class SchedulerService:
    """Scheduler + one worker thread. ``start()`` recovers the queue first; ``shutdown()`` is safe twice."""

    def __init__(self, ctx: JobContext, *, idle_wait: float = 1.0) -> None:
        self.ctx = ctx
        self.idle_wait = idle_wait
        self.worker = Worker(ctx)
        self.scheduler = build_scheduler(ctx)
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.recovered: dict[str, Any] = {}

    def start(self) -> None:
        self.recovered = self.worker.recover()
        self.scheduler.start()
        self.thread = threading.Thread(target=self.worker.loop, args=(self.stop_event, self.idle_wait),
                                       name="tighten-worker", daemon=True)
        self.thread.start()

    @property
    def running(self) -> bool:
        return bool(self.scheduler.running and self.thread and self.thread.is_alive())

    def shutdown(self, timeout: float = 60.0) -> bool:
        """Stop triggering, let the worker finish its item, stop. True when the worker stopped in time."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout)
            return not self.thread.is_alive()
        return True
