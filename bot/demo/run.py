"""``tighten demo``: the whole loop against an embedded AWS and a local (or real) Slack, every step checked.

Nothing here is simulated beyond the two emulators: the CloudTrail bucket is read by the real ingest, scans are
planned and run by the real jobs, review messages are built and posted by the real Slack notifier, the Approve
and Rollback clicks are signed HTTP requests to the real Bolt app served on 127.0.0.1 (the same path Slack's
requests take), and the worker applies and rolls back through the real IAM code. A click by someone who is not
an approver is refused, another proposal is rejected with a reason through the Reject form, and the daily
digest is sent by firing its scheduled trigger. Each step checks that it did what it says; the first one that
did not stops the demo with a message and exit status 1.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import time
import traceback
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml
from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from bot.demo.render import print_message
from bot.demo.seed import (
    ACCOUNT,
    BREAK_GLASS,
    CFN_LOGICAL_ID,
    CFN_ROLE,
    CFN_STACK,
    SERVICE_LINKED,
    SeedResult,
    seed_account,
)
from bot.util.clock import utcnow

#: The role whose proposal the demo approves, applies and rolls back (AdministratorAccess today).
DEMO_ROLE = "ci-deployer"
#: Roles the seed creates that must end up with a proposal.
EXPECTED_PROPOSALS = ("ci-deployer", "data-analyst", "reporting-job", "orders-api-exec", CFN_ROLE)
#: The demo allowlist: the Lambda's log writes are not in this trail's logs, so without this entry the proposal
#: for its execution role would drop them. Shows how the allowlist covers what CloudTrail does not show.
ALLOWLIST = {"entries": [{
    "action": "logs:PutLogEvents",
    "resource": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/orders-api:log-stream:*",
    "principal": "orders-api-exec",
    "reason": "the orders-api Lambda writes its logs with PutLogEvents, which this trail does not record",
}]}
DEMO_CHANNEL = "CDEMOREVIEW"
DEMO_APPROVER = "UDEMOAPPROVER"
#: Someone in the channel who is not an approver: their click must change nothing.
DEMO_INTRUDER = "UDEMOVISITOR"
#: The proposal the demo clicks Approve on as DEMO_INTRUDER (it stays pending).
REFUSED_ROLE = "data-analyst"
#: The proposal the demo rejects, and why.
REJECTED_ROLE = "reporting-job"
REJECT_REASON = "the quarterly export also needs athena:* - keep it until the export job is rewritten"
#: The environment ``--slack`` needs, and what each variable is.
SLACK_ENV = {
    "SLACK_BOT_TOKEN": "a bot token (xoxb-...)",
    "SLACK_SIGNING_SECRET": "the app's signing secret",
    "TIGHTEN_DEMO_CHANNEL": "the Slack channel ID the demo posts in",
    "TIGHTEN_DEMO_APPROVER": "your Slack user ID (the demo approves as you)",
}
LOOKBACK_DAYS = 30
HISTORY_DAYS = 40
#: Longest the demo waits for one queued job (apply, rollback) to finish.
JOB_TIMEOUT = 60.0


class StepFailed(Exception):
    """A demo step did not do what it said; the message says what was expected and what happened."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise StepFailed(message)


@dataclass
class DemoOptions:
    out_dir: Path
    slack: bool = False  # post to a real workspace (tokens and channel from the environment)
    console: Console = field(default_factory=Console)


@dataclass
class DemoState:
    """What the steps hand to each other."""

    aws: Any = None
    fake_slack: Any = None
    http: Any = None
    seed: SeedResult | None = None
    config_path: Path | None = None
    config: Any = None
    db_path: Path | None = None
    job_ctx: Any = None
    app_ctx: Any = None
    client: Any = None
    signing_secret: str = ""
    channel: str = DEMO_CHANNEL
    approver: str = DEMO_APPROVER
    proposals: dict[str, Any] = field(default_factory=dict)  # role name -> Proposal
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # role name -> posted message
    before: Any = None  # RoleSnapshot of DEMO_ROLE before apply
    change_id: str | None = None
    cfn_template: Any = None  # the CloudFormation template uploaded for CFN_ROLE
    cleanups: list[Callable[[], None]] = field(default_factory=list)


