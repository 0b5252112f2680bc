"""Post-apply watch: did a change break something?

For every change applied within the last ``apply.watch_days``, new CloudTrail denials of that role (from the
usage index, recorded by ingest) are checked against the role's *old* policies (the change's before-image): a
denial of a call the old policies allowed is probably caused by the change, so it is posted in the proposal's
thread with "Roll back" and "Allow <action>" buttons (``Notifier.post_denial_alert``). Each denial (by CloudTrail
event id, action and resource) is reported once: it is remembered in ``watch_reported`` only after Slack
accepted the message, so a failed post is retried on the next run and a successful one never repeats.

The old policies are evaluated with ``bot.policy.evaluate`` on the denied resource; when CloudTrail did not
record the resource (``?``) the action alone decides (the old policies granted it on some resource).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.aws.inventory import RoleSnapshot
from bot.jobs.context import JobContext
from bot.policy.evaluate import Decision, Evaluator
from bot.policy.expand import effective_permissions
from bot.policy.keep import ANY_RESOURCE, UNKNOWN_RESOURCE
from bot.policy.model import Policy, parse_policy
from bot.store import changes as cs
from bot.store.usage import DenialRow
from bot.util.clock import iso

#: Most denials listed in one alert (the rest follow in the next run's alert).
MAX_DENIALS_PER_ALERT = 20


@dataclass
class DenialAlert:
    change_id: str
    proposal_id: str
    role_arn: str
    denials: list[DenialRow]
    posted: bool


class OldPolicies:
    """What the role could do before the change."""

    def __init__(self, snapshot: RoleSnapshot) -> None:
        self.policies: list[Policy] = [parse_policy(doc, name) for name, doc in snapshot.identity_documents()]
        self.boundary = parse_policy(snapshot.boundary_document, "boundary") if snapshot.boundary_document else None
        self.evaluator = Evaluator(self.policies, self.boundary)
        self._actions: frozenset[str] | None = None

    def allowed(self, action: str, resource: str) -> bool:
        if resource in (UNKNOWN_RESOURCE, ANY_RESOURCE, ""):
            if self._actions is None:
                self._actions = effective_permissions(self.policies, self.boundary).actions()
            return action in self._actions
        return self.evaluator.evaluate(action, resource) in (Decision.ALLOWED, Decision.CONDITIONAL)


def watch_applied_changes(ctx: JobContext) -> list[DenialAlert]:
    """Check every recently applied change once; returns the alerts raised in this run."""
    ensure_schema(ctx)
    since = iso(ctx.clock() - timedelta(days=ctx.config.watch_days))
    alerts: list[DenialAlert] = []
    for change in ctx.changes.list(states=(cs.APPLIED,), limit=10_000):
        if change.updated_at < since or not change.proposal_id:
            continue
        alert = check_change(ctx, change)
        if alert is not None:
            alerts.append(alert)
    return alerts


def check_change(ctx: JobContext, change: cs.Change) -> DenialAlert | None:
    """New denials of ``change``'s role on calls its old policies allowed; posted once each."""
    ensure_schema(ctx)
    image = ctx.changes.before_image(change.id)
    if image is None or change.proposal_id is None:
        return None
    old = OldPolicies(RoleSnapshot.from_json(image["snapshot"]))
    reported = {(r[0], r[1], r[2]) for r in ctx.db.conn.execute(
        "SELECT event_id, action, resource FROM watch_reported WHERE change_id = ?", [change.id])}
    new: list[DenialRow] = []
    for denial in ctx.usage.denials(change.role_arn, since=change.updated_at):
        if (denial.event_id, denial.action, denial.resource) in reported:
            continue
        if old.allowed(denial.action, denial.resource):
            new.append(denial)
    if not new:
        return None
    batch = new[:MAX_DENIALS_PER_ALERT]
    posted = False
    if ctx.notifier is not None:
        posted = bool(ctx.notifier.post_denial_alert(
            change.proposal_id, change.id, [(d.action, d.resource, d.error_code, d.event_time) for d in batch]))
    if posted:
        ctx.db.conn.executemany(
            "INSERT OR IGNORE INTO watch_reported (change_id, event_id, action, resource, reported_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [(change.id, d.event_id, d.action, d.resource, iso(ctx.clock())) for d in batch])
        ctx.audit.record("tighten", "watch.denials", change.id, proposal_id=change.proposal_id,
                         actions=sorted({d.action for d in batch}))
    ctx.count("watch.denials_found", len(batch))
    return DenialAlert(change_id=change.id, proposal_id=change.proposal_id, role_arn=change.role_arn,
                       denials=batch, posted=posted)


def ensure_schema(ctx: JobContext) -> None:
    ctx.db.conn.execute(
        """CREATE TABLE IF NOT EXISTS watch_reported (
            change_id TEXT NOT NULL, event_id TEXT NOT NULL, action TEXT NOT NULL, resource TEXT NOT NULL,
            reported_at TEXT NOT NULL, PRIMARY KEY (change_id, event_id, action, resource)
        )"""
    )
