"""Hostile text through every builder of Slack text.

Every piece of text that did not come from Tighten (role names and paths, ARNs, S3 keys, tags, stack names, reasons,
times, what people type) is set to each hostile string below, and every builder of a message, modal, App Home view,
digest, ephemeral reply, thread post, file title or command reply is run. The output is checked by rules written
from Slack's formatting reference, independently of the escaping code:

* ``<`` and ``>`` appear only in the control sequences Tighten writes itself (mentions of IDs from the config or
  from Slack, dates, links to Slack messages); ``&`` only in ``&amp;``, ``&lt;``, ``&gt;``;
* no control or invisible formatting character (right-to-left override, zero-width space...) reaches Slack;
* backticks pair up on every line outside code blocks (a value cannot close its code span), and the marker
  ``ZQ`` carried by the formatting strings is only ever inside code (never bold, struck out, an emoji or a quote);
* every block and view is within Slack's limits counted in UTF-16 units; every button value is a stored row's id.

The list of builders is enumerated from the modules that build Slack text: a new public function there must get a
case here (or be listed as not building text, with the reason), or the first test fails.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient

import bot.slack.commands
import bot.slack.views
from bot.config import Account, Approvers, Config
from bot.demo.fake_slack import FakeSlackApi
from bot.jobs import digest
from bot.policy.allowlist import AllowEntry, Allowlist
from bot.slack import blocks as b
from bot.slack import code_operations, iac_blocks, limits, operations, review, templating
from bot.slack.app import make_client
from bot.slack.approvals import approval_gate
from bot.slack.commands import queue as queue_command
from bot.slack.commands.tighten import run_command
from bot.slack.context import AppContext
from bot.slack.notify import Notifier
from bot.slack.operations import Outcome
from bot.slack.views import home
from bot.store import changes as cs
from bot.store.allowlist import save_allowlist
from bot.store.proposals import Proposal
from bot.store.roles import KnownRole

ACCOUNT = "111122223333"
CHANNEL = "C0REVIEW01"
ALICE, BOB, MALLORY = "U0ALICE001", "U0BOB00001", "U0MALLORY1"
GROUP = "S0APPROVE1"

HOSTILE = {
    "channel": "<!channel>",
    "here": "<!here>",
    "mention": "<@U123>",
    "link": "<https://evil.example/sso|Re-approve here>",
    "entity": "&amp; &lt;b&gt; &",
    "backticks": "x` *ZQbold* `y ``` ZQfence ```",
    "formatting": "*ZQb* _ZQi_ ~ZQs~ :ZQemoji: > ZQquote",
    "newlines": "ok\n:white_check_mark: *ZQApproved* by <@U0ALICE001>\r\n> ZQquoted",
    "rtl": "admin\u202egnp.exe\u2066ZQ\u2069\u200b",
    "emoji_3000": "\U0001F600" * 3000,
    "s3_key_1024_bytes": "arn:aws:s3:::reports/" + "\U0001F600" * 256,
    "iam_path": "/<!here>/",
}

#: Public functions of the text-building modules that build no Slack text themselves, and why.
NOT_BUILDERS = {
    "bot.slack.blocks.button": "a primitive: label from its caller, value an id (checked on every button below)",
    "bot.slack.blocks.confirm_dialog": "a primitive: its callers pass escaped text (they are cases)",
    "bot.slack.blocks.context": "a primitive: its callers pass escaped text",
    "bot.slack.blocks.header": "a primitive: its callers pass plain() text",
    "bot.slack.blocks.mrkdwn": "a primitive: its callers pass escaped text",
    "bot.slack.blocks.info": "a primitive: every caller (operations, commands, listeners) passes escaped text",
    "bot.slack.blocks.ephemeral": "a primitive: the command router passes escaped problems",
    "bot.slack.blocks.chunk_lines": "splits text already escaped (policy_modal is a case)",
    "bot.slack.blocks.permalink": "builds a URL from ids it validates (home_view and status are cases)",
    "bot.slack.review.listing": "joins items its callers escaped",
    "bot.slack.review.stats_rows": "numbers, not text",
    "bot.slack.review.diff_excerpt": "the body of a code block; review_message (a case) escapes it",
    "bot.slack.review.details_text": "the content of a thread file, never rendered as mrkdwn",
    "bot.slack.review.decision_section": "decision_lines (a case) in a section",
    "bot.slack.iac_blocks.file_name": "a file name; snippet and the uploads (cases) use it",
    "bot.slack.operations.restore_dedupe_key": "a queue key",
    "bot.slack.approvals.approval_gate": "data: who may approve; review_message renders it",
    "bot.slack.templating.render": "renders templates; every template is reached through a case",
    "bot.slack.templating.is_slack_user": "a test on an id",
    "bot.slack.templating.count": "a number and Tighten's noun",
    "bot.slack.commands.base.expect_args": "raises CommandError with escaped text (command cases reach it)",
    "bot.slack.commands.base.resolve_role": "raises CommandError with escaped text (command cases reach it)",
    "bot.slack.commands.tighten.register": "registers the listener; run_command is a case",
    "bot.slack.views.home.register": "registers the listener; home_for is a case",
    "bot.slack.views.home.publish_home": "publishes home_for (a case) through the fake Slack (a case)",
    "bot.slack.views.reject_submission.register": "posts operations.reject's outcome (a case)",
    "bot.jobs.digest.build_digest": "data; render_digest is a case",
    "bot.jobs.digest.format_age": "a duration in Tighten's words",
    "bot.jobs.digest.removed_chart_png": "an image",
    "bot.jobs.digest.send_digest": "render_digest (a case) posted by Notifier.post_digest (a case)",
}
TEXT_MODULES = ["bot.slack.blocks", "bot.slack.review", "bot.slack.iac_blocks", "bot.slack.operations",
                "bot.slack.code_operations", "bot.slack.approvals", "bot.slack.templating", "bot.jobs.digest",
                *(m.name for m in pkgutil.iter_modules(bot.slack.commands.__path__, "bot.slack.commands.")),
                *(m.name for m in pkgutil.iter_modules(bot.slack.views.__path__, "bot.slack.views."))]


def discovered_builders() -> set[str]:
    found = set()
    for name in TEXT_MODULES:
        module = importlib.import_module(name)
        found |= {f"{name}.{n}" for n, f in inspect.getmembers(module, inspect.isfunction)
                  if f.__module__ == name and not n.startswith("_")}
    found |= {f"bot.slack.notify.Notifier.{n}" for n, f in inspect.getmembers(Notifier, inspect.isfunction)
              if not n.startswith("_")}
    return found


# -- the world every builder runs in ------------------------------------------------------------------------
@dataclass
class World:
    h: str
    ctx: AppContext
    client: WebClient
    fake: FakeSlackApi
    proposal: Proposal  # a normal proposal for a role named h
    as_code: Proposal  # a proposal for a role managed as code (stack h)
    change_id: str
    blocked_change_id: str
    role: KnownRole  # named "plain-role", everything else about it hostile
    offer_id: str
    notifier: Notifier


def make_world(tmp_path: Path, fake: FakeSlackApi, h: str) -> World:
    config = Config(accounts=(Account(id=ACCOUNT, name="prod", channel=CHANNEL,
                                      approvers=Approvers(users=(ALICE,), groups=(GROUP,))),),
                    allowlist_path=str(tmp_path / "allowlist.yaml"))
    ctx = AppContext(db_path=str(tmp_path / "tighten.db"), config=config)
    client = make_client("xoxb-test", base_url=fake.base_url, wait_scale=0.0, backoff=0.001)
    arn = f"arn:aws:iam::{ACCOUNT}:role{h if h.startswith('/') else '/'}{h}"
    role = KnownRole(account=ACCOUNT, arn=f"arn:aws:iam::{ACCOUNT}:role/{h}/plain-role", name="plain-role",
                     path=f"/{h}/", in_scope=False, excluded_reason=h, warnings=[h],
                     managed_as_code={"tool": "terraform", "reason": h})
    ctx.roles.upsert(role)
    ctx.roles.upsert(KnownRole(account=ACCOUNT, arn=arn, name=h))
    via = {"arn": arn, "name": h, "iam_admin": True, "paths": ["iam-put-role-policy"]}  # path ids: catalogue data
    checks = {"containment": {"result": "pass"}, "replay": {"calls": 3, "days": 30, "denied": 0},
              # path ids and names are Tighten's catalogue data; the named role that opens the path is outside text
              "escalation": {"open": [{"id": "lambda-passrole", "name": "Pass a role to Lambda", "text": h,
                                       "via": [via], "new": True}],
                             "closed": [{"id": "iam-put-role-policy", "name": "Write an inline policy"}],
                             "high_risk_kept": [{"kind": "pass-role", "role": via, "text": h},
                                                {"kind": "iam-write", "actions": [h], "text": h}],
                             "unresolved_roles": [h], "iam_admin": {"before": True, "after": True},
                             "counts": {"open_before": 2, "open_after": 1, "closed": 1}},
              "restore": {"change_id": h, "proposal_id": h, "actions": [h]}}
    common: dict[str, Any] = dict(
        account=ACCOUNT, principal_arn=arn, role_name=h,
        documents=[{"Version": "2012-10-17", "Statement": [{"Sid": h, "Effect": "Allow", "Action": "s3:GetObject",
                                                            "Resource": f"arn:aws:s3:::b/{h}"}]}],
        summary="removes 3 actions across 1 service; keeps 1 action in 1 service",
        diff_text=f"removes 3 actions\n\nKEPT\n  s3:GetObject on arn:aws:s3:::b/{h}\n{h}", unified_diff=h,
        window_start="2026-11-01T00:00:00Z", window_end="2026-12-01T00:00:00Z", risk_score=5.0,
        risk_reasons=["unused actions"], warnings=[{"code": "seen_once", "message": "1 action was used once"}],
        notes=[h], requested_by=h, decided_by=h, decision_reason=h, channel=CHANNEL,
        checks=checks, excluded_approvers=[{"user": h, "reason": h}, {"user": BOB, "reason": h,
                                                                       "action": "s3:GetObject", "resource": h}])
    proposal = ctx.proposals.create(**common)
    ctx.proposals.update(proposal.id, message_ts="1700000000.000001")
    as_code = ctx.proposals.create(**{**common, "principal_arn": arn + "-code"},
                                   iac={"managed": {"tool": "cloudformation", "reason": h, "stack": h},
                                        "direct_apply": True})
    ctx.proposals.update(as_code.id, message_ts="1700000000.000002")
    changes = ctx.changes
    change = changes.create(account=ACCOUNT, role_name=h, role_arn=arn, before_image={"x": h}, before_policy_hash=h,
                            state=cs.APPLYING, steps=[], documents=[], policy_names=[h], expected_policy_hash=h,
                            proposal_id=proposal.id, requested_by=h, reason=h)
    changes.transition(change.id, cs.APPLIED)
    blocked = changes.create(account=ACCOUNT, role_name="other", role_arn=arn + "2", before_image={"x": h},
                             before_policy_hash=h, state=cs.APPLYING, steps=[], documents=[], policy_names=[h],
                             expected_policy_hash=h, proposal_id=proposal.id, requested_by=h, reason=h)
    for state in (cs.APPLIED, cs.ROLLING_BACK, cs.ROLLBACK_BLOCKED):
        changes.transition(blocked.id, state)
    ctx.queue.enqueue("scan", {"account": ACCOUNT, "principal_arn": arn, "restore": h}, requested_by=h)
    ctx.queue.enqueue("apply", {"proposal_id": h}, requested_by=h)
    ctx.queue.enqueue("rollback", {"change_id": h}, requested_by=h)
    ctx.scans.record(role.arn, account=ACCOUNT, policy_hash=h, usage_fingerprint=h, result="refused",
                     detail={"check": h, "reason": h})
    save_allowlist(Allowlist([AllowEntry(action="s3:GetObject", resource=f"arn:aws:s3:::b/{h}", principal=role.arn,
                                         reason=h)]), config.allowlist_path or "")
    offer = ctx.allowances.offer(change_id=change.id, proposal_id=proposal.id, account=ACCOUNT, principal_arn=arn,
                                 action="s3:GetObject", resource=f"arn:aws:s3:::b/{h}")
    return World(h, ctx, client, fake, ctx.proposals.get(proposal.id), ctx.proposals.get(as_code.id), change.id,
                 blocked.id, role, offer.id, Notifier(client, ctx))


def _fresh(w: World, **kw: Any) -> Proposal:
    """A new pending proposal for the hostile role (operations change state)."""
    fields = {k: v for k, v in w.proposal.__dict__.items()
              if k not in ("id", "state", "created_at", "updated_at", "decided_by", "decided_at", "decision_reason",
                           "message_ts", "change_id")}
    fields.update(principal_arn=f"{w.proposal.principal_arn}-{len(w.ctx.proposals.list())}", **kw)
    return w.ctx.proposals.create(**fields)


def _cmd(w: World, text: str, user: str = ALICE) -> b.Message:
    return run_command(w.ctx, w.client, user, CHANNEL, text)


def _denials(w: World) -> list[b.Denial]:
    return [b.Denial(w.h, w.h, w.h, w.h, w.offer_id), b.Denial("s3:GetObject", w.h, "AccessDenied",
                                                              "2026-11-23T10:00:00Z")]


CASES: dict[str, Callable[[World], Any]] = {
    # blocks
    "bot.slack.blocks.apply_result_message": lambda w: [b.apply_result_message(w.proposal, w.change_id, ok, w.h)
                                                        for ok in (True, False)],
    "bot.slack.blocks.rollback_actions": lambda w: b.rollback_actions(w.change_id, w.h),
    "bot.slack.blocks.rollback_result_message": lambda w: [
        b.rollback_result_message(w.proposal, w.change_id, ok, w.h, w.h, conflicts)
        for ok in (True, False) for conflicts in ((), (w.h, w.h))],
    "bot.slack.blocks.force_rollback_actions": lambda w: b.force_rollback_actions(w.change_id, w.h),
    "bot.slack.blocks.denial_alert_message": lambda w: b.denial_alert_message(w.proposal, w.change_id, _denials(w)),
    "bot.slack.blocks.decision_text": lambda w: [b.decision_text(Proposal(**{**w.proposal.__dict__, "state": s}))
                                                 for s in ("approved", "applied", "failed", "refused", "rejected",
                                                           "applied_via_code", "rolled_back", "stale")],
    "bot.slack.blocks.slack_date": lambda w: [b.slack_date(w.h), b.slack_date("2026-11-23T10:00:00Z")],
    "bot.slack.blocks.policy_modal": lambda w: b.policy_modal(w.proposal),
    "bot.slack.blocks.reject_modal": lambda w: b.reject_modal(w.proposal, w.h, w.h),
    "bot.slack.blocks.home_view": lambda w: b.home_view(ALICE, [w.proposal], w.ctx.changes.list(),
                                                        queue_command.queue_lines(w.ctx.queue.pending())),
    # the review message and its parts
    "bot.slack.review.review_message": lambda w: [review.review_message(p, approval_gate(w.ctx.config, p))
                                                  for p in (w.proposal, w.as_code)],
    "bot.slack.review.decision_lines": lambda w: "\n".join(review.decision_lines(
        w.proposal, approval_gate(w.ctx.config, w.proposal))),
    "bot.slack.review.risk_text": lambda w: review.risk_text(w.proposal),
    "bot.slack.review.warnings_text": lambda w: review.warnings_text(
        Proposal(**{**w.proposal.__dict__, "warnings": [{"code": w.h, "message": "x"}, "plain"]})),
    "bot.slack.review.stats_block": lambda w: review.stats_block(w.proposal) or [],
    "bot.slack.review.role_label": lambda w: review.role_label({"name": w.h, "iam_admin": False,
                                                                      "paths": ["iam-put-role-policy"]}),
    # managed as code
    "bot.slack.iac_blocks.managed_as_code_context": lambda w: iac_blocks.managed_as_code_context(w.as_code),
    "bot.slack.iac_blocks.managed_as_code_actions": lambda w: iac_blocks.managed_as_code_actions(w.as_code),
    "bot.slack.iac_blocks.applied_via_code_message": lambda w: [
        iac_blocks.applied_via_code_message(w.as_code, confirmed=c) for c in (True, False)],
    "bot.slack.iac_blocks.drift_back_message": lambda w: iac_blocks.drift_back_message(w.as_code, w.change_id),
    "bot.slack.iac_blocks.snippet": lambda w: iac_blocks.snippet(w.as_code, "terraform"),
    # decisions (ephemeral replies and thread posts)
    "bot.slack.operations.approve": lambda w: [
        operations.approve(w.ctx, w.client, ALICE, w.h), operations.approve(w.ctx, w.client, ALICE, w.as_code.id),
        operations.approve(w.ctx, w.client, MALLORY, _fresh(w).id),
        operations.approve(w.ctx, w.client, BOB, _fresh(w, excluded_approvers=[
            {"user": BOB, "reason": "x", "action": "s3:GetObject", "resource": w.h}]).id),
        operations.approve(w.ctx, w.client, ALICE, _fresh(w).id)],
    "bot.slack.operations.reject": lambda w: [operations.reject(w.ctx, w.client, ALICE, w.h, w.h),
                                              operations.reject(w.ctx, w.client, ALICE, _fresh(w).id, w.h)],
    "bot.slack.operations.can_reject": lambda w: [operations.can_reject(w.ctx, w.client, ALICE, w.h),
                                                  operations.can_reject(w.ctx, w.client, MALLORY, _fresh(w).id)],
    "bot.slack.operations.request_rollback": lambda w: [
        operations.request_rollback(w.ctx, w.client, ALICE, w.h),
        operations.request_rollback(w.ctx, w.client, ALICE, w.blocked_change_id),
        operations.request_rollback(w.ctx, w.client, ALICE, w.change_id)],
    "bot.slack.operations.allow_action": lambda w: [
        operations.allow_action(w.ctx, w.client, ALICE, account=ACCOUNT, principal_arn=w.proposal.principal_arn,
                                action="s3:GetObject", resource=w.h, reason=w.h, rescan=True),
        operations.allow_action(w.ctx, w.client, ALICE, account=ACCOUNT, principal_arn=w.proposal.principal_arn,
                                action="s3:GetObject", resource=f"arn:aws:s3:::b/{w.h}", reason=w.h, rescan=True)],
    "bot.slack.operations.allow_offered": lambda w: [operations.allow_offered(w.ctx, w.client, ALICE, w.h),
                                                     operations.allow_offered(w.ctx, w.client, ALICE, w.offer_id)],
    "bot.slack.code_operations.can_open_as_code": lambda w: [code_operations.can_open_as_code(w.ctx, w.h, w.h),
                                                            code_operations.can_open_as_code(w.ctx, w.h, "terraform")],
    "bot.slack.code_operations.mark_applied_via_code": lambda w: [
        code_operations.mark_applied_via_code(w.ctx, w.client, ALICE, w.h),
        code_operations.mark_applied_via_code(w.ctx, w.client, ALICE, w.as_code.id),
        code_operations.mark_applied_via_code(w.ctx, w.client, ALICE, w.as_code.id)],
    # actors
    "bot.slack.templating.who": lambda w: templating.who(w.h),
    "bot.slack.templating.group": lambda w: templating.group(w.h),
    # commands (every subcommand, with hostile arguments and with hostile stored data)
    "bot.slack.commands.tighten.run_command": lambda w: [_cmd(w, w.h), _cmd(w, f"scan {w.h}"), _cmd(w, "scan x y")],
    "bot.slack.commands.status.handle": lambda w: [_cmd(w, "status"), _cmd(w, "status plain-role"),
                                                   _cmd(w, f"status {w.h}")],
    "bot.slack.commands.queue.handle": lambda w: [_cmd(w, "queue"), _cmd(w, f"queue {w.h}")],
    "bot.slack.commands.queue.describe": lambda w: [queue_command.describe(i) for i in w.ctx.queue.pending()],
    "bot.slack.commands.queue.queue_lines": lambda w: "\n".join(queue_command.queue_lines(w.ctx.queue.pending())),
    "bot.slack.commands.scan.handle": lambda w: [_cmd(w, "scan plain-role"), _cmd(w, f"scan {w.h}")],
    "bot.slack.commands.allow.handle": lambda w: [_cmd(w, f"allow plain-role {w.h}"),
                                                  _cmd(w, f"allow plain-role s3:GetObject {w.h}"),
                                                  _cmd(w, "allow plain-role s3:GetObject", user=MALLORY)],
    "bot.slack.commands.allowlist.handle": lambda w: [_cmd(w, "allowlist"), _cmd(w, "allowlist plain-role")],
    "bot.slack.commands.rollback.handle": lambda w: [_cmd(w, f"rollback {w.h}"),
                                                     _cmd(w, f"rollback {w.change_id} {w.h}")],
    "bot.slack.commands.help.handle": lambda w: _cmd(w, "help"),
    # App Home and the digest
    "bot.slack.views.home.home_for": lambda w: home.home_for(w.ctx, w.client, ALICE),
    "bot.jobs.digest.render_digest": lambda w: digest.render_digest(digest.build_digest(w.ctx)),  # type: ignore[arg-type]
    # everything the notifier posts or uploads (checked on the fake Slack's recorded calls)
    "bot.slack.notify.Notifier.review": lambda w: w.notifier.review(w.proposal),
    "bot.slack.notify.Notifier.post_proposal": lambda w: w.notifier.post_proposal(_fresh(w).id),
    "bot.slack.notify.Notifier.update_decision": lambda w: w.notifier.update_decision(w.proposal.id),
    "bot.slack.notify.Notifier.post_apply_result": lambda w: w.notifier.post_apply_result(
        w.proposal.id, w.change_id, False, w.h),
    "bot.slack.notify.Notifier.post_rollback_result": lambda w: w.notifier.post_rollback_result(
        w.proposal.id, w.change_id, False, w.h, requested_by=w.h, conflicts=[w.h]),
    "bot.slack.notify.Notifier.post_denial_alert": lambda w: w.notifier.post_denial_alert(
        w.proposal.id, w.change_id, [(w.h, w.h, w.h, w.h), ("s3:GetObject", f"arn:aws:s3:::b/{w.h}", "x", w.h)]),
    "bot.slack.notify.Notifier.post_applied_via_code": lambda w: w.notifier.post_applied_via_code(
        w.as_code.id, confirmed=True),
    "bot.slack.notify.Notifier.post_drift_back": lambda w: w.notifier.post_drift_back(w.as_code.id, w.change_id),
    "bot.slack.notify.Notifier.upload_snippet": lambda w: w.notifier.upload_snippet(w.as_code.id, "cloudformation",
                                                                                   requested_by=w.h),
    "bot.slack.notify.Notifier.post_digest": lambda w: w.notifier.post_digest(
        CHANNEL, *digest.render_digest(digest.build_digest(w.ctx))),  # type: ignore[arg-type]
}


# -- the rules ----------------------------------------------------------------------------------------------
OWN_SEQUENCES = re.compile(
    r"<@[UW][A-Z0-9]+>|<!subteam\^S[A-Z0-9]+>"
    r"|<!date\^\d+\^\{date_short_pretty\} at \{time\}\|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ>"
    r"|<https://slack\.com/archives/[CGD][A-Z0-9]+/p\d+\|[a-z ]+>")
FENCED = re.compile(r"```.*?```", re.S)
SPAN = re.compile(r"`[^`\n]*`")


def _invisible(ch: str, previous: str) -> bool:
    category = unicodedata.category(ch)
    if category == "Cc":
        return ch not in "\n"
    if category == "Cf":
        return not (ch == "\u200d" and unicodedata.category(previous or " ") in ("So", "Sk"))
    return False


def check_mrkdwn(text: str, where: str) -> None:
    assert limits.units(text) <= limits.MAX_MESSAGE_TEXT, where
    rest = OWN_SEQUENCES.sub("", text)
    assert "<" not in rest and ">" not in rest, (where, text[:300])
    assert "&" not in re.sub(r"&(amp|lt|gt);", "", text), (where, text[:300])
    bad = [ch for i, ch in enumerate(text) if _invisible(ch, text[i - 1] if i else "")]
    assert not bad, (where, [f"U+{ord(c):04X}" for c in bad[:5]])
    outside_blocks = FENCED.sub("", text)
    assert "```" not in outside_blocks, (where, "unclosed code block")
    for line in outside_blocks.split("\n"):
        assert line.count("`") % 2 == 0, (where, "unpaired backtick", line[:200])
        assert "ZQ" not in SPAN.sub("", line), (where, "outside text outside code", line[:200])


def check_plain(text: str, where: str) -> None:
    bad = [ch for i, ch in enumerate(text) if _invisible(ch, text[i - 1] if i else "")]
    assert not bad and "\n" not in text, (where, [f"U+{ord(c):04X}" for c in bad[:5]])


def walk(value: Any, where: str) -> Iterator[tuple[str, str, str]]:
    """(kind, text, where) for every text object, button value and plain label in a Block Kit value."""
    if isinstance(value, dict):
        kind = value.get("type")
        if kind in ("mrkdwn", "plain_text") and isinstance(value.get("text"), str):
            yield kind, value["text"], where
        if kind == "button":
            yield "button_value", str(value.get("value", "")), where
        for key, item in value.items():
            if key != "text" or not isinstance(item, str):
                yield from walk(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from walk(item, f"{where}[{i}]")


def check_output(out: Any, where: str) -> None:
    if isinstance(out, list) and out and not isinstance(out[0], dict):
        for i, item in enumerate(out):
            check_output(item, f"{where}[{i}]")
        return
    if isinstance(out, b.Message):
        check_mrkdwn(out.text, where + ".text")
        assert limits.check_blocks(out.blocks) == [], where
        out = out.blocks
    elif isinstance(out, Outcome):
        check_mrkdwn(out.message, where)
        return
    elif isinstance(out, str):
        check_mrkdwn(out, where)
        return
    elif isinstance(out, tuple):  # (notification text, blocks)
        check_mrkdwn(out[0], where + ".text")
        assert limits.check_blocks(out[1]) == [], where
        out = out[1]
    elif isinstance(out, dict) and out.get("type") in ("modal", "home"):
        assert limits.check_blocks(out["blocks"], limits.MAX_VIEW_BLOCKS) == [], where
        if "private_metadata" in out:
            json.loads(out["private_metadata"])
    elif isinstance(out, dict) and "filename" in out:  # a file upload
        assert re.fullmatch(r"[A-Za-z0-9+=,.@_-]+", out["filename"]), (where, out["filename"])
        check_plain(out["title"], where + ".title")
        return
    elif isinstance(out, dict) and out.get("type") in ("section", "context", "actions"):
        assert limits.check_blocks([out]) == [], where
    for kind, text, place in walk(out, where):
        if kind == "mrkdwn":
            check_mrkdwn(text, place)
        elif kind == "plain_text":
            check_plain(text, place)
        else:
            assert b.BUTTON_VALUE.match(text), (place, text[:60])


def check_slack_calls(fake: FakeSlackApi, where: str) -> None:
    """Everything the notifier sent: messages, updates, ephemeral replies, file titles and comments."""
    for call in fake.calls:
        params = call.params
        place = f"{where} {call.method}"
        if "text" in params:
            check_mrkdwn(str(params["text"]), place + ".text")
        for key in ("blocks",):
            if key in params:
                blocks = params[key] if isinstance(params[key], list) else json.loads(params[key])
                assert limits.check_blocks(blocks) == [], place
                check_output(blocks, place)
        if "initial_comment" in params:
            check_mrkdwn(str(params["initial_comment"]), place + ".initial_comment")
        for key in ("title", "filename"):
            if key in params:
                check_plain(str(params[key]), place + "." + key)
        for f in params.get("files") or []:
            if isinstance(f, dict) and "title" in f:
                check_plain(str(f["title"]), place + ".files.title")


# -- the tests ----------------------------------------------------------------------------------------------
def test_every_builder_has_a_hostile_case() -> None:
    found = discovered_builders()
    assert not set(CASES) & set(NOT_BUILDERS)
    missing = found - set(CASES) - set(NOT_BUILDERS)
    assert not missing, f"builders of Slack text without a hostile-text case: {sorted(missing)}"
    gone = (set(CASES) | set(NOT_BUILDERS)) - found
    assert not gone, f"cases for builders that no longer exist: {sorted(gone)}"


@pytest.fixture()
def fake() -> Iterator[FakeSlackApi]:
    with FakeSlackApi(usergroups={GROUP: [BOB]}) as api:
        yield api


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_text_through_every_builder(name: str, tmp_path: Path, fake: FakeSlackApi) -> None:
    w = make_world(tmp_path, fake, HOSTILE[name])
    for builder, run in CASES.items():
        check_output(run(w), f"{name}: {builder}")
    check_slack_calls(fake, name)
    assert fake.calls_to("chat.postMessage") and fake.calls_to("files.completeUploadExternal")
