"""The pure-Python pcap/pcapng reader: formats, clocks, link types, and damage.

Frames come from the traffic factory (a scripted stratum session); the file
containers the factory does not write (big-endian, nanosecond pcap, pcapng with
several interfaces, if_tsresol, simple packet blocks) are built here with
struct, following the pcap and pcapng specifications.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensor.capture.errors import CaptureError
from sensor.capture.pcapfile import read_frames, sniff_format
from sensor.model import Frame
from tests.factory import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_RAW,
    T0,
    TcpSession,
    frame_bytes,
    write_pcap,
    write_pcapng,
)
from tests.sessions import SCRIPTS

# --- containers --------------------------------------------------------------------------

Record = tuple[int, int, bytes]  # (seconds, fraction in the file's unit, frame bytes)


def session_packets() -> list:
    """A short stratum session (handshake, a few lines, FIN), as scapy packets."""
    steps = SCRIPTS["stratum_v1_btc"].steps[:4]
    return TcpSession(start=T0 + 0.25).script(steps).packets()


def ether_frames(count: int = 6) -> list[bytes]:
    return [frame_bytes(p, LINKTYPE_ETHERNET) for p in session_packets()[:count]]


def pcap_bytes(
    records: Iterable[Record], *, order: str = "<", nano: bool = False, linktype: int = 1
) -> bytes:
    """A classic pcap file: header, then a 16-byte header per record."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype)]
    for sec, frac, data in records:
        out.append(struct.pack(order + "IIII", sec, frac, len(data), len(data) + 4) + data)
    return b"".join(out)


def _pad(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)


def block(order: str, kind: int, body: bytes) -> bytes:
    total = 12 + len(_pad(body))
    return struct.pack(order + "II", kind, total) + _pad(body) + struct.pack(order + "I", total)


def shb(order: str) -> bytes:
    return block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + _pad(value)


def idb(order: str, linktype: int, tsresol: int | None = None, snaplen: int = 0) -> bytes:
    # An if_name option (odd length, so padded) before if_tsresol checks option walking.
    opts = option(order, 2, b"eth0x")
    if tsresol is not None:
        opts += option(order, 9, bytes([tsresol]))
    opts += b"\x00\x00\x00\x00"
    return block(order, 1, struct.pack(order + "HHI", linktype, 0, snaplen) + opts)


def epb(order: str, iface: int, ticks: int, data: bytes, wire: int | None = None) -> bytes:
    head = struct.pack(
        order + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), wire or len(data)
    )
    return block(order, 6, head + _pad(data))


def spb(order: str, data: bytes, wire: int | None = None) -> bytes:
    return block(order, 3, struct.pack(order + "I", wire or len(data)) + _pad(data))


def read_all(path: Path) -> tuple[list[Frame], CaptureError | None]:
    """The frames read before any error, and the error."""
    frames: list[Frame] = []
    try:
        for frame in read_frames(path):
            frames.append(frame)
    except CaptureError as exc:
        return frames, exc
    return frames, None


# --- formats -----------------------------------------------------------------------------


def test_sniff_format() -> None:
    assert sniff_format(b"\xd4\xc3\xb2\xa1rest") == "pcap"
    assert sniff_format(b"\xa1\xb2\x3c\x4d") == "pcap"
    assert sniff_format(b"\x0a\x0d\x0d\x0a") == "pcapng"
    assert sniff_format(b"GET ") is None
    assert sniff_format(b"") is None


@pytest.mark.parametrize("writer", [write_pcap, write_pcapng])
def test_factory_files_read_back_exactly(tmp_path: Path, writer) -> None:
    pkts = session_packets()
    path = tmp_path / "session.cap"
    writer(path, pkts)
    frames = list(read_frames(path))
    assert [f.data for f in frames] == [frame_bytes(p) for p in pkts]
    assert [f.ts for f in frames] == pytest.approx([float(p.time) for p in pkts], abs=1e-6)
    assert {f.linktype for f in frames} == {LINKTYPE_ETHERNET}
    assert {f.source for f in frames} == {"session.cap"}
    assert all(f.wire_len == len(f.data) for f in frames)


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_byte_orders_and_clocks(tmp_path: Path, order: str, nano: bool) -> None:
    datas = ether_frames(3)
    fracs = [123_456_789, 5, 999_999_999] if nano else [123_456, 5, 999_999]
    records = [
        (1_700_000_000 + n, frac, d) for n, (frac, d) in enumerate(zip(fracs, datas, strict=True))
    ]
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap_bytes(records, order=order, nano=nano, linktype=LINKTYPE_RAW))
    frames = list(read_frames(path))
    unit = 1e-9 if nano else 1e-6
    assert [f.ts for f in frames] == pytest.approx(
        [sec + frac * unit for sec, frac, _ in records], abs=1e-6
    )
    assert [f.data for f in frames] == datas
    assert [f.wire_len for f in frames] == [len(d) + 4 for d in datas]
    assert {f.linktype for f in frames} == {LINKTYPE_RAW}


