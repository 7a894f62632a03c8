"""The bidirectional flow record and its identity."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sensor.flows.reassembly import Stream
from sensor.model import PROTO_NAMES, TCP, Finding, Packet, Side

if TYPE_CHECKING:  # flows carry the detect stage's per-flow state, opaque to them
    from sensor.detect.inspector import FlowInspector

FlowKey = tuple[int, str, int, str, int]

TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK = 0x01, 0x02, 0x04, 0x10


def flow_key(pkt: Packet) -> FlowKey:
    """The same key for both directions: the lower (ip, port) endpoint first."""
    a, b = (pkt.src, pkt.sport), (pkt.dst, pkt.dport)
    if b < a:
        a, b = b, a
    return (pkt.proto, a[0], a[1], b[0], b[1])


def flow_id(key: FlowKey, start: float) -> int:
    """A stable 51-bit id (JSON-safe) from the key and start time, as EVE's flow_id."""
    text = f"{key}|{start:.6f}".encode()
    return struct.unpack("<Q", hashlib.blake2b(text, digest_size=8).digest())[0] >> 13


@dataclass(slots=True, eq=False)
class Flow:
    """One connection (or UDP conversation), counted per direction."""

    key: FlowKey
    orig: tuple[str, int]
    resp: tuple[str, int]
    start: float
    last: float
    source: str
    inspector: FlowInspector | None = None
    streams: list[Stream | None] = field(default_factory=lambda: [None, None])
    pkts: list[int] = field(default_factory=lambda: [0, 0])
    bytes: list[int] = field(default_factory=lambda: [0, 0])
    payload: list[int] = field(default_factory=lambda: [0, 0])
    fins: int = 0
    state: str = "new"
    id: int = 0
    reported: Finding | None = None  # what the mining event said, once written
    confirmed_at: float | None = None  # first confirmation, while waiting for the login
    node_reported: bool = False

    @property
    def proto_name(self) -> str:
        return PROTO_NAMES.get(self.key[0], str(self.key[0]))

    @property
    def is_tcp(self) -> bool:
        return self.key[0] == TCP

    def side_of(self, pkt: Packet) -> Side:
        return Side.ORIG if pkt.src == self.orig[0] and pkt.sport == self.orig[1] else Side.RESP

    def endpoint(self, side: Side) -> tuple[str, int]:
        return self.orig if side is Side.ORIG else self.resp


def new_flow(pkt: Packet) -> Flow:
    """A flow whose originator is the SYN's sender, else the first packet's sender."""
    src, dst = (pkt.src, pkt.sport), (pkt.dst, pkt.dport)
    flags = pkt.tcp_flags
    if pkt.proto == TCP and flags & TCP_SYN and flags & TCP_ACK:
        src, dst = dst, src  # we missed the SYN: the SYN-ACK's receiver opened it
    key = flow_key(pkt)
    flow = Flow(key, src, dst, pkt.ts, pkt.ts, pkt.source)
    flow.id = flow_id(key, pkt.ts)
    return flow
