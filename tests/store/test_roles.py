from pathlib import Path

from bot.store.db import open_db
from bot.store.roles import KnownRole, RoleDirectory


def test_find_by_name_and_arn(tmp_path: Path) -> None:
    d = RoleDirectory(open_db(tmp_path / "r.db"))
    d.upsert(KnownRole(account="111122223333", arn="arn:aws:iam::111122223333:role/App", name="App"))
    d.upsert(KnownRole(account="111122223333", arn="arn:aws:iam::111122223333:role/aws-service-role/x/S",
                       name="S", in_scope=False, excluded_reason="service-linked", warnings=["w"]))
    assert [r.name for r in d.find("app")] == ["App"]
    assert d.find("arn:aws:iam::111122223333:role/App")[0].in_scope
    assert [r.name for r in d.all(in_scope=True)] == ["App"]
    assert d.get("arn:aws:iam::111122223333:role/aws-service-role/x/S").warnings == ["w"]
    assert d.find("nope") == []
