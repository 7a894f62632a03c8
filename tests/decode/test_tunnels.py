"""Tunnels: GRE (RFC 2784/2890), ERSPAN I/II/III, VXLAN, Geneve, and their nestings."""

from __future__ import annotations

import struct

from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III, ERSPAN_PlatformSpecific
from scapy.contrib.geneve import GENEVE
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE, Dot1AD, Dot1Q
from scapy.layers.vxlan import VXLAN

from sensor.decode import Decoder
from tests.decode.frames import assert_inner_tcp4, assert_inner_tcp6, decode, ether, tcp4, tcp6

OUTER4 = IP(src="198.51.100.1", dst="198.51.100.2")
OUTER6 = IPv6(src="2001:db8:1::1", dst="2001:db8:1::2")


def test_gre_carrying_ipv4_and_ipv6() -> None:
    assert_inner_tcp4(decode(ether(OUTER4 / GRE() / tcp4())))
    assert_inner_tcp6(decode(ether(OUTER4 / GRE() / tcp6())))
    assert_inner_tcp4(decode(ether(OUTER6 / GRE() / tcp4())))


def test_gre_optional_fields() -> None:
    gre = GRE(chksum_present=1, key_present=1, key=77, seqnum_present=1, sequence_number=5)
    assert len(gre) == 16
    assert_inner_tcp4(decode(ether(OUTER4 / gre / tcp4())))


def test_gre_transparent_ethernet_bridging() -> None:
    inner = ether(Dot1Q(vlan=4) / tcp4())
    assert_inner_tcp4(decode(ether(OUTER4 / GRE(proto=0x6558) / inner)))


def test_gre_inside_vlan() -> None:
    assert_inner_tcp4(decode(ether(Dot1Q(vlan=200) / OUTER4 / GRE() / tcp4())))


def test_gre_carrying_mpls() -> None:
    assert_inner_tcp4(decode(ether(OUTER4 / GRE(proto=0x8847) / MPLS(label=9) / tcp4())))


def test_gre_versions_and_routing_are_unsupported() -> None:
    decoder = Decoder()
    pptp = bytes(ether(OUTER4 / GRE(version=1, proto=0x880B, key_present=1) / b"ppp data"))
    assert decode(pptp, decoder=decoder) is None
    routed = bytes(ether(OUTER4 / GRE(routing_present=1) / tcp4()))
    assert decode(routed, decoder=decoder) is None
    assert decoder.errors == {"gre_unsupported": 2}


def test_truncated_gre() -> None:
    decoder = Decoder()
    raw = bytes(ether(OUTER4 / GRE(key_present=1, key=1) / tcp4()))
    assert decode(raw[: 14 + 20 + 6], decoder=decoder) is None
    assert decode(raw[: 14 + 20 + 2], decoder=decoder) is None
    assert decoder.errors == {"truncated_gre": 2}


def test_erspan_type_1_has_no_header() -> None:
    pkt = ether(OUTER4 / GRE(proto=0x88BE) / ether(tcp4()))
    assert_inner_tcp4(decode(pkt))


def test_erspan_type_2() -> None:
    gre = GRE(seqnum_present=1, sequence_number=3, proto=0x88BE)
    pkt = ether(OUTER4 / gre / ERSPAN_II(session_id=9) / ether(Dot1Q(vlan=5) / tcp4()))
    assert_inner_tcp4(decode(pkt))


def test_erspan_type_3_with_and_without_platform_subheader() -> None:
    gre = GRE(seqnum_present=1, proto=0x22EB)
    plain = ether(OUTER4 / gre / ERSPAN_III(session_id=9) / ether(tcp4()))
    assert_inner_tcp4(decode(plain))
    sub = ERSPAN_III(o=1) / ERSPAN_PlatformSpecific(platf_id=3)
    assert len(sub) == 20
    assert_inner_tcp6(decode(ether(OUTER4 / gre / sub / ether(tcp6()))))


