"""Classic pcap writing: little-endian, microseconds, Ethernet, records written in batches.

Frames come from many conversations at once; `merge` interleaves their
time-ordered streams into one time-ordered capture, lazily, so a province
of thousands of flows never sits in memory as a whole.
"""

from __future__ import annotations

import heapq
import struct
from collections.abc import Iterable, Iterator
from typing import BinaryIO

LINKTYPE_ETHERNET = 1
SNAPLEN = 65535
FILE_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET)
_RECORD = struct.Struct("<IIII")
_BATCH = 8192  # records per write call: one syscall per batch, not per frame

# A frame on its way to the file: (timestamp in microseconds since the epoch, frame).
Record = tuple[int, bytes]


def merge(streams: Iterable[Iterator[Record]]) -> Iterator[Record]:
    """One time-ordered stream from many; ties keep stream order, so output is stable."""
    return heapq.merge(*streams, key=lambda record: record[0])


class PcapWriter:
    """Writes records to an open binary file and counts packets and bytes."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.packets = 0
        self.bytes = len(FILE_HEADER)
        fh.write(FILE_HEADER)

    def write(self, records: Iterable[Record]) -> None:
        pending: list[bytes] = []
        pack = _RECORD.pack
        for ts_us, frame in records:
            sec, usec = divmod(ts_us, 1_000_000)
            size = len(frame)
            pending.append(pack(sec, usec, size, size))
            pending.append(frame)
            self.bytes += 16 + size
            self.packets += 1
            if len(pending) >= 2 * _BATCH:
                self._fh.writelines(pending)
                pending.clear()
        self._fh.writelines(pending)
