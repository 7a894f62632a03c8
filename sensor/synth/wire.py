"""Ethernet / 802.1Q / IPv4 / TCP and UDP frames packed with `struct`, no packet objects.

A synthetic province has millions of frames, so each conversation keeps its
two header prefixes (Ethernet, optional VLAN tag) as bytes and packs only what
changes per frame: lengths, IP id and checksum, sequence and acknowledgement
numbers. TCP and UDP checksums are left 0, as in captures taken with checksum
offload; readers (minewatch, Wireshark by default) do not check them.
"""

from __future__ import annotations

import socket
import struct

MSS = 1460
_IP = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")
_UDP = struct.Struct("!HHHH")
_WORDS = struct.Struct("!10H")
_CLIENT_MAC, _SERVER_MAC = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01
TCP_PROTO, UDP_PROTO = 6, 17


def ethernet(src_mac: bytes, dst_mac: bytes, vlan: int | None) -> bytes:
    """The link header of IPv4 frames, with an 802.1Q tag when `vlan` is set."""
    if vlan is None:
        return dst_mac + src_mac + b"\x08\x00"
    return dst_mac + src_mac + struct.pack("!HHH", 0x8100, vlan & 0x0FFF, 0x0800)


def ipv4(src: bytes, dst: bytes, proto: int, ident: int, payload_len: int) -> bytes:
    """An IPv4 header without options, with its checksum."""
    total = 20 + payload_len
    header = _IP.pack(0x45, 0, total, ident & 0xFFFF, 0x4000, 64, proto, 0, src, dst)
    folded = sum(_WORDS.unpack(header))
    folded = (folded & 0xFFFF) + (folded >> 16)
    folded = (folded & 0xFFFF) + (folded >> 16)
    return header[:10] + struct.pack("!H", ~folded & 0xFFFF) + header[12:]


class Direction:
    """One side's view of a conversation: its link header, addresses, ports, next seq."""

    __slots__ = ("dport", "dst", "ident", "link", "seq", "sport", "src")

    def __init__(self, link: bytes, src: str, dst: str, sport: int, dport: int, seq: int):
        self.link = link
        self.src, self.dst = socket.inet_aton(src), socket.inet_aton(dst)
        self.sport, self.dport = sport, dport
        self.seq, self.ident = seq, seq & 0xFFFF

    def ip(self, proto: int, payload_len: int) -> bytes:
        self.ident += 1
        return self.link + ipv4(self.src, self.dst, proto, self.ident, payload_len)


class TcpConversation:
    """A client-server TCP connection whose frames carry consistent seq/ack numbers."""

    __slots__ = ("client", "server")

    def __init__(
        self, client: tuple[str, int], server: tuple[str, int], vlan: int | None, isn: int
    ) -> None:
        c_link = ethernet(_CLIENT_MAC, _SERVER_MAC, vlan)
        s_link = ethernet(_SERVER_MAC, _CLIENT_MAC, vlan)
        self.client = Direction(c_link, client[0], server[0], client[1], server[1], isn)
        self.server = Direction(s_link, server[0], client[0], server[1], client[1], isn ^ 0x5A5A)

    def _segment(self, from_client: bool, flags: int, payload: bytes = b"") -> bytes:
        me, peer = (self.client, self.server) if from_client else (self.server, self.client)
        ack = peer.seq if flags & ACK else 0
        tcp = _TCP.pack(me.sport, me.dport, me.seq, ack, 0x50, flags, 64240, 0, 0)
        me.seq = (me.seq + len(payload) + (1 if flags & (SYN | FIN) else 0)) & 0xFFFFFFFF
        return me.ip(TCP_PROTO, 20 + len(payload)) + tcp + payload

    def handshake(self) -> tuple[bytes, bytes, bytes]:
        """SYN, SYN-ACK, ACK."""
        return (
            self._segment(True, SYN),
            self._segment(False, SYN | ACK),
            self._segment(True, ACK),
        )

    def send(self, from_client: bool, payload: bytes) -> list[bytes]:
        """The payload in segments of at most MSS bytes."""
        return [
            self._segment(from_client, PSH | ACK, payload[i : i + MSS])
            for i in range(0, len(payload), MSS)
        ]

    def ack(self, from_client: bool) -> bytes:
        return self._segment(from_client, ACK)

    def close(self) -> tuple[bytes, bytes, bytes]:
        """Client FIN, server FIN-ACK, client ACK."""
        return (
            self._segment(True, FIN | ACK),
            self._segment(False, FIN | ACK),
            self._segment(True, ACK),
        )


def udp(
    src: tuple[str, int], dst: tuple[str, int], payload: bytes, vlan: int | None, ident: int
) -> bytes:
    """One UDP datagram as a whole frame."""
    link = ethernet(_CLIENT_MAC, _SERVER_MAC, vlan)
    length = 8 + len(payload)
    ip = ipv4(socket.inet_aton(src[0]), socket.inet_aton(dst[0]), UDP_PROTO, ident, length)
    return link + ip + _UDP.pack(src[1], dst[1], length, 0) + payload
