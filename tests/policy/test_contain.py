"""The containment check (bot.policy.contain): findings for each kind of widening, and soundness against the
evaluator on concrete requests (tests/policy/probes.py): whenever it says PASS, no probed request is allowed by
the proposal and not by the current policies."""

from __future__ import annotations

import random
from typing import Any

import pytest

from bot.policy.contain import CANNOT_PROVE, CONDITION_LOST, DENY_LOST, WIDENING, check_no_new_access
from bot.policy.model import Policy, parse_policy
from tests.policy.probes import contexts, doc, policies, widenings

B = "arn:aws:s3:::b"
REGION_GUARD = {"Sid": "RegionGuard", "Effect": "Deny", "Action": "*", "Resource": "*",
                "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["eu-west-1"]}}}


def kinds(current: list[dict[str, Any]], proposed: list[dict[str, Any]],
          boundary: dict[str, Any] | None = None) -> set[str]:
    result = check_no_new_access(policies(*current), policies(*proposed),
                                 parse_policy(boundary) if boundary else None)
    return {f.kind for f in result.findings}


def test_identical_and_narrower_proposals_pass() -> None:
    current = [doc({"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": f"{B}/*"},
                   REGION_GUARD)]
    assert kinds(current, current) == set()
    narrower = [doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{B}/reports/*"}, REGION_GUARD)]
    assert kinds(current, narrower) == set()


def test_action_wildcard_is_wider_than_an_enumerated_list() -> None:
    current = [doc({"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "*"})]
    assert kinds(current, [doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})]) == {WIDENING}
    # also against every action the catalog knows today: a later one would slip through
    every = [doc({"Effect": "Allow", "Action": ["s3:Get*"], "Resource": "*"})]
    listed = [doc({"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectAcl"], "Resource": "*"})]
    assert kinds(listed, every) == {WIDENING}


@pytest.mark.parametrize(("current", "proposed", "widens"), [
    (f"{B}/a?", f"{B}/a*", True),
    (f"{B}/a*", f"{B}/a?", False),
    (f"{B}/*", f"{B}/x/*", False),
    (f"{B}/x/*", f"{B}/*", True),
    ("arn:aws:logs:*:1:log-group:*", "arn:aws:logs:eu-west-1:1:log-group:app:*", False),
    ("arn:aws:logs:eu-*-1:1:log-group:g", "arn:aws:logs:eu-*:1:log-group:g", True),  # '*' inside a segment
])
def test_resource_wildcard_containment_both_ways(current: str, proposed: str, widens: bool) -> None:
    cur = [doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": current})]
    prop = [doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": proposed})]
    assert kinds(cur, prop) == ({WIDENING} if widens else set())


def test_lost_condition_and_lost_deny_are_named() -> None:
    current = [doc({"Sid": "Mfa", "Effect": "Allow", "Action": "ec2:*", "Resource": "*",
                    "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}, REGION_GUARD)]
    proposed = [doc({"Effect": "Allow", "Action": "ec2:StopInstances", "Resource": "*"})]
    result = check_no_new_access(policies(*current), policies(*proposed))
    assert not result.passed and {f.kind for f in result.findings} == {CONDITION_LOST, DENY_LOST}
    lines = result.lines()
    assert any("ec2:StopInstances on *" in line and "aws:MultiFactorAuthPresent" in line for line in lines)
    assert any("DENY REMOVED" in line and "RegionGuard" in line and "aws:RequestedRegion" in line for line in lines)
    assert result.to_json()["result"] == "fail" and result.to_json()["findings"]


def test_a_weaker_deny_does_not_keep_it() -> None:
    current = [doc({"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}, REGION_GUARD)]
    more_regions = dict(REGION_GUARD, Condition={"StringNotEquals": {"aws:RequestedRegion": ["eu-west-1",
                                                                                             "us-east-1"]}})
    assert kinds(current, [doc(current[0]["Statement"][0], more_regions)]) == {DENY_LOST}
    only_ec2 = dict(REGION_GUARD, Action="ec2:*")
    assert kinds(current, [doc(current[0]["Statement"][0], only_ec2)]) == set()  # still covers what is allowed
    assert kinds(current, [doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}, only_ec2)]) == {
        WIDENING, DENY_LOST}


def test_a_deny_that_cannot_touch_the_proposal_may_go() -> None:
    current = [doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                   {"Effect": "Deny", "Action": "s3:*", "NotResource": ["arn:aws:s3:::data", "arn:aws:s3:::data/*"]})]
    inside_bucket = [doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/*"})]
    assert kinds(current, inside_bucket) == set()
    anywhere = [doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data*"})]
    assert kinds(current, anywhere) == {DENY_LOST}


def test_not_action_and_not_resource_on_both_sides(managed: dict[str, Policy]) -> None:
    power = managed["PowerUserAccess"]
    check = check_no_new_access
    tighter = parse_policy(doc({"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*", "s3:*"],
                                "Resource": "*"}))
    assert check([power], [tighter]).passed
    looser = parse_policy(doc({"Effect": "Allow", "NotAction": ["iam:*", "account:*"], "Resource": "*"}))
    assert not check([power], [looser]).passed  # organizations:* comes back
    assert not check([power], [parse_policy(doc({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}))]).passed
    assert check([power], [parse_policy(doc({"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}))]).passed
    everything_but = parse_policy(doc({"Effect": "Allow", "Action": "s3:GetObject", "NotResource": f"{B}/secret/*"}))
    assert check([parse_policy(doc({"Effect": "Allow", "Action": "s3:*", "NotResource": f"{B}/*"}))],
                 [everything_but]).passed is False
    assert check([everything_but], [parse_policy(doc({"Effect": "Allow", "Action": "s3:GetObject",
                                                      "NotResource": [f"{B}/secret/*", f"{B}/x"]}))]).passed


def test_same_boundary_on_both_sides() -> None:
    current = [doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{B}/*"})]
    proposed = [doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})]
    boundary = doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{B}/*"})
    assert kinds(current, proposed) == {WIDENING}
    assert kinds(current, proposed, boundary) == set()  # the boundary caps both sides at what is held today
    # a Deny the boundary also holds still applies after the change
    guard = {"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}
    current = [doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}, guard)]
    proposed = [doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})]
    assert kinds(current, proposed) == {DENY_LOST}
    assert kinds(current, proposed, doc({"Effect": "Allow", "Action": "*", "Resource": "*"}, guard)) == set()


def test_what_it_cannot_decide_is_a_fail() -> None:
    current = [doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
                    "Condition": {"StringEquals": {"aws:PrincipalTag/team": "data"}}})]
    odd = [doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
                "Condition": {"StringEqualsIfExistsButNew": {"aws:PrincipalTag/team": "data"}}})]
    result = check_no_new_access(policies(*current), policies(*odd))
    assert not result.passed and result.findings[0].kind == CANNOT_PROVE
    assert result.lines()[0].startswith("cannot prove: ")
    per_user = [doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{B}/${{aws:username}}/*"})]
    assert kinds(per_user, per_user) == set()
    assert kinds(per_user, [doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{B}/alice/*"})]) == {
        CANNOT_PROVE}


def test_old_policy_language_has_no_variables() -> None:
    """In a 2008-10-17 policy ``${aws:username}`` is plain text: it is not the same grant in a 2012-10-17 one."""
    old = parse_policy({"Version": "2008-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{B}/${{aws:username}}"}]})
    new = parse_policy(doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{B}/${{aws:username}}"}))
    assert not check_no_new_access([old], [new]).passed
    assert check_no_new_access([old], [old]).passed


def test_findings_are_capped_and_counted() -> None:
    current = [doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{B}/x"})]
    many = [doc({"Effect": "Allow", "Action": [f"ec2:Action{i}" for i in range(30)], "Resource": "*"})]
    result = check_no_new_access(policies(*current), policies(*many), max_findings=5)
    assert len(result.findings) == 5 and result.more == 25 and result.lines()[-1] == "... and 25 more"


# --------------------------------------------------------------------------------------------
# soundness on random policies: PASS is never contradicted by a concrete request
ACTIONS = [["s3:GetObject"], ["s3:GetObject", "s3:PutObject"], ["s3:Get*"], ["s3:*"], ["*"], ["ec2:*"]]
RESOURCES = [[f"{B}/*"], [f"{B}/a*"], [f"{B}/a?"], [f"{B}/x"], ["*"], [f"{B}/a", f"{B}/x/*"]]
CONDITIONS: list[dict[str, Any] | None] = [
    None, None, {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
    {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}},
    {"StringNotEquals": {"aws:RequestedRegion": ["eu-west-1", "us-east-1"]}},
    {"IpAddress": {"aws:SourceIp": "10.0.0.0/16"}}, {"IpAddress": {"aws:SourceIp": "10.0.1.0/24"}},
]
PROBE_ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:GetBucketAcl", "s3:DeleteObject", "ec2:RunInstances",
                 "s3:FutureAction"]
PROBE_RESOURCES = [f"{B}/a", f"{B}/ab", f"{B}/abc", f"{B}/x", f"{B}/x/y", f"{B}/z", "arn:aws:s3:::other/a", "*"]
PROBE_CONTEXTS = contexts({"aws:MultiFactorAuthPresent": [None, "true", "false"],
                           "aws:RequestedRegion": ["eu-west-1", "us-east-1", "ap-south-1"],
                           "aws:SourceIp": ["10.0.1.7", "10.0.9.9", "192.0.2.1"]})


def _statement(rng: random.Random, effect: str) -> dict[str, Any]:
    st: dict[str, Any] = {"Effect": effect}
    actions = rng.choice(ACTIONS)
    if rng.random() < 0.15:
        st["NotAction"] = actions
    else:
        st["Action"] = actions
    resources = rng.choice(RESOURCES)
    if rng.random() < 0.15:
        st["NotResource"] = resources
    else:
        st["Resource"] = resources
    condition = rng.choice(CONDITIONS)
    if condition:
        st["Condition"] = condition
    return st


def _random_policy(rng: random.Random) -> dict[str, Any]:
    statements = [_statement(rng, "Allow") for _ in range(rng.randint(1, 3))]
    statements += [_statement(rng, "Deny") for _ in range(rng.randint(0, 2))]
    return doc(*statements)


def test_pass_is_never_contradicted_by_a_concrete_request() -> None:
    rng = random.Random(1010)
    passes = fails_with_witness = 0
    for _ in range(250):
        current = _random_policy(rng)
        # proposals near the current one: a subset of its statements, a random one, or a mutation
        roll = rng.random()
        if roll < 0.4:
            kept = [s for s in current["Statement"] if rng.random() < 0.7] or current["Statement"][:1]
            proposed = doc(*kept)
        elif roll < 0.7:
            proposed = doc(*[dict(s, **({"Condition": rng.choice(CONDITIONS)} if rng.random() < 0.5 else {}))
                             for s in current["Statement"]])
            for s in proposed["Statement"]:
                if s.get("Condition") is None:
                    s.pop("Condition", None)
        else:
            proposed = _random_policy(rng)
        boundary = parse_policy(_random_policy(rng)) if rng.random() < 0.3 else None
        result = check_no_new_access(policies(current), policies(proposed), boundary)
        found = widenings(policies(current), policies(proposed), boundary, PROBE_ACTIONS, PROBE_RESOURCES,
                          PROBE_CONTEXTS)
        if result.passed:
            passes += 1
            assert not found, (current, proposed, boundary, found[:3])
        elif found:
            fails_with_witness += 1
    # the table exercises both outcomes
    assert passes > 40 and fails_with_witness > 40
