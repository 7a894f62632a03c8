"""Link layers: VLAN tags, QinQ, MPLS (with pseudowires), PPPoE, and what is skipped."""

from __future__ import annotations

import pytest
from scapy.contrib.mpls import MPLS
from scapy.layers.l2 import ARP, LLC, STP, Dot1AD, Dot1Q, Dot3
from scapy.layers.ppp import PPP, PPPoE

from sensor.decode import Decoder
from tests.decode.frames import (
    MACS,
    assert_inner_tcp4,
    assert_inner_tcp6,
    decode,
    ether,
    tcp4,
    tcp6,
)

CONTROL_WORD = b"\x00\x00\x00\x00"


def test_single_vlan_tag() -> None:
    assert_inner_tcp4(decode(ether(Dot1Q(vlan=100) / tcp4())))
    assert_inner_tcp6(decode(ether(Dot1Q(vlan=100) / tcp6())))


@pytest.mark.parametrize("outer", [0x88A8, 0x9100, 0x9200, 0x8100])
def test_qinq_stacked_tags(outer: int) -> None:
    pkt = ether(Dot1Q(vlan=10) / Dot1Q(vlan=20) / tcp4(), type=outer)
    assert_inner_tcp4(decode(pkt))


def test_dot1ad_then_dot1q() -> None:
    assert_inner_tcp4(decode(ether(Dot1AD(vlan=10) / Dot1Q(vlan=20) / tcp4())))


def test_mpls_label_stack_to_ipv4_and_ipv6() -> None:
    assert_inner_tcp4(decode(ether(MPLS(label=16, s=0) / MPLS(label=17, s=1) / tcp4())))
    assert_inner_tcp6(decode(ether(MPLS(label=16, s=1) / tcp6())))


def test_mpls_multicast_ethertype() -> None:
    assert_inner_tcp4(decode(ether(MPLS(label=16, s=1) / tcp4(), type=0x8848)))


def test_qinq_plus_mpls() -> None:
    pkt = ether(Dot1AD(vlan=10) / Dot1Q(vlan=20) / MPLS(label=30, s=0) / MPLS(label=31) / tcp4())
    assert_inner_tcp4(decode(pkt))


def test_mpls_ethernet_pseudowire_with_control_word() -> None:
    inner = ether(Dot1Q(vlan=7) / tcp4())
    pkt = ether(MPLS(label=16, s=0) / MPLS(label=17, s=1) / CONTROL_WORD / inner)
    assert_inner_tcp4(decode(pkt))


def test_mpls_unknown_payload_is_skipped() -> None:
    decoder = Decoder()
    assert decode(ether(MPLS(label=16, s=1) / b"\x10\x00\x00\x00rest"), decoder=decoder) is None
    assert decoder.skipped["mpls_other"] == 1


def test_mpls_without_bottom_of_stack_is_truncated_or_too_deep() -> None:
    decoder = Decoder(max_depth=32)
    assert decode(ether(MPLS(label=16, s=0) / MPLS(label=17, s=0)), decoder=decoder) is None
    assert decoder.errors == {"truncated_mpls": 1}
    decoder = Decoder()
    labels = b"".join(bytes(MPLS(label=16 + i, s=0)) for i in range(20))
    assert decode(ether(MPLS(label=1, s=0) / labels), decoder=decoder) is None
    assert decoder.errors == {"too_deep": 1}


def test_pppoe_session_ipv4_and_ipv6() -> None:
    assert_inner_tcp4(decode(ether(PPPoE(sessionid=7) / PPP(proto=0x0021) / tcp4())))
    assert_inner_tcp6(decode(ether(PPPoE(sessionid=7) / PPP(proto=0x0057) / tcp6())))


def test_pppoe_control_protocols_are_skipped() -> None:
    decoder = Decoder()
    assert decode(ether(PPPoE(sessionid=7) / PPP(proto=0xC021) / b"lcp!"), decoder=decoder) is None
    assert decoder.skipped == {"ppp_other": 1}


def test_vlan_stack_beyond_max_depth_is_too_deep() -> None:
    tags = Dot1Q(vlan=1)
    for vlan in range(2, 10):
        tags = tags / Dot1Q(vlan=vlan)
    decoder = Decoder()
    assert decode(ether(tags / tcp4()), decoder=decoder) is None
    assert decoder.errors == {"too_deep": 1}
    assert_inner_tcp4(decode(ether(tags / tcp4()), decoder=Decoder(max_depth=9)))


def test_truncated_vlan_tag() -> None:
    decoder = Decoder()
    assert decode(ether(b"\x00\x64", type=0x8100), decoder=decoder) is None
    assert decoder.errors == {"truncated_vlan": 1}


def test_non_ip_frames_are_skipped_by_name() -> None:
    decoder = Decoder()
    assert decode(ether(ARP(psrc="10.0.0.1", pdst="10.0.0.2")), decoder=decoder) is None
    assert decode(Dot3(**MACS) / LLC() / STP(), decoder=decoder) is None
    assert decode(ether(b"lldp-ish", type=0x88CC), decoder=decoder) is None
    assert decode(ether(b"whatever", type=0x1234), decoder=decoder) is None
    assert decoder.skipped == {"arp": 1, "llc": 1, "lldp": 1, "other_ethertype": 1}
    assert not decoder.errors


def test_vlan_tagged_arp_is_skipped() -> None:
    decoder = Decoder()
    assert decode(ether(Dot1Q(vlan=3) / ARP()), decoder=decoder) is None
    assert decoder.skipped == {"arp": 1}
