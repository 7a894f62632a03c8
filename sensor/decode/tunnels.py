"""Tunnels that carry mirrored or overlay traffic: GRE, ERSPAN, VXLAN, Geneve.

Sensors often see traffic through a remote SPAN (ERSPAN over GRE) or an
overlay network, so the inner packet is what matters and the outer one is
dropped. Each tunnel adds one level of depth.
"""

from __future__ import annotations

from sensor.decode.base import LayerBase, TunnelResult
from sensor.decode.numbers import ETH_ERSPAN_2, ETH_ERSPAN_3, ETH_TEB
from sensor.model import Packet

# GRE flag bits (RFC 2784 / RFC 2890; routing from RFC 1701).
_GRE_CHECKSUM = 0x8000
_GRE_ROUTING = 0x4000
_GRE_KEY = 0x2000
_GRE_SEQUENCE = 0x1000
_GRE_VERSION = 0x0007  # version 1 is PPTP's enhanced GRE, carrying PPP

_ERSPAN_2_HEADER = 8
_ERSPAN_3_HEADER = 12
_ERSPAN_3_SUBHEADER = 8  # platform-specific subheader present when O is set
_ERSPAN_FT_ETHERNET = 0
_ERSPAN_FT_IP = 2

_VXLAN_HEADER = 8
_VXLAN_I_FLAG = 0x08  # "VNI is valid": set in every VXLAN packet
_GENEVE_HEADER = 8


class TunnelLayers(LayerBase):
    """GRE (with ERSPAN inside) over IP; VXLAN and Geneve over UDP."""

    def _gre(
        self, data: bytes, off: int, end: int, depth: int, src: bytes, dst: bytes
    ) -> Packet | None:
        if end - off < 4:
            return self._fail("truncated_gre")
        flags = data[off] << 8 | data[off + 1]
        proto = data[off + 2] << 8 | data[off + 3]
        if flags & (_GRE_ROUTING | _GRE_VERSION):
            return self._fail("gre_unsupported")
        # Checksum (+reserved), key and sequence are 4 bytes each when flagged.
        hlen = 4
        for bit in (_GRE_CHECKSUM, _GRE_KEY, _GRE_SEQUENCE):
            if flags & bit:
                hlen += 4
        if off + hlen > end:
            return self._fail("truncated_gre")
        if depth >= self.max_depth:
            return self._fail("too_deep")
        off += hlen
        depth += 1
        if proto == ETH_ERSPAN_2:
            if flags & _GRE_SEQUENCE:  # type II; type I has no sequence and no header
                return self._erspan2(data, off, end, depth)
            return self._by_ethertype[ETH_TEB](data, off, end, depth)
        if proto == ETH_ERSPAN_3:
            return self._erspan3(data, off, end, depth)
        return self._ethertype(proto, data, off, end, depth)

    def _erspan2(self, data: bytes, off: int, end: int, depth: int) -> Packet | None:
        if end - off < _ERSPAN_2_HEADER:
            return self._fail("truncated_erspan")
        if data[off] >> 4 != 1:
            return self._fail("bad_erspan_header")
        return self._by_ethertype[ETH_TEB](data, off + _ERSPAN_2_HEADER, end, depth)

    def _erspan3(self, data: bytes, off: int, end: int, depth: int) -> Packet | None:
        if end - off < _ERSPAN_3_HEADER:
            return self._fail("truncated_erspan")
        if data[off] >> 4 != 2:
            return self._fail("bad_erspan_header")
        frame_type = (data[off + 10] >> 2) & 0x1F
        hlen = _ERSPAN_3_HEADER
        if data[off + 11] & 0x01:
            hlen += _ERSPAN_3_SUBHEADER
        if off + hlen > end:
            return self._fail("truncated_erspan")
        if frame_type == _ERSPAN_FT_ETHERNET:
            return self._by_ethertype[ETH_TEB](data, off + hlen, end, depth)
        if frame_type == _ERSPAN_FT_IP:
            return self._raw_ip(data, off + hlen, end, depth)
        return self._fail("erspan_unsupported")

    def _vxlan(self, data: bytes, off: int, end: int, depth: int) -> TunnelResult:
        if end - off < _VXLAN_HEADER or not data[off] & _VXLAN_I_FLAG:
            return False
        if depth >= self.max_depth:
            return self._fail("too_deep")
        return self._by_ethertype[ETH_TEB](data, off + _VXLAN_HEADER, end, depth + 1)

    def _geneve(self, data: bytes, off: int, end: int, depth: int) -> TunnelResult:
        if end - off < _GENEVE_HEADER or data[off] >> 6 != 0:
            return False
        hlen = _GENEVE_HEADER + ((data[off] & 0x3F) << 2)
        if off + hlen > end:
            return self._fail("truncated_geneve")
        if depth >= self.max_depth:
            return self._fail("too_deep")
        proto = data[off + 2] << 8 | data[off + 3]
        return self._ethertype(proto, data, off + hlen, end, depth + 1)
