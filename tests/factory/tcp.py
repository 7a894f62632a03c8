"""Scripted TCP conversations turned into packets with consistent seq/ack numbers.

    s = TcpSession(client=("10.1.2.3", 50000), server=("198.51.100.7", 3333))
    s.send("client", b'{"id":1,"method":"mining.subscribe","params":[]}\\n', split=[10])
    s.send("server", b'{"id":1,"result":[],"error":null}\\n')
    pkts = s.packets()

The conversation is first laid out as `Segment` records (plain data, easy to
assert on), then rendered to scapy packets. Segment-level tricks (splits,
reordering, retransmits, overlaps) are options of the `send` that they affect,
so a test reads as the story it tells.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scapy.layers.inet import TCP
from scapy.packet import Packet, Raw

from tests.factory.common import CLIENT, SERVER, T0, Endpoint, check_side, ip_layer, stamp

MASK = 0xFFFFFFFF
TICK = 0.0001  # spacing of segments sent back to back
WINDOW = 64240

Selection = bool | Sequence[int]


@dataclass(slots=True)
class Segment:
    """One TCP segment as the capture point saw it."""

    ts: float
    side: str
    flags: str  # scapy flag letters: S, A, P, F, R
    seq: int
    ack: int
    payload: bytes = b""


@dataclass(slots=True)
class _Send:
    side: str
    data: bytes
    at: float | None
    split: tuple[int, ...]
    reorder: Selection
    retransmit: Selection
    overlap: int


class TcpSession:
    """A TCP conversation between a client and a server, scripted send by send.

    handshake: emit SYN / SYN-ACK / ACK first; without it the capture starts
      mid-session and the first data byte of each side is at `*_isn + 1`.
    close: "fin" (FIN/ACK both ways, then ACK), "rst" (client RST) or None.
    mss: cut every send into segments of at most this many bytes.
    acks: after each send, the receiver emits a pure ACK (as real stacks do).
    """

    def __init__(
        self,
        client: Endpoint = ("10.1.2.3", 50000),
        server: Endpoint = ("198.51.100.7", 3333),
        *,
        start: float = T0,
        handshake: bool = True,
        close: str | None = "fin",
        client_isn: int = 0x1000_0000,
        server_isn: int = 0x5000_0000,
        mss: int | None = None,
        gap: float = 0.01,
        rtt: float = 0.002,
        acks: bool = False,
        ttl: int = 64,
    ) -> None:
        if close not in ("fin", "rst", None):
            raise ValueError(f"close must be 'fin', 'rst' or None, not {close!r}")
        if mss is not None and mss <= 0:
            raise ValueError("mss must be positive")
        self.client, self.server = client, server
        self.start, self.handshake, self.close = start, handshake, close
        self.client_isn, self.server_isn = client_isn & MASK, server_isn & MASK
        self.mss, self.gap, self.rtt, self.acks, self.ttl = mss, gap, rtt, acks, ttl
        self._sends: list[_Send] = []

    def send(
        self,
        side: str,
        data: bytes,
        *,
        at: float | None = None,
        split: Iterable[int] = (),
        reorder: Selection = False,
        retransmit: Selection = False,
        overlap: int = 0,
    ) -> TcpSession:
        """Queue `data` from `side` ("client"/"server"), at time `at` (default: after a gap).

        split: offsets into `data` where a new segment starts.
        reorder: True emits this send's segments last-first; a sequence gives the order.
        retransmit: True duplicates every segment of this send; a sequence picks which
          (indices in stream order, like those of `reorder`).
        overlap: every segment after the first also repeats the previous `overlap` bytes.
        """
        if not data:
            raise ValueError("send needs at least one byte")
        if overlap < 0:
            raise ValueError("overlap must not be negative")
        self._sends.append(
            _Send(check_side(side), bytes(data), at, tuple(split), reorder, retransmit, overlap)
        )
        return self

    def script(self, steps: Iterable[tuple[str, bytes]]) -> TcpSession:
        """Queue several sends, one per (side, bytes) step, each after the default gap."""
        for side, data in steps:
            self.send(side, data)
        return self

    def stream(self, side: str) -> bytes:
        """Everything `side` sends, in order: what a correct reassembly must give back."""
        return b"".join(s.data for s in self._sends if s.side == check_side(side))

    def segments(self) -> list[Segment]:
        return _Builder(self).build()

    def packets(self, *, skip: int = 0) -> list[Packet]:
        """The conversation as scapy packets; `skip` drops the first packets (handshake
        included), as if the capture had started late."""
        idents = {CLIENT: 0, SERVER: 0}
        out = []
        for seg in self.segments():
            idents[seg.side] += 1
            out.append(render(seg, self.client, self.server, ttl=self.ttl, ident=idents[seg.side]))
        return out[skip:]


class _Builder:
    """Lays out the segments of one session: the clock and both sides' next seq."""

    def __init__(self, session: TcpSession) -> None:
        self.s = session
        self.clock = session.start
        self.last = session.start
        self.next = {CLIENT: session.client_isn + 1, SERVER: session.server_isn + 1}
        self.out: list[Segment] = []

    def build(self) -> list[Segment]:
        if self.s.handshake:
            self.handshake()
        for send in self.s._sends:
            self.data(send)
        if self.s.close:
            self.finish(self.s.close)
        return self.out

    def emit(self, side: str, flags: str, seq: int, payload: bytes = b"") -> None:
        other = SERVER if side == CLIENT else CLIENT
        ack = self.next[other] if "A" in flags else 0
        self.out.append(Segment(self.clock, side, flags, seq & MASK, ack & MASK, payload))
        self.last = self.clock
        self.clock += TICK

    def advance(self, at: float | None) -> None:
        if at is None:
            self.clock = self.last + self.s.gap if self.out else self.s.start
        elif self.out and at < self.last:
            raise ValueError(f"send at {at} is before the previous packet ({self.last})")
        else:
            self.clock = at

    def handshake(self) -> None:
        self.emit(CLIENT, "S", self.s.client_isn)
        self.clock = self.last + self.s.rtt
        self.emit(SERVER, "SA", self.s.server_isn)
        self.emit(CLIENT, "A", self.next[CLIENT])

    def data(self, send: _Send) -> None:
        self.advance(send.at)
        base = self.next[send.side]
        pieces = cut(len(send.data), send.split, self.s.mss, send.overlap)
        dups = _pick(len(pieces), send.retransmit)
        for idx in _order(len(pieces), send.reorder):
            start, end = pieces[idx]
            flags = "PA" if end == len(send.data) else "A"
            for _ in range(2 if idx in dups else 1):
                self.emit(send.side, flags, base + start, send.data[start:end])
        self.next[send.side] = base + len(send.data)
        if self.s.acks:
            other = SERVER if send.side == CLIENT else CLIENT
            self.clock = self.last + self.s.rtt / 2
            self.emit(other, "A", self.next[other])

    def finish(self, how: str) -> None:
        self.advance(None)
        if how == "rst":
            self.emit(CLIENT, "RA", self.next[CLIENT])
            return
        self.emit(CLIENT, "FA", self.next[CLIENT])
        self.next[CLIENT] += 1
        self.clock = self.last + self.s.rtt
        self.emit(SERVER, "FA", self.next[SERVER])
        self.next[SERVER] += 1
        self.emit(CLIENT, "A", self.next[CLIENT])


