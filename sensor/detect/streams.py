"""Which framer reads a direction: chosen from its first bytes, re-chosen after a preamble.

A capture may start mid-line or mid-body, a miner may reach its pool through
a SOCKS or HTTP CONNECT proxy, and Stratum V2 is binary: the stream reader
looks at what a direction sends and hands it to the framer that can read it.
"""

from __future__ import annotations

from sensor.detect.base import Message
from sensor.detect.framing import (
    HTTP_METHODS,
    JSON_STARTS,
    BinaryFramer,
    Framer,
    HttpFramer,
    JsonLineFramer,
    Sv2Framer,
    sv2_frame_length,
)
from sensor.model import Side

SNIFF_LIMIT = 4096  # text without a JSON line start is looked at this far
SWITCH_WINDOW = 1024  # a binary preamble (SOCKS) this short may give way to JSON


def _is_http(data: bytes) -> bool:
    return data.startswith(b"HTTP/1.") or data.startswith(HTTP_METHODS)


def _is_text(data: bytes) -> bool:
    return all(32 <= b < 127 or b in (9, 10, 13) for b in data[:256])


def framer_for(side: Side, first: bytes) -> Framer | None:
    """The framer for a direction that starts with `first`; None: undecided yet.

    A capture that starts mid-line begins with the tail of a JSON line: text
    up to a newline, then a line starting with `{`. The JSON framer skips
    the partial line.
    """
    if first[:1] in JSON_STARTS:
        return JsonLineFramer(side)
    if _is_http(first):
        return HttpFramer(side)
    if _is_text(first):
        # A start mid-line or mid-body: whichever protocol starts first after it.
        json_at, http_at = _json_start(first), _http_start(first)
        if json_at >= 0 and (http_at < 0 or json_at < http_at):
            return JsonLineFramer(side)  # it skips the partial first line itself
        if http_at >= 0:
            return HttpFramer(side)  # the reader drops the body's tail before it
        return None if len(first) < SNIFF_LIMIT else BinaryFramer(side)
    if sv2_frame_length(first) is not None:
        return Sv2Framer(side)
    return BinaryFramer(side)


def _json_start(data: bytes) -> int:
    """Where a JSON line starts after a newline, or -1."""
    found = [at for at in (data.find(b"\n{"), data.find(b"\n[")) if at >= 0]
    return min(found) + 1 if found else -1


def _http_start(data: bytes) -> int:
    """Where an HTTP message starts after a line or a JSON body ends, or -1."""
    marks = (b"\nPOST ", b"\nGET ", b"\nHTTP/1.", b"}POST ", b"}HTTP/1.", b"}GET ")
    found = [at for at in (data.find(mark) for mark in marks) if at >= 0]
    return min(found) + 1 if found else -1


class StreamReader:
    """Frames one direction, choosing (and, after a preamble, re-choosing) its framer.

    Undecided text is held until it shows a JSON line start. A short binary
    preamble (a SOCKS handshake) or an HTTP CONNECT exchange may be followed
    by the pool protocol itself: the reader then switches to JSON lines.
    """

    __slots__ = ("_held", "_seen", "_side", "framer")

    def __init__(self, side: Side) -> None:
        self._side, self._held, self._seen = side, b"", 0
        self.framer: Framer | None = None

    @property
    def settled(self) -> bool:
        """No later bytes can change how this direction is framed."""
        framer = self.framer
        if framer is None:
            return False
        if isinstance(framer, BinaryFramer):
            # TLS never gives way to clear text; other preambles are short.
            return framer.tls or self._seen >= SWITCH_WINDOW
        return True

    def feed(self, ts: float, data: bytes) -> list[Message]:
        self._seen += len(data)
        framer = self.framer
        if framer is None:
            data, self._held = self._held + data, b""
            framer = self.framer = framer_for(self._side, data)
            if framer is None:
                self._held = data
                return []
            if isinstance(framer, HttpFramer) and not _is_http(data):
                data = data[_http_start(data) :]  # drop the tail of a body
        elif self._preamble_over(framer, data):
            framer = self.framer = JsonLineFramer(self._side)
        out = framer.feed(ts, data)
        if isinstance(framer, HttpFramer) and framer.tunnel is not None:
            rest, framer.tunnel = framer.tunnel, None
            self.framer = JsonLineFramer(self._side)
            out += self.framer.feed(ts, rest)
        return out

    def _preamble_over(self, framer: Framer, data: bytes) -> bool:
        """A short binary preamble is followed by a JSON line."""
        return (
            isinstance(framer, BinaryFramer)
            and framer.done
            and self._seen - len(data) < SWITCH_WINDOW
            and data[:1] in JSON_STARTS
        )

    def flush(self, ts: float) -> list[Message]:
        if self.framer is None and self._held:
            self.framer = BinaryFramer(self._side)
            return self.framer.feed(ts, self._held)
        return self.framer.flush(ts) if self.framer is not None else []
