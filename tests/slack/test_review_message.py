"""The review message: what decides is above the fold (the first section) whatever the size of the rest, in plain
words, with the right numbers and plurals."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import Account, Approvers, Config
from bot.policy.coverage import coverage_warnings
from bot.slack import limits
from bot.slack.approvals import approval_gate
from bot.slack.ids import ActionId
from bot.slack.review import WARNING_TITLES, review_message
from bot.store.proposals import PENDING, REJECTED, Proposal

ACCOUNT = "111122223333"
ALICE, BOB, CAROL = "U0ALICE001", "U0BOB00001", "U0CAROL001"
GROUP = "S0APPROVE1"
CONFIG = Config(accounts=(Account(id=ACCOUNT, name="prod", channel="C0REVIEW01",
                                  approvers=Approvers(users=(ALICE,), groups=(GROUP,))),))

OPEN_PATH = {"id": "lambda-update-function-code", "name": "Replace the code of an existing function and run as its role",
             "text": "Replace the code of an existing function and run as its role", "reaches": "role",
             "requires": "lambda:UpdateFunctionCode", "source": "https://pathfinding.cloud/paths/lambda-003",
             "sources": [], "via": [], "conditional": False, "new": False}
VIA_PATH = {**OPEN_PATH, "id": "lambda-passrole-create", "name": "Pass a role to a new Lambda function",
            "via": [{"arn": f"arn:aws:iam::{ACCOUNT}:role/deploy-admin", "name": "deploy-admin", "iam_admin": True,
                     "paths": []}], "new": True}
ESCALATION = {
    "open": [OPEN_PATH, VIA_PATH], "closed": [{**OPEN_PATH, "id": f"closed-{i}"} for i in range(69)],
    "high_risk_kept": [
        {"kind": "pass-role", "role": VIA_PATH["via"][0], "conditional": False,
         "text": "can pass admin role `deploy-admin`"},
        {"kind": "iam-write", "actions": ["iam:CreatePolicyVersion", "iam:TagRole"], "text": "keeps write access"}],
    "unresolved_roles": [f"arn:aws:iam::{ACCOUNT}:role/ghost-*"],
    "iam_admin": {"before": True, "after": False},
    "counts": {"open_before": 71, "open_after": 2, "closed": 69, "opened": 1},
}
SUMMARY = ("removes 22,316 actions across 457 services; keeps 5 actions in 3 services; closes 69 escalation paths; "
           "leaves 2 escalation paths open")


def proposal(**kw: object) -> Proposal:
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    fields: dict = dict(
        id="p-0123abcd", account=ACCOUNT, principal_arn=f"arn:aws:iam::{ACCOUNT}:role/ci-deployer",
        role_name="ci-deployer", state=PENDING, created_at="2026-12-01T12:00:00Z", updated_at="2026-12-01T12:00:00Z",
        documents=[{"Version": "2012-10-17", "Statement": []}], summary=SUMMARY,
        diff_text=SUMMARY + "\n\nESCALATION PATHS\n  still open lambda-update-function-code: ...\n\n"
        + "\n".join(f"  REMOVED service{i}:Action{j}" for i in range(400) for j in range(5)),
        window_start=(now - timedelta(days=30)).isoformat().replace("+00:00", "Z"),
        window_end=now.isoformat().replace("+00:00", "Z"),
        risk_score=100.0, risk_reasons=["can administer IAM"],
        warnings=[{"code": "seen_once", "message": "1 action was used only once: iam:PassRole"}],
        stats={"current_actions": 22321, "proposed_actions": 5, "current_services": 457, "proposed_services": 3,
               "current_write": 11907, "proposed_write": 4},
        requested_by=BOB, checks={"containment": {"result": "pass"}, "escalation": ESCALATION,
                                  "replay": {"calls": 1234, "days": 30, "denied": 0}},
        excluded_approvers=[{"user": BOB, "reason": "requested this scan"},
                            {"user": CAROL, "reason": "added the allowlist entry", "action": "iam:PassRole",
                             "resource": "*"}])
    fields.update(kw)
    return Proposal(**fields)


def first_section(p: Proposal, config: Config = CONFIG) -> str:
    blocks = review_message(p, approval_gate(config, p)).blocks
    assert blocks[0]["type"] == "header" and blocks[1]["type"] == "section"
    return blocks[1]["text"]["text"]


def test_decision_critical_lines_are_above_the_fold_with_a_20000_character_diff() -> None:
    p = proposal(diff_text="x" * 20_000 + "\n" + "\n".join(f"line {i}" for i in range(500)))
    assert len(p.diff_text) > 20_000
    msg = review_message(p, approval_gate(CONFIG, p))
    assert limits.check_blocks(msg.blocks) == []
    first = msg.blocks[1]["text"]["text"]
    assert limits.units(first) <= limits.MAX_SECTION_TEXT and limits.TRUNCATED not in first
    for line in (
        f"*Summary:* {SUMMARY}",
        "*2 escalation paths stay open* (it closes 69 paths)",
        "Replace the code of an existing function and run as its role (lambda-update-function-code)",
        "Pass a role to a new Lambda function — through admin role `deploy-admin` (lambda-passrole-create, NEW)",
        "*Kept high risk:* can pass admin role `deploy-admin`",
        "keeps write access to IAM (2 actions: `iam:CreatePolicyVersion`, `iam:TagRole`)",
        f"*1 role it can pass or assume that the inventory does not know* (check what they can do): "
        f"`arn:aws:iam::{ACCOUNT}:role/ghost-*`",
        ":lock: *Containment:* grants nothing new",
        "*Replay:* replayed 1,234 calls from 30 days: all allowed.",
        f"*Who may approve:* <@{ALICE}>, <!subteam^{GROUP}>",
        f"*May not:* <@{BOB}> (requested this scan); <@{CAROL}> (added the allowlist entry `iam:PassRole` on `*` "
        "that it grants) — someone else must approve (two-person rule).",
        "_Usage of the last 30 days (2026-11-01 → 2026-12-01)",
    ):
        assert line in first, line
    # the summary once, and nowhere else in the message
    assert json.dumps(msg.blocks).count("removes 22,316 actions") == 1
    # the escalation list of the diff is not repeated below the fold
    assert "ESCALATION PATHS" not in json.dumps(msg.blocks[2:])


def test_first_section_stays_whole_with_huge_lists() -> None:
    many_paths = [{**OPEN_PATH, "id": f"path-{i:03d}", "name": f"A long catalogued escalation path name {i} " * 3}
                  for i in range(80)]
    escalation = {**ESCALATION, "open": many_paths,
                  "unresolved_roles": [f"arn:aws:iam::{ACCOUNT}:role/{'x' * 60}-{i}" for i in range(50)],
                  "high_risk_kept": [{"kind": "assume-role", "role": {"name": f"admin-{i}", "iam_admin": True}}
                                     for i in range(40)]}
    config = Config(accounts=(Account(id=ACCOUNT, name="p", channel="C0REVIEW01", approvers=Approvers(
        users=tuple(f"U0{i:08d}" for i in range(40)), groups=(GROUP,))),))
    p = proposal(summary="removes " + "many actions; " * 300, checks={**proposal().checks, "escalation": escalation},
                 excluded_approvers=[{"user": f"U1{i:08d}", "reason": "requested this scan"} for i in range(30)])
    first = first_section(p, config)
    assert limits.units(first) <= limits.MAX_SECTION_TEXT
    assert "*80 escalation paths stay open*" in first and "more in the thread" in first
    assert "(path-000)" in first and "*Who may approve:* <@U000000000>" in first and "*May not:*" in first
    assert ":lock: *Containment:*" in first and "*Replay:*" in first


def test_plain_words_no_codes_and_right_plurals() -> None:
    warnings = [{"code": code, "message": f"warning number {i}"} for i, code in enumerate(WARNING_TITLES)]
    warnings.append({"code": "some_future_code", "message": "a new kind of warning"})
    msg = review_message(proposal(warnings=warnings), approval_gate(CONFIG, proposal()))
    text = json.dumps(msg.blocks)
    for code in [*WARNING_TITLES, "some_future_code"]:
        assert f"`{code}`" not in text and (code not in text or code.isalpha()), code
    assert "*Older activity not read:*" in text and "*Coverage:* A new kind of warning" in text
    one = proposal(checks={"containment": {"result": "pass"}, "replay": {"calls": 1, "days": 1, "denied": 0},
                           "escalation": {**ESCALATION, "open": [OPEN_PATH], "closed": [OPEN_PATH],
                                          "counts": {"open_before": 2, "open_after": 1, "closed": 1}}})
    first = first_section(one)
    assert "*1 escalation path stays open* (it closes 1 path)" in first
    assert "replayed 1 call from 1 day: all allowed" in first
    assert not re.search(r"\b1 (actions|services|paths|calls|days|roles)\b", first) and "(s)" not in first


def test_none_open_not_replayed_and_not_checked_are_said_plainly() -> None:
    quiet = proposal(checks={"containment": {"result": "pass"},
                             "escalation": {**ESCALATION, "open": [], "high_risk_kept": [], "unresolved_roles": []}})
    first = first_section(quiet)
    assert ":white_check_mark: *Escalation paths:* none stay open (it closes 69 paths)." in first
    assert "*Kept high risk:* nothing" in first and "*Replay:* not replayed." in first
    assert "inventory does not know" not in first
    bare = first_section(proposal(checks={}))
    assert "*Escalation paths:* not checked" in bare and "*Containment:* not checked" in bare


def test_stats_are_an_ordered_now_to_proposed_table() -> None:
    blocks = review_message(proposal(), approval_gate(CONFIG, proposal())).blocks
    (table,) = [b for b in blocks if b.get("fields")]
    assert table["text"]["text"] == "*Permissions, now → proposed*"
    assert [f["text"] for f in table["fields"]] == [
        "*Actions*\n22,321 → 5", "*Services*\n457 → 3", "*Write and permissions-management actions*\n11,907 → 4",
        "*Escalation paths*\n71 → 2"]


def test_lookback_days_agree_between_the_header_and_the_warnings() -> None:
    end = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    start = end - timedelta(days=30)
    iso = [t.isoformat().replace("+00:00", "Z") for t in (start, end)]
    warnings = coverage_warnings(window_start=iso[0], window_end=iso[1], principal_first_seen=None,
                                 principal_created="2025-10-27T00:00:00Z", usage=[],
                                 data_event_services_present={"s3", "lambda", "dynamodb"})
    p = proposal(window_start=iso[0], window_end=iso[1],
                 warnings=[{"code": w.code, "message": w.message} for w in warnings])
    text = json.dumps(review_message(p, approval_gate(CONFIG, p)).blocks)
    assert "Usage of the last 30 days" in text and "only the last 30 days of logs were read" in text
    assert "31 days" not in text


def test_requester_shown_only_when_a_person_and_self_approval_said() -> None:
    p = proposal(requested_by="scheduler", excluded_approvers=[{"user": "scheduler", "reason": "requested this scan"}])
    first = first_section(p)
    assert "requested by the scheduler" in first and "*May not:*" not in first
    allowed = Config(accounts=CONFIG.accounts, allow_self_approval=True)
    assert "self-approval is allowed" in first_section(proposal(), allowed)
    nobody = Config(accounts=(Account(id=ACCOUNT, name="p", channel="C0REVIEW01"),))
    assert f"*Nobody can approve:* no approvers are configured for account `{ACCOUNT}`" in first_section(p, nobody)


def test_managed_as_code_variant_keeps_its_line_and_buttons_in_the_new_layout() -> None:
    p = proposal(iac={"managed": {"tool": "cloudformation", "reason": "CloudFormation stack orders<prod>",
                                  "stack": "orders<prod>"}, "direct_apply": False})
    blocks = review_message(p, approval_gate(CONFIG, p)).blocks
    assert blocks[1]["text"]["text"].startswith("`ci-deployer`")  # the decision section still comes first
    assert blocks[2]["type"] == "context" and "*Managed as code* — `CloudFormation stack orders&lt;prod&gt;`" in \
        blocks[2]["elements"][0]["text"]
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    assert [e["action_id"] for e in actions["elements"]] == [
        ActionId.OPEN_CLOUDFORMATION, ActionId.OPEN_TERRAFORM, ActionId.MARK_APPLIED_VIA_CODE, ActionId.REJECT,
        ActionId.VIEW_POLICY]


def test_restore_proposal_says_what_it_restores() -> None:
    checks = {**proposal().checks, "restore": {"change_id": "c-0badcafe", "proposal_id": "p-00000001",
                                               "actions": ["s3:GetObject"]}}
    p = proposal(checks=checks)
    blocks = review_message(p, approval_gate(CONFIG, p)).blocks
    assert blocks[0]["text"]["text"] == "Tighten: restore: ci-deployer"
    first = blocks[1]["text"]["text"]
    assert first.startswith(":leftwards_arrow_with_hook: *Restores access removed by change `c-0badcafe`*: "
                            "grants back `s3:GetObject`")
    assert "grants nothing the role did not hold before change `c-0badcafe`" in first


@pytest.mark.parametrize("state", [REJECTED, "applied"])
def test_decided_messages_keep_the_first_section_and_lose_the_buttons(state: str) -> None:
    p = proposal(state=state, decided_by=ALICE, decided_at="2026-12-01T13:00:00Z", decision_reason="not now")
    blocks = review_message(p, approval_gate(CONFIG, p)).blocks
    assert "*Who may approve:*" in blocks[1]["text"]["text"]
    assert not [b for b in blocks if b["type"] == "actions"]
