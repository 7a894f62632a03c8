"""State and helpers shared by the decoder's layer mixins.

Every layer is a method with the same shape, `(data, off, end, depth)`, that
reads the header at `off`, never past `end`, and hands the rest to the next
layer through a dispatch table, so no layer slices or copies the frame until
the transport payload is cut out. Layers return the decoded Packet, or None
after counting why not; they never raise on bad input.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Callable
from typing import Literal

from sensor.decode.numbers import (
    ETH_IPV4,
    ETH_IPV6,
    SKIP_ETHERTYPE_NAMES,
    SKIP_LLC,
    SKIP_OTHER_ETHERTYPE,
)
from sensor.model import Frame, Packet

# A layer below IP: (frame bytes, header offset, end offset, encapsulation depth).
Layer = Callable[[bytes, int, int, int], Packet | None]
# A layer above IP also gets the raw source and destination addresses.
IpLayer = Callable[[bytes, int, int, int, bytes, bytes], Packet | None]
# A tunnel on a UDP port returns False when the datagram turns out not to be
# its protocol, and the decoder then keeps it as an ordinary UDP packet.
TunnelResult = Packet | Literal[False] | None
UdpTunnel = Callable[[bytes, int, int, int], TunnelResult]

# Distinct addresses are few compared with packets, so printable forms are
# cached; the cache is dropped whole when full to bound memory on scans.
ADDR_CACHE_MAX = 65536

_NO_FRAME = Frame(0.0, 0, b"", 0, "")


class LayerBase:
    """Counters, dispatch tables and helpers that every layer mixin uses."""

    errors: Counter[str]
    errors_by_source: Counter[str]  # how many frames of each file or interface were broken
    skipped: Counter[str]
    max_depth: int
    _frame: Frame
    _by_linktype: dict[int, Layer]
    _by_ethertype: dict[int, Layer]
    _by_ipproto: dict[int, IpLayer]
    _udp_tunnels: dict[int, UdpTunnel]
    _addr_cache: dict[bytes, str]

    def _init_state(self, max_depth: int) -> None:
        self.errors = Counter()
        self.errors_by_source = Counter()
        self.skipped = Counter()
        self.max_depth = max_depth
        self._frame = _NO_FRAME
        self._addr_cache = {}

    # Both counters return None (typed as a layer's result) so that a layer
    # can end with `return self._fail("reason")`.
    def _fail(self, reason: str) -> Packet | None:
        """Count a frame that is broken or unsupported."""
        self.errors[reason] += 1
        self.errors_by_source[self._frame.source] += 1
        return None

    def _skip(self, reason: str) -> Packet | None:
        """Count a frame that is fine but carries nothing we decode (ARP, ICMP, ...)."""
        self.skipped[reason] += 1
        return None

    def _ethertype(self, etype: int, data: bytes, off: int, end: int, depth: int) -> Packet | None:
        layer = self._by_ethertype.get(etype)
        if layer is not None:
            return layer(data, off, end, depth)
        if etype <= 1500:
            return self._skip(SKIP_LLC)
        return self._skip(SKIP_ETHERTYPE_NAMES.get(etype, SKIP_OTHER_ETHERTYPE))

    def _raw_ip(self, data: bytes, off: int, end: int, depth: int) -> Packet | None:
        """An IP packet with no link header: the version nibble says which."""
        if off >= end:
            return self._fail("truncated_ip")
        nibble = data[off] >> 4
        if nibble == 4:
            return self._by_ethertype[ETH_IPV4](data, off, end, depth)
        if nibble == 6:
            return self._by_ethertype[ETH_IPV6](data, off, end, depth)
        return self._fail("bad_ip_header")

    def _addr(self, raw: bytes) -> str:
        """Printable form of a 4- or 16-byte address (IPv4-mapped IPv6 left as is)."""
        name = self._addr_cache.get(raw)
        if name is None:
            family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
            name = socket.inet_ntop(family, raw)
            if len(self._addr_cache) >= ADDR_CACHE_MAX:
                self._addr_cache.clear()
            self._addr_cache[raw] = name
        return name
