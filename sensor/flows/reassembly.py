"""Per-direction TCP stream reassembly, bounded in depth and in buffered bytes.

Only the start of a stream matters for recognising a pool protocol, and a
pool flow carries a few hundred bytes a minute, so the stream keeps going
until `depth` bytes have been delivered and then stops (the flow's inspector
may lift the limit for flows it has recognised). Out-of-order segments wait
in a small buffer; retransmissions and overlaps are trimmed to new bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_SEQ_MOD = 1 << 32
_HALF = 1 << 31
MAX_PENDING_SEGMENTS = 64


def seq_diff(a: int, b: int) -> int:
    """a - b in 32-bit sequence space (negative when a is before b)."""
    d = (a - b) % _SEQ_MOD
    return d - _SEQ_MOD if d >= _HALF else d


@dataclass(slots=True)
class Stream:
    """One direction of a TCP connection: delivers contiguous new bytes."""

    depth: int
    next_seq: int | None = None
    delivered: int = 0
    gaps: int = 0
    pending: dict[int, bytes] = field(default_factory=dict)

    @property
    def exhausted(self) -> bool:
        return self.delivered >= self.depth

    def syn(self, seq: int) -> None:
        """A SYN fixes the first data byte at seq + 1."""
        if self.next_seq is None:
            self.next_seq = (seq + 1) % _SEQ_MOD

    def segment(self, seq: int, data: bytes) -> bytes:
        """Take a segment; return the bytes that became contiguous (maybe b"")."""
        if not data or self.exhausted:
            return b""
        if self.next_seq is None:  # mid-session: the first segment seen starts the stream
            self.next_seq = seq
        offset = seq_diff(seq, self.next_seq)
        if offset > 0:
            return self._hold(seq, data)
        out = self._take(data, -offset)
        if out and self.pending:
            out += self._drain()
        return out

    def _take(self, data: bytes, skip: int) -> bytes:
        """Deliver `data` minus the first `skip` bytes already delivered."""
        if skip >= len(data):
            return b""  # pure retransmission
        fresh = data[skip:][: self.depth - self.delivered]
        assert self.next_seq is not None
        self.next_seq = (self.next_seq + len(data) - skip) % _SEQ_MOD
        self.delivered += len(fresh)
        return fresh

    def _hold(self, seq: int, data: bytes) -> bytes:
        """Buffer a segment after a hole; a full buffer gives up on the hole first.

        Giving up delivers the held bytes, and the new segment may then be
        contiguous too, so whatever became deliverable is returned.
        """
        out = self.skip_gap() if len(self.pending) >= MAX_PENDING_SEGMENTS else b""
        known = self.pending.get(seq)
        if known is None or len(known) < len(data):
            self.pending[seq] = data
        return out + self._drain() if out else b""

    def _drain(self) -> bytes:
        out = []
        while self.pending and not self.exhausted:
            assert self.next_seq is not None
            ready = [s for s in self.pending if seq_diff(s, self.next_seq) <= 0]
            if not ready:
                break
            for seq in ready:
                data = self.pending.pop(seq)
                out.append(self._take(data, seq_diff(self.next_seq, seq)))
        return b"".join(out)

    def skip_gap(self) -> bytes:
        """Give up on missing bytes: jump to the earliest buffered segment.

        Used when the buffer is full or the flow ends with a hole; the bytes
        after the hole are still worth reading (a JSON line starts after it).
        """
        if not self.pending or self.next_seq is None:
            return b""
        first = min(self.pending, key=lambda s: seq_diff(s, self.next_seq or 0))
        self.gaps += 1
        self.next_seq = first
        return self._drain()
