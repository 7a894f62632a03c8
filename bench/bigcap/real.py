"""The real captures of ../shared/captures, loaded once and replayed as many copies.

Every (copy, file) pair gets its own IPv4 addresses: the middle two octets of
every address in the file are XORed with a mask unique to the pair. XOR with a
constant is a bijection, so the conversations of a copy stay exactly as they
were (same hosts talk to the same hosts, TCP sequence numbers untouched), yet
no flow of one copy repeats one of another: flow tables see distinct flows,
as on a real link (see docs/performance.md on repeated flows). Only the
address fields move; checksums are left stale, which no reader here verifies.

Timestamps are made monotonic in file order and gaps longer than GAP_CAP are
shortened to it (some reference captures jump years between packets). GAP_CAP
exceeds the sensors' idle timeouts, so a flow that had gone idle still has.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bigcap.pcapio import LINKTYPE_ETHERNET, Record
from sensor.capture.pcapfile import read_frames

GAP_CAP_US = 900_000_000  # 900 s: longer than minewatch's 600 s idle timeout
_VLAN_TYPES = (0x8100, 0x88A8, 0x9100)
_IPV4 = 0x0800
_SCRAMBLE = 0x9E37  # odd, so k -> k * _SCRAMBLE is a bijection modulo 2**16


@dataclass(slots=True)
class SourceFile:
    """One capture, ready to replay: frames, their IPv4 header offsets, times from 0."""

    name: str
    times: list[int]  # microseconds since the file's first packet, non-decreasing
    frames: list[bytes]
    wire_lens: list[int]
    ip_offsets: list[int]  # offset of the IPv4 header, -1 when there is none

    @property
    def duration_us(self) -> int:
        return self.times[-1] if self.times else 0

    @property
    def captured_bytes(self) -> int:
        return sum(len(f) for f in self.frames)


def ipv4_offset(frame: bytes) -> int:
    """Where the IPv4 header of an Ethernet frame starts (after VLAN tags), or -1."""
    off = 12
    while off + 2 <= len(frame):
        ethertype = (frame[off] << 8) | frame[off + 1]
        if ethertype in _VLAN_TYPES:
            off += 4
            continue
        if ethertype == _IPV4 and off + 2 + 20 <= len(frame) and frame[off + 2] >> 4 == 4:
            return off + 2
        return -1
    return -1


def monotonic_times(stamps: list[int]) -> list[int]:
    """Times from 0 in file order: never a step back, no gap longer than GAP_CAP_US."""
    out, clock = [], 0
    for previous, ts in zip(stamps[:1] + stamps, stamps, strict=False):
        clock += min(max(ts - previous, 0), GAP_CAP_US)
        out.append(clock)
    return out


def load_source(path: Path) -> SourceFile | None:
    """The file's frames, or None when it is empty or not Ethernet (only Ethernet is merged)."""
    frames = list(read_frames(path))
    if not frames or any(f.linktype != LINKTYPE_ETHERNET for f in frames):
        return None
    data = [bytes(f.data) for f in frames]
    return SourceFile(
        path.name,
        monotonic_times([round(f.ts * 1e6) for f in frames]),
        data,
        [f.wire_len for f in frames],
        [ipv4_offset(d) for d in data],
    )


def address_mask(copy: int, file_index: int, files: int) -> tuple[int, int]:
    """The (second octet, third octet) XOR mask of one (copy, file) pair; never (0, 0)."""
    stream = copy * files + file_index + 1
    if stream >= 1 << 16:
        raise ValueError(f"too many copies for distinct addresses: {copy}")
    mixed = (stream * _SCRAMBLE) & 0xFFFF
    return mixed >> 8, mixed & 0xFF


def rewrite(frame: bytes, ip_off: int, mask: tuple[int, int]) -> bytes:
    """`frame` with the middle octets of its IPv4 source and destination XORed."""
    if ip_off < 0:
        return frame
    b = bytearray(frame)
    hi, lo = mask
    b[ip_off + 13] ^= hi
    b[ip_off + 14] ^= lo
    b[ip_off + 17] ^= hi
    b[ip_off + 18] ^= lo
    return bytes(b)


def replay(source: SourceFile, start_us: int, mask: tuple[int, int]) -> Iterator[Record]:
    """One copy of a source file: rewritten frames, times shifted to `start_us`."""
    for rel, frame, wire_len, ip_off in zip(
        source.times, source.frames, source.wire_lens, source.ip_offsets, strict=True
    ):
        yield start_us + rel, rewrite(frame, ip_off, mask), wire_len


def addresses(source: SourceFile) -> set[bytes]:
    """The IPv4 addresses in a source's headers (for collision checks in tests)."""
    found: set[bytes] = set()
    for frame, off in zip(source.frames, source.ip_offsets, strict=True):
        if off >= 0:
            found.update(struct.unpack_from("4s4s", frame, off + 12))
    return found
