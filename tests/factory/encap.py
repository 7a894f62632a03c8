"""Encapsulations a sensor on a mirror port meets, applied to any packet list.

Each wrapper takes packets (bare IP or Ethernet frames) and returns new ones
with the same timestamps. Tag wrappers (vlan, qinq, mpls) return Ethernet
frames; tunnel wrappers (gre, erspan, vxlan) return outer IP packets, which
the writers put into Ethernet like any other. Wrappers compose:
`vlan(gre(pkts, ...), 100)` is GRE carried on VLAN 100.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence

from scapy.contrib.erspan import ERSPAN_II
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE, Dot1AD, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet

from tests.factory.common import ip_layer, mac_for, stamp

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_TEB = 0x6558  # transparent Ethernet bridging
ETH_P_ERSPAN = 0x88BE
VXLAN_PORT = 4789


def l3(pkt: Packet) -> Packet:
    """The IP/IPv6 packet itself: bare, or directly under an Ethernet header."""
    if isinstance(pkt, IP | IPv6):
        return pkt
    if isinstance(pkt, Ether) and isinstance(pkt.payload, IP | IPv6):
        return pkt.payload
    raise ValueError(f"not a bare or Ethernet-framed IP packet: {pkt.summary()}")


def ether_frame(pkt: Packet) -> Packet:
    """`pkt` in an Ethernet frame; MACs are derived from the IP addresses."""
    if isinstance(pkt, Ether):
        return pkt
    ip = l3(pkt)
    frame = Ether(src=mac_for(ip.src), dst=mac_for(ip.dst)) / ip
    return stamp(frame, float(pkt.time))


def ether(pkts: Iterable[Packet]) -> list[Packet]:
    return [ether_frame(p) for p in pkts]


def _retag(pkt: Packet, *tags: Packet) -> Packet:
    """Insert `tags` right after the Ethernet header (outermost first)."""
    frame = ether_frame(pkt)
    new = Ether(src=frame.src, dst=frame.dst)
    for tag in tags:
        new = new / tag
    return stamp(new / frame.payload, float(pkt.time))


def vlan(pkts: Iterable[Packet], vid: int, *, prio: int = 0) -> list[Packet]:
    """802.1Q tag (TPID 0x8100); tagging tagged frames stacks the new tag outside."""
    return [_retag(p, Dot1Q(vlan=vid, prio=prio)) for p in pkts]


def qinq(pkts: Iterable[Packet], outer: int, inner: int) -> list[Packet]:
    """802.1ad service tag (TPID 0x88a8) outside an 802.1Q customer tag."""
    return [_retag(p, Dot1AD(vlan=outer), Dot1Q(vlan=inner)) for p in pkts]


def mpls(pkts: Iterable[Packet], labels: Sequence[int], *, ttl: int = 64) -> list[Packet]:
    """An MPLS label stack (outermost first) between Ethernet and IP."""
    if not labels:
        raise ValueError("mpls needs at least one label")
    out = []
    for p in pkts:
        frame = ether_frame(p)
        ip = l3(frame)
        new = Ether(src=frame.src, dst=frame.dst, type=0x8847)
        for n, label in enumerate(labels):
            new = new / MPLS(label=label, s=int(n == len(labels) - 1), ttl=ttl)
        out.append(stamp(new / ip, float(p.time)))
    return out


def gre(
    pkts: Iterable[Packet],
    src: str,
    dst: str,
    *,
    bridge: bool = False,
    key: int | None = None,
) -> list[Packet]:
    """GRE from `src` to `dst` carrying the inner IP packets, or with `bridge` their
    Ethernet frames (transparent Ethernet bridging, protocol 0x6558)."""
    out = []
    for n, p in enumerate(pkts, start=1):
        if bridge:
            inner, proto = ether_frame(p), ETH_P_TEB
        else:
            inner = l3(p)
            proto = ETH_P_IPV6 if isinstance(inner, IPv6) else ETH_P_IP
        hdr = GRE(proto=proto) if key is None else GRE(proto=proto, key_present=1, key=key)
        out.append(stamp(ip_layer(src, dst, ident=n) / hdr / inner, float(p.time)))
    return out


def erspan(
    pkts: Iterable[Packet], src: str, dst: str, *, session_id: int = 1, vlan_id: int = 0
) -> list[Packet]:
    """ERSPAN type II: GRE (with sequence numbers, protocol 0x88be) + 8-byte ERSPAN
    header + the mirrored Ethernet frame, as Cisco and most switches send it."""
    out = []
    for n, p in enumerate(pkts, start=1):
        hdr = GRE(seqnum_present=1, sequence_number=n, proto=ETH_P_ERSPAN)
        span = ERSPAN_II(ver=1, vlan=vlan_id, session_id=session_id, index=0)
        pkt = ip_layer(src, dst, ident=n) / hdr / span / ether_frame(p)
        out.append(stamp(pkt, float(p.time)))
    return out


def vxlan(pkts: Iterable[Packet], src: str, dst: str, *, vni: int = 4096) -> list[Packet]:
    """VXLAN (UDP 4789) from VTEP `src` to `dst`; the source port is a hash of the inner
    flow, as VTEPs do for ECMP, so it is stable per flow."""
    out = []
    for n, p in enumerate(pkts, start=1):
        frame = ether_frame(p)
        udp = UDP(sport=49152 + _flow_hash(frame) % 16384, dport=VXLAN_PORT)
        pkt = ip_layer(src, dst, ident=n) / udp / VXLAN(vni=vni, flags=0x08) / frame
        out.append(stamp(pkt, float(p.time)))
    return out


def _flow_hash(frame: Packet) -> int:
    ip = frame.getlayer(IP) if frame.haslayer(IP) else frame.getlayer(IPv6)
    if ip is None:
        return 0
    l4 = ip.getlayer(TCP) if ip.haslayer(TCP) else ip.getlayer(UDP)
    ports = (l4.sport, l4.dport) if l4 is not None else (0, 0)
    ends = sorted([(ip.src, ports[0]), (ip.dst, ports[1])])
    return zlib.crc32(repr(ends).encode())
