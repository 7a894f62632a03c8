"""EVE-style events: the common fields, the mining and flow objects, stdout, live mode.

Most tests read the events a replay of a factory capture wrote; a few hand records
straight to the writer.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sensor.model import Attribution, Finding, MiningRecord, NodeRecord, Side
from sensor.sinks.community_id import community_id
from sensor.sinks.events import EveWriter, iso_time
from tests.factory import T0, TcpSession, write_pcap
from tests.sessions import MINING
from tests.test_pipeline import VARIANTS, build_capture, events_of, replay_events

COMMON = {
    "timestamp",
    "flow_id",
    "event_type",
    "src_ip",
    "src_port",
    "dest_ip",
    "dest_port",
    "proto",
    "community_id",
    "pcap_filename",
}
MINING_KEYS = {
    "dialect",
    "coin",
    "algorithm",
    "pool",
    "login",
    "wallet",
    "worker",
    "agent",
    "rule_id",
    "confidence",
    "evidence",
    "org",
}
ORG_KEYS = ("name", "type", "region", "asn", "source")
FINAL_KEYS = {"shares", "difficulty", "hashrate_hs", "reported_hashrate_hs"}
FLOW_KEYS = {
    "pkts_toserver",
    "pkts_toclient",
    "bytes_toserver",
    "bytes_toclient",
    "start",
    "end",
    "state",
    "reason",
}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d$")
CID = re.compile(r"^1:[A-Za-z0-9+/]{27}=$")


@pytest.fixture(scope="module", params=["plain", "ipv6"])
def replayed(request, tmp_path_factory) -> tuple[Path, list[dict[str, Any]]]:
    folder = tmp_path_factory.mktemp(request.param)
    variant = VARIANTS[request.param]
    path = folder / ("all.pcapng" if variant.pcapng else "all.pcap")
    build_capture(path, MINING, variant)
    events, _ = replay_events(path, folder / "events.json")
    return path, events


def _parse_time(text: str) -> datetime:
    assert ISO.match(text), text
    parsed = datetime.fromisoformat(text)
    assert parsed.utcoffset() is not None
    return parsed


def test_common_fields_follow_eve(replayed):
    path, events = replayed
    assert {e["event_type"] for e in events} == {"mining", "flow"}
    for event in events:
        assert set(event) >= COMMON, event
        start = _parse_time(event["timestamp"]).timestamp()
        assert T0 <= start < T0 + 60
        assert isinstance(event["flow_id"], int) and 0 < event["flow_id"] < 2**53
        assert event["proto"] == "TCP"
        assert event["pcap_filename"] == path.name
        assert "in_iface" not in event
        ends = (event["src_ip"], event["src_port"], event["dest_ip"], event["dest_port"])
        assert CID.match(event["community_id"])
        assert event["community_id"] == community_id(6, *ends)


def test_mining_event_object(replayed):
    _, events = replayed
    for event in (e for e in events if e["event_type"] == "mining"):
        mining = event["mining"]
        assert set(mining) == MINING_KEYS
        assert mining["rule_id"].startswith("minewatch.")
        assert mining["evidence"] and all(isinstance(x, str) for x in mining["evidence"])
        assert mining["pool"].endswith(f":{event['dest_port']}")
        # no --ownership: the miner's organisation is unknown, the contract's fields null
        assert {key: mining["org"].get(key, "absent") for key in ORG_KEYS} == dict.fromkeys(
            ORG_KEYS
        )


def test_flow_event_object(replayed):
    _, events = replayed
    mining = {e["flow_id"]: e for e in events if e["event_type"] == "mining"}
    flows = [e for e in events if e["event_type"] == "flow"]
    assert sorted(e["flow_id"] for e in flows) == sorted(mining)
    for event in flows:
        flow = event["flow"]
        assert set(flow) >= FLOW_KEYS
        start, end = _parse_time(flow["start"]), _parse_time(flow["end"])
        assert start <= end == _parse_time(event["timestamp"])
        assert flow["age"] == int((end - start).total_seconds())
        assert set(event["mining"]) >= MINING_KEYS | FINAL_KEYS
        first = mining[event["flow_id"]]
        assert _parse_time(first["timestamp"]) <= end
        for key in ("src_ip", "src_port", "dest_ip", "dest_port", "community_id"):
            assert event[key] == first[key]


def test_iso_time_keeps_microseconds_and_the_offset():
    text = iso_time(T0 + 0.000042)
    assert text == "2023-11-14T22:13:20.000042+00:00"
    assert datetime.fromisoformat(text) == datetime(2023, 11, 14, 22, 13, 20, 42, tzinfo=UTC)
    assert iso_time(T0).endswith(".000000+00:00")  # a round second still shows them


def _record(finding: Finding, org: Attribution | None = None) -> MiningRecord:
    return MiningRecord(
        flow_id=7,
        ts=T0 + 1.5,
        proto="TCP",
        miner_ip="2001:db8::7",
        miner_port=51000,
        pool_ip="2001:db8:ff::1",
        pool_port=3333,
        pool="[2001:db8:ff::1]:3333",
        pool_host=None,
        finding=finding,
        org=org or Attribution(),
        source="eth0",
    )


def test_live_events_name_the_interface_and_write_to_stdout(capsysbinary):
    finding = Finding("stratum-v1", "suspected", Side.ORIG, "minewatch.dialect.stratum-v1")
    org = Attribution("Example University", "education", "Suzhou", 64500, "registry")
    writer = EveWriter("-", live=True)
    writer.mining(_record(finding, org))
    writer.node(
        NodeRecord(9, T0, "TCP", "10.0.0.1", 50000, "10.0.0.2", 8333, "bitcoin-p2p", "eth0")
    )
    writer.close()
    assert writer.written == 2
    first, second = (json.loads(x) for x in capsysbinary.readouterr().out.splitlines())
    assert first["in_iface"] == "eth0" and "pcap_filename" not in first
    assert first["timestamp"] == "2023-11-14T22:13:21.500000+00:00"
    assert {key: first["mining"]["org"][key] for key in ORG_KEYS} == {
        "name": "Example University",
        "type": "education",
        "region": "Suzhou",
        "asn": 64500,
        "source": "registry",
    }
    assert first["mining"]["confidence"] == "suspected"
    assert second["event_type"] == "crypto_node"
    assert second["crypto_node"] == {"protocol": "bitcoin-p2p"}


def _bitcoin_version() -> bytes:
    """A Bitcoin P2P `version` message (protocol 70016), as a node opens a connection."""
    payload = struct.pack("<iQq", 70016, 1, int(T0)) + bytes(26 * 2) + struct.pack("<Q", 7)
    payload += b"\x10/Satoshi:27.0.0/" + struct.pack("<i?", 820000, True)
    checksum = hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    header = bytes.fromhex("f9beb4d9") + b"version".ljust(12, b"\0")
    return header + struct.pack("<I", len(payload)) + checksum + payload


def test_node_traffic_gives_a_crypto_node_event_not_mining(tmp_path):
    session = TcpSession(("10.5.0.1", 50123), ("192.0.2.8", 8333))
    session.send("client", _bitcoin_version()).send("server", _bitcoin_version())
    write_pcap(tmp_path / "node.pcap", session.packets())
    events, pipeline = replay_events(tmp_path / "node.pcap", tmp_path / "events.json")
    assert [e["event_type"] for e in events] == ["crypto_node"]
    (event,) = events_of(events, "crypto_node", ("10.5.0.1", 50123))
    assert (event["src_ip"], event["dest_port"]) == ("10.5.0.1", 8333)  # as the flow opened
    assert event["crypto_node"] == {"protocol": "bitcoin-p2p"}
    assert event["pcap_filename"] == "node.pcap"
    assert pipeline.stats.node_flows == 1 and pipeline.stats.mining_flows == 0