def multi_interface_file(tmp_path: Path) -> tuple[Path, list[tuple[float, int, bytes, int]]]:
    """Two sections (little- then big-endian), interfaces of three link types and
    three clocks, a simple packet block, and blocks a reader must skip."""
    eth = ether_frames(4)
    raw = frame_bytes(session_packets()[0], LINKTYPE_RAW)
    sll = frame_bytes(session_packets()[1], LINKTYPE_LINUX_SLL)
    le = [
        shb("<"),
        idb("<", LINKTYPE_ETHERNET),  # default clock: microseconds
        idb("<", LINKTYPE_RAW, tsresol=9),  # nanoseconds
        idb("<", LINKTYPE_LINUX_SLL, tsresol=0x80 | 20),  # 2**-20 s
        block("<", 4, b"\x00\x00\x00\x00"),  # name resolution block: skipped
        epb("<", 1, 1_700_000_000_123_456_789, raw),
        epb("<", 0, 1_700_000_001_250_000, eth[0], wire=1514),
        epb("<", 2, 1_700_000_002 << 20 | 1 << 19, sll),
        spb("<", eth[1]),  # no timestamp, interface 0
    ]
    be = [shb(">"), idb(">", LINKTYPE_RAW), epb(">", 0, 1_700_000_003_000_001, eth[2])]
    expected = [
        (1_700_000_000.123456789, LINKTYPE_RAW, raw, len(raw)),
        (1_700_000_001.25, LINKTYPE_ETHERNET, eth[0], 1514),
        (1_700_000_002.5, LINKTYPE_LINUX_SLL, sll, len(sll)),
        (0.0, LINKTYPE_ETHERNET, eth[1], len(eth[1])),
        (1_700_000_003.000001, LINKTYPE_RAW, eth[2], len(eth[2])),
    ]
    path = tmp_path / "multi.pcapng"
    path.write_bytes(b"".join(le + be))
    return path, expected


def test_pcapng_interfaces_clocks_sections_and_simple_packets(tmp_path: Path) -> None:
    path, expected = multi_interface_file(tmp_path)
    frames = list(read_frames(path))
    assert [(f.linktype, f.data, f.wire_len) for f in frames] == [e[1:] for e in expected]
    assert [f.ts for f in frames] == pytest.approx([e[0] for e in expected], abs=1e-6)


def test_simple_packet_block_is_cut_at_the_interface_snaplen(tmp_path: Path) -> None:
    data = ether_frames(4)[3]
    assert len(data) > 61
    path = tmp_path / "snap.pcapng"
    # 61 captured bytes (padded to 64 in the block) of a frame that was longer on the wire
    path.write_bytes(shb("<") + idb("<", 1, snaplen=61) + spb("<", data[:61], wire=len(data)))
    (frame,) = read_frames(path)
    assert frame.data == data[:61]
    assert frame.wire_len == len(data)


# --- damage ------------------------------------------------------------------------------


def test_truncated_record_header_after_good_frames(tmp_path: Path) -> None:
    datas = ether_frames(3)
    whole = pcap_bytes([(1, 0, d) for d in datas])
    path = tmp_path / "cut-header.pcap"
    path.write_bytes(whole + b"\x01\x02\x03\x04\x05\x06\x07")
    frames, error = read_all(path)
    assert [f.data for f in frames] == datas
    assert error is not None and error.source == "cut-header.pcap"
    assert "truncated record header" in str(error) and str(error).startswith("cut-header.pcap: ")


def test_truncated_record_body_after_good_frames(tmp_path: Path) -> None:
    datas = ether_frames(3)
    path = tmp_path / "cut-body.pcap"
    path.write_bytes(pcap_bytes([(1, 0, d) for d in datas])[:-10])
    frames, error = read_all(path)
    assert [f.data for f in frames] == datas[:2]
    assert error is not None and "truncated packet" in error.message
    assert error.source == "cut-body.pcap"


