"""The worker: claims work items from the queue and runs them, one at a time.

Kinds: ``scan``, ``apply``, ``rollback``, ``ingest``, ``plan``, ``digest``, ``expire``, ``watch``. Claims are
atomic and leased (``WorkQueue.claim``): while a handler runs, a heartbeat thread renews the item's lease every
``LEASE / 6``; an item is only taken from its owner once its lease has expired, so several workers (``tighten
serve`` next to a ``tighten worker`` from cron, a rolling restart) never run one item twice. AWS steps of a change
additionally run under the change's own lease (``bot.store.changes``), renewed before every call.

:meth:`Worker.recover` runs at start-up and then every ``RECOVER_EVERY`` while the worker loops: items whose lease
expired go back to ``pending``; an approved (or applying) proposal without an apply item gets one (older stores;
the approval itself enqueues it in the same transaction); an interrupted change nobody holds gets an item that
finishes it. Interrupted changes are finished by those items, never beside them, so whoever finishes a change
posts its outcome (with its Rollback button) exactly once (``ChangeStore.record_outcome_post``).

Every handler is idempotent: a re-run apply finds its journaled change, a re-run scan supersedes its own
proposal, a re-run watch reports nothing twice. A handler error fails the item with retries
(``WorkQueue.max_attempts``); the error text is the exception type and message, which never hold credentials.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from bot.jobs.context import JobContext
from bot.store import changes as cs
from bot.store import proposals as ps
from bot.store import scans as sc
from bot.store.queue import APPLY_PRIORITY, LEASE, ROLLBACK_PRIORITY, WorkItem, WorkQueue
from bot.util.clock import iso, parse_iso

log = logging.getLogger(__name__)

KINDS = ("scan", "apply", "rollback", "ingest", "plan", "digest", "expire", "watch")
RETRY_DELAY = timedelta(minutes=5)
#: Seconds between two renewals of a running item's lease.
HEARTBEAT_SECONDS = LEASE.total_seconds() / 6
#: Seconds between two recoveries while the worker loops (items of a dead peer come back once their lease expires).
RECOVER_EVERY = 60.0

Handler = Callable[[JobContext, WorkItem], dict[str, Any]]


class ChangeNotFinished(RuntimeError):
    """The change could not be finished now (AWS unreachable, or another process holds it); retried later."""


class Worker:
    def __init__(self, ctx: JobContext, *, name: str | None = None, kinds: tuple[str, ...] = KINDS,
                 heartbeat_seconds: float = HEARTBEAT_SECONDS) -> None:
        self.ctx = ctx
        self.name = name or ctx.worker_name
        self.kinds = list(kinds)
        self.heartbeat_seconds = heartbeat_seconds
        self.handlers: dict[str, Handler] = {
            "scan": handle_scan, "apply": handle_apply, "rollback": handle_rollback, "ingest": handle_ingest,
            "plan": handle_plan, "digest": handle_digest, "expire": handle_expire, "watch": handle_watch,
        }
        self._last_recover = 0.0

    def recover(self) -> dict[str, Any]:
        """Re-queue items whose lease expired; queue an apply for every approved proposal without one and an
        item for every interrupted change nobody holds (those items finish the changes and post the outcome)."""
        self._last_recover = time.monotonic()
        requeued = self.ctx.queue.recover()
        queued = requeue_orphans(self.ctx)
        if requeued or queued:
            log.info("recovered %d work item(s); queued %s", requeued, ", ".join(queued) or "nothing")
        return {"requeued": requeued, "queued": queued,
                "resumed": [q.split(":", 1)[1] for q in queued if q.startswith("change:")]}

    def run_once(self) -> WorkItem | None:
        """Claim and run one due item; returns it (as claimed) or None when nothing is due."""
        item = self.ctx.queue.claim(self.name, self.kinds)
        if item is None:
            return None
        handler = self.handlers.get(item.kind)
        beat = _Heartbeat(self.ctx, item, self.name, self.heartbeat_seconds)
        beat.start()
        try:
            if handler is None:
                raise ValueError(f"unknown work item kind {item.kind!r}")
            result = handler(self.ctx, item)
        except Exception as exc:  # noqa: BLE001 - a failed item must never stop the worker
            beat.stop()
            error = f"{type(exc).__name__}: {exc}"
            self.ctx.count(f"work.{item.kind}.error")
            log.warning("work item %s (%s) failed: %s", item.id, item.kind, error)
            self.ctx.queue.fail(item.id, error, retry=handler is not None,
                                not_before=iso(self.ctx.clock() + RETRY_DELAY), worker=self.name)
            return item
        finally:
            beat.stop()
        current = self.ctx.queue.get(item.id)
        if current.state == "running" and current.claimed_by == self.name:
            self.ctx.queue.complete(item.id, result, worker=self.name)
        self.ctx.count(f"work.{item.kind}.done")
        return item

    def run_until_idle(self, max_items: int = 10_000) -> int:
        """Run due items until none is left (or ``max_items``); returns how many ran."""
        ran = 0
        while ran < max_items and self.run_once() is not None:
            ran += 1
        return ran

    def loop(self, stop: threading.Event, idle_wait: float = 1.0) -> None:
        """Run items until ``stop`` is set; the item in hand is always finished before stopping."""
        try:
            while not stop.is_set():
                if time.monotonic() - self._last_recover >= RECOVER_EVERY:
                    try:
                        self.recover()
                    except Exception as exc:  # noqa: BLE001 - recovery is retried at the next interval
                        log.warning("recovery failed: %s: %s", type(exc).__name__, exc)
                if self.run_once() is None:
                    stop.wait(idle_wait)
        finally:
            self.ctx.close()


class _Heartbeat:
    """Renews a running item's lease from its own thread and connection (file-backed stores only: an in-memory
    store is single-threaded and single-process, nobody else can take its items)."""

    def __init__(self, ctx: JobContext, item: WorkItem, worker: str, every: float) -> None:
        self.ctx, self.item, self.worker, self.every = ctx, item, worker, every
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.ctx.db_path == ":memory:" or self.every <= 0:
            return
        self._thread = threading.Thread(target=self._run, name=f"tighten-lease-{self.item.id}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
            self._thread = None

    def _run(self) -> None:
        from bot.store.db import open_db

        db = None
        try:
            while not self._stop.wait(self.every):  # most items finish before the first beat: no connection
                try:
                    db = db or open_db(self.ctx.db_path)
                    if not WorkQueue(db, self.ctx.clock).heartbeat(self.item.id, self.worker):
                        self.lost.set()
                        log.warning("lost the lease of work item %s", self.item.id)
                        return
                except Exception as exc:  # noqa: BLE001 - a busy store: try again at the next beat
                    log.warning("could not renew the lease of work item %s: %s", self.item.id, exc)
        finally:
            if db is not None:
                db.conn.close()


def requeue_orphans(ctx: JobContext) -> list[str]:
    """Queue the items missing after a crash or from older stores; returns what was queued."""
    queued: list[str] = []
    for proposal in ctx.proposals.list(states=(ps.APPROVED, ps.APPLYING), limit=100_000):
        if ctx.queue.active("apply", f"apply:{proposal.id}") is None:
            change = _change_of(ctx, proposal.id)
            if change is not None and ctx.changes.holder(change.id):
                continue  # being worked on right now
            ctx.queue.enqueue("apply", {"proposal_id": proposal.id, "approved_by": proposal.decided_by},
                              priority=APPLY_PRIORITY, dedupe_key=f"apply:{proposal.id}",
                              requested_by=proposal.decided_by)
            queued.append(f"proposal:{proposal.id}")
    for change in ctx.changes.incomplete():
        if ctx.changes.holder(change.id):
            continue
        proposal = ctx.proposals.get(change.proposal_id) if change.proposal_id else None
        if change.state == cs.APPLYING and proposal is not None and proposal.state == ps.APPLYING:
            continue  # its proposal's apply item (queued above) finishes it
        kind = "apply" if change.state == cs.APPLYING else "rollback"
        key = f"{kind}-change:{change.id}"
        if ctx.queue.active(kind, key) is None and (kind == "apply" or ctx.queue.active(
                "rollback", f"rollback:{change.id}") is None):
            ctx.queue.enqueue(kind, {"change_id": change.id, "requested_by": change.rolled_back_by},
                              priority=ROLLBACK_PRIORITY if kind == "rollback" else APPLY_PRIORITY,
                              dedupe_key=key, requested_by=change.rolled_back_by)
            queued.append(f"change:{change.id}")
    return queued


# -- handlers ------------------------------------------------------------------------------------------------
def handle_scan(ctx: JobContext, item: WorkItem) -> dict[str, Any]:
    from bot.jobs.scan import run_scan

    account, arn = item.payload["account"], item.payload["principal_arn"]
    requested_by = item.payload.get("requested_by") or item.requested_by
    done = _scan_done_by(ctx, item)
    if done is not None:  # this item's scan finished before a crash: only make sure it was posted
        result: dict[str, Any] = {"result": done.result, "message": done.detail.get("message", ""),
                                  "recovered": True}
        proposal = ctx.proposals.get(done.proposal_id) if done.proposal_id else None
        if proposal is not None:
            result["proposal_id"] = proposal.id
            if ctx.notifier is not None and not proposal.message_ts and proposal.state == ps.PENDING:
                result["posted"] = bool(ctx.notifier.post_proposal(proposal.id))
        return result
    try:
        outcome = run_scan(ctx, account, arn, requested_by=requested_by, work_item=item.id,
                           restore=item.payload.get("restore"))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
            raise
        return {"result": "role not found", "message": f"{arn} no longer exists"}  # deleted: nothing to retry
    result = {"result": outcome.result, "message": outcome.message}
    if outcome.proposal is not None:
        result["proposal_id"] = outcome.proposal.id
        if ctx.notifier is not None:
            result["posted"] = bool(ctx.notifier.post_proposal(outcome.proposal.id))
    if outcome.result == sc.DEFERRED:
        # finish this item first: its dedupe key would otherwise swallow the retry
        ctx.queue.complete(item.id, result)
        retry, _ = ctx.queue.enqueue("scan", item.payload, priority=item.priority, dedupe_key=item.dedupe_key,
                                     requested_by=item.requested_by, not_before=outcome.retry_at)
        result["retry_item"] = retry.id
    return result


def _scan_done_by(ctx: JobContext, item: WorkItem) -> sc.ScanRecord | None:
    if item.attempts <= 1:
        return None
    for record in ctx.scans.history(item.payload["principal_arn"], since=item.created_at, limit=20):
        if record.detail.get("work_item") == item.id:
            return record
    return None


def handle_apply(ctx: JobContext, item: WorkItem) -> dict[str, Any]:
    """Apply an approved proposal, or finish its interrupted change, and post the outcome once.

    An item with ``change_id`` only (a change without a proposal, queued by recovery) just finishes that change."""
    from bot.aws.apply import resume_change, start_change
    from bot.jobs.scan import scope_from_config

    proposal_id = item.payload.get("proposal_id")
    if proposal_id is None:
        outcome = resume_change(ctx.db, ctx.iam(_account_of(ctx, item.payload["change_id"])),
                                item.payload["change_id"], clock=ctx.clock, retry=_retry(ctx))
        if outcome is None:
            return {"result": "nothing to finish"}
        _unless_finished(outcome)
        return {"result": outcome.state, "change_id": outcome.change_id, "message": outcome.message}
    approved_by = item.payload.get("approved_by") or item.requested_by
    proposal = ctx.proposals.get(proposal_id)
    if proposal is None:
        return {"result": "unknown proposal"}
    change = _change_of(ctx, proposal_id)
    if proposal.state == ps.APPLYING and change is not None and change.state != cs.REFUSED:
        # a previous attempt died or could not finish: finish its change (from its journal), never start over
        if change.state in cs.INCOMPLETE_STATES:
            outcome = resume_change(ctx.db, ctx.iam(proposal.account), change.id, clock=ctx.clock,
                                    retry=_retry(ctx))
            if outcome is None:
                raise ChangeNotFinished(f"change {change.id} is being worked on by {ctx.changes.holder(change.id)}")
        else:
            outcome = _result_of(change)
        _unless_finished(outcome)
        return _settle_apply(ctx, proposal_id, outcome)
    if proposal.state in (ps.APPLIED, ps.FAILED) and change is not None:
        return _settle_apply(ctx, proposal_id, _result_of(change))  # re-run after a crash: post it if it was not
    if proposal.state == ps.APPROVED:
        try:
            as_code = _managed_as_code_refusal(ctx, proposal)
            if as_code is not None:
                return _refuse_managed_as_code(ctx, proposal, as_code)
            stale = _stale_reason(ctx, proposal)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
                raise
            stale = f"role {proposal.role_name} no longer exists; nothing was changed"
        if stale is not None:
            return _settle_stale(ctx, proposal, stale)
        widening = _containment_refusal(ctx, proposal)
        if widening is not None:
            return _settle_refused(ctx, proposal, widening)
        if ctx.proposals.transition(proposal_id, ps.APPLYING) is None:
            current = ctx.proposals.get(proposal_id)
            return {"result": f"not applied: proposal is {current.state if current else 'gone'}"}
    elif proposal.state != ps.APPLYING:
        return {"result": f"not applied: proposal is {proposal.state}"}
    outcome = start_change(ctx.db, ctx.iam(proposal.account), role_name=proposal.role_name,
                           proposed_documents=proposal.documents, expected_policy_hash=proposal.base_policy_hash,
                           proposal_id=proposal_id, requested_by=approved_by,
                           managed_policy_prefix=ctx.config.managed_policy_prefix,
                           retention_days=ctx.config.retention_days, scope=scope_from_config(ctx.config),
                           clock=ctx.clock, retry=_retry(ctx))
    _unless_finished(outcome)
    return _settle_apply(ctx, proposal_id, outcome)


def _retry(ctx: JobContext) -> Any:
    from bot.aws.calls import RetryPolicy

    return RetryPolicy(sleep=ctx.sleep)


def _unless_finished(outcome: Any) -> None:
    """An apply or restore that could not finish now stays with its change; the item is retried later (and
    recovery queues a new one if its retries run out), and nothing is posted until it ends."""
    if not outcome.finished:
        raise ChangeNotFinished(outcome.message)


def _result_of(change: cs.Change) -> Any:
    from bot.aws.change_targets import ChangeResult

    if change.state == cs.APPLIED:
        message = f"role {change.role_name} now holds {', '.join(change.policy_names)}"
    else:
        message = change.reason or change.state
    return ChangeResult(change.id, change.state, change.role_name, message)


def _account_of(ctx: JobContext, change_id: str) -> str:
    change = ctx.changes.get(change_id)
    if change is None:
        raise KeyError(f"no change {change_id}")
    return change.account


def _managed_as_code_refusal(ctx: JobContext, proposal: ps.Proposal) -> str | None:
    """Why the role may not be changed directly: it is managed as code now (read from IAM, not from the proposal:
    a stack tag may have appeared since the scan) and ``iac.direct_apply`` is off for its account."""
    from bot.aws.inventory import get_role_snapshot
    from bot.jobs.scan import scope_from_config

    if ctx.config.direct_apply_allowed(proposal.account):
        return None
    snapshot = get_role_snapshot(ctx.iam(proposal.account), proposal.role_name)
    found = scope_from_config(ctx.config).managed_as_code(snapshot)
    if found is None:
        return None
    return (f"not applied: role {proposal.role_name} is managed as code ({found.reason}) and iac.direct_apply is "
            f"off for account {proposal.account}; change it in its {found.tool} code (tighten proposal show "
            f"{proposal.id} --format {found.tool})")


def _refuse_managed_as_code(ctx: JobContext, proposal: ps.Proposal, reason: str) -> dict[str, Any]:
    ctx.proposals.transition(proposal.id, ps.FAILED, decision_reason=reason[:500])
    ctx.audit.record("tighten", "apply.refused_managed_as_code", proposal.id, message=reason)
    ctx.count("apply.refused_managed_as_code")
    if ctx.notifier is not None:
        ctx.notifier.post_apply_result(proposal.id, None, False, reason)
    return {"result": "refused", "message": reason}


def _stale_reason(ctx: JobContext, proposal: ps.Proposal) -> str | None:
    """Why the approved proposal no longer fits the role (its policies changed since the scan), or None.
    ``start_change`` checks again right before touching anything; this early check lets the proposal end
    ``stale`` before it is claimed for applying."""
    from bot.aws.inventory import get_role_snapshot

    current = get_role_snapshot(ctx.iam(proposal.account), proposal.role_name).policy_hash()
    if current == proposal.base_policy_hash:
        return None
    return (f"role {proposal.role_name} changed since the proposal was computed (policy hash "
            f"{proposal.base_policy_hash[:12]} then, {current[:12]} now); nothing was changed, a new scan is queued")


def _containment_refusal(ctx: JobContext, proposal: ps.Proposal) -> str | None:
    """The containment check again, right before apply, against the role as IAM returns it now (same
    boundary both sides) -- for a restore proposal, against that and the before-image of the change it restores
    (:mod:`bot.jobs.restore`): why the proposal would grant more than that, or None when it would not."""
    from bot.aws.inventory import get_role_snapshot
    from bot.jobs.restore import proposal_ceiling
    from bot.policy.contain import check_no_new_access
    from bot.policy.model import PolicyError, parse_policy

    snapshot = get_role_snapshot(ctx.iam(proposal.account), proposal.role_name)
    try:
        current = [parse_policy(doc, name) for name, doc in snapshot.identity_documents()]
        proposed = [parse_policy(doc, f"proposed-{i + 1}") for i, doc in enumerate(proposal.documents)]
        boundary = parse_policy(snapshot.boundary_document, "boundary") if snapshot.boundary_document else None
        ceiling = proposal_ceiling(ctx, proposal, current)
    except PolicyError as exc:
        return f"cannot be checked for containment: {exc}"
    if isinstance(ceiling, str):
        return f"cannot be checked for containment: {ceiling}"
    result = check_no_new_access(ceiling, proposed, boundary)
    return None if result.passed else result.reason()


def _settle_refused(ctx: JobContext, proposal: ps.Proposal, reason: str) -> dict[str, Any]:
    ctx.proposals.transition(proposal.id, ps.REFUSED, decision_reason=reason[:500])
    ctx.audit.record("tighten", "apply.refused", proposal.id, check="containment", message=reason)
    if ctx.notifier is not None:
        ctx.notifier.post_apply_result(proposal.id, None, False, f"Not applied: the proposal {reason}.")
    return {"result": "refused", "check": "containment", "message": reason}


def _settle_stale(ctx: JobContext, proposal: ps.Proposal, reason: str) -> dict[str, Any]:
    from bot.slack.listeners import MANUAL_SCAN_PRIORITY, scan_dedupe_key

    won = ctx.proposals.transition(proposal.id, ps.STALE, decision_reason=reason[:500])
    rescan, _ = ctx.queue.enqueue("scan", {"account": proposal.account, "principal_arn": proposal.principal_arn},
                                  priority=MANUAL_SCAN_PRIORITY, dedupe_key=scan_dedupe_key(proposal.principal_arn),
                                  requested_by="tighten")
    ctx.audit.record("tighten", "apply.stale", proposal.id, message=reason, rescan=rescan.id)
    if ctx.notifier is not None and won is not None:
        ctx.notifier.post_apply_result(proposal.id, None, False, reason)
    return {"result": "stale", "message": reason, "rescan_item": rescan.id}


def _settle_apply(ctx: JobContext, proposal_id: str, outcome: Any) -> dict[str, Any]:
    """The proposal follows its change's outcome; the outcome is posted once, whoever gets here first."""
    state, change_id = outcome.state, outcome.change_id
    message = "; ".join([outcome.message, *outcome.notes])
    ok = state == cs.APPLIED
    if ok:
        ctx.proposals.transition(proposal_id, ps.APPLIED, change_id=change_id)
    elif state == cs.STALE:
        # the apply's own stale guard refused before touching the role (a race with the pre-check)
        ctx.proposals.transition(proposal_id, ps.STALE, change_id=change_id, decision_reason=message[:500])
    else:  # refused (nothing touched), failed (restored), rollback_blocked (restore stopped on others' changes)
        ctx.proposals.transition(proposal_id, ps.FAILED, change_id=change_id, decision_reason=message[:500])
    posted = _post_once(ctx, change_id, "apply",
                        lambda: ctx.notifier.post_apply_result(proposal_id, change_id, ok, message)  # type: ignore[union-attr]
                        if ctx.notifier is not None else False)
    if posted:
        ctx.audit.record("tighten", f"apply.{state}", proposal_id, change_id=change_id, message=message)
    return {"result": state, "change_id": change_id, "message": message, "posted": posted}


