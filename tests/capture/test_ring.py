"""Reading TPACKET_V3 blocks, on blocks laid out here as the kernel lays them out.

No socket and no root needed: `block_frames` reads any buffer. The live ring
itself is exercised in test_live.py.
"""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from sensor.capture.ring import TP_STATUS_USER, RingSettings, block_frames

VLAN_VALID, TPID_VALID = 0x10, 0x40
BLOCK_HEADER = 48  # tpacket_block_desc with tpacket_hdr_v1
PACKET_HEADER = 48  # tpacket3_hdr, padded
MAC_AT = PACKET_HEADER + 20  # the kernel leaves room for a sockaddr_ll, aligned

Packet = tuple[bytes, int, int, int]  # (data as the kernel stores it, status, tci, tpid)


def _align(n: int) -> int:
    return (n + 15) & ~15


def block(packets: list[Packet], pad: int = 0, sec: int = 1_700_000_000) -> bytes:
    """A retired block at offset `pad`: packets stamped sec + i microseconds."""
    out = bytearray(pad + BLOCK_HEADER)
    struct.pack_into("=IIIII", out, pad + 4, 0, TP_STATUS_USER, len(packets), BLOCK_HEADER, 0)
    for i, (data, status, tci, tpid) in enumerate(packets):
        size = _align(MAC_AT + len(data))
        step = 0 if i == len(packets) - 1 else size
        header = struct.pack(
            "=IIIIIIHHIIH",
            step, sec, i * 1000, len(data), len(data), status | TP_STATUS_USER,
            MAC_AT, MAC_AT + 14, 0, tci, tpid,
        )  # fmt: skip
        out += header.ljust(MAC_AT, b"\0") + data.ljust(size - MAC_AT, b"\0")
    return bytes(out)


def frame(n: int, size: int = 60) -> bytes:
    return (bytes([2] * 6) + bytes([4] * 6) + b"\x08\x00" + bytes([n]) * size)[:size]


def test_untagged_frames_are_copied_with_kernel_time_and_length() -> None:
    data = [frame(1), frame(2, 1514)]
    frames = block_frames(block([(d, 0, 0, 0) for d in data]), 0, "eth1", 1, 262144)
    assert [f.data for f in frames] == data
    assert [f.wire_len for f in frames] == [60, 1514]
    assert [f.ts for f in frames] == [1_700_000_000.0, 1_700_000_000.000001]
    assert {(f.source, f.linktype) for f in frames} == {("eth1", 1)}


def test_vlan_tags_are_put_back_where_they_were() -> None:
    raw = frame(3)
    frames = block_frames(
        block([(raw, VLAN_VALID | TPID_VALID, 0x6064, 0x88A8), (raw, VLAN_VALID, 0x0005, 0)]),
        0, "span0", 1, 262144,
    )  # fmt: skip
    assert frames[0].data == raw[:12] + bytes.fromhex("88a86064") + raw[12:]
    # Without TPID_VALID (older kernels) the tag is 802.1Q.
    assert frames[1].data == raw[:12] + bytes.fromhex("81000005") + raw[12:]
    assert [f.wire_len for f in frames] == [64, 64]


def test_snaplen_cuts_tagged_and_untagged_frames_alike() -> None:
    raw = frame(4, 300)
    frames = block_frames(block([(raw, 0, 0, 0), (raw, VLAN_VALID, 7, 0)]), 0, "eth0", 1, 100)
    assert [len(f.data) for f in frames] == [100, 100]
    assert frames[1].data == (raw[:12] + bytes.fromhex("81000007") + raw[12:])[:100]
    assert [f.wire_len for f in frames] == [300, 304]


def test_a_block_is_read_at_its_offset_in_the_ring() -> None:
    ring = block([(frame(5), 0, 0, 0)], pad=4096)
    assert [f.data for f in block_frames(ring, 4096, "eth0", 1, 262144)] == [frame(5)]


def test_an_empty_block_gives_no_frames() -> None:
    assert block_frames(block([]), 0, "eth0", 1, 262144) == []


@given(
    st.lists(
        st.tuples(
            st.binary(min_size=14, max_size=1600),
            st.one_of(
                st.none(), st.tuples(st.sampled_from([0x8100, 0x88A8]), st.integers(0, 0xFFFF))
            ),
        ),
        max_size=20,
    )
)
def test_every_frame_comes_back_as_it_was_on_the_wire(
    wire: list[tuple[bytes, tuple[int, int] | None]],
) -> None:
    stored: list[Packet] = []
    for data, tag in wire:
        if tag is None:
            stored.append((data, 0, 0, 0))
        else:
            stored.append((data, VLAN_VALID | TPID_VALID, tag[1], tag[0]))
    frames = block_frames(block(stored), 0, "eth0", 1, 262144)
    expected = [
        data if tag is None else data[:12] + struct.pack("!HH", *tag) + data[12:]
        for data, tag in wire
    ]
    assert [f.data for f in frames] == expected
    assert [f.wire_len for f in frames] == [len(d) for d in expected]


def test_ring_request_counts_frames_for_the_whole_ring() -> None:
    settings = RingSettings(block_size=1 << 20, block_count=4, frame_size=2048, retire_ms=10)
    assert struct.unpack("=7I", settings.request()) == (1 << 20, 4, 2048, 2048, 10, 0, 0)
