"""Two-person rule, end to end over signed Slack requests: re-requesting a queued scan never replaces its
requester, so the first person to ask cannot approve the result by having someone else ask again."""

from __future__ import annotations

from bot.slack.ids import ActionId
from bot.store.proposals import APPROVED, PENDING
from tests.slack.conftest import ALICE, BOB, Harness, wait_until


def test_requester_of_a_queued_scan_is_kept_and_cannot_approve(harness: Harness) -> None:
    harness.add_role()
    assert "queued" in str(harness.command("scan reporting", user=BOB))
    assert "already queued" in str(harness.command("scan reporting", user=ALICE))
    (item,) = harness.ctx.queue.pending("scan")
    assert item.requested_by == BOB and item.payload["requested_by"] == BOB

    # the scan of that item creates the proposal with the item's requester (as the worker does)
    proposal = harness.add_proposal(requested_by=item.payload["requested_by"])
    assert harness.click(ActionId.APPROVE, proposal.id, user=BOB) == 200
    wait_until(lambda: any("requested this scan" in str(c.params) for c in harness.fake.calls_to("chat.postEphemeral")))
    assert harness.ctx.proposals.get(proposal.id).state == PENDING  # type: ignore[union-attr]

    assert harness.click(ActionId.APPROVE, proposal.id, user=ALICE) == 200
    wait_until(lambda: harness.ctx.proposals.get(proposal.id).state == APPROVED)  # type: ignore[union-attr]
    assert harness.ctx.queue.active("apply", f"apply:{proposal.id}") is not None