def _post_once(ctx: JobContext, change_id: str | None, kind: str, post: Callable[[], Any]) -> bool:
    """Post an outcome unless it already was. Runs under the item's lease, so nobody posts it concurrently; a
    crash between Slack accepting the message and this record is the one case that posts it twice."""
    if change_id is not None and ctx.changes.outcome_posted(change_id, kind):
        return False
    if not post():
        return False
    if change_id is not None:
        ctx.changes.record_outcome_post(change_id, kind)
    return True


def _change_of(ctx: JobContext, proposal_id: str) -> cs.Change | None:
    changes = ctx.changes  # creates the tables on a fresh store
    row = changes.db.conn.execute("SELECT id FROM changes WHERE proposal_id = ? ORDER BY created_at DESC, rowid DESC"
                              " LIMIT 1", [proposal_id]).fetchone()
    return changes.get(row[0]) if row else None


def handle_rollback(ctx: JobContext, item: WorkItem) -> dict[str, Any]:
    """Roll back a change (``force``: over someone else's changes to what it touched), or finish an interrupted
    rollback; post the result."""
    from bot.aws.apply import resume_change, rollback_change

    change_id = item.payload["change_id"]
    requested_by = item.payload.get("requested_by") or item.requested_by
    force = bool(item.payload.get("force"))
    change = ctx.changes.get(change_id)
    if change is None:
        return {"result": f"unknown change {change_id}"}
    if change.state == cs.ROLLING_BACK:  # a previous attempt died or could not finish
        outcome = resume_change(ctx.db, ctx.iam(change.account), change_id, clock=ctx.clock, retry=_retry(ctx))
        if outcome is None:
            raise ChangeNotFinished(f"change {change_id} is being worked on by {ctx.changes.holder(change_id)}")
    elif change.state in (cs.ROLLED_BACK, cs.FAILED) and item.attempts > 1:
        outcome = _result_of(change)  # re-run after a crash: only make sure the result was posted
    else:
        outcome = rollback_change(ctx.db, ctx.iam(change.account), change_id, requested_by=requested_by,
                                  force=force, clock=ctx.clock, retry=_retry(ctx))
    _unless_finished(outcome)
    if (change.auto_rollback and change.proposal_id and not force
            and outcome.state in (cs.FAILED, cs.ROLLBACK_BLOCKED)):
        return _settle_apply(ctx, change.proposal_id, outcome)  # an apply's restore, finished by recovery
    # restored: a rollback, or (forced) the restore of a failed apply that had stopped on others' changes
    ok = outcome.state == cs.ROLLED_BACK or (change.auto_rollback and outcome.state == cs.FAILED)
    if ok and change.proposal_id:
        ctx.proposals.transition(change.proposal_id, ps.ROLLED_BACK)
    message = "; ".join([outcome.message, *outcome.notes])
    notifier = ctx.notifier
    post = (lambda: notifier.post_rollback_result(change.proposal_id, change_id, ok, message, requested_by,
                                                  conflicts=outcome.conflicts)) if notifier is not None else (
        lambda: False)
    if ok or outcome.state == cs.ROLLBACK_BLOCKED:
        posted = _post_once(ctx, change_id, f"rollback:{outcome.state}", post)
    else:  # refused (nothing changed): the answer to this request
        posted = bool(post())
    ctx.audit.record(requested_by or "tighten", f"rollback.{outcome.state}", change_id, message=message)
    return {"result": outcome.state, "message": message, "posted": posted, "conflicts": outcome.conflicts}


