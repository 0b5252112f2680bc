"""Offered allowances: the row an Allow button refers to keeps the exact action and resource, whatever its length."""

from __future__ import annotations

import re
from pathlib import Path

from bot.store.allowances import AllowanceStore
from bot.store.db import open_db

ROLE = "arn:aws:iam::111122223333:role/app"
LONG_KEY = "arn:aws:s3:::reports/" + "\U0001F600" * 256  # 1,024 bytes of key: far over a button value's 2,000 units


def test_offer_keeps_the_exact_row_and_is_found_again(tmp_path: Path) -> None:
    store = AllowanceStore(open_db(tmp_path / "s.db"))
    offer = store.offer(change_id="c-1", proposal_id="p-1", account="111122223333", principal_arn=ROLE,
                        action="s3:GetObject", resource=LONG_KEY)
    assert re.fullmatch(r"a-[0-9a-f]{8}", offer.id)
    again = store.offer(change_id="c-1", proposal_id="p-1", account="111122223333", principal_arn=ROLE,
                        action="s3:GetObject", resource=LONG_KEY)
    assert again.id == offer.id
    other = store.offer(change_id="c-2", proposal_id="p-2", account="111122223333", principal_arn=ROLE,
                        action="s3:GetObject", resource=LONG_KEY)
    assert other.id != offer.id
    reopened = AllowanceStore(open_db(tmp_path / "s.db")).get(offer.id)
    assert reopened is not None and (reopened.action, reopened.resource) == ("s3:GetObject", LONG_KEY)
    assert store.get("a-00000000") is None


def test_first_click_is_kept(tmp_path: Path) -> None:
    store = AllowanceStore(open_db(tmp_path / "s.db"))
    offer = store.offer(change_id="c-1", proposal_id="p-1", account="111122223333", principal_arn=ROLE,
                        action="kms:Decrypt", resource="arn:aws:kms:us-east-1:111122223333:key/abc")
    store.mark_used(offer.id, "U0ALICE001")
    store.mark_used(offer.id, "U0BOB00001")
    used = store.get(offer.id)
    assert used is not None and used.used_by == "U0ALICE001" and used.used_at
