"""Sans-I/O framers: stream bytes of one direction in, messages out.

Each direction of a flow picks its framer from its first bytes: newline-
delimited JSON for `{`/`[`, HTTP/1.x for a request or status line, and a
single binary chunk for anything else. Framers are bounded: a line or head
that grows past its limit is dropped, never buffered without end.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from sensor.detect.base import BinaryChunk, HttpMessage, JsonMessage, Message
from sensor.model import Side

JSON_STARTS = (b"{", b"[")
MAX_LINE = 64 * 1024
MAX_HEAD = 16 * 1024
MAX_BODY = 256 * 1024
HTTP_METHODS = (
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"OPTIONS ",
    b"DELETE ",
    b"PATCH ",
    b"CONNECT ",
)


def parse_json(data: bytes) -> Any:
    """The JSON value of `data`, or None when it is not JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


_DECODER = json.JSONDecoder()


def _concatenated(line: bytes) -> list[Any]:
    """The JSON objects of a line that holds several back to back (`{...}{...}`)."""
    text, pos = line.decode("utf-8", "replace"), 0
    objects: list[Any] = []
    while pos < len(text) and len(objects) < 64:
        try:
            obj, pos = _DECODER.raw_decode(text, pos)
        except ValueError:
            break
        objects.append(obj)
        while pos < len(text) and text[pos] in " \t\r":
            pos += 1
    return objects


class JsonLineFramer:
    """Newline-delimited JSON; a partial first line (mid-session) is skipped."""

    __slots__ = ("_buf", "_side", "bad_lines")

    def __init__(self, side: Side) -> None:
        self._side, self._buf, self.bad_lines = side, b"", 0

    def feed(self, ts: float, data: bytes) -> list[Message]:
        buf = self._buf + data
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        if len(self._buf) > MAX_LINE:
            self._buf, self.bad_lines = b"", self.bad_lines + 1
        return self._messages(ts, lines)

    def flush(self, ts: float) -> list[Message]:
        rest, self._buf = self._buf, b""
        return self._messages(ts, [rest]) if rest.strip() else []

    def _messages(self, ts: float, lines: list[bytes]) -> list[Message]:
        out: list[Message] = []
        for line in lines:
            line = line.strip()
            if not line:
                continue
            obj = parse_json(line) if line[:1] in (b"{", b"[") else None
            if obj is not None:
                out.append(JsonMessage(self._side, ts, obj))
            elif b"}{" in line:  # objects run together without newlines (some old pools)
                out.extend(JsonMessage(self._side, ts, o) for o in _concatenated(line))
            else:
                self.bad_lines += 1
        return out


class HttpFramer:
    """HTTP/1.x requests or responses with Content-Length or chunked bodies.

    A body longer than MAX_BODY is handed over cut, and the rest of it is
    skipped as it arrives, so the message after it is still read.
    """

    __slots__ = ("_buf", "_side", "_skip", "broken", "tunnel")

    def __init__(self, side: Side) -> None:
        self._side, self._buf, self._skip, self.broken = side, b"", 0, False
        self.tunnel: bytes | None = None  # JSON after the messages (HTTP CONNECT)

    def feed(self, ts: float, data: bytes) -> list[Message]:
        if self.broken:
            return []
        if self._skip:
            drop = min(self._skip, len(data))
            self._skip, data = self._skip - drop, data[drop:]
        self._buf += data
        out: list[Message] = []
        while self._buf:
            if self._buf[:1] in JSON_STARTS:
                # JSON where a message should start: a CONNECT tunnel now
                # carries the pool protocol; the stream reader switches framer.
                self.tunnel, self._buf = self._buf, b""
                break
            msg = self._next(ts, final=False)
            if msg is None:
                break
            out.append(msg)
        return out

    def flush(self, ts: float) -> list[Message]:
        msg = self._next(ts, final=True) if self._buf and not self.broken else None
        self._buf = b""
        return [msg] if msg else []

    def _next(self, ts: float, final: bool) -> HttpMessage | None:
        head_end = self._buf.find(b"\r\n\r\n")
        if head_end < 0:
            if len(self._buf) > MAX_HEAD:
                self.broken = True
            return None
        msg = _parse_head(self._side, ts, self._buf[:head_end])
        if msg is None:
            self.broken = True
            return None
        # A body that never ends (no length, endless chunks) is cut, not buffered on.
        final = final or len(self._buf) > MAX_HEAD + MAX_BODY
        body, used = _body(self._buf, head_end + 4, msg, final)
        if body is None:
            return None
        self._skip = _unread(msg, head_end + 4, used)
        self._buf = self._buf[used:]
        msg.body = body
        if body[:1] in (b"{", b"["):
            msg.json = parse_json(body)
        return msg


def _parse_head(side: Side, ts: float, head: bytes) -> HttpMessage | None:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2:
        return None
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if parts[0].startswith("HTTP/"):
        status = int(parts[1]) if parts[1].isdigit() else None
        return HttpMessage(side, ts, False, None, None, status, headers)
    return HttpMessage(side, ts, True, parts[0], parts[1], None, headers)


