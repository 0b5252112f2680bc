"""Daily and weekly digests: what Tighten did and what is waiting, per configured channel.

:func:`build_digest` reads the store only (deterministic for a given clock): proposals waiting and for how
long, changes applied and rolled back in the period, actions removed by the changes applied in the period,
the riskiest principals still untightened, and principals whose history is insufficient (young roles, scans
refused for incomplete data). :func:`render_digest` turns it into Slack text and blocks with the Jinja2
templates ``bot/templates/digest_*.j2``; :func:`removed_chart_png` plots permissions removed over time
(matplotlib, Agg backend, no display needed). :func:`send_digest` posts all of it through the notifier.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.jobs.context import JobContext
from bot.slack import limits
from bot.slack.blocks import context, header, mrkdwn
from bot.slack.templating import render
from bot.store import changes as cs
from bot.store import proposals as ps
from bot.store import scans as sc
from bot.util.clock import iso, parse_iso

PERIODS = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}
TOP_RISKY = 5
CHART_DAYS = 30


@dataclass
class WaitingProposal:
    id: str
    role_name: str
    account: str
    waiting: timedelta
    removed: int

    @property
    def waiting_text(self) -> str:
        return format_age(self.waiting)


@dataclass
class ChangeLine:
    id: str
    role_name: str
    at: str
    removed: int
    by: str | None = None


@dataclass
class RiskyPrincipal:
    arn: str
    name: str
    risk_score: float
    status: str  # "proposal pending", "not proposed: ...", ...


@dataclass
class Digest:
    kind: str
    period_start: str
    period_end: str
    waiting: list[WaitingProposal] = field(default_factory=list)
    applied: list[ChangeLine] = field(default_factory=list)
    rolled_back: list[ChangeLine] = field(default_factory=list)
    actions_removed: int = 0
    riskiest: list[RiskyPrincipal] = field(default_factory=list)
    insufficient_history: list[tuple[str, str]] = field(default_factory=list)  # (name or arn, why)
    removed_by_day: list[tuple[str, int]] = field(default_factory=list)  # (day, cumulative removed), chart


def format_age(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    if hours < 1:
        return "less than an hour"
    if hours < 48:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{hours // 24} days"


def build_digest(ctx: JobContext, kind: str = "daily", *, now: datetime | None = None) -> Digest:
    if kind not in PERIODS:
        raise ValueError(f"digest kind must be one of {', '.join(PERIODS)}, got {kind!r}")
    now = now or ctx.clock()
    start = iso(now - PERIODS[kind])
    end = iso(now)
    digest = Digest(kind=kind, period_start=start, period_end=end)

    for p in sorted(ctx.proposals.list(states=(ps.PENDING,), limit=100_000), key=lambda p: p.created_at):
        digest.waiting.append(WaitingProposal(p.id, p.role_name, p.account, now - parse_iso(p.created_at),
                                              _removed(p.stats)))

    removed_of: dict[str, int] = {}
    for change in ctx.changes.list(states=(cs.APPLIED, cs.ROLLED_BACK), limit=100_000):
        proposal = ctx.proposals.get(change.proposal_id) if change.proposal_id else None
        removed = _removed(proposal.stats) if proposal else 0
        removed_of[change.id] = removed
        applied_at = _applied_at(ctx, change)
        if start <= applied_at <= end:
            digest.applied.append(ChangeLine(change.id, change.role_name, applied_at, removed, change.requested_by))
            digest.actions_removed += removed
        if change.state == cs.ROLLED_BACK and start <= change.updated_at <= end:
            digest.rolled_back.append(ChangeLine(change.id, change.role_name, change.updated_at, removed,
                                                 change.rolled_back_by))
    digest.applied.sort(key=lambda c: c.at)
    digest.rolled_back.sort(key=lambda c: c.at)
    digest.riskiest = _riskiest(ctx)
    digest.insufficient_history = _insufficient(ctx)
    digest.removed_by_day = _removed_by_day(ctx, now, removed_of)
    return digest


def _removed(stats: dict[str, Any]) -> int:
    return int(stats.get("removed", 0) or 0)


def _applied_at(ctx: JobContext, change: cs.Change) -> str:
    """When the change reached ``applied`` (the audit log), else its last update."""
    row = ctx.db.conn.execute("SELECT MIN(at) FROM audit WHERE subject = ? AND action = ?",
                              [change.id, f"change.{cs.APPLIED}"]).fetchone()
    return row[0] if row and row[0] else change.updated_at


def _riskiest(ctx: JobContext) -> list[RiskyPrincipal]:
    out: list[RiskyPrincipal] = []
    for rec in ctx.scans.all():  # risk descending
        latest = ctx.proposals.latest(rec.principal_arn)
        if rec.result in (sc.ALREADY_TIGHT, sc.EXCLUDED) or (latest is not None and latest.state == ps.APPLIED):
            continue
        if latest is not None and latest.state == ps.PENDING:
            status = f"proposal `{latest.id}` waiting for review"
        elif rec.result == sc.PROPOSED and latest is not None:
            status = f"proposal `{latest.id}` {latest.state}"
        else:
            status = f"not proposed ({rec.result})"
        name = rec.principal_arn.rsplit("/", 1)[-1]
        out.append(RiskyPrincipal(rec.principal_arn, name, rec.risk_score, status))
        if len(out) >= TOP_RISKY:
            break
    return out


def _insufficient(ctx: JobContext) -> list[tuple[str, str]]:
    found: dict[str, str] = {}
    for role in ctx.roles.all(in_scope=True):
        for warning in role.warnings:
            if "insufficient history" in warning:
                found[role.name] = warning
    for rec in ctx.scans.all():
        if rec.result == sc.INCOMPLETE:
            name = rec.principal_arn.rsplit("/", 1)[-1]
            found.setdefault(name, "; ".join(rec.detail.get("notes") or [rec.detail.get("message", "")]))
    return sorted(found.items())


def _removed_by_day(ctx: JobContext, now: datetime, removed_of: dict[str, int]) -> list[tuple[str, int]]:
    """Cumulative actions removed (applied minus rolled back) at the end of each of the last CHART_DAYS days."""
    deltas: dict[str, int] = {}
    for change_id, removed in removed_of.items():
        change = ctx.changes.get(change_id)
        if change is None:
            continue
        day = _applied_at(ctx, change)[:10]
        deltas[day] = deltas.get(day, 0) + removed
        if change.state == cs.ROLLED_BACK:
            deltas[change.updated_at[:10]] = deltas.get(change.updated_at[:10], 0) - removed
    first = (now - timedelta(days=CHART_DAYS - 1)).date()
    total = sum(v for d, v in deltas.items() if d < first.isoformat())
    out = []
    for i in range(CHART_DAYS):
        day = (first + timedelta(days=i)).isoformat()
        total += deltas.get(day, 0)
        out.append((day, total))
    return out


def render_digest(digest: Digest) -> tuple[str, list[dict[str, Any]]]:
    """(notification text, Block Kit blocks)."""
    title = f"Tighten {digest.kind} digest"
    body = render("digest_body.j2", d=digest)
    text = render("digest_text.j2", d=digest, title=title)
    blocks: list[dict[str, Any]] = [header(title)]
    for part in body.split("\n\n"):
        if part.strip():
            blocks.append(mrkdwn(part.strip()))
    blocks.append(context(f"{digest.period_start[:16].replace('T', ' ')} – {digest.period_end[:16].replace('T', ' ')} UTC"))
    return limits.clip(text, limits.MAX_NOTIFICATION_TEXT), limits.fit_blocks(blocks)


def removed_chart_png(digest: Digest) -> bytes:
    """A small line chart of cumulative permissions removed per day, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    days = [d for d, _ in digest.removed_by_day]
    values = [v for _, v in digest.removed_by_day]
    fig = Figure(figsize=(6, 2.5), dpi=100)
    ax = fig.add_subplot()
    ax.plot(range(len(days)), values, marker="o", markersize=2, color="#2e7d32")
    ax.fill_between(range(len(days)), values, color="#a5d6a7", alpha=0.4)
    ticks = list(range(0, len(days), max(1, len(days) // 6)))
    ax.set_xticks(ticks, [days[i][5:] for i in ticks])
    ax.set_ylabel("actions removed")
    ax.set_title("Permissions removed (cumulative)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def send_digest(ctx: JobContext, channel: str, kind: str = "daily", *, chart: bool = True) -> bool:
    """Build, render and post the digest (with the chart uploaded in its thread unless ``chart`` is False)."""
    digest = build_digest(ctx, kind)
    text, blocks = render_digest(digest)
    if ctx.notifier is None:
        return False
    png = removed_chart_png(digest) if chart else None
    sent = bool(ctx.notifier.post_digest(channel, text, blocks, png))
    ctx.audit.record("tighten", "digest.sent" if sent else "digest.failed", channel, kind=kind)
    return sent