class Demo:
    def __init__(self, options: DemoOptions) -> None:
        self.opts = options
        self.console = options.console
        self.s = DemoState()
        self.steps: list[tuple[str, Callable[[], None]]] = [
            ("Start an embedded AWS (moto server on 127.0.0.1)", self.start_aws),
            ("Seed the account: roles and 40 days of CloudTrail in an org-trail bucket", self.seed),
            ("Write and validate the demo config", self.write_config),
            ("Start Slack: " + ("real workspace" if options.slack else "local fake Slack Web API"), self.start_slack),
            ("Ingest CloudTrail from the S3 bucket into the usage index", self.ingest),
            ("Inventory roles and plan scans, riskiest first", self.plan),
            ("Run the scans: proposals posted for review", self.run_scans),
            ("Show each review message (Block Kit JSON saved)", self.show_messages),
            (f"Approve {DEMO_ROLE}'s proposal with a signed Slack request", self.approve),
            (f"The worker applies the change to {DEMO_ROLE}", self.apply),
            ("Roll back with a signed click on the Rollback button", self.rollback),
            (f"A click on Approve by someone who is not an approver ({REFUSED_ROLE})", self.refused_click),
            (f"Reject {REJECTED_ROLE}'s proposal with a reason (the Reject form)", self.reject),
            (f"Open the proposal of {CFN_ROLE} (CloudFormation stack {CFN_STACK}) as CloudFormation",
             self.open_as_cloudformation),
            ("Deploy the snippet as the stack update would; the next inventory closes the proposal",
             self.deploy_as_code),
            ("The scheduled daily digest (Block Kit JSON and chart saved)", self.digest),
        ]

    # -- driver ------------------------------------------------------------------------------------------
    def run(self) -> int:
        started = time.monotonic()
        self.console.rule("[bold]Tighten demo")
        try:
            for number, (title, step) in enumerate(self.steps, 1):
                self.console.print(f"\n[bold cyan]{number}/{len(self.steps)}[/] [bold]{title}[/]")
                try:
                    step()
                except StepFailed as exc:
                    self.console.print(f"[bold red]✗ step {number} failed:[/] {escape(str(exc))}")
                    return 1
                except Exception as exc:  # a missing piece or a bug: one line (the traceback with --debug)
                    from bot.cli import debugging
                    from bot.errors import explain

                    explained = explain(exc)
                    what = explained[0] if explained else (f"{type(exc).__name__}: {exc} (a bug: TIGHTEN_DEBUG=1 "
                                                           "shows the traceback)")
                    self.console.print(f"[bold red]✗ step {number} failed:[/] {escape(what)}")
                    if debugging():
                        self.console.print(traceback.format_exc(), style="dim", markup=False, highlight=False)
                    return 1
                self.console.print("[green]✓ done[/]")
        finally:
            self.close()
        self.console.rule(f"[bold green]Demo complete in {time.monotonic() - started:.0f} s: every step checked")
        self.console.print(f"Block Kit JSON, config and store are in [bold]{self.opts.out_dir}[/]")
        return 0

    def close(self) -> None:
        for cleanup in reversed(self.s.cleanups):
            try:
                cleanup()
            except Exception as exc:  # cleanup must never hide the demo's result
                self.console.print(f"[dim]cleanup: {type(exc).__name__}: {exc}[/]")
        self.s.cleanups.clear()

    def say(self, text: str) -> None:
        self.console.print(f"  {text}")

    # -- steps -------------------------------------------------------------------------------------------
    def start_aws(self) -> None:
        from bot.aws.embedded import start_embedded_aws

        for noisy in ("werkzeug", "moto"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
        self._isolate_aws_environment()
        self.s.aws = start_embedded_aws(load_managed_policies=True)
        os.environ["AWS_ENDPOINT_URL"] = self.s.aws.endpoint_url  # any default boto3 client goes to moto too
        self.s.cleanups.append(self.s.aws.stop)
        self.s.aws.reset()  # moto's state is per process: start from an empty account even if one ran before
        sts = self._client("sts")
        identity = sts.get_caller_identity()
        check(identity["Account"] == ACCOUNT, f"embedded AWS answers as account {identity['Account']}")
        self.say(f"moto server at {self.s.aws.endpoint_url}, account {identity['Account']}")

    def seed(self) -> None:
        seed = seed_account(self.s.aws.endpoint_url, now=utcnow(), days=HISTORY_DAYS)
        self.s.seed = seed
        table = Table("role", "holds today", box=None, padding=(0, 2))
        iam = self._client("iam")
        for name, arn in seed.role_arns.items():
            role_name = arn.rsplit("/", 1)[-1]
            attached = [p["PolicyName"] for p in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]]
            inline = [f"{p} (inline)" for p in iam.list_role_policies(RoleName=role_name)["PolicyNames"]]
            table.add_row(role_name if name != SERVICE_LINKED else f"{role_name} (service-linked)",
                          ", ".join(attached + inline) or "-")
        self.console.print(table)
        self.say(f"{seed.events} events ({seed.data_events} data events, {seed.denied} denied) in {seed.objects} "
                 f"objects under s3://{seed.bucket}/AWSLogs/{seed.org_id}/{seed.account}/, "
                 f"{seed.first_event} .. {seed.last_event}")
        check(seed.objects > 0 and seed.events > 0, "the seed uploaded no CloudTrail")

    def write_config(self) -> None:
        from bot.config import load_config

        out = self.opts.out_dir
        if self.opts.slack:
            self.s.channel = os.environ["TIGHTEN_DEMO_CHANNEL"]
            self.s.approver = os.environ["TIGHTEN_DEMO_APPROVER"]
        self.s.db_path = out / "tighten.db"
        for leftover in out.glob("tighten.db*"):
            leftover.unlink()
        raw = {
            "store": {"path": str(self.s.db_path)},
            "cloudtrail": {"source": self.s.seed.source, "lookback_days": LOOKBACK_DAYS},
            "accounts": [{"id": ACCOUNT, "name": "demo", "channel": self.s.channel,
                          "approvers": {"users": [self.s.approver]}}],
            "scope": {"protected_roles": [BREAK_GLASS]},
            "slack": {"mode": "http", "review_channel": self.s.channel,
                      "digests": [{"channel": self.s.channel, "kind": "daily"}]},
            "backend": {"engine": "local"},
            "allowlist": "allowlist.yaml",
        }
        (out / "allowlist.yaml").write_text("# Written by `tighten demo`.\n" + yaml.safe_dump(ALLOWLIST, sort_keys=False))
        path = out / "tighten.demo.yaml"
        path.write_text("# Written by `tighten demo`; validated like any config.\n"
                        + yaml.safe_dump(raw, sort_keys=False))
        self.s.config_path = path
        self.s.config = load_config(path)
        self.say(f"{path}: lookback {LOOKBACK_DAYS} days, {BREAK_GLASS} protected, approver {self.s.approver}, "
                 f"channel {self.s.channel}, allowlist {out / 'allowlist.yaml'}")

    def start_slack(self) -> None:
        from bot.demo.recording import RecordingClient

        if self.opts.slack:
            # read once and taken out of the environment while the demo runs, so Bolt does not also pick the
            # token up from there (it would warn that one of the two is unused)
            saved = {name: os.environ.pop(name) for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")}
            self.s.cleanups.append(lambda: os.environ.update(saved))
            self.s.signing_secret = saved["SLACK_SIGNING_SECRET"]
            self.s.client = RecordingClient(saved["SLACK_BOT_TOKEN"])
        else:
            from bot.demo.fake_slack import FakeSlackApi

            self.s.fake_slack = FakeSlackApi().start()
            self.s.cleanups.append(self.s.fake_slack.stop)
            self.s.signing_secret = secrets.token_hex(16)  # the demo's own app: requests signed with it
            self.s.client = RecordingClient("xoxb-demo-not-a-real-token", base_url=self.s.fake_slack.base_url)
        auth = self.s.client.auth_test()
        check(bool(auth.get("ok")), f"Slack auth.test failed: {auth.get('error')}")
        self.say(f"Slack Web API ok (bot user {auth.get('user_id')}, team {auth.get('team_id')})")

    def ingest(self) -> None:
        from bot.ingest import ingest
        from bot.store.db import open_db
        from bot.store.usage import UsageIndex

        index = UsageIndex(open_db(self.s.db_path))
        report = ingest(self.s.seed.source, index, s3_client=self._client("s3"), workers=1)
        seed = self.s.seed
        self.say(f"{report.files_read} objects, {report.events} events, {report.usage_events} usage, "
                 f"{report.denied} denied (kept apart: not usage), {report.principals} principals in {report.seconds:.1f} s"
                 + (f"; skipped {dict(report.skipped)}" if report.skipped else ""))
        check(not report.errors, f"objects could not be read: {report.errors}")
        check(report.files_read == seed.objects, f"read {report.files_read} of {seed.objects} objects")
        check(report.events == seed.events, f"read {report.events} of {seed.events} events")
        check(report.denied == seed.denied, f"{report.denied} denied calls recorded, the logs hold {seed.denied}")
        again = ingest(self.s.seed.source, index, s3_client=self._client("s3"), workers=1)
        check(again.files_read == 0, f"a second ingest re-read {again.files_read} objects")
        self.say(f"second ingest: {again.files_already_ingested} objects already ingested, nothing re-read")
        index.db.conn.close()

    def plan(self) -> None:
        from bot.jobs.context import JobContext
        from bot.jobs.planner import plan_scans

        iam = self._client("iam")
        self.s.job_ctx = JobContext(db_path=str(self.s.db_path), config=self.s.config, clock=utcnow,
                                    iam_for=lambda account: iam)
        self.s.cleanups.append(self.s.job_ctx.close)
        plans = plan_scans(self.s.job_ctx)
        table = Table("priority", "role", "risk", "unused grants", "queued", box=None, padding=(0, 2))
        for p in plans:
            table.add_row(str(p.priority), p.role_name, f"{p.risk_score:.2f}", str(p.unused),
                          "yes" if p.skipped is None else f"no: {p.skipped}")
        self.console.print(table)
        for role in self.s.job_ctx.roles.all(in_scope=False):
            self.say(f"out of scope: {role.name} ({role.excluded_reason})")
        planned = {p.role_name for p in plans}
        check(BREAK_GLASS not in planned, f"{BREAK_GLASS} is protected but was planned")
        check(not any(p.principal_arn == self.s.seed.role_arns[SERVICE_LINKED] for p in plans),
              "the service-linked role was planned")
        missing = [r for r in EXPECTED_PROPOSALS if r not in planned]
        check(not missing, f"no scan planned for {missing}")
        order = [p.role_name for p in plans]
        check(order.index("ci-deployer") < order.index("reporting-job"),
              "an AdministratorAccess role must be scanned before an s3:*/dynamodb:* role")

    def run_scans(self) -> None:
        self._attach_notifier()
        done = self._drain(kinds=["scan"])
        self.say(f"{done} scan(s) run")
        proposals = self.s.job_ctx.proposals.list()
        by_role = {p.role_name: p for p in proposals}
        missing = [r for r in EXPECTED_PROPOSALS if r not in by_role]
        check(not missing, f"no proposal for {missing} (scans: {self._scan_results()})")
        for name in EXPECTED_PROPOSALS:
            p = by_role[name]
            check(p.state == "pending", f"{name}'s proposal is {p.state}, expected pending")
            check(bool(p.message_ts), f"{name}'s proposal was not posted to Slack")
            self.say(f"{name}: {p.id} — {p.summary}")
        self.s.proposals = by_role
        allowed = ALLOWLIST["entries"][0]
        granted = [st for doc in by_role["orders-api-exec"].documents for st in doc["Statement"]
                   if allowed["action"] in _as_list(st["Action"])]
        check(any(allowed["resource"] in _as_list(st["Resource"]) for st in granted),
              f"the allowlisted {allowed['action']} is missing from orders-api-exec's proposal")
        self.say(f"orders-api-exec keeps {allowed['action']} from the allowlist (not in the logs)")

    def show_messages(self) -> None:
        msg_dir = self.opts.out_dir / "messages"
        msg_dir.mkdir(parents=True, exist_ok=True)
        for name in EXPECTED_PROPOSALS:
            p = self.s.proposals[name]
            message = self._message(p.channel, p.message_ts)
            check(bool(message.get("blocks")), f"{name}'s review message has no blocks")
            self.s.messages[name] = message
            path = msg_dir / f"{name}.json"
            path.write_text(json.dumps({"channel": p.channel, "ts": p.message_ts, "text": message.get("text"),
                                        "blocks": message["blocks"]}, indent=2))
            print_message(self.console, message, f"review: {name} ({p.id})")
            self.say(f"[dim]Block Kit JSON: {path}[/]")
            first = message["blocks"][1].get("text", {}).get("text", "")
            check(f"*Who may approve:* <@{self.s.approver}>" in first,
                  f"{name}'s review message does not name its approvers above the fold")
            for path_id in [x["id"] for x in (p.checks.get("escalation") or {}).get("open") or []][:1]:
                check(f"({path_id}" in first, f"{name}'s open escalation path {path_id} is not above the fold")
        still_open = [x["id"] for x in (self.s.proposals[DEMO_ROLE].checks.get("escalation") or {}).get("open") or []]
        check(bool(still_open), f"{DEMO_ROLE}'s proposal was expected to keep an escalation path open")
        self.say(f"{DEMO_ROLE}: the path that stays open ({', '.join(still_open)}) and the approvers are in the "
                 "message's first section")

    def approve(self) -> None:
        from bot.aws.inventory import get_role_snapshot
        from bot.slack.ids import ActionId

        self._start_bolt()
        p = self.s.proposals[DEMO_ROLE]
        self.s.before = get_role_snapshot(self._client("iam"), DEMO_ROLE)
        button = _find_button(self.s.messages[DEMO_ROLE], ActionId.APPROVE)
        check(button is not None, f"{DEMO_ROLE}'s review message has no Approve button")
        status = self._click(button, p.channel, p.message_ts, self.s.messages[DEMO_ROLE])
        check(status == 200, f"the Bolt app answered {status} to the signed Approve click")
        self._wait(lambda: self._proposal(DEMO_ROLE).state != "pending", "the proposal to leave 'pending'")
        # the listener marks the proposal approved, then queues the apply: wait for both
        self._wait(lambda: bool(self.s.job_ctx.queue.items(kind="apply")), "the apply to be queued")
        p = self._proposal(DEMO_ROLE)
        check(p.state in ("approved", "applying", "applied"), f"after Approve the proposal is {p.state}")
        check(p.decided_by == self.s.approver, f"decided by {p.decided_by}, expected {self.s.approver}")
        self.say(f"{p.id} approved by {p.decided_by}; apply queued")

    def apply(self) -> None:
        from bot.aws.inventory import canonical_json, get_role_snapshot
        from bot.slack.ids import ActionId

        self._drain(kinds=["apply"])
        p = self._proposal(DEMO_ROLE)
        check(p.state == "applied", f"after the worker ran, the proposal is {p.state}, expected applied")
        check(bool(p.change_id), "the applied proposal names no change")
        self.s.change_id = p.change_id
        after = get_role_snapshot(self._client("iam"), DEMO_ROLE)
        self._show_role("before", self.s.before)
        self._show_role("after", after)
        held = sorted(canonical_json(a.document) for a in after.attached) + sorted(
            canonical_json(d) for d in after.inline.values())
        wanted = sorted(canonical_json(d) for d in p.documents)
        check(held == wanted, "the role does not hold exactly the proposed policy")
        check(not any(a.arn.endswith("/AdministratorAccess") for a in after.attached),
              "AdministratorAccess is still attached")
        result = self._thread_reply(p, ActionId.ROLLBACK)
        check(result is not None, "no apply result with a Rollback button in the proposal's thread")
        print_message(self.console, result, "thread: apply result")
        self.say(f"change {p.change_id}: {DEMO_ROLE} now holds only the proposed policy")

    def rollback(self) -> None:
        from bot.aws.inventory import get_role_snapshot
        from bot.slack.ids import ActionId

        p = self._proposal(DEMO_ROLE)
        reply = self._thread_reply(p, ActionId.ROLLBACK)
        button = _find_button(reply or {}, ActionId.ROLLBACK)
        check(button is not None, "the apply result has no Rollback button")
        status = self._click(button, p.channel, reply.get("ts", p.message_ts), reply)
        check(status == 200, f"the Bolt app answered {status} to the signed Rollback click")
        self._wait(lambda: bool(self.s.job_ctx.queue.pending("rollback")) or self._change_state() != "applied",
                   "the rollback to be queued")
        self._drain(kinds=["rollback"])
        check(self._change_state() == "rolled_back", f"change {self.s.change_id} is {self._change_state()}")
        restored = get_role_snapshot(self._client("iam"), DEMO_ROLE)
        self._show_role("after rollback", restored)
        before, now = _comparable(self.s.before), _comparable(restored)
        check(before == now, "the role is not as it was before the change:\n"
              f"  before: {before}\n  now:    {now}")
        check(restored.policy_hash() == self.s.before.policy_hash(), "policy hash differs after rollback")
        self.say(f"{DEMO_ROLE} restored byte-for-byte (same managed policy ARNs and versions, same inline "
                 f"documents, same boundary; policy hash {restored.policy_hash()[:12]})")

    def refused_click(self) -> None:
        from bot.slack.ids import ActionId

        p = self._proposal(REFUSED_ROLE)
        message = self.s.messages[REFUSED_ROLE]
        button = _find_button(message, ActionId.APPROVE)
        check(button is not None, f"{REFUSED_ROLE}'s review message has no Approve button")
        status = self._click(button, p.channel, p.message_ts, message, user=DEMO_INTRUDER)
        check(status == 200, f"the Bolt app answered {status} to the signed click")
        self._wait(lambda: any(e["action"] == "proposal.approve_refused" and e["actor"] == DEMO_INTRUDER
                               for e in self.s.job_ctx.audit.entries(p.id)), "the refusal to be recorded")
        now = self._proposal(REFUSED_ROLE)
        check(now.state == "pending" and now.decided_by is None,
              f"after a click by a non-approver the proposal is {now.state} (decided by {now.decided_by})")
        check(not self.s.job_ctx.queue.pending("apply"), "a click by a non-approver queued an apply")
        if self.s.fake_slack is not None:  # a real workspace cannot deliver to the made-up visitor
            self._wait(lambda: bool(self._fake_calls("chat.postEphemeral", user=DEMO_INTRUDER)),
                       f"the answer to {DEMO_INTRUDER}")
            answer = self._fake_calls("chat.postEphemeral", user=DEMO_INTRUDER)[-1]
            check("not an approver" in answer.get("text", ""), f"the visitor was told {answer.get('text')!r}")
            print_message(self.console, answer, f"only visible to {DEMO_INTRUDER}")
        self.say(f"{DEMO_INTRUDER} is not an approver: {now.id} is still pending, nothing queued, the refusal is "
                 "in the audit log")

    def reject(self) -> None:
        from bot.slack.blocks import reject_modal
        from bot.slack.ids import REASON_INPUT, ActionId, BlockId, CallbackId

        p = self._proposal(REJECTED_ROLE)
        message = self.s.messages[REJECTED_ROLE]
        button = _find_button(message, ActionId.REJECT)
        check(button is not None, f"{REJECTED_ROLE}'s review message has no Reject button")
        opened = len(self._fake_calls("views.open"))
        status = self._click(button, p.channel, p.message_ts, message)
        check(status == 200, f"the Bolt app answered {status} to the signed Reject click")
        if self.s.fake_slack is not None:
            self._wait(lambda: len(self._fake_calls("views.open")) > opened, "the Reject form to open")
            view = self._fake_calls("views.open")[-1]["view"]
            check(view.get("callback_id") == CallbackId.REJECT_MODAL, f"the click opened {view.get('callback_id')}")
            self.say("the Reject form opened (views.open); the reason is submitted as Slack submits the form")
        else:  # Slack refuses a trigger_id the demo made up, so the form cannot open: submit what it would hold
            view = reject_modal(p, p.channel, p.message_ts)
        values = {BlockId.REJECT_REASON: {REASON_INPUT: {"type": "plain_text_input", "value": REJECT_REASON}}}
        status = self._submit_view(view, values)
        check(status == 200, f"the Bolt app answered {status} to the signed form submission")
        self._wait(lambda: self._proposal(REJECTED_ROLE).state != "pending", "the proposal to leave 'pending'")
        now = self._proposal(REJECTED_ROLE)
        check(now.state == "rejected", f"after Reject the proposal is {now.state}")
        check(now.decided_by == self.s.approver and now.decision_reason == REJECT_REASON,
              f"rejected by {now.decided_by} with reason {now.decision_reason!r}")
        if self.s.fake_slack is not None:  # the listener updates the message with a client of its own
            key = (p.channel, p.message_ts)
            self._wait(lambda: not _buttons(self.s.fake_slack.messages.get(key, {})), "the review message to update")
            updated = {**self.s.fake_slack.messages[key], "channel": p.channel}
            check(REJECT_REASON.split(" - ")[0] in json.dumps(updated["blocks"]),
                  "the updated review message does not show the reason")
            print_message(self.console, updated, f"review: {REJECTED_ROLE} after Reject")
        self.say(f"{now.id} rejected by {now.decided_by}: the role is left as it is, the reason is on the message")

    def digest(self) -> None:
        from bot.jobs.scheduler import enqueue_job, scheduled_jobs

        triggers = [job for job in scheduled_jobs(self.s.job_ctx) if job[2] == "digest"]
        check(len(triggers) == 1, f"the config schedules {len(triggers)} digest(s), expected 1")
        job_id, cron, kind, payload = triggers[0]
        posted_before = set(self.s.client.sent)
        enqueue_job(self.s.job_ctx, kind, payload, job_id)  # what the cron trigger ({cron}) does when it fires
        ran = self._drain(kinds=["digest"])
        check(ran == 1, f"the worker ran {ran} digest item(s)")
        new = [m for key, m in self.s.client.sent.items() if key not in posted_before
               and m["channel"] == self.s.channel and not m.get("thread_ts")]
        check(len(new) == 1, f"{len(new)} digest message(s) posted in {self.s.channel}")
        digest = new[0]
        text = json.dumps(digest["blocks"])
        waiting = [p.role_name for p in self.s.job_ctx.proposals.list(states=("pending",))]
        check(sorted(waiting) == sorted([REFUSED_ROLE, "orders-api-exec"]), f"pending proposals: {waiting}")
        for role in [*waiting, DEMO_ROLE]:
            check(role in text, f"the digest does not mention {role}")
        uploads = [u for u in self.s.client.uploads if u.get("thread_ts") == digest["ts"]]
        check(len(uploads) == 1, f"{len(uploads)} chart(s) uploaded in the digest's thread")
        png = uploads[0]["content"]
        check(isinstance(png, bytes) and png[:8] == b"\x89PNG\r\n\x1a\n", "the chart is not a PNG image")
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")  # IHDR
        out = self.opts.out_dir / "digest"
        out.mkdir(parents=True, exist_ok=True)
        (out / "daily.json").write_text(json.dumps({"channel": digest["channel"], "ts": digest["ts"],
                                                    "text": digest["text"], "blocks": digest["blocks"]}, indent=2))
        (out / "daily-chart.png").write_bytes(png)
        print_message(self.console, digest, f"digest ({job_id}, cron {cron!r})")
        self.say(f"[dim]Block Kit JSON: {out / 'daily.json'}; chart ({width}x{height} PNG, uploaded in the "
                 f"digest's thread): {out / 'daily-chart.png'}[/]")

    def open_as_cloudformation(self) -> None:
        from bot.slack.ids import ActionId

        self._start_bolt()
        p = self._proposal(CFN_ROLE)
        check(bool(p.managed_as_code) and p.managed_as_code.get("stack") == CFN_STACK,
              f"{CFN_ROLE} was not recognised as managed by stack {CFN_STACK}: {p.managed_as_code}")
        message = self.s.messages[CFN_ROLE]
        check(_find_button(message, ActionId.APPROVE) is None,
              f"{CFN_ROLE} is managed as code, yet its review message has an Approve button")
        check("Managed as code" in json.dumps(message["blocks"]), "the review message does not say it is managed "
              "as code")
        button = _find_button(message, ActionId.OPEN_CLOUDFORMATION)
        check(button is not None, "no Open as CloudFormation button")
        status = self._click(button, p.channel, p.message_ts, message)
        check(status == 200, f"the Bolt app answered {status} to the signed Open as CloudFormation click")
        self._wait(lambda: any(e["action"] == "proposal.open_as_code" for e in self.s.job_ctx.audit.entries(p.id)),
                   "the CloudFormation file in the review thread")
        name, content = self._uploaded_snippet(p, "CloudFormation")
        template = yaml.load(content, Loader=_CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass
        resources = list(template["Resources"].values())
        check([r["Type"] for r in resources] == ["AWS::IAM::RolePolicy"] * len(p.documents),
              f"expected one AWS::IAM::RolePolicy per proposed document, got {[r['Type'] for r in resources]}")
        check([_normalized(r["Properties"]["PolicyDocument"]) for r in resources]
              == [_normalized(d) for d in p.documents], "the template's documents differ from the proposal's")
        check(all(r["Properties"]["RoleName"] == {"Ref": CFN_LOGICAL_ID} for r in resources),
              f"the template does not refer to the role as !Ref {CFN_LOGICAL_ID}")
        self.s.cfn_template = template
        (self.opts.out_dir / f"{CFN_ROLE}.yaml").write_text(content)
        self.console.print(Panel(Syntax(content, "yaml", theme="ansi_dark", word_wrap=True),
                                 title=f"thread file: {name}", title_align="left", border_style="magenta"))
        self.say(f"{name} uploaded in the review thread: {len(resources)} AWS::IAM::RolePolicy with the proposed "
                 f"document(s), the role as !Ref {CFN_LOGICAL_ID} (saved to {self.opts.out_dir / (CFN_ROLE + '.yaml')})")

    def deploy_as_code(self) -> None:
        from bot.jobs.planner import plan_scans

        iam = self._client("iam")
        for name in iam.list_role_policies(RoleName=CFN_ROLE)["PolicyNames"]:
            iam.delete_role_policy(RoleName=CFN_ROLE, PolicyName=name)
        for resource in self.s.cfn_template["Resources"].values():
            props = resource["Properties"]
            iam.put_role_policy(RoleName=CFN_ROLE, PolicyName=props["PolicyName"],
                                PolicyDocument=json.dumps(props["PolicyDocument"]))
        self.say(f"stack {CFN_STACK} updated: {CFN_ROLE} now holds the template's inline policies")
        plan_scans(self.s.job_ctx)
        p = self._proposal(CFN_ROLE)
        check(p.state == "applied_via_code", f"after the inventory the proposal is {p.state}, expected applied_via_code")
        reply = next((m for m in reversed(self.s.client.thread(p.channel, p.message_ts))
                      if "Applied via code" in json.dumps(m.get("blocks"))), None)
        check(reply is not None, "no 'Applied via code' message in the proposal's thread")
        print_message(self.console, reply, "thread: applied via code")
        updated = self._message(p.channel, p.message_ts)
        check(_find_button(updated, "tighten.proposal.open_cloudformation") is None,
              "the review message still offers its buttons")
        self.say(f"{p.id} closed as applied via code: the role holds the same effective permissions as the proposal")

    # -- helpers -----------------------------------------------------------------------------------------
    def _uploaded_snippet(self, p: Any, tool: str) -> tuple[str, str]:
        """(title, content) of the newest ``tool`` file uploaded in the proposal's thread. Bolt's listeners post
        with their own WebClient, so the file is read where it went: the local fake's uploads; in a real
        workspace it is in the thread, and the demo shows the same snippet rendered here."""
        from bot.slack.iac_blocks import snippet

        if self.s.fake_slack is None:
            upload = snippet(p, tool.lower(), self.s.config.managed_policy_prefix)
            return upload["title"], upload["content"]
        for call in reversed(self.s.fake_slack.calls_to("files.completeUploadExternal", ok_only=True)):
            files = call.params.get("files")
            files = json.loads(files) if isinstance(files, str) else files or []
            if call.params.get("thread_ts") != p.message_ts:
                continue
            for f in files:
                if str(f.get("title", "")).startswith(tool):
                    return str(f["title"]), self.s.fake_slack.uploads[f["id"]].decode()
        raise StepFailed(f"no {tool} file was uploaded in the thread of {p.id}")

    def _isolate_aws_environment(self) -> None:
        """Fake credentials and no profile for the demo's duration, so nothing can reach a real AWS account
        even if a user's credentials are in the environment; restored afterwards."""
        from bot.aws.embedded import FAKE_CREDENTIALS

        names = [*FAKE_CREDENTIALS, "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION"]
        saved = {name: os.environ.get(name) for name in names}

        def restore() -> None:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

        self.s.cleanups.append(restore)
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update(FAKE_CREDENTIALS)
        os.environ["AWS_REGION"] = FAKE_CREDENTIALS["AWS_DEFAULT_REGION"]

    def _client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.s.aws.endpoint_url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing",
                            aws_session_token="testing")

    def _attach_notifier(self) -> None:
        from bot.slack.context import AppContext
        from bot.slack.notify import Notifier

        self.s.app_ctx = AppContext(db_path=str(self.s.db_path), config=self.s.config, clock=utcnow)
        self.s.job_ctx.notifier = Notifier(self.s.client, self.s.app_ctx)

    def _drain(self, kinds: list[str]) -> int:
        """Run the real worker on queued items of ``kinds`` until none is left; returns how many ran."""
        from bot.jobs.worker import Worker

        return Worker(self.s.job_ctx, name="demo-worker", kinds=tuple(kinds)).run_until_idle()

    def _scan_results(self) -> str:
        results = [f"{r.principal_arn.rsplit('/', 1)[-1]}: {r.result}" for r in self.s.job_ctx.scans.all()]
        for item in self.s.job_ctx.queue.items(kind="scan"):
            if item.error:
                results.append(f"{item.payload.get('principal_arn', '?').rsplit('/', 1)[-1]}: {item.error}")
        return "; ".join(results) or "none recorded"

    def _proposal(self, role: str) -> Any:
        return self.s.job_ctx.proposals.get(self.s.proposals[role].id)

    def _change_state(self) -> str:
        change = self.s.job_ctx.changes.get(self.s.change_id)
        return change.state if change else "missing"

    def _message(self, channel: str, ts: str) -> dict[str, Any]:
        message = self.s.client.message(channel, ts)
        check(message is not None, f"the bot never posted message {ts} in {channel}")
        return message

    def _thread_reply(self, p: Any, action_id: str) -> dict[str, Any] | None:
        """The newest message in the proposal's thread carrying a button with ``action_id``."""
        for message in reversed(self.s.client.thread(p.channel, p.message_ts)):
            if _find_button(message, action_id) is not None:
                return message
        return None

    def _start_bolt(self) -> None:
        if self.s.http is not None:
            return
        from bot.slack.app import build_app, start_http

        app = build_app(self.s.app_ctx, signing_secret=self.s.signing_secret, client=self.s.client)
        self.s.http = start_http(app, self.s.signing_secret)
        self.s.cleanups.append(self.s.http.stop)
        self.say(f"Bolt app listening at {self.s.http.url}")

    def _fake_calls(self, method: str, **match: str) -> list[dict[str, Any]]:
        """Parameters of the successful ``method`` calls the local fake Slack received (none with ``--slack``)."""
        if self.s.fake_slack is None:
            return []
        return [c.params for c in self.s.fake_slack.calls_to(method, ok_only=True)
                if all(c.params.get(k) == v for k, v in match.items())]

    def _click(self, button: dict[str, Any], channel: str, ts: str, message: dict[str, Any],
               user: str | None = None) -> int:
        """POST a block_actions payload, signed like Slack signs it, to the Bolt app; returns the HTTP status."""
        user = user or self.s.approver
        payload = {
            "type": "block_actions",
            "team": {"id": "T0TIGHTEN1", "domain": "demo"},
            "user": {"id": user, "username": "demo-user", "team_id": "T0TIGHTEN1"},
            "api_app_id": "ADEMOTIGHTEN",
            "token": "deprecated-verification-token",
            "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
            "trigger_id": f"{int(time.time())}.demo.{secrets.token_hex(8)}",
            "channel": {"id": channel, "name": "tighten-review"},
            "message": {**message, "ts": ts},
            "response_url": self.s.fake_slack.response_url() if self.s.fake_slack else "",
            "actions": [{**button, "block_id": button.get("block_id", ""), "action_ts": f"{time.time():.6f}"}],
        }
        return self._post_signed(payload)

    def _submit_view(self, view: dict[str, Any], values: dict[str, Any]) -> int:
        """POST a view_submission of ``view`` with ``values``, signed, as the approver; returns the HTTP status."""
        payload = {
            "type": "view_submission",
            "team": {"id": "T0TIGHTEN1", "domain": "demo"},
            "user": {"id": self.s.approver, "username": "demo-user", "team_id": "T0TIGHTEN1"},
            "api_app_id": "ADEMOTIGHTEN",
            "token": "deprecated-verification-token",
            "trigger_id": f"{int(time.time())}.demo.{secrets.token_hex(8)}",
            "view": {**view, "id": f"VDEMO{secrets.token_hex(4).upper()}", "state": {"values": values}},
        }
        return self._post_signed(payload)

    def _post_signed(self, payload: dict[str, Any]) -> int:
        """POST an interactivity payload to the Bolt app, signed like Slack signs it; returns the HTTP status."""
        from bot.slack.signing import signed_request

        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        request = urllib.request.Request(self.s.http.url, data=body.encode(), method="POST",
                                         headers=signed_request(body, self.s.signing_secret))
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - 127.0.0.1 only
            return int(answer.status)

    def _wait(self, done: Callable[[], bool], what: str, timeout: float = JOB_TIMEOUT) -> None:
        """Wait for something a Bolt listener thread does after acking (it answers Slack first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return
            time.sleep(0.05)
        raise StepFailed(f"timed out after {timeout:.0f} s waiting for {what}")

    def _show_role(self, label: str, snap: Any) -> None:
        """The role's policies, each with its full document."""
        parts: list[Any] = []
        for a in snap.attached:
            kind = "AWS managed" if a.aws_managed else "customer managed"
            parts.append(Text(f"{a.arn}  ({kind}, default version {a.default_version_id})", style="bold"))
            parts.append(Syntax(json.dumps(a.document, indent=2), "json", theme="ansi_dark", word_wrap=True))
        for name, doc in sorted(snap.inline.items()):
            parts.append(Text(f"{name}  (inline)", style="bold"))
            parts.append(Syntax(json.dumps(doc, indent=2), "json", theme="ansi_dark", word_wrap=True))
        if snap.boundary_arn:
            parts.append(Text(f"permissions boundary: {snap.boundary_arn}", style="bold"))
        self.console.print(Panel(Group(*parts) if parts else Text("(no policies)"),
                                 title=f"{snap.name} {label}", title_align="left", border_style="magenta"))


def _buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for block in message.get("blocks") or []:
        elements = block.get("elements", []) if block.get("type") == "actions" else [block.get("accessory") or {}]
        for element in elements:
            if element.get("type") == "button":
                out.append({**element, "block_id": block.get("block_id", "")})
    return out


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _find_button(message: dict[str, Any], action_id: str) -> dict[str, Any] | None:
    return next((b for b in _buttons(message) if b.get("action_id") == action_id), None)


class _CloudFormationLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (``!Ref x`` -> ``{"Ref": "x"}``, ``!Sub`` -> ``Fn::Sub``...)."""


def _cloudformation_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _cloudformation_tag)


def _normalized(document: dict[str, Any]) -> dict[str, Any]:
    """A policy document as the policy model reads it (one value or a list, bools as strings: same meaning)."""
    from bot.policy.model import parse_policy, policy_to_document

    return policy_to_document(parse_policy(document))


def _comparable(snap: Any) -> dict[str, Any]:
    """What "restored byte-for-byte" compares: attached ARNs with default version and document, inline
    documents, boundary."""
    from bot.aws.inventory import canonical_json

    return {
        "attached": sorted((a.arn, a.default_version_id, canonical_json(a.document)) for a in snap.attached),
        "inline": {k: canonical_json(v) for k, v in sorted(snap.inline.items())},
        "boundary": snap.boundary_arn,
    }


def check_prerequisites(out: Path, *, slack: bool) -> None:
    """Everything the demo needs from this machine, checked before any step starts; raises
    :class:`bot.errors.UserError` naming every missing piece."""
    from bot.errors import UserError

    if slack:
        missing = [name for name in SLACK_ENV if not os.environ.get(name)]
        if missing:
            raise UserError("--slack needs " + ", ".join(f"{name} ({SLACK_ENV[name]})" for name in missing)
                            + " in the environment; nothing was started")
    try:
        import moto.server  # noqa: F401 - the embedded AWS
    except ModuleNotFoundError as exc:
        raise UserError(f"the demo's embedded AWS needs moto[server] ({exc.name} is not installed): "
                        "pip install 'tighten[demo]' (from a checkout: pip install -e '.[demo]')") from None
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: is a file; give a folder (it is created if missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot create the folder ({exc.strerror or exc}); give a writable "
                        "folder") from None


def run_demo(out_dir: str | Path = "demo-out", *, slack: bool = False, console: Console | None = None) -> int:
    out = Path(out_dir)
    check_prerequisites(out, slack=slack)
    for previous in ("messages", "digest"):
        if (out / previous).is_dir():
            shutil.rmtree(out / previous)
    return Demo(DemoOptions(out_dir=out, slack=slack, console=console or Console())).run()
