"""The worker: claims work items from the queue and runs them, one at a time.

Kinds: ``scan``, ``apply``, ``rollback``, ``ingest``, ``plan``, ``digest``, ``expire``, ``watch``. Claims are
atomic (``WorkQueue.claim``), so several workers never run one item twice. At start-up :meth:`Worker.recover`
puts items a dead process left ``running`` back to ``pending`` and finishes interrupted IAM changes
(``resume_incomplete``). Every handler is idempotent for that reason: a re-run apply finds its journaled change,
a re-run scan supersedes its own proposal, a re-run watch reports nothing twice.

A handler error fails the item with retries (``WorkQueue.max_attempts``); the error text is the exception type
and message, which never hold credentials (boto3 and slack_sdk do not put them in messages).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from bot.jobs.context import JobContext
from bot.store import changes as cs
from bot.store import proposals as ps
from bot.store import scans as sc
from bot.store.queue import WorkItem
from bot.util.clock import iso, parse_iso

log = logging.getLogger(__name__)

KINDS = ("scan", "apply", "rollback", "ingest", "plan", "digest", "expire", "watch")
RETRY_DELAY = timedelta(minutes=5)

Handler = Callable[[JobContext, WorkItem], dict[str, Any]]


class Worker:
    def __init__(self, ctx: JobContext, *, name: str | None = None, kinds: tuple[str, ...] = KINDS) -> None:
        self.ctx = ctx
        self.name = name or ctx.worker_name
        self.kinds = list(kinds)
        self.handlers: dict[str, Handler] = {
            "scan": handle_scan, "apply": handle_apply, "rollback": handle_rollback, "ingest": handle_ingest,
            "plan": handle_plan, "digest": handle_digest, "expire": handle_expire, "watch": handle_watch,
        }

    def recover(self) -> dict[str, Any]:
        """Start-up: re-queue items left running, finish IAM changes a crash interrupted."""
        requeued = self.ctx.queue.recover()
        resumed: list[str] = []
        if self.ctx.iam_for is not None:
            from bot.aws.apply import resume_incomplete

            accounts = {c.account for c in self.ctx.changes.incomplete()}
            for account in sorted(accounts):
                for result in resume_incomplete(self.ctx.db, self.ctx.iam(account), account=account,
                                                clock=self.ctx.clock):
                    resumed.append(f"{result.change_id}:{result.state}")
        if requeued or resumed:
            log.info("recovered %d work item(s); resumed changes: %s", requeued, ", ".join(resumed) or "none")
        return {"requeued": requeued, "resumed": resumed}

    def run_once(self) -> WorkItem | None:
        """Claim and run one due item; returns it (as claimed) or None when nothing is due."""
        item = self.ctx.queue.claim(self.name, self.kinds)
        if item is None:
            return None
        handler = self.handlers.get(item.kind)
        try:
            if handler is None:
                raise ValueError(f"unknown work item kind {item.kind!r}")
            result = handler(self.ctx, item)
        except Exception as exc:  # noqa: BLE001 - a failed item must never stop the worker
            error = f"{type(exc).__name__}: {exc}"
            self.ctx.count(f"work.{item.kind}.error")
            log.warning("work item %s (%s) failed: %s", item.id, item.kind, error)
            self.ctx.queue.fail(item.id, error, retry=handler is not None,
                                not_before=iso(self.ctx.clock() + RETRY_DELAY))
            return item
        if self.ctx.queue.get(item.id).state == "running":
            self.ctx.queue.complete(item.id, result)
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
                if self.run_once() is None:
                    stop.wait(idle_wait)
        finally:
            self.ctx.close()


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
        outcome = run_scan(ctx, account, arn, requested_by=requested_by, work_item=item.id)
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
    from bot.aws.apply import start_change
    from bot.jobs.scan import scope_from_config

    proposal_id = item.payload["proposal_id"]
    approved_by = item.payload.get("approved_by") or item.requested_by
    proposal = ctx.proposals.get(proposal_id)
    if proposal is None:
        return {"result": "unknown proposal"}
    if proposal.state == ps.APPLYING:  # a previous attempt died: its change (if any) was resumed at start-up
        change = _change_of(ctx, proposal_id)
        if change is not None and change.state not in cs.INCOMPLETE_STATES:
            return _settle_apply(ctx, proposal_id, change.id, change.state, change.reason or change.state)
    elif proposal.state != ps.APPROVED:
        return {"result": f"not applied: proposal is {proposal.state}"}
    elif (as_code := _managed_as_code_refusal(ctx, proposal)) is not None:
        return _refuse_managed_as_code(ctx, proposal, as_code)
    elif (stale := _stale_reason(ctx, proposal)) is not None:
        return _settle_stale(ctx, proposal, stale)
    elif (widening := _containment_refusal(ctx, proposal)) is not None:
        return _settle_refused(ctx, proposal, widening)
    elif ctx.proposals.transition(proposal_id, ps.APPLYING) is None:
        current = ctx.proposals.get(proposal_id)
        return {"result": f"not applied: proposal is {current.state if current else 'gone'}"}
    outcome = start_change(ctx.db, ctx.iam(proposal.account), role_name=proposal.role_name,
                           proposed_documents=proposal.documents, expected_policy_hash=proposal.base_policy_hash,
                           proposal_id=proposal_id, requested_by=approved_by,
                           managed_policy_prefix=ctx.config.managed_policy_prefix,
                           retention_days=ctx.config.retention_days, scope=scope_from_config(ctx.config),
                           clock=ctx.clock)
    return _settle_apply(ctx, proposal_id, outcome.change_id, outcome.state, outcome.message)


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
    boundary both sides): why the proposal would grant more than the role holds, or None when it would not."""
    from bot.aws.inventory import get_role_snapshot
    from bot.policy.contain import check_no_new_access
    from bot.policy.model import PolicyError, parse_policy

    snapshot = get_role_snapshot(ctx.iam(proposal.account), proposal.role_name)
    try:
        current = [parse_policy(doc, name) for name, doc in snapshot.identity_documents()]
        proposed = [parse_policy(doc, f"proposed-{i + 1}") for i, doc in enumerate(proposal.documents)]
        boundary = parse_policy(snapshot.boundary_document, "boundary") if snapshot.boundary_document else None
    except PolicyError as exc:
        return f"cannot be checked for containment: {exc}"
    result = check_no_new_access(current, proposed, boundary)
    return None if result.passed else result.reason()


