"""The shipped example config loads, and documents every key the parser accepts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "tighten.example.yaml"


def test_example_config_loads(tmp_path: Path) -> None:
    # the example's store is on /data (the Docker volume): checked here in a folder anyone may write
    text = EXAMPLE.read_text()
    assert "  path: /data/tighten.db\n" in text
    copy = tmp_path / "tighten.example.yaml"
    copy.write_text(text.replace("  path: /data/tighten.db\n", f"  path: {tmp_path / 'tighten.db'}\n"))
    (tmp_path / "allowlist.yaml").write_text((EXAMPLE.parent / "allowlist.yaml").read_text())
    cfg = load_config(copy)
    assert cfg.accounts and cfg.accounts[0].id == "123456789012"
    assert cfg.schedules.off_hours is not None
    assert cfg.digests and cfg.review_channel
    # relative allowlist path resolves against the config folder
    assert cfg.allowlist_path == str(tmp_path / "allowlist.yaml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["allowlist.yaml", "tighten.example.yaml"]


def _accepted_keys(raw: dict[str, Any], path: list[str]) -> set[str]:
    """Ask the parser itself which keys it accepts at ``path``: add an unknown key there and read the error."""
    probe: dict[str, Any] = {}
    node = probe
    for part in path:
        if part.endswith("[0]"):
            child: dict[str, Any] = {}
            node[part[:-3]] = [child]
        else:
            child = {}
            node[part] = child
        node = child
    node["zz_probe"] = 1
    with pytest.raises(ConfigError) as err:
        parse_config(probe, "probe.yaml")
    dotted = ".".join(path)
    key = f"{dotted}.zz_probe" if dotted else "zz_probe"
    for problem in err.value.problems:
        if problem.startswith(f"probe.yaml: {key}: unknown key"):
            match = re.search(r"expected one of: ([^)]*)\)", problem)
            assert match
            return set(match.group(1).split(", "))
    raise AssertionError(f"no unknown-key problem for {key}: {err.value.problems}")


SECTIONS = [[], ["store"], ["cloudtrail"], ["accounts[0]"], ["accounts[0]", "approvers"], ["organizations"],
            ["scope"], ["approval"], ["approval", "approvers"], ["slack"], ["slack", "digests[0]"], ["slack", "http"],
            ["schedules"], ["schedules", "off_hours"], ["backend"], ["backend", "access_analyzer"], ["apply"],
            ["iac"], ["iac", "rules[0]"], ["accounts[0]", "iac"], ["accounts[0]", "iac", "rules[0]"],
            ["athena"]]


@pytest.mark.parametrize("path", SECTIONS, ids=lambda p: ".".join(p) or "(top)")
def test_example_documents_every_accepted_key(path: list[str]) -> None:
    raw = yaml.safe_load(EXAMPLE.read_text())
    node: Any = raw
    for part in path:
        node = node[part[:-3]][0] if part.endswith("[0]") else node[part]
    accepted = _accepted_keys(raw, path)
    assert set(node) == accepted, f"example {'.'.join(path) or '(top)'} keys differ from what the parser accepts"


def test_reference_mentions_every_key() -> None:
    reference = (REPO / "config" / "README.md").read_text()
    raw = yaml.safe_load(EXAMPLE.read_text())
    for path in SECTIONS:
        for key in _accepted_keys(raw, path):
            assert f"`{key}`" in reference, f"config/README.md does not document `{key}`"
