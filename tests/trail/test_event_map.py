"""The shipped event map is exactly what the builder derives from bot/trail/map_sources."""

from __future__ import annotations

import gzip

import orjson

from bot.policy.catalog import catalog
from bot.trail.build_event_map import EVENT_MAP_PATH, derive_event_map, encode_event_map
from tests.conftest import MAPPINGS


def test_shipped_map_equals_rederived_map() -> None:
    assert MAPPINGS.is_dir(), f"mappings not found at {MAPPINGS}"
    derived = derive_event_map(MAPPINGS)
    shipped = orjson.loads(gzip.decompress(EVENT_MAP_PATH.read_bytes()))
    assert shipped == orjson.loads(orjson.dumps(derived)), "run: python -m bot.trail.build_event_map"
    assert gzip.decompress(encode_event_map(derived)) == gzip.decompress(EVENT_MAP_PATH.read_bytes())


def test_every_mapped_action_exists_in_catalog() -> None:
    shipped = orjson.loads(gzip.decompress(EVENT_MAP_PATH.read_bytes()))
    cat = catalog()
    actions = {e["a"] for table in shipped["events"].values() for entries in table.values() for e in entries}
    assert len(actions) > 5000
    assert all(cat.canonical(a) == a for a in actions)
    assert shipped["stats"]["actions_dropped_not_in_catalog"] == sum(shipped["dropped_actions"].values())


def test_known_special_cases() -> None:
    shipped = orjson.loads(gzip.decompress(EVENT_MAP_PATH.read_bytes()))
    events = shipped["events"]
    assert [e["a"] for e in events["s3"]["listobjectsv2"]] == ["s3:ListBucket"]
    assert [e["a"] for e in events["s3"]["listbuckets"]] == ["s3:ListAllMyBuckets"]
    assert {e["a"] for e in events["s3"]["headobject"]} == {"s3:GetObject", "s3:GetObjectVersion"}
    assert [e["a"] for e in events["kms"]["reencrypt"]] == ["kms:ReEncryptFrom", "kms:ReEncryptTo"]
    assert {"a": "iam:PassRole", "d": 1, "o": "${Role}"} in events["lambda"]["createfunction"]
    # map.json is right where trailscraper is not: PutBucketReplication is not a delete
    assert {e["a"] for e in events["s3"]["putbucketreplication"]} >= {"s3:PutReplicationConfiguration"}
    assert shipped["event_sources"]["monitoring.amazonaws.com"] == "cloudwatch"
    assert shipped["event_sources"]["email.amazonaws.com"] == "ses"
    assert "sts:getcalleridentity" in shipped["permissionless"]
    assert "getcalleridentity" not in events.get("sts", {})
