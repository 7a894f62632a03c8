"""IP layer: IPv4 header checks and options, fragments, IPv6 extension headers, IP-in-IP."""

from __future__ import annotations

import struct

from scapy.layers.inet import ICMP, IP, TCP, IPOption_NOP, IPOption_RR
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.ipsec import AH

from sensor.decode import Decoder
from tests.decode.frames import (
    DPORT,
    DST4,
    DST6,
    PAYLOAD,
    SEQ,
    SPORT,
    SRC4,
    SRC6,
    assert_inner_tcp4,
    assert_inner_tcp6,
    decode,
    ether,
    tcp4,
    tcp6,
)

TCP_PA = TCP(sport=SPORT, dport=DPORT, seq=SEQ, flags="PA")


def test_ipv4_options_are_skipped_by_ihl() -> None:
    pkt = ether(tcp4(options=[IPOption_NOP(), IPOption_RR(routers=["1.2.3.4"])]))
    assert bytes(pkt)[14] & 0x0F > 5
    assert_inner_tcp4(decode(pkt))


def test_bad_ipv4_headers_are_counted() -> None:
    good = bytearray(bytes(ether(tcp4())))
    cases = {
        "wrong version": (14, 0x65),
        "ihl below 5": (14, 0x44),
        "total length below ihl": (17, 10),
    }
    decoder = Decoder()
    for _name, (pos, value) in cases.items():
        bad = bytearray(good)
        if pos == 17:
            bad[16:18] = struct.pack("!H", value)
        else:
            bad[pos] = value
        assert decode(bytes(bad), decoder=decoder) is None
    assert decoder.errors == {"bad_ip_header": 3}


def test_ipv4_header_longer_than_frame_is_truncated() -> None:
    decoder = Decoder()
    with_options = bytes(ether(IP(src=SRC4, dst=DST4, options=[IPOption_NOP()] * 40)))
    assert decode(bytes(ether(tcp4()))[:30], decoder=decoder) is None
    assert decode(with_options[:50], decoder=decoder) is None  # IHL 15 needs 60 bytes
    assert decoder.errors == {"truncated_ip": 2}


def test_ipv4_total_length_zero_means_to_end_of_frame() -> None:
    # Linux captures of outgoing packets before segmentation offload carry 0.
    raw = bytearray(bytes(ether(tcp4())))
    raw[16:18] = b"\x00\x00"
    assert_inner_tcp4(decode(bytes(raw)))


def test_ipv4_first_fragment_is_decoded_later_ones_counted() -> None:
    first = ether(tcp4(flags="MF", id=7))
    assert_inner_tcp4(decode(first))
    decoder = Decoder()
    later = ether(IP(src=SRC4, dst=DST4, proto=6, frag=185, id=7) / b"rest of the segment")
    assert decode(later, decoder=decoder) is None
    assert decoder.errors == {"ip_fragment": 1}


def test_ipv6_extension_header_chain() -> None:
    chain = (
        IPv6ExtHdrHopByHop()
        / IPv6ExtHdrRouting(addresses=["2001:db8::99"])
        / IPv6ExtHdrDestOpt()
        / IPv6ExtHdrFragment(offset=0, m=1, id=5)
    )
    pkt = ether(IPv6(src=SRC6, dst=DST6) / chain / TCP_PA / PAYLOAD)
    assert_inner_tcp6(decode(pkt))


def test_ipv6_later_fragment_is_counted() -> None:
    decoder = Decoder()
    frag = IPv6(src=SRC6, dst=DST6) / IPv6ExtHdrFragment(offset=100, nh=6) / b"middle bytes"
    assert decode(ether(frag), decoder=decoder) is None
    assert decoder.errors == {"ip_fragment": 1}


def test_authentication_header_in_ipv6_and_ipv4() -> None:
    ah6 = (
        IPv6(src=SRC6, dst=DST6)
        / AH(nh=6, payloadlen=4, spi=1, icv=b"\x01" * 12)
        / TCP_PA
        / PAYLOAD
    )
    assert_inner_tcp6(decode(ether(ah6)))
    ah4 = (
        IP(src=SRC4, dst=DST4) / AH(nh=6, payloadlen=4, spi=1, icv=b"\x01" * 12) / TCP_PA / PAYLOAD
    )
    assert_inner_tcp4(decode(ether(ah4)))


def test_esp_and_no_next_header_stop_the_walk() -> None:
    decoder = Decoder()
    esp = IPv6(src=SRC6, dst=DST6) / IPv6ExtHdrDestOpt(nh=50) / (b"\x00" * 16)
    assert decode(ether(esp), decoder=decoder) is None
    none = IPv6(src=SRC6, dst=DST6, nh=59) / b""
    assert decode(ether(none), decoder=decoder) is None
    assert decoder.skipped == {"esp": 1, "no_next_header": 1}
    assert not decoder.errors


def test_endless_extension_chain_is_bounded() -> None:
    chain = IPv6ExtHdrDestOpt()
    for _ in range(20):
        chain = chain / IPv6ExtHdrDestOpt()
    decoder = Decoder()
    assert decode(ether(IPv6(src=SRC6, dst=DST6) / chain / TCP_PA), decoder=decoder) is None
    assert decoder.errors == {"too_many_ext_headers": 1}


def test_truncated_extension_header() -> None:
    decoder = Decoder()
    raw = bytes(ether(IPv6(src=SRC6, dst=DST6) / IPv6ExtHdrHopByHop() / TCP_PA))
    assert decode(raw[: 14 + 40 + 4], decoder=decoder) is None
    assert decoder.errors == {"truncated_ip_ext": 1}


def test_ipv6_payload_length_bounds_the_payload() -> None:
    raw = bytes(ether(tcp6())) + b"trailer that is not payload"
    assert_inner_tcp6(decode(raw))


def test_icmp_is_skipped() -> None:
    decoder = Decoder()
    assert decode(ether(IP(src=SRC4, dst=DST4) / ICMP()), decoder=decoder) is None
    assert decode(ether(IP(src=SRC4, dst=DST4, proto=250) / b"x"), decoder=decoder) is None
    assert decoder.skipped == {"icmp": 1, "other_ip_proto": 1}


def test_ip_in_ip_and_6in4() -> None:
    outer = IP(src="198.51.100.1", dst="198.51.100.2")
    assert_inner_tcp4(decode(ether(outer / tcp4())))
    assert_inner_tcp6(decode(ether(outer / tcp6())))
    assert_inner_tcp4(decode(ether(IPv6(src="2001:db8::a", dst="2001:db8::b") / tcp4())))