def _body(buf: bytes, start: int, msg: HttpMessage, final: bool) -> tuple[bytes | None, int]:
    """(body, bytes consumed) once the body is complete; (None, 0) to wait for more."""
    length = msg.headers.get("content-length", "")
    if length.isdigit():
        end = start + int(length)
        if len(buf) >= end or final:
            return buf[start : min(end, start + MAX_BODY)], min(end, len(buf))
        if len(buf) - start >= MAX_BODY:  # enough of a long body: `_unread` skips the rest
            return buf[start : start + MAX_BODY], len(buf)
        return None, 0
    if "chunked" in msg.headers.get("transfer-encoding", "").lower():
        return _chunked(buf, start, final)
    if msg.is_request or msg.status in (100, 101, 204, 304):
        return b"", start
    # A response without a length runs to the end of the connection.
    return (buf[start : start + MAX_BODY], len(buf)) if final else (None, 0)


def _unread(msg: HttpMessage, start: int, used: int) -> int:
    """Bytes of a Content-Length body still to come after the `used` bytes."""
    length = msg.headers.get("content-length", "")
    return max(0, start + int(length) - used) if length.isdigit() else 0


def _chunked(buf: bytes, pos: int, final: bool) -> tuple[bytes | None, int]:
    parts: list[bytes] = []
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            break
        size_text = buf[pos:line_end].split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return b"".join(parts), len(buf)
        if size == 0:  # the last chunk: the body ends at the empty line after any trailers
            end = buf.find(b"\r\n\r\n", line_end)
            if end < 0:
                break
            return b"".join(parts), end + 4
        if line_end + 2 + size > len(buf):
            break
        parts.append(buf[line_end + 2 : line_end + 2 + size])
        pos = line_end + 4 + size
    return (b"".join(parts), len(buf)) if final else (None, 0)


class BinaryFramer:
    """Hands over the first bytes of a binary stream once, then ignores the rest.

    The first segment is enough to recognise a Stratum V2 setup or a node
    handshake, and handing it over at once lets an uninteresting binary flow
    (SSH, ordinary TLS) stop costing anything.
    """

    __slots__ = ("_buf", "_done", "_side", "_tls")

    def __init__(self, side: Side) -> None:
        self._side, self._done, self._buf, self._tls = side, False, b"", False

    @property
    def done(self) -> bool:
        return self._done

    @property
    def tls(self) -> bool:
        """The stream began with a TLS handshake record."""
        return self._tls

    def feed(self, ts: float, data: bytes) -> list[Message]:
        if self._done or not data:
            return []
        self._buf += data
        if len(self._buf) < _wanted(self._buf):
            return []  # a TLS hello split over segments: wait for the whole record
        return self.flush(ts)

    def flush(self, ts: float) -> list[Message]:
        if self._done or not self._buf:
            return []
        self._done = True
        chunk, self._buf = self._buf[:TLS_RECORD_MAX], b""
        self._tls = chunk[:2] == b"\x16\x03"
        return [BinaryChunk(self._side, ts, chunk)]


TLS_RECORD_MAX = 16 * 1024 + 5


def _wanted(buf: bytes) -> int:
    """How many bytes make the first message: a whole TLS record, else what we have."""
    if len(buf) >= 5 and buf[0] == 0x16 and buf[1] == 0x03:
        return min(5 + int.from_bytes(buf[3:5], "big"), TLS_RECORD_MAX)
    return 0


SV2_HEADER = 6
SV2_MAX_FRAME = 1 << 16
SV2_READ_LIMIT = 64 * 1024


def sv2_frame_length(data: bytes) -> int | None:
    """Total length of the Stratum V2 frame `data` starts with, if it plausibly is one.

    Header: extension type (u16 LE, channel bit 15), message type (u8),
    payload length (u24 LE); the mining protocol's extension is 0.
    """
    if len(data) < SV2_HEADER or data[0] != 0 or data[1] & 0x7F:
        return None
    length = int.from_bytes(data[3:6], "little")
    return SV2_HEADER + length if length < SV2_MAX_FRAME else None


class Sv2Framer:
    """Stratum V2 frames, handed over whole (however the segments cut them)."""

    __slots__ = ("_buf", "_read", "_side", "broken")

    def __init__(self, side: Side) -> None:
        self._side, self._buf, self._read, self.broken = side, b"", 0, False

    def feed(self, ts: float, data: bytes) -> list[Message]:
        if self.broken or self._read >= SV2_READ_LIMIT:
            return []
        self._buf += data
        end = 0
        while (size := sv2_frame_length(self._buf[end:])) is not None:
            if end + size > len(self._buf):
                break
            end += size
        if end == 0:
            self.broken = len(self._buf) >= SV2_HEADER and sv2_frame_length(self._buf) is None
            return []
        chunk, self._buf = self._buf[:end], self._buf[end:]
        self._read += end
        return [BinaryChunk(self._side, ts, chunk)]

    def flush(self, ts: float) -> list[Message]:
        rest, self._buf = self._buf, b""
        return [BinaryChunk(self._side, ts, rest)] if rest and not self.broken else []


Framer = JsonLineFramer | HttpFramer | BinaryFramer | Sv2Framer
