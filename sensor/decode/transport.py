"""TCP and UDP: the layers that end a decode by building the Packet."""

from __future__ import annotations

import struct

from sensor.decode.base import LayerBase
from sensor.model import TCP, UDP, Packet

# source port, destination port, sequence number, data offset (+NS), flags
_TCP = struct.Struct("!HHI4xBB")
# source port, destination port, length
_UDP = struct.Struct("!HHH")


class TransportLayers(LayerBase):
    """TCP and UDP decoders; UDP hands tunnel ports to `_udp_tunnels`."""

    def _tcp(
        self, data: bytes, off: int, end: int, depth: int, src: bytes, dst: bytes
    ) -> Packet | None:
        if end - off < 20:
            return self._fail("truncated_tcp")
        sport, dport, seq, doff, flags = _TCP.unpack_from(data, off)
        hlen = (doff >> 4) << 2
        if hlen < 20:
            return self._fail("bad_tcp_header")
        if off + hlen > end:
            return self._fail("truncated_tcp")
        frame = self._frame
        return Packet(
            frame.ts,
            self._addr(src),
            self._addr(dst),
            sport,
            dport,
            TCP,
            data[off + hlen : end],
            frame.wire_len,
            (doff & 1) << 8 | flags,  # NS is the low bit of the data-offset byte
            seq,
            frame.source,
        )

    def _udp(
        self, data: bytes, off: int, end: int, depth: int, src: bytes, dst: bytes
    ) -> Packet | None:
        if end - off < 8:
            return self._fail("truncated_udp")
        sport, dport, length = _UDP.unpack_from(data, off)
        if length:  # 0 only in IPv6 jumbograms: the IP length rules then
            if length < 8:
                return self._fail("bad_udp_length")
            if off + length < end:
                end = off + length
        if self._udp_tunnels:
            tunnel = self._udp_tunnels.get(dport)
            if tunnel is not None:
                inner = tunnel(data, off + 8, end, depth)
                if inner is not False:
                    return inner
        frame = self._frame
        return Packet(
            frame.ts,
            self._addr(src),
            self._addr(dst),
            sport,
            dport,
            UDP,
            data[off + 8 : end],
            frame.wire_len,
            0,
            0,
            frame.source,
        )
