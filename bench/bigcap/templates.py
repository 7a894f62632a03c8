"""Ordinary background conversations, built once with the project's scapy traffic factory.

Each template is one conversation between placeholder endpoints, kept as raw
Ethernet/IPv4 frames cut around the 12 bytes that name the flow (addresses and
ports, adjacent when the IPv4 header has no options). A flow is then made by
gluing a new address block between each head and tail: no scapy, no parsing.
The mix (HTTP, TLS handshakes and bulk, DNS, SSH-like binary, QUIC-like UDP,
idle TLS without handshake or close, plain ACKs) is tuned for a mean frame of
about 330 bytes, like the reference capture in docs/performance.md.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from scapy.packet import Packet

from tests.factory import (
    CLIENT,
    SERVER,
    TcpSession,
    UdpExchange,
    app_data,
    client_hello,
    dns_lookup,
    frame_bytes,
    noise,
    server_hello,
)
from tests.sessions.base import http_request, http_response

CLIENT_IP, SERVER_IP, CLIENT_PORT = "10.255.0.1", "10.255.0.2", 40000
FLOW_FIELDS = slice(26, 38)  # Ethernet 14 + IPv4 12: src, dst, sport, dport
VARIANTS = 8
_BURST = 2 * 1448  # a server send of two full segments, then the client's ACK

Steps = list[tuple[str, bytes]]


@dataclass(slots=True, frozen=True)
class Template:
    """One conversation: per packet (microseconds from start, client-to-server?, head, tail)."""

    kind: str
    server_port: int
    packets: tuple[tuple[int, bool, bytes, bytes], ...]

    @property
    def frame_bytes(self) -> int:
        return sum(len(head) + 12 + len(tail) for _, _, head, tail in self.packets)


def _bursts(data: bytes) -> Steps:
    return [(SERVER, data[i : i + _BURST]) for i in range(0, len(data), _BURST)]


def _tcp(
    port: int, steps: Steps, gap: float, handshake: bool = True, close: str | None = "fin"
) -> list[Packet]:
    client, server = (CLIENT_IP, CLIENT_PORT), (SERVER_IP, port)
    session = TcpSession(
        client, server, mss=1448, acks=True, gap=gap, handshake=handshake, close=close
    )
    return session.script(steps).packets()


def web(v: int) -> list[Packet]:
    """An HTTP GET and a response of 0.7 to 30 KB."""
    size = (700, 2_500, 9_000, 30_000)[v % 4]
    host = f"www{v}.example.com"
    request = http_request("GET", f"/item/{v}", [("Host", host), ("User-Agent", "Mozilla/5.0")])
    body = noise(f"web/{v}", size).hex()[:size].encode()
    response = http_response(200, "OK", [("Content-Type", "text/html")], body)
    return _tcp(80, [(CLIENT, request), *_bursts(response)], gap=0.002)


def tls(v: int) -> list[Packet]:
    """A TLS handshake naming an ordinary host, then a 1 to 60 KB download."""
    sni = f"cdn{v}.example.net"
    size = (1_000, 4_000, 16_000, 60_000)[v % 4]
    steps: Steps = [(CLIENT, client_hello(sni)), (SERVER, server_hello(sni))]
    steps.append((CLIENT, b"\x14\x03\x03\x00\x01\x01" + app_data(f"{sni}/fin", 53)))
    steps.append((CLIENT, app_data(f"{sni}/get", 420)))
    steps += _bursts(app_data(f"{sni}/body", size))
    return _tcp(443, steps, gap=0.003)


def idle(v: int) -> list[Packet]:
    """A long-lived TLS connection seen mid-session: keep-alives, no handshake, no close."""
    steps: Steps = []
    for n in range(3 + v % 3):
        steps += [
            (CLIENT, app_data(f"idle/{v}/c{n}", 40)),
            (SERVER, app_data(f"idle/{v}/s{n}", 60)),
        ]
    return _tcp(443, steps, gap=5.0, handshake=False, close=None)


def ssh(v: int) -> list[Packet]:
    """An SSH-like session: banners, a key exchange of opaque blocks, interactive typing."""
    steps: Steps = [(CLIENT, b"SSH-2.0-OpenSSH_9.2p1\r\n"), (SERVER, b"SSH-2.0-OpenSSH_8.9\r\n")]
    steps += [(CLIENT, noise(f"ssh/{v}/kc", 1_080)), (SERVER, noise(f"ssh/{v}/ks", 1_200))]
    for n in range(10 + 2 * v):
        steps += [(CLIENT, noise(f"ssh/{v}/c{n}", 36)), (SERVER, noise(f"ssh/{v}/s{n}", 68))]
    return _tcp(22, steps, gap=0.15)


def dns(v: int) -> list[Packet]:
    """A resolver lookup of an ordinary name (A, and AAAA for half the variants)."""
    aaaa = [f"2001:db8::{v + 1:x}"] if v % 2 else []
    name = f"host{v}.example.org"
    return dns_lookup(
        (CLIENT_IP, CLIENT_PORT),
        (SERVER_IP, 53),
        name,
        a=[f"192.0.2.{v + 1}"],
        aaaa=aaaa,
        qid=0x4000 + v,
    )


def quic(v: int) -> list[Packet]:
    """QUIC-like UDP on 443: full-size datagrams down, small acknowledgements up."""
    ex = UdpExchange((CLIENT_IP, CLIENT_PORT), (SERVER_IP, 443), gap=0.004)
    ex.send(CLIENT, noise(f"quic/{v}/init", 1_200))
    for n in range(6 + 3 * v):
        ex.send(SERVER, noise(f"quic/{v}/d{n}", 1_200 if n % 3 else 700))
        if n % 3 == 2:
            ex.send(CLIENT, noise(f"quic/{v}/a{n}", 45))
    return ex.packets()


KINDS: dict[str, Callable[[int], list[Packet]]] = {
    "web": web,
    "tls": tls,
    "idle": idle,
    "ssh": ssh,
    "dns": dns,
    "quic": quic,
}
# The order flows are drawn in, cycled: DNS and small flows dominate by count. With
# the real captures (mean frame 160 bytes) at a tenth of the bytes, the mean frame
# of the whole file comes out at 320-330 bytes.
SCHEDULE = (
    *("dns", "tls", "dns", "web", "idle", "dns", "ssh", "dns"),
    *("tls", "dns", "idle", "web", "dns", "quic", "dns", "idle"),
)


def encode(kind: str, server_port: int, packets: list[Packet]) -> Template:
    """Frames of a conversation, cut around their flow fields."""
    start = float(packets[0].time)
    client = socket.inet_aton(CLIENT_IP)
    out = []
    for pkt in packets:
        frame = frame_bytes(pkt)
        if frame[14] != 0x45:
            raise ValueError(f"{kind}: expected IPv4 without options")
        rel = round((float(pkt.time) - start) * 1e6)
        out.append((rel, frame[26:30] == client, frame[:26], frame[38:]))
    return Template(kind, server_port, tuple(out))


def build() -> dict[str, list[Template]]:
    """Every kind in VARIANTS variants (a second or two of scapy, once per run)."""
    built: dict[str, list[Template]] = {}
    for kind, make in KINDS.items():
        variants = []
        for v in range(VARIANTS):
            packets = make(v)
            port = struct.unpack_from(">H", frame_bytes(packets[0]), 36)[0]
            variants.append(encode(kind, port, packets))
        built[kind] = variants
    return built
