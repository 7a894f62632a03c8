"""Real captures (../shared/captures, beside the repository): what minewatch finds in them.

One replay over the whole folder, as an analyst would run it; its events are held
against tests/data/real_captures.json, where every mining file's flows were checked
by hand with tshark (see the `checked` notes there). Skipped when the captures are
not there: they are reference material, not part of the project.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from sensor.cli import main

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / ".." / "shared" / "captures"
GOLDEN = json.loads((ROOT / "tests" / "data" / "real_captures.json").read_text())


@pytest.fixture(scope="module")
def by_file(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    if not (CAPTURES / "mining").is_dir():
        pytest.skip("../shared/captures is not there")
    events = tmp_path_factory.mktemp("real") / "events.json"
    assert main(["replay", str(CAPTURES), "--events", str(events)]) == 0
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in events.read_text().splitlines():
        event = json.loads(line)
        grouped[event["pcap_filename"]].append(event)
    return grouped


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _found(events: list[dict[str, Any]]) -> dict[str, Any]:
    """What the golden file records of a capture's mining events."""
    mining = [e for e in events if e["event_type"] == "mining"]
    kinds = [f"{e['mining']['dialect']}/{e['mining']['confidence']}" for e in mining]
    pools: dict[str, list[str]] = defaultdict(list)
    for event, kind in zip(mining, kinds, strict=True):
        pools[_endpoint(event["dest_ip"], event["dest_port"])].append(kind)
    return {
        "flows": dict(Counter(kinds)),
        "miners": sorted({e["src_ip"] for e in mining}),
        "pools": {pool: sorted(found) for pool, found in pools.items()},
    }


def test_golden_covers_every_capture():
    if not CAPTURES.is_dir():
        pytest.skip("../shared/captures is not there")
    for folder, recorded in (
        ("mining", GOLDEN["mining"]),
        ("node", GOLDEN["node"]),
        ("negative", GOLDEN["negative"]),
    ):
        assert sorted(recorded) == sorted(p.name for p in (CAPTURES / folder).iterdir())


@pytest.mark.parametrize("name", sorted(GOLDEN["mining"]))
def test_mining_capture_gives_the_checked_flows(by_file, name):
    golden = GOLDEN["mining"][name]
    found = _found(by_file[name])
    assert found["flows"] == golden["flows"]
    assert found["miners"] == golden["miners"]
    assert found["pools"] == golden["pools"]
    flows = [e for e in by_file[name] if e["event_type"] == "flow"]
    assert len(flows) == sum(golden["flows"].values())  # each mining flow ends once


DISPUTED = [name for name, golden in GOLDEN["mining"].items() if "disputed" in golden]


@pytest.mark.parametrize("name", DISPUTED)
def test_disputed_flows_are_found(by_file, name):
    golden = GOLDEN["mining"][name]
    reason = golden["disputed"]["why"]
    want = {pool: list(kinds) for pool, kinds in golden["pools"].items()}
    for pool, kinds in golden["disputed"]["add"].items():
        want[pool] = sorted(want.get(pool, []) + kinds)
    if _found(by_file[name])["pools"] != want:
        pytest.xfail(f"detector disagrees with the hand check: {reason}")
    pytest.fail("the disputed flows are found now: move them into 'pools' in the golden file")


@pytest.mark.parametrize("name", sorted(GOLDEN["node"]))
def test_node_capture_gives_crypto_node_events_only(by_file, name):
    events = by_file[name]
    assert {e["event_type"] for e in events} == {"crypto_node"}
    protocols = Counter(e["crypto_node"]["protocol"] for e in events)
    assert dict(protocols) == GOLDEN["node"][name]["crypto_node"]


@pytest.mark.parametrize("name", GOLDEN["negative"])
def test_negative_capture_gives_no_event(by_file, name):
    assert by_file.get(name, []) == []
