"""Replay of capture files: which files, and how their frames are read.

Two readers give the same frames: libpcap (C, with BPF filters) and the
pure-Python reader. `FileReader.frames()` yields frames and records, instead
of raising, any file that could not be read (wholly or from some record on),
so one damaged file never stops a replay of many.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sensor.capture import libpcap
from sensor.capture.errors import CaptureError
from sensor.capture.pcapfile import read_frames, sniff_format
from sensor.model import Frame

log = logging.getLogger(__name__)

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".dmp", ".pcap.gz")


@dataclass
class InputErrors:
    """Inputs that could not be read, by file, in order."""

    messages: list[str] = field(default_factory=list)
    files: set[str] = field(default_factory=set)

    def add(self, error: CaptureError) -> None:
        """Record an error once (both replay passes meet the same damage)."""
        self.files.add(error.source)
        if str(error) not in self.messages:
            self.messages.append(str(error))
            log.error("%s", error)


def expand(paths: Iterable[Path], errors: InputErrors) -> list[Path]:
    """Files named, and capture files found in folders named (sorted), once each."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and _is_capture(p)))
        elif path.is_file():
            found.append(path)
        else:
            errors.add(CaptureError(str(path), "no such file or folder"))
    return list(dict.fromkeys(found))


def _is_capture(path: Path) -> bool:
    if path.name.endswith(CAPTURE_SUFFIXES):
        return True
    try:
        with path.open("rb") as fh:
            return sniff_format(fh.read(4)) is not None
    except OSError:
        return False


def libpcap_available() -> bool:
    return libpcap.load() is not None


class FileReader:
    """Reads frames from files with libpcap (optionally filtered) or pure Python."""

    def __init__(self, errors: InputErrors, use_libpcap: bool = True) -> None:
        self.errors = errors
        self.use_libpcap = use_libpcap and libpcap_available()

    def linktype(self, path: Path) -> int | None:
        """The file's link type (libpcap's DLT value), or None if it cannot be opened."""
        if not self.use_libpcap:
            return self._first_linktype(path)
        try:
            with libpcap.PcapFile(path) as pcap:
                return pcap.linktype
        except CaptureError:
            return None

    @staticmethod
    def _first_linktype(path: Path) -> int | None:
        try:
            return next(iter(read_frames(path))).linktype
        except (CaptureError, StopIteration):
            return None

    def frames(
        self, path: Path, bpf: str | libpcap.Filter | libpcap.UnionFilter | None = None
    ) -> Iterator[Frame]:
        """Frames of one file; errors recorded, frames before the damage kept."""
        try:
            if self.use_libpcap:
                with libpcap.PcapFile(path, bpf) as pcap:
                    yield from pcap.frames()
            else:
                yield from read_frames(path)
        except CaptureError as exc:
            self.errors.add(exc)

    def count(self, path: Path) -> tuple[int, int]:
        """(packets, captured bytes) of a file, up to any damage."""
        if self.use_libpcap:
            try:
                with libpcap.PcapFile(path) as pcap:
                    return pcap.count()
            except CaptureError:
                pass  # damaged: count what the Python reader can read
        packets = size = 0
        try:
            for frame in read_frames(path):
                packets += 1
                size += len(frame.data)
        except CaptureError:
            pass  # reported by the reading pass
        return packets, size
