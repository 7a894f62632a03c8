"""A small DNS response reader: the asked name and its A/AAAA addresses.

dpkt builds an object per record (about 50 µs a response in CPython); the
sensor only needs the addresses a name resolved to, so this walks the
message with offsets and returns nothing for anything it cannot read.
"""

from __future__ import annotations

import socket
import struct

_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
TYPE_A, TYPE_AAAA = 1, 28


def _name(msg: bytes, pos: int) -> tuple[str, int] | None:
    """The name at `pos` (following compression pointers) and the offset after it."""
    labels: list[str] = []
    end = None
    for _ in range(128):
        if pos >= len(msg):
            return None
        length = msg[pos]
        if length == 0:
            return ".".join(labels), (end if end is not None else pos + 1)
        if length & 0xC0 == 0xC0:
            if pos + 1 >= len(msg):
                return None
            if end is None:
                end = pos + 2
            pos = ((length & 0x3F) << 8) | msg[pos + 1]
            continue  # the loop bound stops pointer cycles
        if length & 0xC0 or pos + 1 + length > len(msg):
            return None
        labels.append(msg[pos + 1 : pos + 1 + length].decode("ascii", "replace"))
        pos += 1 + length
    return None


def answers(msg: bytes) -> tuple[str | None, list[tuple[str, str]]] | None:
    """(asked name, [(address, owner name)]) of a DNS response; None for a query.

    Raises ValueError for a message whose header or question cannot be read;
    answers cut short yield those read before the cut.
    """
    if len(msg) < _HEADER.size:
        raise ValueError("DNS message shorter than its header")
    _, flags, qdcount, ancount, _, _ = _HEADER.unpack_from(msg)
    if not flags & 0x8000:
        return None
    pos, asked = _HEADER.size, None
    for index in range(qdcount):
        found = _name(msg, pos)
        if found is None:
            raise ValueError("unreadable DNS question")
        if index == 0:
            asked = found[0]
        pos = found[1] + 4
    out: list[tuple[str, str]] = []
    for _ in range(ancount):
        found = _name(msg, pos)
        if found is None or found[1] + _RR.size > len(msg):
            break
        owner, pos = found
        rtype, _, _, rdlength = _RR.unpack_from(msg, pos)
        pos += _RR.size
        rdata = msg[pos : pos + rdlength]
        pos += rdlength
        if rtype == TYPE_A and len(rdata) == 4:
            out.append((socket.inet_ntop(socket.AF_INET, rdata), owner))
        elif rtype == TYPE_AAAA and len(rdata) == 16:
            out.append((socket.inet_ntop(socket.AF_INET6, rdata), owner))
    return asked, out