def handle_ingest(ctx: JobContext, item: WorkItem) -> dict[str, Any]:
    from bot.ingest import ingest

    source = item.payload.get("source") or ctx.config.cloudtrail_source
    if not source:
        return {"result": "no cloudtrail.source configured"}
    since = (ctx.clock() - timedelta(days=ctx.config.lookback_days)).date()
    report = ingest(source, ctx.usage, since=since, s3_client=ctx.s3_client, workers=ctx.ingest_workers,
                    accounts=[a.id for a in ctx.config.accounts] or None)
    return {"result": "ingested", "files_read": report.files_read, "events": report.events,
            "errors": len(report.errors)}


def handle_plan(ctx: JobContext, item: WorkItem) -> dict[str, Any]:
    from bot.jobs.planner import plan_scans

    plans = plan_scans(ctx, item.payload.get("accounts"))
    return {"result": "planned", "queued": sum(1 for p in plans if p.skipped is None),
            "skipped": sum(1 for p in plans if p.skipped is not None)}


def handle_digest(ctx: JobContext, item: WorkItem) -> dict[str, Any]:
    from bot.jobs.digest import send_digest

    sent = send_digest(ctx, item.payload["channel"], item.payload.get("kind", "daily"))
    return {"result": "sent" if sent else "not sent"}