def test_erspan_type_3_carrying_ip_frames() -> None:
    gre = GRE(seqnum_present=1, proto=0x22EB)
    assert_inner_tcp4(decode(ether(OUTER4 / gre / ERSPAN_III(ft=2) / tcp4())))


def test_bad_erspan_headers() -> None:
    decoder = Decoder()
    gre2 = GRE(seqnum_present=1, proto=0x88BE)
    assert decode(ether(OUTER4 / gre2 / ERSPAN_II(ver=3) / ether(tcp4())), decoder=decoder) is None
    gre3 = GRE(seqnum_present=1, proto=0x22EB)
    assert decode(ether(OUTER4 / gre3 / ERSPAN_III(ft=5) / tcp4()), decoder=decoder) is None
    assert decode(ether(OUTER4 / gre3 / b"\x20\x00"), decoder=decoder) is None
    assert decoder.errors == {
        "bad_erspan_header": 1,
        "erspan_unsupported": 1,
        "truncated_erspan": 1,
    }


def test_vxlan() -> None:
    pkt = ether(OUTER4 / UDP(sport=33333, dport=4789) / VXLAN(vni=42) / ether(tcp4()))
    assert_inner_tcp4(decode(pkt))


def test_vxlan_carrying_vlan_over_ipv6() -> None:
    inner = ether(Dot1Q(vlan=12) / tcp6())
    assert_inner_tcp6(decode(ether(OUTER6 / UDP(dport=4789) / VXLAN(vni=42) / inner)))


def test_vxlan_on_a_configured_port() -> None:
    pkt = ether(OUTER4 / UDP(dport=8472) / VXLAN(vni=1) / ether(tcp4()))
    assert_inner_tcp4(decode(pkt, decoder=Decoder(vxlan_ports=(4789, 8472))))


def test_geneve_with_options_carrying_ethernet_and_ip() -> None:
    options = struct.pack("!HBB", 0x0102, 0x80, 1) + b"\xaa\xbb\xcc\xdd"
    eth = GENEVE(vni=7, proto=0x6558, options=options) / ether(tcp4())
    assert_inner_tcp4(decode(ether(OUTER4 / UDP(dport=6081) / eth)))
    ip = GENEVE(vni=7, proto=0x86DD) / tcp6()
    assert_inner_tcp6(decode(ether(OUTER4 / UDP(dport=6081) / ip)))


def test_truncated_geneve_options() -> None:
    decoder = Decoder()
    raw = bytes(GENEVE(vni=7, proto=0x6558, optionlen=4))
    assert decode(ether(OUTER4 / UDP(dport=6081) / raw), decoder=decoder) is None
    assert decoder.errors == {"truncated_geneve": 1}


def test_deep_nesting_vxlan_in_gre_in_qinq() -> None:
    vxlan = OUTER4 / UDP(dport=4789) / VXLAN(vni=3) / ether(Dot1Q(vlan=30) / tcp4())
    gre = OUTER6 / GRE(proto=0x6558) / ether(Dot1Q(vlan=20) / vxlan)
    pkt = ether(Dot1AD(vlan=10) / Dot1Q(vlan=11) / gre)
    assert_inner_tcp4(decode(pkt))  # depth 6: 2 tags, GRE, tag, VXLAN, tag


def test_tunnel_loops_stop_at_max_depth() -> None:
    inner = tcp4()
    for _ in range(10):
        inner = OUTER4 / GRE() / inner
    decoder = Decoder()
    assert decode(ether(inner), decoder=decoder) is None
    assert decoder.errors == {"too_deep": 1}
    assert_inner_tcp4(decode(ether(inner), decoder=Decoder(max_depth=10)))


def test_broken_inner_frame_is_counted() -> None:
    decoder = Decoder()
    pkt = ether(OUTER4 / UDP(dport=4789) / VXLAN(vni=3) / b"short")
    assert decode(pkt, decoder=decoder) is None
    assert decoder.errors == {"truncated_ether": 1}
