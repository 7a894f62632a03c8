"""Pure-Python pcap and pcapng readers (the fallback when libpcap is absent).

Headers are declared as `struct.Struct`s and records are sliced from one
buffer, so reading costs a few hundred nanoseconds a record and no objects
beyond the `Frame`. A damaged file raises `CaptureError` naming the file and
the offset after yielding every frame before the damage.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from pathlib import Path

from sensor.capture.errors import CaptureError
from sensor.model import Frame

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_BYTE_ORDER_MAGIC = 0x1A2B3C4D
Buffer = bytes | mmap.mmap


def sniff_format(head: bytes) -> str | None:
    """'pcap', 'pcapng' or None for the first bytes of a file."""
    if head[:4] in PCAP_MAGICS:
        return "pcap"
    if head[:4] == PCAPNG_MAGIC:
        return "pcapng"
    return None


def read_frames(path: Path) -> Iterator[Frame]:
    """Every frame of a pcap or pcapng file, in file order (memory-mapped, any size)."""
    try:
        with path.open("rb") as fh:
            if path.stat().st_size == 0:
                raise CaptureError(path.name, "empty file")
            data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise CaptureError(path.name, exc.strerror or str(exc)) from exc
    with data:
        kind = sniff_format(data[:4])
        if kind == "pcap":
            yield from _read_pcap(data, path.name)
        elif kind == "pcapng":
            yield from _read_pcapng(data, path.name)
        else:
            raise CaptureError(path.name, "not a pcap or pcapng file")


def _read_pcap(data: Buffer, name: str) -> Iterator[Frame]:
    if len(data) < 24:
        raise CaptureError(name, "truncated pcap file header")
    order, unit = PCAP_MAGICS[data[:4]]
    linktype = struct.unpack_from(order + "I", data, 20)[0] & 0x0FFFFFFF
    record = struct.Struct(order + "IIII")
    unpack, size, end, off = record.unpack_from, record.size, len(data), 24
    release = _RELEASE_EVERY
    while off < end:
        if off + size > end:
            raise CaptureError(name, f"truncated record header at offset {off}")
        sec, frac, caplen, wirelen = unpack(data, off)
        off += size
        if off + caplen > end:
            raise CaptureError(name, f"truncated packet at offset {off - size}")
        yield Frame(sec + frac * unit, linktype, data[off : off + caplen], wirelen, name)
        off += caplen
        if off >= release:
            release = _release(data, off)


_RELEASE_EVERY = 64 << 20


def _release(data: Buffer, off: int) -> int:
    """Let the kernel drop the mapped pages already read; the next offset to do it at.

    A mapped file's touched pages count in the process's resident size: without
    this, reading a 1 GB capture shows 1 GB resident although nothing is kept.
    """
    if isinstance(data, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        upto = off - off % mmap.PAGESIZE
        if upto > 0:
            data.madvise(mmap.MADV_DONTNEED, 0, upto)
    return off + _RELEASE_EVERY


class _PcapngState:
    """Per-section state: byte order and each interface's link type and clock."""

    def __init__(self) -> None:
        self.order = "<"
        self.interfaces: list[tuple[int, float, int]] = []  # (linktype, s per tick, snaplen)


def _read_pcapng(data: Buffer, name: str) -> Iterator[Frame]:
    state, off, end = _PcapngState(), 0, len(data)
    release = _RELEASE_EVERY
    while off < end:
        if off + 12 > end:
            raise CaptureError(name, f"truncated block header at offset {off}")
        if data[off : off + 4] == PCAPNG_MAGIC:
            state.order = _section_order(data, off, name)
        btype, blen = struct.unpack_from(state.order + "II", data, off)
        if blen < 12 or blen % 4 or off + blen > end:
            raise CaptureError(name, f"bad or truncated block (length {blen}) at offset {off}")
        frame = _block(data, off, btype, blen, state, name)
        if frame is not None:
            yield frame
        off += blen
        if off >= release:
            release = _release(data, off)


def _section_order(data: Buffer, off: int, name: str) -> str:
    for order in ("<", ">"):
        if struct.unpack_from(order + "I", data, off + 8)[0] == _BYTE_ORDER_MAGIC:
            return order
    raise CaptureError(name, f"bad section header byte-order magic at offset {off}")