def _settle_refused(ctx: JobContext, proposal: ps.Proposal, reason: str) -> dict[str, Any]:
    ctx.proposals.transition(proposal.id, ps.REFUSED, decision_reason=reason[:500])
    ctx.audit.record("tighten", "apply.refused", proposal.id, check="containment", message=reason)
    if ctx.notifier is not None:
        ctx.notifier.post_apply_result(proposal.id, None, False, f"Not applied: the proposal {reason}.")
    return {"result": "refused", "check": "containment", "message": reason}


def _settle_stale(ctx: JobContext, proposal: ps.Proposal, reason: str) -> dict[str, Any]:
    from bot.slack.listeners import MANUAL_SCAN_PRIORITY, scan_dedupe_key

    ctx.proposals.transition(proposal.id, ps.STALE, decision_reason=reason[:500])
    rescan, _ = ctx.queue.enqueue("scan", {"account": proposal.account, "principal_arn": proposal.principal_arn},
                                  priority=MANUAL_SCAN_PRIORITY, dedupe_key=scan_dedupe_key(proposal.principal_arn),
                                  requested_by="tighten")
    ctx.audit.record("tighten", "apply.stale", proposal.id, message=reason, rescan=rescan.id)
    if ctx.notifier is not None:
        ctx.notifier.post_apply_result(proposal.id, None, False, reason)
    return {"result": "stale", "message": reason, "rescan_item": rescan.id}


def _settle_apply(ctx: JobContext, proposal_id: str, change_id: str | None, state: str,
                  message: str) -> dict[str, Any]:
    ok = state == cs.APPLIED
    if ok:
        ctx.proposals.transition(proposal_id, ps.APPLIED, change_id=change_id)
    elif state == cs.STALE:
        # the apply's own stale guard refused before touching the role (a race with the pre-check)
        ctx.proposals.transition(proposal_id, ps.STALE, change_id=change_id, decision_reason=message[:500])
    else:
        ctx.proposals.transition(proposal_id, ps.FAILED, change_id=change_id, decision_reason=message[:500])
    ctx.audit.record("tighten", f"apply.{state}", proposal_id, change_id=change_id, message=message)
    if ctx.notifier is not None:
        ctx.notifier.post_apply_result(proposal_id, change_id, ok, message)
    return {"result": state, "change_id": change_id, "message": message}


def _change_of(ctx: JobContext, proposal_id: str) -> cs.Change | None:
    row = ctx.db.conn.execute("SELECT id FROM changes WHERE proposal_id = ? ORDER BY created_at DESC, rowid DESC"
                              " LIMIT 1", [proposal_id]).fetchone()
    return ctx.changes.get(row[0]) if row else None


def handle_rollback(ctx: JobContext, item: WorkItem) -> dict[str, Any]:
    from bot.aws.apply import rollback_change

    change_id = item.payload["change_id"]
    requested_by = item.payload.get("requested_by") or item.requested_by
    change = ctx.changes.get(change_id)
    if change is None:
        return {"result": f"unknown change {change_id}"}
    if change.state == cs.ROLLED_BACK and change.rolled_back_by == requested_by:
        outcome_state, message = cs.ROLLED_BACK, f"change {change_id} rolled back"  # re-run after a crash
    else:
        outcome = rollback_change(ctx.db, ctx.iam(change.account), change_id, requested_by=requested_by,
                                  clock=ctx.clock)
        outcome_state, message = outcome.state, outcome.message
    ok = outcome_state == cs.ROLLED_BACK
    if ok and change.proposal_id:
        ctx.proposals.transition(change.proposal_id, ps.ROLLED_BACK)
    ctx.audit.record(requested_by or "tighten", f"rollback.{outcome_state}", change_id, message=message)
    if ctx.notifier is not None:
        ctx.notifier.post_rollback_result(change.proposal_id, change_id, ok, message, requested_by)
    return {"result": outcome_state, "message": message}


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