def test_truncated_pcapng_block_after_good_frames(tmp_path: Path) -> None:
    path, expected = multi_interface_file(tmp_path)
    path.write_bytes(path.read_bytes()[:-9])
    frames, error = read_all(path)
    assert [f.data for f in frames] == [e[2] for e in expected[:-1]]
    assert error is not None and error.source == "multi.pcapng"
    assert "truncated block" in error.message


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty file"),
        (b"hello, this is not a capture\n", "not a pcap or pcapng file"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "truncated pcap file header"),
        (b"\x0a\x0d\x0d\x0a\x1c\x00", "truncated block header"),
    ],
)
def test_unreadable_files_name_themselves(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "input.bin"
    path.write_bytes(content)
    frames, error = read_all(path)
    assert frames == []
    assert error is not None and error.source == "input.bin" and words in error.message


def test_missing_file_is_a_capture_error(tmp_path: Path) -> None:
    frames, error = read_all(tmp_path / "gone.pcap")
    assert frames == [] and error is not None and error.source == "gone.pcap"


@pytest.mark.parametrize(
    ("blocks", "words"),
    [
        ([shb("<"), epb("<", 0, 1, b"abcd")], "bad enhanced packet block"),
        ([shb("<"), idb("<", 1), epb("<", 3, 1, b"abcd")], "bad enhanced packet block"),
        ([shb("<"), idb("<", 1), struct.pack("<II", 6, 12) + struct.pack("<I", 12)], "enhanced"),
        ([shb("<"), spb("<", b"abcd")], "bad simple packet block"),
        ([shb("<"), struct.pack("<III", 1, 12, 12)], "bad interface description block"),
        ([shb("<"), struct.pack("<II", 1, 22) + b"\x00" * 14], "bad or truncated block"),
        ([shb("<")[:8] + b"\x00\x00\x00\x00" + shb("<")[12:]], "byte-order magic"),
    ],
)
def test_damaged_pcapng_blocks(tmp_path: Path, blocks: list[bytes], words: str) -> None:
    path = tmp_path / "bad.pcapng"
    path.write_bytes(b"".join(blocks))
    frames, error = read_all(path)
    assert frames == []
    assert error is not None and error.source == "bad.pcapng" and words in error.message


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_every_cut_yields_a_prefix_and_errors_only_inside_a_record(
    tmp_path: Path, kind: str
) -> None:
    pkts = session_packets()[:3]
    whole_path = tmp_path / f"whole.{kind}"
    (write_pcap if kind == "pcap" else write_pcapng)(whole_path, pkts)
    whole = whole_path.read_bytes()
    everything = [f.data for f in read_frames(whole_path)]
    boundaries = record_ends(whole, kind)
    path = tmp_path / f"cut.{kind}"
    for cut in range(1, len(whole)):
        path.write_bytes(whole[:cut])
        frames, error = read_all(path)
        assert [f.data for f in frames] == everything[: len(frames)]
        assert (error is None) == (cut in boundaries), cut


def record_ends(whole: bytes, kind: str) -> set[int]:
    """Offsets where a record (pcap) or block (pcapng) ends: cuts that leave a valid file."""
    if kind == "pcap":
        ends, off, length_at, fixed = {24}, 24, 8, 16
    else:
        ends, off, length_at, fixed = set(), 0, 4, 0
    while off < len(whole):
        off += fixed + struct.unpack_from("<I", whole, off + length_at)[0]
        ends.add(off)
    return ends


@st.composite
def damaged_block(draw: st.DrawFn) -> bytes:
    """A pcapng block with a plausible type and length, and any body."""
    kind = draw(st.sampled_from([1, 3, 4, 6, 0x0A0D0D0A]))
    length = draw(st.integers(12, 48).map(lambda n: n & ~3))
    body = draw(st.binary(min_size=length - 12, max_size=length - 12))
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    head=st.sampled_from(["pcap-le", "pcap-be", "pcapng"]),
    tail=st.binary(max_size=120) | st.lists(damaged_block(), max_size=4).map(b"".join),
)
def test_any_bytes_give_frames_or_a_capture_error(tmp_path: Path, head: str, tail: bytes) -> None:
    """Garbage after a valid header never raises anything but CaptureError."""
    start = {
        "pcap-le": pcap_bytes([]),
        "pcap-be": pcap_bytes([], order=">"),
        "pcapng": shb("<") + idb("<", 1),
    }[head]
    path = tmp_path / "fuzz.pcap"
    path.write_bytes(start + tail)
    frames, _ = read_all(path)
    assert all(isinstance(f.data, bytes) and f.linktype >= 0 for f in frames)