def _block(
    data: Buffer, off: int, btype: int, blen: int, st: _PcapngState, name: str
) -> Frame | None:
    o = st.order
    if btype == 0x0A0D0D0A:  # section header: interfaces restart
        st.interfaces = []
    elif btype == 1:  # interface description
        if blen < 20:  # header, link type, reserved, snaplen, trailing length
            raise CaptureError(name, f"bad interface description block at offset {off}")
        linktype, _, snaplen = struct.unpack_from(o + "HHI", data, off + 8)
        tick = _tsresol(data, off + 16, off + blen - 4, o)
        st.interfaces.append((linktype, tick, snaplen))
    elif btype == 6:  # enhanced packet
        return _enhanced_packet(data, off, blen, st, name)
    elif btype == 3:  # simple packet: no timestamp, interface 0
        if not st.interfaces or blen < 16:
            raise CaptureError(name, f"bad simple packet block at offset {off}")
        linktype, _, snaplen = st.interfaces[0]
        wirelen = struct.unpack_from(o + "I", data, off + 8)[0]
        # The block holds no captured length: it is the wire length cut at the
        # snaplen, and the padding after the data is not part of the packet.
        caplen = min(wirelen, blen - 16, snaplen or wirelen)
        return Frame(0.0, linktype, data[off + 12 : off + 12 + caplen], wirelen, name)
    return None


def _enhanced_packet(data: Buffer, off: int, blen: int, st: _PcapngState, name: str) -> Frame:
    # 32 bytes: block header, interface, timestamp, lengths, trailing length.
    if blen < 32:
        raise CaptureError(name, f"bad enhanced packet block at offset {off}")
    iface, hi, lo, caplen, wirelen = struct.unpack_from(st.order + "IIIII", data, off + 8)
    if iface >= len(st.interfaces) or 32 + caplen > blen:
        raise CaptureError(name, f"bad enhanced packet block at offset {off}")
    linktype, tick, _ = st.interfaces[iface]
    pkt = data[off + 28 : off + 28 + caplen]
    return Frame(((hi << 32) | lo) * tick, linktype, pkt, wirelen, name)


def _tsresol(data: Buffer, off: int, end: int, order: str) -> float:
    """The if_tsresol option of an interface block; microseconds by default."""
    while off + 4 <= end:
        code, length = struct.unpack_from(order + "HH", data, off)
        if code == 0:
            break
        if code == 9 and length >= 1:
            value = data[off + 4]
            return 2.0 ** -(value & 0x7F) if value & 0x80 else 10.0**-value
        off += 4 + ((length + 3) & ~3)
    return 1e-6


def time_span(path: Path) -> tuple[float, float] | None:
    """(first, last) packet timestamps of a file without reading every record.

    Two-pass replay sees only filtered packets; the report's window and the
    flows' final expiry need the capture's own first and last times. pcap:
    the first record, and the last found by walking back from the end to a
    header whose record ends exactly at the end of the file. pcapng: the
    first and the last enhanced packet blocks (the last found through its
    trailing length). None when the file does not allow it (damage, several
    pcapng sections).
    """
    try:
        with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            kind = sniff_format(data[:4])
            if kind == "pcap":
                return _pcap_span(data)
            if kind == "pcapng":
                return _pcapng_span(data, path.name)
    except (OSError, ValueError, struct.error, CaptureError):
        return None
    return None


def _pcap_span(data: Buffer) -> tuple[float, float] | None:
    order, unit = PCAP_MAGICS[data[:4]]
    record = struct.Struct(order + "IIII")
    end = len(data)
    if end < 24 + record.size:
        return None
    sec, frac, _, _ = record.unpack_from(data, 24)
    first = sec + frac * unit
    for off in range(end - record.size, max(23, end - 262_160) - 1, -1):
        sec, frac, caplen, wirelen = record.unpack_from(data, off)
        if off + record.size + caplen == end and caplen <= wirelen + 0xFFFF and sec >= first - 1:
            return first, sec + frac * unit
    return None


def _pcapng_span(data: Buffer, name: str) -> tuple[float, float] | None:
    first = None
    for frame in _read_pcapng(data, name):
        first = frame.ts
        break
    if first is None:
        return None
    state, off = _PcapngState(), 0
    sections = 0
    while off < len(data):  # interface blocks of the (single) section, up to the first packet
        btype, blen = struct.unpack_from(state.order + "II", data, off)
        if data[off : off + 4] == PCAPNG_MAGIC:
            sections += 1
            state.order = _section_order(data, off, name)
            btype, blen = struct.unpack_from(state.order + "II", data, off)
        if btype in (3, 6):
            break
        _block(data, off, btype, blen, state, name)
        off += blen
    if sections != 1:
        return None
    end = len(data)
    for _ in range(64):  # walk back over trailing statistics or name blocks
        size = struct.unpack_from(state.order + "I", data, end - 4)[0]
        start = end - size
        if size < 12 or start < off:
            return None
        btype = struct.unpack_from(state.order + "I", data, start)[0]
        if btype in (3, 6):
            last = _block(data, start, btype, size, state, name)
            return (first, last.ts) if last is not None else None
        end = start
    return None
