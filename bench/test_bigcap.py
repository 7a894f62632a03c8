"""Tests of the big-capture builder (run: pytest bench/test_bigcap.py)."""

from __future__ import annotations

import json
import socket
import struct
from pathlib import Path

import make_big_capture
import pytest
from bigcap import background, real, templates, truth
from bigcap.pcapio import PcapWriter, count_records

from sensor.capture.pcapfile import read_frames

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
_ETH_IP = bytes(12) + b"\x08\x00"


def _ipv4_frame(src: str, dst: str, payload: bytes = b"x") -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, 17, 0,
        socket.inet_aton(src), socket.inet_aton(dst),
    )  # fmt: skip
    return _ETH_IP + header + payload


@pytest.fixture(scope="module")
def built() -> dict[str, list[templates.Template]]:
    return templates.build()


def test_times_are_monotonic_and_long_gaps_capped() -> None:
    day = 86_400_000_000
    assert real.monotonic_times([5, 7, 6, 6 + day, 10 + day]) == [
        0, 2, 2, 2 + real.GAP_CAP_US, 6 + real.GAP_CAP_US,
    ]  # fmt: skip


def test_ipv4_offset_after_vlan_tags_and_none_for_other_types() -> None:
    frame = _ipv4_frame("10.0.0.1", "10.0.0.2")
    tagged = frame[:12] + b"\x81\x00\x00\x64" + b"\x81\x00\x00\x65" + frame[12:]
    assert real.ipv4_offset(frame) == 14
    assert real.ipv4_offset(tagged) == 22
    assert real.ipv4_offset(bytes(12) + b"\x86\xdd" + bytes(40)) == -1
    assert real.ipv4_offset(bytes(12) + b"\x08\x00" + b"\x45") == -1  # truncated


def test_masks_are_distinct_and_rewrite_only_moves_addresses() -> None:
    masks = {real.address_mask(k, i, 20) for k in range(300) for i in range(20)}
    assert len(masks) == 6000 and (0, 0) not in masks
    frame = _ipv4_frame("192.168.1.100", "94.23.36.128", b"payload")
    moved = real.rewrite(frame, 14, real.address_mask(3, 1, 20))
    src, dst = (socket.inet_ntoa(moved[o : o + 4]) for o in (26, 30))
    assert src.startswith("192.") and src.endswith(".100") and src != "192.168.1.100"
    assert dst.startswith("94.") and dst.endswith(".128") and dst != "94.23.36.128"
    assert moved[:26] == frame[:26] and moved[34:] == frame[34:]
    assert real.rewrite(moved, 14, real.address_mask(3, 1, 20)) == frame  # XOR: a bijection


def test_copies_of_a_source_share_no_address() -> None:
    frames = [_ipv4_frame("10.0.0.1", "185.71.66.20"), _ipv4_frame("185.71.66.20", "10.0.0.1")]
    source = real.SourceFile("s.pcap", [0, 10], frames, [len(f) for f in frames], [14, 14])
    seen: list[set[bytes]] = []
    for k in range(4):
        copy = [f for _, f, _ in real.replay(source, 0, real.address_mask(k, 0, 1))]
        seen.append(real.addresses(real.SourceFile("c", [0, 10], copy, [0, 0], [14, 14])))
    assert all(len(s) == 2 for s in seen)
    assert len(set().union(*seen)) == 8


def test_templates_are_plain_ipv4_with_both_directions(built) -> None:
    assert set(built) == set(templates.KINDS)
    for kind, variants in built.items():
        assert len(variants) == templates.VARIANTS
        for tpl in variants:
            ups = [up for _, up, _, _ in tpl.packets]
            assert ups[0] is True or kind == "idle", kind  # the client speaks first
            assert any(ups) and not all(ups), kind
            assert all(head[14] == 0x45 for _, _, head, _ in tpl.packets)


def test_background_flows_are_distinct_and_consistent(built) -> None:
    keys = set()
    for j in range(5000):
        tpl = background.template_of(built, j)
        up, down = background.endpoints(j, tpl)
        assert down == up[4:8] + up[0:4] + up[10:12] + up[8:10]  # the same flow reversed
        assert up[0] == 100 and 64 <= up[1] < 68  # 100.64.0.0/14, CGNAT space
        assert up[4] == 198 and up[5] in (18, 19)
        keys.add(up)
    assert len(keys) == 5000


def test_background_stream_is_time_ordered_and_complete(built) -> None:
    plan = background.Plan(flows=3000, start_us=10**15, span_us=60_000_000)
    records = list(background.stream(built, plan))
    times = [ts for ts, _, _ in records]
    assert times == sorted(times) and times[0] >= plan.start_us
    expected = sum(len(background.template_of(built, j).packets) for j in range(3000))
    assert len(records) == expected
    assert records == list(background.stream(built, plan))  # deterministic


def test_writer_output_reads_back(tmp_path: Path) -> None:
    frames = [(1_700_000_000_000_001, _ipv4_frame("10.0.0.1", "10.0.0.2"), 60)]
    path = tmp_path / "w.pcap"
    with path.open("wb") as fh:
        writer = PcapWriter(fh)
        writer.write_all(frames * 3)
    assert count_records(path) == (3, 3 * len(frames[0][1]))
    read = list(read_frames(path))
    assert writer.bytes == path.stat().st_size and len(read) == 3
    assert read[0].ts == pytest.approx(1_700_000_000.000001) and read[0].wire_len == 60


def test_truth_counts_mining_events_by_dialect_and_file() -> None:
    lines = [
        json.dumps({"event_type": "mining", "pcap_filename": "a", "mining": {"dialect": "tls"}}),
        json.dumps({"event_type": "flow", "mining": {"dialect": "tls"}}),
        json.dumps({"event_type": "mining", "pcap_filename": "b", "mining": {"dialect": "grin"}}),
        json.dumps({"event_type": "crypto_node"}),
    ]
    flows, details = truth.summarise(lines)
    assert flows == 2
    assert details["by_dialect"] == {"grin": 1, "tls": 1}
    assert details["by_file"] == {"a": 1, "b": 1} and details["crypto_node_events"] == 1


def test_small_capture_end_to_end(tmp_path: Path) -> None:
    if not (SHARED / "captures").is_dir():
        pytest.skip("../shared/captures is not present")
    out = tmp_path / "small.pcap"
    argv = ["--size-mb", "4", "--out", str(out), "--shared", str(SHARED)]
    assert make_big_capture.main([*argv, "--mining-flows-per-copy", "7"]) == 0
    doc = json.loads(out.with_name("small.pcap.truth.json").read_text())
    assert doc["copies"] == 1 and doc["mining_flows"] == 7 and doc["background_flows"] > 0
    assert count_records(out)[0] == doc["packets"] and doc["bytes"] == out.stat().st_size
    assert abs(doc["bytes"] - 4_000_000) < 100_000
    stamps = [f.ts for f in read_frames(out)]
    assert stamps == sorted(stamps)
