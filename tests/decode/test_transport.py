"""TCP and UDP: header lengths, flags, payload bounds, and UDP tunnel ports that are not tunnels."""

from __future__ import annotations

import struct

from scapy.layers.inet import IP, TCP, UDP

from sensor.decode import Decoder
from tests.decode.frames import DST4, PAYLOAD, SRC4, assert_inner_tcp4, decode, ether, tcp4, udp4


def test_tcp_options_are_not_payload() -> None:
    opts = [("MSS", 1460), ("NOP", None), ("WScale", 7), ("SAckOK", b""), ("Timestamp", (1, 2))]
    pkt = ether(IP(src=SRC4, dst=DST4) / TCP(sport=1, dport=2, flags="S", options=opts) / b"x")
    decoded = decode(pkt)
    assert decoded is not None
    assert decoded.payload == b"x"
    assert decoded.tcp_flags == 0x02


def test_tcp_flags_include_ns_bit() -> None:
    raw = bytearray(bytes(ether(tcp4())))
    raw[14 + 20 + 12] |= 0x01  # NS shares the byte with the data offset
    decoded = decode(bytes(raw))
    assert decoded is not None
    assert decoded.tcp_flags == 0x118


def test_bad_and_truncated_tcp_headers() -> None:
    raw = bytearray(bytes(ether(tcp4(b""))))
    decoder = Decoder()
    low = bytearray(raw)
    low[14 + 20 + 12] = 4 << 4  # data offset below the 20-byte minimum
    assert decode(bytes(low), decoder=decoder) is None
    high = bytearray(raw)
    high[14 + 20 + 12] = 15 << 4  # options reach past the IP packet
    assert decode(bytes(high), decoder=decoder) is None
    assert decode(bytes(raw[: 14 + 20 + 10]), decoder=decoder) is None
    assert decoder.errors == {"bad_tcp_header": 1, "truncated_tcp": 2}


def test_udp_length_bounds_the_payload() -> None:
    raw = bytearray(bytes(ether(udp4(b"hello world"))))
    raw[14 + 20 + 4 : 14 + 20 + 6] = struct.pack("!H", 8 + 5)  # UDP says 5 bytes of data
    decoded = decode(bytes(raw))
    assert decoded is not None
    assert (decoded.proto, decoded.payload) == (17, b"hello")


def test_bad_and_truncated_udp() -> None:
    raw = bytearray(bytes(ether(udp4(b"abc"))))
    decoder = Decoder()
    bad = bytearray(raw)
    bad[14 + 20 + 4 : 14 + 20 + 6] = b"\x00\x05"
    assert decode(bytes(bad), decoder=decoder) is None
    assert decode(bytes(raw[: 14 + 20 + 6]), decoder=decoder) is None
    assert decoder.errors == {"bad_udp_length": 1, "truncated_udp": 1}


def test_udp_to_vxlan_port_without_vxlan_header_stays_udp() -> None:
    decoded = decode(ether(udp4(b"\x00not vxlan", dport=4789)))
    assert decoded is not None
    assert (decoded.dport, decoded.payload) == (4789, b"\x00not vxlan")
    short = decode(ether(udp4(b"\x08", dport=4789)))
    assert short is not None
    assert short.payload == b"\x08"


def test_udp_to_geneve_port_with_other_version_stays_udp() -> None:
    decoded = decode(ether(udp4(b"\xc0" + b"\x00" * 9, dport=6081)))
    assert decoded is not None
    assert decoded.dport == 6081


def test_tunnel_ports_can_be_turned_off() -> None:
    from scapy.layers.vxlan import VXLAN

    pkt = ether(IP(src=SRC4, dst=DST4) / UDP(dport=4789) / VXLAN(vni=1) / ether(tcp4()))
    outer = decode(pkt, decoder=Decoder(vxlan_ports=()))
    assert outer is not None
    assert outer.dport == 4789
    assert PAYLOAD in outer.payload
    assert_inner_tcp4(decode(pkt))
