"""The Decoder as a whole: the fields it fills, link types, padding, robustness."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE, CookedLinux, CookedLinuxV2, Dot1Q, Loopback
from scapy.layers.vxlan import VXLAN

from sensor.decode import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    Decoder,
)
from sensor.model import Frame, Packet
from tests.decode.frames import (
    DST4,
    PAYLOAD,
    SOURCE,
    SRC4,
    TS,
    assert_inner_tcp4,
    assert_inner_tcp6,
    decode,
    ether,
    frame,
    tcp4,
    tcp6,
    udp4,
)

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
SUPPORTED = (0, 1, 12, 14, 101, 108, 113, 228, 229, 276)
# VLAN / IPv4 / GRE / Ethernet / IPv4 / UDP / VXLAN / Ethernet / IPv6 / TCP
NESTED = bytes(
    ether(
        Dot1Q(vlan=5)
        / IP(src=SRC4, dst=DST4)
        / GRE(key_present=1, key=9)
        / ether(IP(src=SRC4, dst=DST4) / UDP(dport=4789) / VXLAN(vni=1) / ether(tcp6()))
    )
)


def test_plain_ethernet_ipv4_tcp_fills_every_field() -> None:
    data = bytes(ether(tcp4()))
    pkt = Decoder().decode(Frame(TS, LINKTYPE_ETHERNET, data, 1514, SOURCE))
    assert_inner_tcp4(pkt)
    assert pkt is not None
    assert pkt.ts == TS
    assert pkt.wire_len == 1514  # from the frame, not the captured length
    assert pkt.source == SOURCE
    assert pkt.tcp_flags == 0x18  # PSH|ACK


def test_ipv6_udp() -> None:
    pkt = decode(ether(IPv6(src="fe80::1", dst="ff02::fb") / UDP(sport=5353, dport=5353) / b"q"))
    assert pkt is not None
    assert (pkt.src, pkt.dst, pkt.sport, pkt.dport, pkt.proto) == (
        "fe80::1",
        "ff02::fb",
        5353,
        5353,
        17,
    )
    assert pkt.payload == b"q"
    assert (pkt.seq, pkt.tcp_flags) == (0, 0)


def test_ipv4_mapped_ipv6_is_left_as_is() -> None:
    pkt = decode(ether(IPv6(src="::ffff:10.0.0.1", dst="::1") / TCP(sport=1, dport=2)))
    assert pkt is not None
    assert (pkt.src, pkt.dst) == ("::ffff:10.0.0.1", "::1")


def test_ethernet_padding_is_not_payload() -> None:
    small = bytes(ether(tcp4(b"")))  # 54 bytes: Ethernet pads it to 60 on the wire
    padded = small + b"\xaa" * 6
    pkt = decode(padded)
    assert pkt is not None
    assert pkt.payload == b""
    short_udp = bytes(ether(udp4(b"ab"))) + b"\x00" * 16
    upkt = decode(short_udp)
    assert upkt is not None
    assert upkt.payload == b"ab"


@pytest.mark.parametrize("linktype", [LINKTYPE_RAW, 12, 14])
def test_raw_ip_link_types_by_version_nibble(linktype: int) -> None:
    assert_inner_tcp4(decode(tcp4(), linktype))
    assert_inner_tcp6(decode(tcp6(), linktype))


def test_ipv4_and_ipv6_link_types() -> None:
    assert_inner_tcp4(decode(tcp4(), LINKTYPE_IPV4))
    assert_inner_tcp6(decode(tcp6(), LINKTYPE_IPV6))


def test_linux_cooked_v1_and_v2() -> None:
    assert_inner_tcp4(decode(CookedLinux(proto=0x0800) / tcp4(), LINKTYPE_LINUX_SLL))
    assert_inner_tcp6(decode(CookedLinuxV2(proto=0x86DD) / tcp6(), LINKTYPE_LINUX_SLL2))


def test_linux_cooked_netlink_is_skipped() -> None:
    decoder = Decoder()
    assert decode(CookedLinux(lladdrtype=824, proto=0) / (b"x" * 20), 113, decoder) is None
    assert decoder.skipped["netlink"] == 1
    assert not decoder.errors


@pytest.mark.parametrize("family", [10, 24, 28, 30])
def test_bsd_loopback_ipv6_families_both_byte_orders(family: int) -> None:
    little = bytes(Loopback(type=family) / tcp6())  # scapy writes little-endian
    big = struct.pack("!I", family) + bytes(tcp6())
    assert_inner_tcp6(decode(little, LINKTYPE_NULL))
    assert_inner_tcp6(decode(big, LINKTYPE_NULL))
    assert_inner_tcp6(decode(big, LINKTYPE_LOOP))


def test_bsd_loopback_ipv4_both_byte_orders() -> None:
    assert_inner_tcp4(decode(bytes(Loopback(type=2) / tcp4()), LINKTYPE_NULL))
    assert_inner_tcp4(decode(b"\x00\x00\x00\x02" + bytes(tcp4()), LINKTYPE_NULL))
    assert_inner_tcp4(decode(b"\x00\x00\x00\x02" + bytes(tcp4()), LINKTYPE_LOOP))


def test_loopback_unknown_family_is_skipped() -> None:
    decoder = Decoder()
    assert decode(b"\x07\x00\x00\x00" + bytes(tcp4()), LINKTYPE_NULL, decoder) is None
    assert decoder.skipped["other_address_family"] == 1


def test_unsupported_link_type_is_counted() -> None:
    decoder = Decoder()
    assert decode(ether(tcp4()), 147, decoder) is None
    assert decoder.errors == {"unsupported_linktype": 1}
    assert not decoder.supports(147)
    assert all(decoder.supports(lt) for lt in SUPPORTED)


def test_counters_accumulate_across_frames() -> None:
    decoder = Decoder()
    for _ in range(3):
        decode(b"\x00" * 10, LINKTYPE_ETHERNET, decoder)
    assert decoder.errors["truncated_ether"] == 3


def test_every_truncation_of_a_frame_is_counted_not_raised() -> None:
    data = bytes(ether(tcp4()))
    decoder = Decoder()
    header_len = len(data) - len(PAYLOAD)
    for cut in range(len(data)):
        pkt = decoder.decode(frame(data[:cut]))
        if cut < header_len:
            assert pkt is None
        else:  # a snaplen-truncated frame still yields what was captured
            assert pkt is not None
            assert pkt.payload == PAYLOAD[: cut - header_len]
    assert sum(decoder.errors.values()) == header_len
    assert "internal_error" not in decoder.errors


def test_address_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import sensor.decode.base as base

    monkeypatch.setattr(base, "ADDR_CACHE_MAX", 4)
    decoder = Decoder()
    for last in range(10):
        pkt = decode(ether(tcp4(src=f"10.0.1.{last}")), decoder=decoder)
        assert pkt is not None
        assert pkt.src == f"10.0.1.{last}"
    assert len(decoder._addr_cache) <= 4


@settings(max_examples=400, deadline=None)
@given(linktype=st.sampled_from(SUPPORTED), data=st.binary(max_size=200))
def test_fuzz_arbitrary_bytes_never_raise(linktype: int, data: bytes) -> None:
    decoder = Decoder()
    pkt = decoder.decode(Frame(0.0, linktype, data, len(data), "fuzz"))
    assert "internal_error" not in decoder.errors
    counted = sum(decoder.errors.values()) + sum(decoder.skipped.values())
    assert (pkt is None) == (counted == 1)


@settings(max_examples=300, deadline=None)
@given(
    flips=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 2000),
)
def test_fuzz_mutated_tunnel_frames_never_raise(flips: list[tuple[int, int]], cut: int) -> None:
    """Byte flips in a deeply nested frame reach the inner decoders too."""
    base = bytearray(NESTED)
    for pos, value in flips:
        base[pos % len(base)] = value
    decoder = Decoder()
    decoder.decode(frame(bytes(base[:cut])))
    assert "internal_error" not in decoder.errors


def _captures() -> list[Path]:
    if not SHARED.is_dir():
        return []
    return sorted((SHARED / "captures").glob("*/*.pcap*"))


def test_real_captures_agree_with_dpkt() -> None:
    """Every packet of the shared captures decodes as dpkt decodes it."""
    if not _captures():
        pytest.skip("shared captures not available")
    dpkt = pytest.importorskip("dpkt")
    checked = 0
    for path in _captures()[:6]:
        with path.open("rb") as fh:
            reader = dpkt.pcapng.Reader(fh) if path.suffix == ".pcapng" else dpkt.pcap.Reader(fh)
            decoder = Decoder()
            for ts, data in reader:
                pkt = decoder.decode(Frame(ts, LINKTYPE_ETHERNET, data, len(data), path.name))
                checked += _compare_with_dpkt(dpkt, pkt, data)
        assert not decoder.errors, (path.name, decoder.errors)
    assert checked > 1000


def _compare_with_dpkt(dpkt: Any, pkt: Packet | None, data: bytes) -> int:
    eth = dpkt.ethernet.Ethernet(data)
    ip = eth.data
    if not isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6) or not isinstance(
        ip.data, dpkt.tcp.TCP | dpkt.udp.UDP
    ):
        assert pkt is None
        return 0
    assert pkt is not None
    assert (pkt.sport, pkt.dport, pkt.payload) == (ip.data.sport, ip.data.dport, ip.data.data)
    if isinstance(ip.data, dpkt.tcp.TCP):
        assert (pkt.seq, pkt.tcp_flags & 0xFF) == (ip.data.seq, ip.data.flags & 0xFF)
    return 1


def test_nested_fuzz_base_frame_decodes() -> None:
    assert_inner_tcp6(decode(NESTED))
