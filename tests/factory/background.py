"""Ordinary traffic to mix with mining: what a sensor must see and leave alone.

Each helper returns finished packets for one conversation. Some are chosen to
look like mining on purpose: JSON-RPC (eth_blockNumber), JSON lines with
`method`/`params`, XMPP on 5222 and HTTP on 4444 (both common pool ports) and
a SYN scan of pool ports.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Sequence

from scapy.packet import Packet

from tests.factory.common import CLIENT, SERVER, T0, Endpoint, noise
from tests.factory.tcp import TcpSession, syn_probe
from tests.sessions import http_request, http_response, line

POOL_PORTS = (3333, 4444, 5555, 7777, 8888, 9999, 14444, 45700)


def _session(
    client: Endpoint, server: Endpoint, start: float, steps: Iterable[tuple[str, bytes]]
) -> list[Packet]:
    return TcpSession(client, server, start=start, acks=True).script(steps).packets()


def http_get(
    client: Endpoint,
    server: Endpoint,
    host: str,
    path: str = "/",
    *,
    start: float = T0,
    body: bytes = b"<!doctype html><title>Example</title><p>Hello.</p>\n",
    agent: str = "curl/8.5.0",
) -> list[Packet]:
    """A GET and a 200 response with a small HTML body."""
    request = http_request("GET", path, [("Host", host), ("User-Agent", agent), ("Accept", "*/*")])
    response = http_response(200, "OK", [("Content-Type", "text/html; charset=utf-8")], body)
    return _session(client, server, start, [(CLIENT, request), (SERVER, response)])


def jsonrpc_exchange(
    client: Endpoint,
    server: Endpoint = ("10.30.0.5", 8545),
    *,
    start: float = T0,
    method: str = "eth_blockNumber",
    result: object = "0x12a05f2",
) -> list[Packet]:
    """An Ethereum node JSON-RPC call over HTTP (a wallet or dapp backend, not a miner)."""
    call = {"jsonrpc": "2.0", "method": method, "params": [], "id": 1}
    headers = [("Host", f"{server[0]}:{server[1]}"), ("Content-Type", "application/json")]
    request = http_request("POST", "/", headers, json.dumps(call).encode())
    answer = json.dumps({"jsonrpc": "2.0", "id": 1, "result": result}).encode()
    response = http_response(200, "OK", [("Content-Type", "application/json")], answer)
    return _session(client, server, start, [(CLIENT, request), (SERVER, response)])


def broker_exchange(
    client: Endpoint, server: Endpoint = ("10.30.0.9", 5555), *, start: float = T0
) -> list[Packet]:
    """A message broker speaking newline-delimited JSON-RPC: subscribe, a pushed message,
    a publish. Same framing and shape as stratum, none of its vocabulary."""
    steps = [
        (CLIENT, line({"id": 1, "method": "subscribe", "params": ["orders.eu"]})),
        (SERVER, line({"id": 1, "result": True, "error": None})),
        (SERVER, line({"id": None, "method": "message", "params": ["orders.eu", {"sku": "A-17"}]})),
        (CLIENT, line({"id": 2, "method": "publish", "params": ["audit", {"seen": "A-17"}]})),
        (SERVER, line({"id": 2, "result": True, "error": None})),
    ]
    return _session(client, server, start, steps)


def xmpp_session(
    client: Endpoint, server: Endpoint = ("192.0.2.52", 5222), *, start: float = T0
) -> list[Packet]:
    """XMPP client stream opening and STARTTLS on 5222 (also a pool port)."""
    ns = "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'"
    tls = "xmlns='urn:ietf:params:xml:ns:xmpp-tls'"
    features = f"<stream:features><starttls {tls}><required/></starttls></stream:features>"
    steps = [
        (CLIENT, f"<?xml version='1.0'?><stream:stream to='example.org' {ns}>"),
        (SERVER, f"<?xml version='1.0'?><stream:stream from='example.org' id='c2s1' {ns}>"),
        (SERVER, features),
        (CLIENT, f"<starttls {tls}/>"),
        (SERVER, f"<proceed {tls}/>"),
    ]
    return _session(client, server, start, [(side, text.encode()) for side, text in steps])


def syn_scan(
    scanner: str,
    target: str,
    ports: Sequence[int] = POOL_PORTS,
    *,
    start: float = T0,
    open_ports: Sequence[int] = (),
    sport: int = 61000,
) -> list[Packet]:
    """A half-open scan: closed ports answer RST, `open_ports` SYN/ACK (then RST)."""
    out: list[Packet] = []
    for n, port in enumerate(ports):
        reply = "synack" if port in open_ports else "rst"
        out += syn_probe((scanner, sport), (target, port), at=start + n * 0.001, reply=reply)
    return out


# --- TLS: hand-built ClientHello / ServerHello records ------------------------------------


def _u16(n: int) -> bytes:
    return struct.pack(">H", n)


def _vec16(data: bytes) -> bytes:
    return _u16(len(data)) + data


def _ext(kind: int, body: bytes) -> bytes:
    return _u16(kind) + _vec16(body)


def _handshake(kind: int, body: bytes, record_version: int) -> bytes:
    msg = bytes([kind]) + len(body).to_bytes(3, "big") + body
    return b"\x16" + _u16(record_version) + _vec16(msg)


def client_hello(sni: str, *, alpn: Sequence[str] = ("h2", "http/1.1")) -> bytes:
    """A TLS 1.3-capable ClientHello record naming `sni` (random values are deterministic)."""
    name = sni.encode()
    server_name = _vec16(b"\x00" + _vec16(name))
    protocols = b"".join(bytes([len(p)]) + p.encode() for p in alpn)
    extensions = b"".join(
        [
            _ext(0x0000, server_name),
            _ext(0x000A, _vec16(b"\x00\x1d\x00\x17\x00\x18")),  # x25519, secp256r1, secp384r1
            _ext(0x000B, b"\x01\x00"),  # ec_point_formats: uncompressed
            _ext(0x000D, _vec16(b"\x04\x03\x08\x04\x04\x01\x05\x03\x08\x05\x05\x01")),
            _ext(0x0010, _vec16(protocols)) if alpn else b"",
            _ext(0x002B, b"\x04\x03\x04\x03\x03"),  # supported_versions: 1.3, 1.2
            _ext(0x0033, _vec16(b"\x00\x1d" + _vec16(noise(f"x25519/c/{sni}", 32)))),
        ]
    )
    suites = b"\x13\x01\x13\x02\x13\x03\xc0\x2b\xc0\x2f\xc0\x2c\xc0\x30"
    body = (
        b"\x03\x03"
        + noise(f"random/c/{sni}", 32)
        + b"\x20"
        + noise(f"session/{sni}", 32)
        + _vec16(suites)
        + b"\x01\x00"
        + _vec16(extensions)
    )
    return _handshake(0x01, body, 0x0301)


def server_hello(label: str = "server") -> bytes:
    """A TLS 1.3 ServerHello record, then ChangeCipherSpec and one encrypted record."""
    extensions = _ext(0x002B, b"\x03\x04") + _ext(
        0x0033, b"\x00\x1d" + _vec16(noise(f"x25519/s/{label}", 32))
    )
    body = (
        b"\x03\x03"
        + noise(f"random/s/{label}", 32)
        + b"\x20"
        + noise(f"session/{label}", 32)
        + b"\x13\x01\x00"
        + _vec16(extensions)
    )
    return _handshake(0x02, body, 0x0303) + b"\x14\x03\x03\x00\x01\x01" + app_data(label, 1200)


def app_data(label: str, size: int) -> bytes:
    """One TLS application-data record of opaque (deterministic) bytes."""
    return b"\x17\x03\x03" + _vec16(noise(f"appdata/{label}", size))


def tls_session(
    client: Endpoint,
    server: Endpoint,
    sni: str,
    *,
    start: float = T0,
    exchanges: int = 2,
) -> list[Packet]:
    """ClientHello with `sni`, the server's hello flight, then opaque records both ways."""
    steps = [(CLIENT, client_hello(sni)), (SERVER, server_hello(sni))]
    steps.append((CLIENT, b"\x14\x03\x03\x00\x01\x01" + app_data(f"{sni}/fin", 53)))
    for n in range(exchanges):
        steps.append((CLIENT, app_data(f"{sni}/c{n}", 300)))
        steps.append((SERVER, app_data(f"{sni}/s{n}", 900)))
    return _session(client, server, start, steps)
