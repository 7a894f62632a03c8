"""A small factory of frames for the decode tests, built with scapy.

Layers are crafted here once so each test reads as the encapsulation it
checks: `ether(VLAN(1) / inner())`.
"""

from __future__ import annotations

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet as ScapyPacket

from sensor.decode import LINKTYPE_ETHERNET, Decoder
from sensor.model import Frame, Packet

PAYLOAD = b'{"id":1,"method":"mining.subscribe","params":["cgminer/4.10"]}\n'
SRC4, DST4 = "10.0.0.1", "192.0.2.7"
SRC6, DST6 = "2001:db8::1", "2001:db8:ff::7"
SPORT, DPORT = 50000, 3333
SEQ = 123456789
TS = 1700000000.25
SOURCE = "test.pcap"

# Fixed MACs: scapy would otherwise look up routes and ARP for them.
MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}


def tcp4(payload: bytes = PAYLOAD, **ip: object) -> ScapyPacket:
    """IPv4/TCP from the miner to the pool, PSH+ACK."""
    fields = {"src": SRC4, "dst": DST4, **ip}
    return IP(**fields) / TCP(sport=SPORT, dport=DPORT, seq=SEQ, flags="PA") / payload


def tcp6(payload: bytes = PAYLOAD) -> ScapyPacket:
    return IPv6(src=SRC6, dst=DST6) / TCP(sport=SPORT, dport=DPORT, seq=SEQ, flags="PA") / payload


def udp4(payload: bytes = PAYLOAD, dport: int = 53) -> ScapyPacket:
    return IP(src=SRC4, dst=DST4) / UDP(sport=SPORT, dport=dport) / payload


def ether(inner: ScapyPacket, **fields: object) -> ScapyPacket:
    return Ether(**MACS, **fields) / inner


def frame(data: bytes | ScapyPacket, linktype: int = LINKTYPE_ETHERNET) -> Frame:
    raw = bytes(data)
    return Frame(TS, linktype, raw, len(raw) + 4, SOURCE)  # wire_len differs on purpose


def decode(
    data: bytes | ScapyPacket, linktype: int = LINKTYPE_ETHERNET, decoder: Decoder | None = None
) -> Packet | None:
    return (decoder or Decoder()).decode(frame(data, linktype))


def assert_inner_tcp4(pkt: Packet | None, payload: bytes = PAYLOAD) -> None:
    """The packet is the miner's IPv4 TCP segment built by `tcp4`."""
    assert pkt is not None
    assert (pkt.src, pkt.dst, pkt.sport, pkt.dport) == (SRC4, DST4, SPORT, DPORT)
    assert pkt.proto == 6
    assert pkt.payload == payload
    assert pkt.seq == SEQ


def assert_inner_tcp6(pkt: Packet | None, payload: bytes = PAYLOAD) -> None:
    assert pkt is not None
    assert (pkt.src, pkt.dst, pkt.sport, pkt.dport, pkt.proto) == (SRC6, DST6, SPORT, DPORT, 6)
    assert pkt.payload == payload
