"""Cron triggers from config enqueue (deduplicated) work items; a simulated day; the service starts and stops."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

from apscheduler.triggers.cron import CronTrigger

from bot.jobs.scheduler import SchedulerService, build_scheduler, enqueue_job, scheduled_jobs
from bot.jobs.worker import Worker
from bot.store.queue import DONE
from tests.jobs.conftest import DIGEST_CHANNEL, Env, policy


def test_triggers_come_from_config(env: Env) -> None:
    ids = {job_id for job_id, *_ in scheduled_jobs(env.ctx)}
    assert ids == {"plan", "expire", "watch", f"digest:{DIGEST_CHANNEL}:daily"}  # no cloudtrail source: no ingest
    env.ctx.config = dataclasses.replace(env.ctx.config, cloudtrail_source=str(env.tmp_path / "logs"))
    scheduler = build_scheduler(env.ctx)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"ingest", "plan", "expire", "watch", f"digest:{DIGEST_CHANNEL}:daily"}
    assert str(jobs["watch"].trigger) == str(CronTrigger.from_crontab("*/10 * * * *", timezone="UTC"))


def test_trigger_enqueues_once_while_pending(env: Env) -> None:
    first = enqueue_job(env.ctx, "watch")
    assert enqueue_job(env.ctx, "watch") == first
    assert len(env.ctx.queue.pending("watch")) == 1


def test_simulated_day_of_triggers(env: Env) -> None:
    arn = env.role("reporting", policy("s3:*"))
    env.use(arn, "s3:ListAllMyBuckets")
    env.clock.now = env.clock().replace(hour=0, minute=0, second=30)
    triggers = [(CronTrigger.from_crontab(cron, timezone="UTC"), kind, payload, job_id)
                for job_id, cron, kind, payload in scheduled_jobs(env.ctx)]
    next_fire = [t.get_next_fire_time(None, env.clock()) for t, *_ in triggers]
    worker = Worker(env.ctx)
    end = env.clock() + timedelta(days=1)
    while env.clock() < end:
        env.clock.advance(minutes=1)
        for i, (trigger, kind, payload, job_id) in enumerate(triggers):
            fire = next_fire[i]
            if fire is not None and fire <= env.clock():
                enqueue_job(env.ctx, kind, payload, job_id)
                next_fire[i] = trigger.get_next_fire_time(fire, env.clock())
        worker.run_until_idle()
    done = {kind: len(env.ctx.queue.items(kind=kind, state=DONE, limit=1000))
            for kind in ("plan", "watch", "expire", "digest", "scan")}
    assert done == {"plan": 24, "watch": 144, "expire": 1, "digest": 1, "scan": 1}  # scanned once: cache
    assert env.ctx.proposals.latest(arn) is not None
    assert not env.ctx.queue.items(state="failed")


def test_service_starts_runs_items_and_shuts_down_cleanly(env: Env) -> None:
    env.ctx.close()
    service = SchedulerService(env.ctx, idle_wait=0.01)
    service.start()
    try:
        assert service.running
        item = env.ctx.queue.enqueue("expire")[0]
        finished = threading.Event()
        for _ in range(500):
            if env.ctx.queue.get(item.id).state == DONE:
                finished.set()
                break
            finished.wait(0.01)
        assert finished.is_set()
    finally:
        assert service.shutdown(timeout=30)
    assert not service.running
    assert service.shutdown()  # twice is fine
