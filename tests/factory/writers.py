"""pcap and pcapng writers with fixed headers, so output depends only on the packets.

scapy builds the frames; the file containers are written here with struct
because they are tiny and because scapy's own writers may change their
headers between versions, and committed samples must regenerate byte for byte.
Files are little-endian with microsecond timestamps.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import CookedLinux, CookedLinuxV2
from scapy.packet import Packet

from tests.factory.common import mac_for
from tests.factory.encap import ETH_P_IP, ETH_P_IPV6, ether_frame, l3

LINKTYPE_NULL = 0  # BSD loopback: 4-byte address family in the writer's byte order
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # bare IPv4/IPv6
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276
LINKTYPES = (
    LINKTYPE_NULL,
    LINKTYPE_ETHERNET,
    LINKTYPE_RAW,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
)
SNAPLEN = 262144

AF_INET = 2
AF_INET6_BSD = 24  # NetBSD/OpenBSD value; libpcap readers accept 24, 28 and 30

PCAP_MAGIC = 0xA1B2C3D4
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_IDB = 0x00000001
PCAPNG_EPB = 0x00000006
PCAPNG_BYTE_ORDER = 0x1A2B3C4D
OPT_COMMENT = 1


def frame_bytes(pkt: Packet, linktype: int = LINKTYPE_ETHERNET) -> bytes:
    """The bytes of `pkt` as a frame of `linktype` (a link header is added as needed).
    Non-Ethernet link types carry only bare IP, so tagged or tunnelled frames need 1."""
    if linktype == LINKTYPE_ETHERNET:
        return bytes(ether_frame(pkt))
    ip = l3(pkt)
    v6 = isinstance(ip, IPv6)
    if linktype == LINKTYPE_RAW:
        return bytes(ip)
    if linktype == LINKTYPE_NULL:
        return struct.pack("<I", AF_INET6_BSD if v6 else AF_INET) + bytes(ip)
    proto = ETH_P_IPV6 if v6 else ETH_P_IP
    addr = _mac_bytes(ip.src)
    if linktype == LINKTYPE_LINUX_SLL:
        hdr = CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, src=addr, proto=proto)
        return bytes(hdr / ip)
    if linktype == LINKTYPE_LINUX_SLL2:
        hdr = CookedLinuxV2(proto=proto, ifindex=1, lladdrtype=1, pkttype=0, lladdrlen=6, src=addr)
        return bytes(hdr / ip)
    raise ValueError(f"unsupported link type {linktype}; use one of {LINKTYPES}")


def write_pcap(
    path: str | Path, packets: Iterable[Packet], linktype: int = LINKTYPE_ETHERNET
) -> int:
    """Write a classic pcap file; returns the number of packets written."""
    parts = [struct.pack("<IHHiIII", PCAP_MAGIC, 2, 4, 0, 0, SNAPLEN, linktype)]
    count = 0
    for pkt in packets:
        data = frame_bytes(pkt, linktype)
        sec, usec = divmod(_micros(pkt), 1_000_000)
        parts.append(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)
        count += 1
    Path(path).write_bytes(b"".join(parts))
    return count


def write_pcapng(
    path: str | Path,
    packets: Iterable[Packet],
    linktype: int = LINKTYPE_ETHERNET,
    *,
    comment: str | None = None,
) -> int:
    """Write a pcapng file: one section, one interface, enhanced packet blocks."""
    options = _option(OPT_COMMENT, comment.encode()) + _END_OF_OPTIONS if comment else b""
    shb = struct.pack("<IHHq", PCAPNG_BYTE_ORDER, 1, 0, -1) + options
    parts = [_block(PCAPNG_SHB, shb), _block(PCAPNG_IDB, struct.pack("<HHI", linktype, 0, SNAPLEN))]
    count = 0
    for pkt in packets:
        data = frame_bytes(pkt, linktype)
        micros = _micros(pkt)
        head = struct.pack("<IIIII", 0, micros >> 32, micros & 0xFFFFFFFF, len(data), len(data))
        parts.append(_block(PCAPNG_EPB, head + _pad(data)))
        count += 1
    Path(path).write_bytes(b"".join(parts))
    return count


_END_OF_OPTIONS = b"\x00\x00\x00\x00"


def _block(kind: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", kind, total) + body + struct.pack("<I", total)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _pad(value)


def _pad(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)


def _micros(pkt: Packet) -> int:
    return round(float(pkt.time) * 1_000_000)


def _mac_bytes(addr: str) -> bytes:
    return bytes.fromhex(mac_for(addr).replace(":", "")) + b"\x00\x00"
