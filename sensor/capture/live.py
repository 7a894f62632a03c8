"""Live capture from network interfaces (Linux AF_PACKET), yielding the same
Frames as replay so that everything after capture is shared.

One socket per interface, each with a TPACKET_V3 ring when the kernel allows
it (else plain `recvmsg`), an optional classic BPF filter, promiscuous mode and
optionally a fanout group, so that several worker processes share the load
with each flow kept by one of them. The sockets are opened by `open()` (or the
first `frames()`), which lets a daemon drop privileges once they exist.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from sensor.capture import afpacket
from sensor.capture.adaptive import AdaptiveFilter
from sensor.capture.errors import CaptureError
from sensor.capture.ring import Ring, RingSettings
from sensor.model import Frame

log = logging.getLogger(__name__)

DEFAULT_SNAPLEN = 262144  # as tcpdump: whole frames, even with offloads
MIN_SNAPLEN = 64  # room for link, VLAN, IP and TCP headers


class StopEvent(Protocol):
    """threading.Event, multiprocessing.Event or anything else that can say stop."""

    def is_set(self) -> bool: ...


@dataclass(slots=True)
class CaptureStats:
    """Kernel counters, accumulated (PACKET_STATISTICS resets on every read).

    `received` counts packets that passed the filter, `dropped` included, as
    the kernel does; `freeze_q` counts ring blocks the kernel found still in use.
    """

    received: int = 0
    dropped: int = 0
    freeze_q: int = 0

    def add(self, other: CaptureStats) -> None:
        self.received += other.received
        self.dropped += other.dropped
        self.freeze_q += other.freeze_q


class _Reader(Protocol):
    def read(self) -> list[Frame]: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class _Capture:
    """One interface's socket, its reader and its accumulated kernel counters."""

    interface: str
    sock: socket.socket
    reader: _Reader
    mode: str  # "ring" or "recvmsg"
    totals: CaptureStats

    def poll_stats(self) -> None:
        self.totals.add(CaptureStats(*afpacket.read_statistics(self.sock)))

    def clear_error(self) -> None:
        """Take a pending socket error (the link went down, say) so poll stops
        reporting it; capture goes on when the link comes back."""
        error = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            log.warning("%s: socket error %d, capture continues", self.interface, error)

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class LiveSource:
    """Frames from one or more interfaces, multiplexed; see the module docstring.

    `bpf` is a filter expression (compiled by libpcap for the interface's link
    type), a compiled Filter/UnionFilter, or (code, jt, jf, k) instructions.
    With several interfaces, interface i joins fanout group `fanout_group + i`:
    the kernel ties a group to one device.
    """

    def __init__(
        self,
        interfaces: Sequence[str] | str,
        bpf: object | None = None,
        promiscuous: bool = True,
        fanout_group: int | None = None,
        ring: bool | RingSettings = True,
        snaplen: int = DEFAULT_SNAPLEN,
        poll_interval: float = 0.1,
        adaptive: AdaptiveFilter | None = None,
    ) -> None:
        self.interfaces = [interfaces] if isinstance(interfaces, str) else list(interfaces)
        if not self.interfaces:
            raise CaptureError("capture", "no interface given")
        if snaplen < MIN_SNAPLEN:
            raise CaptureError("capture", f"snaplen {snaplen} is below {MIN_SNAPLEN}")
        # An adaptive prefilter (see capture/adaptive.py) starts as the candidate program.
        self.adaptive = adaptive
        if adaptive is not None:
            bpf = adaptive.program()
        self.bpf, self.promiscuous, self.fanout_group = bpf, promiscuous, fanout_group
        self.ring = RingSettings() if ring is True else ring or None
        self.snaplen, self.poll_interval = snaplen, poll_interval
        self._captures: list[_Capture] = []
        self._totals: dict[str, CaptureStats] = {}
        self._stats_lock = threading.Lock()  # stats() may be asked from a metrics thread

    # -- set-up ---------------------------------------------------------------
    def open(self) -> None:
        """Open every interface's socket, or none: a CaptureError names the interface."""
        if self._captures:
            return
        try:
            for index, interface in enumerate(self.interfaces):
                self._captures.append(self._open(interface, index))
        except BaseException:
            self.close()
            raise

    def _open(self, interface: str, index: int) -> _Capture:
        sock = afpacket.new_socket(interface)
        reader: _Reader | None = None
        try:
            linktype = afpacket.interface_linktype(sock, interface)
            sock, reader, mode = self._reader(sock, interface, linktype)
            if self.bpf is not None:
                afpacket.attach_filter(sock, self._program(linktype), interface)
            afpacket.bind(sock, interface)
            if self.promiscuous:
                ifindex = afpacket.interface_index(sock, interface)
                afpacket.set_promiscuous(sock, interface, ifindex)
            if self.fanout_group is not None:
                afpacket.join_fanout(sock, interface, self.fanout_group + index)
        except BaseException:
            if reader is not None:
                reader.close()
            sock.close()
            raise
        totals = self._totals.setdefault(interface, CaptureStats())
        return _Capture(interface, sock, reader, mode, totals)

    def _reader(
        self, sock: socket.socket, interface: str, linktype: int
    ) -> tuple[socket.socket, _Reader, str]:
        """The ring if it can be had, else plain reads on a fresh socket (a failed
        ring set-up may leave the socket at TPACKET_V3)."""
        if self.ring is not None:
            try:
                ring = Ring(sock, self.ring, interface, linktype, self.snaplen)
            except OSError as exc:
                log.warning(
                    "%s: memory-mapped ring unavailable (%s); reading with recvmsg",
                    interface,
                    exc.strerror or exc,
                )
                sock.close()
                sock = afpacket.new_socket(interface)
            else:
                size = self.ring.block_size * self.ring.block_count >> 10
                log.info("%s: capturing with a TPACKET_V3 ring of %d KiB", interface, size)
                return sock, ring, "ring"
        else:
            log.info("%s: capturing with recvmsg (ring disabled)", interface)
        return sock, afpacket.PlainReader(sock, interface, linktype, self.snaplen), "recvmsg"

    def _program(self, linktype: int) -> list[afpacket.Insn]:
        bpf = self.bpf
        if isinstance(bpf, str):
            from sensor.capture.libpcap import compiled  # only filter expressions need libpcap

            bpf = compiled(linktype, bpf)
        return afpacket.filter_instructions(bpf)

    def refilter(self, insns: list[tuple[int, int, int, int]]) -> None:
        """Attach a new BPF program to every socket (the kernel swaps it atomically)."""
        for capture in self._captures:
            afpacket.attach_filter(capture.sock, insns, capture.interface)

    # -- reading --------------------------------------------------------------
    def frames(self, stop_event: StopEvent | None = None) -> Iterator[Frame]:
        """Frames from every interface until `stop_event` is set or the source is
        closed (checked between batches, and every `poll_interval` s when idle)."""
        self.open()
        captures = self._captures
        with selectors.DefaultSelector() as selector:
            for capture in captures:
                selector.register(capture.sock, selectors.EVENT_READ, capture)
            # `close()` replaces the list: that ends the loop too.
            while self._captures is captures and not (stop_event and stop_event.is_set()):
                busy = False
                for capture in captures:
                    batch = capture.reader.read()
                    if batch:
                        busy = True
                        yield from batch
                        if self._captures is not captures:
                            return  # closed while the consumer held a frame
                if not busy:
                    self._wait(selector)

    def _wait(self, selector: selectors.BaseSelector) -> None:
        for key, _events in selector.select(self.poll_interval):
            key.data.clear_error()

    # -- state ----------------------------------------------------------------
    @property
    def modes(self) -> dict[str, str]:
        """How each open interface is read: "ring" or "recvmsg"."""
        return {c.interface: c.mode for c in self._captures}

    def stats_by_interface(self) -> dict[str, CaptureStats]:
        """Kernel counters of each interface, accumulated over its sockets' lives."""
        with self._stats_lock:
            for capture in self._captures:
                capture.poll_stats()
            return {name: replace(totals) for name, totals in self._totals.items()}

    def stats(self) -> CaptureStats:
        """Kernel counters summed over interfaces (kept after `close()`)."""
        total = CaptureStats()
        for totals in self.stats_by_interface().values():
            total.add(totals)
        return total

    def close(self) -> None:
        """Close every socket and ring, reading their last counters first."""
        with self._stats_lock:
            captures, self._captures = self._captures, []
            for capture in captures:
                try:
                    capture.poll_stats()
                finally:
                    capture.close()

    def __enter__(self) -> LiveSource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