def cut(size: int, split: Iterable[int], mss: int | None, overlap: int) -> list[tuple[int, int]]:
    """(start, end) byte ranges of the segments of one send, in stream order."""
    bounds = sorted({0, size, *(o for o in split if 0 < o < size)})
    pieces = list(itertools.pairwise(bounds))
    if mss:
        pieces = [(a, min(a + mss, end)) for start, end in pieces for a in range(start, end, mss)]
    if overlap:
        widened = pieces[:1]
        for start, end in pieces[1:]:
            widened.append((max(widened[-1][0], start - overlap), end))
        pieces = widened
    return pieces


def _order(count: int, reorder: Selection) -> list[int]:
    if reorder is True:
        return list(range(count))[::-1]
    if reorder is False:
        return list(range(count))
    order = list(reorder)
    if sorted(order) != list(range(count)):
        raise ValueError(f"reorder {order} is not a permutation of {count} segments")
    return order


def _pick(count: int, which: Selection) -> set[int]:
    if which is True:
        return set(range(count))
    if which is False:
        return set()
    return set(which)


def render(seg: Segment, client: Endpoint, server: Endpoint, *, ttl: int, ident: int) -> Packet:
    """One segment as an IPv4/IPv6 + TCP scapy packet, stamped with its time."""
    src, dst = (client, server) if seg.side == CLIENT else (server, client)
    options = [("MSS", 1460)] if "S" in seg.flags else []
    tcp = TCP(
        sport=src[1],
        dport=dst[1],
        seq=seg.seq,
        ack=seg.ack,
        flags=seg.flags,
        window=WINDOW,
        options=options,
    )
    pkt = ip_layer(src[0], dst[0], ttl=ttl, ident=ident) / tcp
    if seg.payload:
        pkt = pkt / Raw(load=seg.payload)
    return stamp(pkt, seg.ts)


def syn_probe(
    client: Endpoint,
    server: Endpoint,
    *,
    at: float = T0,
    reply: str | None = None,
    isn: int = 0x2000_0000,
    ttl: int = 64,
) -> list[Packet]:
    """A connection attempt: a lone SYN; reply="rst" adds the server's RST/ACK,
    reply="synack" a SYN/ACK answered by the client's RST (a half-open scan)."""
    segs = [Segment(at, CLIENT, "S", isn & MASK, 0)]
    if reply == "rst":
        segs.append(Segment(at + TICK, SERVER, "RA", 0, (isn + 1) & MASK))
    elif reply == "synack":
        segs.append(Segment(at + TICK, SERVER, "SA", 0x7000_0000, (isn + 1) & MASK))
        segs.append(Segment(at + 2 * TICK, CLIENT, "R", (isn + 1) & MASK, 0))
    elif reply is not None:
        raise ValueError(f"reply must be None, 'rst' or 'synack', not {reply!r}")
    return [render(s, client, server, ttl=ttl, ident=n + 1) for n, s in enumerate(segs)]
