"""Raw classic-pcap writing and reading with `struct`: no per-packet objects.

The big capture is written as little-endian, microsecond pcap with link type
Ethernet, the format every reader (tcpdump, ndpiReader, libpcap, minewatch's
own reader) handles. Records are packed into a list and written in batches so
that a gigabyte takes seconds, not minutes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

LINKTYPE_ETHERNET = 1
SNAPLEN = 262144
FILE_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET)
RECORD = struct.Struct("<IIII")
_FLUSH_EVERY = 4096  # records per write call

# One packet on the way to the file: (timestamp in microseconds, frame, wire length).
Record = tuple[int, bytes, int]


class PcapWriter:
    """Appends records to a pcap file and counts what it wrote."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self._pending: list[bytes] = []
        self.packets = 0
        self.bytes = len(FILE_HEADER)
        fh.write(FILE_HEADER)

    def write_all(self, records: Iterable[Record]) -> None:
        pending, pack = self._pending, RECORD.pack
        for ts_us, frame, wire_len in records:
            sec, usec = divmod(ts_us, 1_000_000)
            pending.append(pack(sec, usec, len(frame), wire_len))
            pending.append(frame)
            self.bytes += 16 + len(frame)
            self.packets += 1
            if len(pending) >= 2 * _FLUSH_EVERY:
                self.flush()
        self.flush()

    def flush(self) -> None:
        self._fh.writelines(self._pending)
        self._pending.clear()


def count_records(path: Path) -> tuple[int, int]:
    """(packets, captured bytes) of a classic little- or big-endian pcap file."""
    with path.open("rb") as fh:
        head = fh.read(24)
        order = "<" if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        record = struct.Struct(order + "IIII")
        packets = captured = 0
        while len(hdr := fh.read(16)) == 16:
            caplen = record.unpack(hdr)[2]
            fh.seek(caplen, 1)
            packets += 1
            captured += caplen
    return packets, captured