def handle_watch(ctx: JobContext, item: WorkItem) -> dict[str, Any]:
    """Denials after applied changes; also posts pending proposals whose review message never went out."""
    from bot.jobs.watch import watch_applied_changes

    alerts = watch_applied_changes(ctx)
    return {"result": "watched", "alerts": len(alerts), "reposted": len(post_unposted_proposals(ctx))}


def post_unposted_proposals(ctx: JobContext) -> list[str]:
    """Pending proposals without a review message (Slack was down, or a worker ran without Slack): post them."""
    if ctx.notifier is None:
        return []
    posted = []
    for proposal in ctx.proposals.list(states=(ps.PENDING,), limit=100_000):
        if not proposal.message_ts and ctx.notifier.post_proposal(proposal.id):
            posted.append(proposal.id)
    return posted


def handle_expire(ctx: JobContext, item: WorkItem) -> dict[str, Any]:
    expired = expire_proposals(ctx)
    return {"result": "expired", "proposals": expired}


def expire_proposals(ctx: JobContext) -> list[str]:
    """Pending proposals older than ``apply.proposal_ttl_days`` expire (their message is updated)."""
    cutoff = ctx.clock() - timedelta(days=ctx.config.proposal_ttl_days)
    expired = []
    for proposal in ctx.proposals.list(states=(ps.PENDING,), limit=100_000):
        if parse_iso(proposal.created_at) <= cutoff and ctx.proposals.transition(proposal.id, ps.EXPIRED):
            expired.append(proposal.id)
            ctx.audit.record("tighten", "proposal.expire", proposal.id, ttl_days=ctx.config.proposal_ttl_days)
            update = getattr(ctx.notifier, "update_decision", None)
            if update is not None:
                update(proposal.id)
    return expired
