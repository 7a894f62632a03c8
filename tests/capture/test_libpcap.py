"""The libpcap binding: same frames as the Python reader, counting, damage, BPF unions.

Skipped as a whole when the system has no libpcap (the replay then uses the
Python reader, which tests/capture/test_pcapfile.py covers).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sensor.capture import libpcap
from sensor.capture.errors import CaptureError
from sensor.capture.libpcap import Filter, PcapFile, UnionFilter, compiled
from sensor.capture.pcapfile import read_frames
from sensor.model import Frame
from tests.capture.test_pcapfile import (
    epb,
    ether_frames,
    idb,
    pcap_bytes,
    session_packets,
    shb,
)
from tests.factory import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    T0,
    TcpSession,
    UdpExchange,
    merge,
    write_pcap,
    write_pcapng,
)

pytestmark = pytest.mark.skipif(libpcap.load() is None, reason="libpcap is not installed")

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
DLT_RAW = 12  # what libpcap reports for LINKTYPE_RAW (101) files on Linux


def lib_frames(path: Path, bpf: str | Filter | UnionFilter | None = None) -> list[Frame]:
    with PcapFile(path, bpf) as pcap:
        return list(pcap.frames())


def lib_frames_until_error(path: Path) -> tuple[list[Frame], CaptureError | None]:
    frames: list[Frame] = []
    try:
        with PcapFile(path) as pcap:
            for frame in pcap.frames():
                frames.append(frame)
    except CaptureError as exc:
        return frames, exc
    return frames, None


def assert_same_frames(ours: list[Frame], theirs: list[Frame]) -> None:
    """Same bytes, wire lengths and times (the file names may differ)."""
    assert [(f.data, f.wire_len) for f in ours] == [(f.data, f.wire_len) for f in theirs]
    assert [f.ts for f in ours] == pytest.approx([f.ts for f in theirs], abs=1e-6)


# --- files -------------------------------------------------------------------------------


def factory_files(tmp_path: Path) -> list[Path]:
    """The same session in the containers the factory and test_pcapfile write."""
    pkts = session_packets()
    datas = ether_frames(5)
    nanos = [(1_700_000_000 + n, 123_456_789 + n, d) for n, d in enumerate(datas)]
    ng_be = shb(">") + idb(">", 1, tsresol=9)
    ng_be += b"".join(epb(">", 0, (sec * 10**9) + ns, d) for sec, ns, d in nanos)
    contents = {
        "le-micro.pcap": None,
        "one.pcapng": None,
        "be-nano.pcap": pcap_bytes(nanos, order=">", nano=True),
        "le-nano.pcap": pcap_bytes(nanos, nano=True),
        "be-tsresol.pcapng": ng_be,
    }
    write_pcap(tmp_path / "le-micro.pcap", pkts)
    write_pcapng(tmp_path / "one.pcapng", pkts)
    for name, data in contents.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
    return [tmp_path / name for name in contents]


def test_same_frames_as_the_python_reader(tmp_path: Path) -> None:
    for path in factory_files(tmp_path):
        theirs = list(read_frames(path))
        ours = lib_frames(path)
        assert len(ours) == len(theirs) > 0
        assert_same_frames(ours, theirs)
        assert {f.linktype for f in ours} == {LINKTYPE_ETHERNET}
        assert {f.source for f in ours} == {path.name}


@pytest.mark.parametrize(
    ("linktype", "dlt"),
    [
        (LINKTYPE_RAW, DLT_RAW),
        (LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL),
        (LINKTYPE_LINUX_SLL2, LINKTYPE_LINUX_SLL2),
        (LINKTYPE_NULL, LINKTYPE_NULL),
    ],
)
def test_other_link_types_report_libpcap_dlt_values(
    tmp_path: Path, linktype: int, dlt: int
) -> None:
    path = tmp_path / "other.pcap"
    write_pcap(path, session_packets(), linktype)
    ours = lib_frames(path)
    assert_same_frames(ours, list(read_frames(path)))
    with PcapFile(path) as pcap:
        assert pcap.linktype == dlt
    assert {f.linktype for f in ours} == {dlt}


def shared_captures() -> list[Path]:
    root = SHARED / "captures"
    return sorted(p for p in root.rglob("*") if p.suffix in (".pcap", ".pcapng"))


def test_same_frames_as_the_python_reader_on_real_captures() -> None:
    paths = shared_captures()
    if not paths:
        pytest.skip("../shared/captures is not available")
    for path in paths:
        ours, theirs = lib_frames(path), list(read_frames(path))
        assert len(ours) == len(theirs) > 0, path.name
        assert_same_frames(ours, theirs)
        with PcapFile(path) as pcap:
            assert pcap.count() == (len(theirs), sum(len(f.data) for f in theirs)), path.name


def test_count_is_packets_and_captured_bytes(tmp_path: Path) -> None:
    for path in factory_files(tmp_path):
        frames = list(read_frames(path))
        with PcapFile(path) as pcap:
            assert pcap.count() == (len(frames), sum(len(f.data) for f in frames))


def test_count_of_an_empty_capture(tmp_path: Path) -> None:
    path = tmp_path / "none.pcap"
    write_pcap(path, [])
    with PcapFile(path) as pcap:
        assert pcap.count() == (0, 0)


@pytest.mark.parametrize("where", ["data", "header"])
def test_truncated_file_raises_after_the_good_frames(tmp_path: Path, where: str) -> None:
    whole = tmp_path / "whole.pcap"
    write_pcap(whole, session_packets()[:4])
    good = list(read_frames(whole))
    last = 16 + len(good[-1].data)
    drop = 7 if where == "data" else last - 5  # 5 bytes of the last header are left
    path = tmp_path / "cut.pcap"
    path.write_bytes(whole.read_bytes()[:-drop])
    frames, error = lib_frames_until_error(path)
    assert_same_frames(frames, good[:-1])
    assert error is not None and error.source == "cut.pcap"


def test_truncated_record_header(tmp_path: Path) -> None:
    whole = tmp_path / "whole.pcap"
    write_pcap(whole, session_packets()[:3])
    path = tmp_path / "cut-header.pcap"
    path.write_bytes(whole.read_bytes() + b"\x00" * 9)
    frames, error = lib_frames_until_error(path)
    assert_same_frames(frames, list(read_frames(whole)))
    assert error is not None and error.source == "cut-header.pcap"


def test_truncated_pcapng_block(tmp_path: Path) -> None:
    whole = tmp_path / "whole.pcapng"
    write_pcapng(whole, session_packets()[:4])
    path = tmp_path / "cut.pcapng"
    path.write_bytes(whole.read_bytes()[:-10])
    frames, error = lib_frames_until_error(path)
    assert_same_frames(frames, list(read_frames(whole))[:3])
    assert error is not None and error.source == "cut.pcapng"


@pytest.mark.parametrize("content", [b"", b"not a capture at all, just text\n"])
def test_unreadable_file_is_a_capture_error_naming_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.pcap"
    path.write_bytes(content)
    with pytest.raises(CaptureError) as info:
        PcapFile(path)
    assert info.value.source == "notes.pcap"


def test_missing_file_is_a_capture_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError) as info:
        PcapFile(tmp_path / "gone.pcap")
    assert info.value.source == "gone.pcap"


# --- filters -----------------------------------------------------------------------------


def mixed_capture(tmp_path: Path) -> tuple[Path, dict[str, list[bytes]]]:
    """Three TCP sessions on ports 1111, 2222 and 3333 and a DNS exchange."""
    sessions = {
        port: TcpSession(("10.1.2.3", 40000 + port), ("192.0.2.9", port), start=T0 + port / 1e4)
        .send("client", b'{"id":1}\n')
        .send("server", b"PLAIN TEXT\r\n")
        .packets()
        for port in (1111, 2222, 3333)
    }
    dns = UdpExchange(start=T0 + 0.05).send("client", b"\x12\x34query").packets()
    path = tmp_path / "mixed.pcap"
    write_pcap(path, merge(*sessions.values(), dns))
    frames = list(read_frames(path))
    by_kind: dict[str, list[bytes]] = {"dns": [f.data for f in frames if f.data[23] == 17]}
    for port in sessions:
        by_kind[str(port)] = [
            f.data for f in frames if f.data[23] == 6 and port.to_bytes(2, "big") in f.data[34:38]
        ]
    return path, by_kind


def passed(path: Path, bpf: str | Filter | UnionFilter) -> set[bytes]:
    return {f.data for f in lib_frames(path, bpf)}


def test_string_filter_selects_packets(tmp_path: Path) -> None:
    path, kinds = mixed_capture(tmp_path)
    assert passed(path, "tcp port 2222") == set(kinds["2222"])
    assert passed(path, "udp") == set(kinds["dns"])


def test_compiled_filters_are_cached_per_link_type_and_expression() -> None:
    assert compiled(1, "tcp port 1111") is compiled(1, "tcp port 1111")
    assert compiled(1, "tcp port 1111") is not compiled(113, "tcp port 1111")
    assert compiled(1, "tcp port 1111").expression == "tcp port 1111"


def test_union_accepts_what_any_part_accepts(tmp_path: Path) -> None:
    path, kinds = mixed_capture(tmp_path)
    parts = {
        "1111": compiled(1, "tcp port 1111"),
        "3333": compiled(1, "tcp port 3333 and tcp[tcpflags] & tcp-push != 0"),
        "dns": compiled(1, "udp and udp[8:2] = 0x1234"),
    }
    pushed_3333 = passed(path, parts["3333"])
    assert pushed_3333 and pushed_3333 < set(kinds["3333"])  # a part with several rejects
    expected = set(kinds["1111"]) | pushed_3333 | set(kinds["dns"])
    for order in (["1111", "3333", "dns"], ["dns", "3333", "1111"], ["3333", "dns", "1111"]):
        union = UnionFilter([parts[name] for name in order])
        assert passed(path, union) == expected, order
        assert union.expression == " || ".join(parts[name].expression for name in order)
    assert passed(path, UnionFilter([parts["1111"]])) == set(kinds["1111"])


def test_union_equals_the_or_of_its_parts(tmp_path: Path) -> None:
    path, _ = mixed_capture(tmp_path)
    expressions = ["tcp port 2222 and tcp[13] & 2 != 0", "ip host 10.1.2.3 and udp", "port 3333"]
    union = UnionFilter([compiled(1, e) for e in expressions])
    joined = Filter(1, " or ".join(f"({e})" for e in expressions))
    assert passed(path, union) == passed(path, joined)
    assert len(passed(path, union)) > 4


def test_bad_filter_expression(tmp_path: Path) -> None:
    with pytest.raises(CaptureError) as info:
        Filter(1, "tcp port banana")
    assert info.value.source == "bpf" and "does not compile" in info.value.message
    path, _ = mixed_capture(tmp_path)
    with pytest.raises(CaptureError) as info:
        PcapFile(path, "tcp port banana")
    assert info.value.source == "mixed.pcap"
