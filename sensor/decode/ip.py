"""IPv4 and IPv6, with IPv6 extension headers, AH, fragments and IP-in-IP.

Fragments: a fragment with a non-zero offset carries no transport header, so
it is counted as `ip_fragment` and dropped. A first fragment (offset 0, more
fragments set) is decoded like a whole packet when its transport header fits:
its payload is what this fragment holds. The decoder does not reassemble;
fragmented TCP is rare and pool protocols do not depend on it.

The IP total length (IPv6 payload length) bounds everything above it, so
Ethernet padding never becomes payload. A length of 0 is taken as "up to the
end of the frame": Linux writes 0 into IPv4 packets captured before TCP
segmentation offload, and IPv6 jumbograms carry 0 too.
"""

from __future__ import annotations

import struct

from sensor.decode.base import LayerBase
from sensor.decode.numbers import (
    ETH_IPV4,
    ETH_IPV6,
    IPPROTO_AH,
    IPPROTO_FRAGMENT,
    IPV6_GENERIC_EXT,
    SKIP_IPPROTO_NAMES,
    SKIP_OTHER_IPPROTO,
)
from sensor.model import Packet

# version/IHL, total length, flags/fragment offset, protocol, source, destination
_IPV4 = struct.Struct("!BxHxxHxB2x4s4s")
# version/class/label, payload length, next header, source, destination
_IPV6 = struct.Struct("!IHBx16s16s")
_IPV6_HEADER = 40

# A chain longer than this is an attack or garbage, not a real packet.
_MAX_EXT_HEADERS = 12


class IpLayers(LayerBase):
    """Decoders for the IP layer; transport layers come from `_by_ipproto`."""

    def _ipv4(self, data: bytes, off: int, end: int, depth: int) -> Packet | None:
        if end - off < 20:
            return self._fail("truncated_ip")
        vihl, total, frag, proto, src, dst = _IPV4.unpack_from(data, off)
        hlen = (vihl & 0x0F) << 2
        if vihl >> 4 != 4 or hlen < 20 or (total and total < hlen):
            return self._fail("bad_ip_header")
        if total and off + total < end:
            end = off + total
        if off + hlen > end:
            return self._fail("truncated_ip")
        if frag & 0x1FFF:
            return self._fail("ip_fragment")
        layer = self._by_ipproto.get(proto)
        if layer is not None:
            return layer(data, off + hlen, end, depth, src, dst)
        return self._ip_other(proto, data, off + hlen, end, depth, src, dst)

    def _ipv6(self, data: bytes, off: int, end: int, depth: int) -> Packet | None:
        if end - off < _IPV6_HEADER:
            return self._fail("truncated_ip")
        vcl, plen, proto, src, dst = _IPV6.unpack_from(data, off)
        if vcl >> 28 != 6:
            return self._fail("bad_ip_header")
        off += _IPV6_HEADER
        if plen and off + plen < end:
            end = off + plen
        layer = self._by_ipproto.get(proto)
        if layer is not None:
            return layer(data, off, end, depth, src, dst)
        return self._ip_other(proto, data, off, end, depth, src, dst)

    def _ip_other(
        self, proto: int, data: bytes, off: int, end: int, depth: int, src: bytes, dst: bytes
    ) -> Packet | None:
        """Walk extension headers (and AH) to the transport, or count the protocol."""
        for _ in range(_MAX_EXT_HEADERS):
            if proto in IPV6_GENERIC_EXT or proto == IPPROTO_AH:
                if end - off < 8:
                    return self._fail("truncated_ip_ext")
                size = (data[off + 1] + 2) << 2 if proto == IPPROTO_AH else (data[off + 1] + 1) << 3
            elif proto == IPPROTO_FRAGMENT:
                if end - off < 8:
                    return self._fail("truncated_ip_ext")
                if (data[off + 2] << 8 | data[off + 3]) & 0xFFF8:
                    return self._fail("ip_fragment")
                size = 8
            else:
                layer = self._by_ipproto.get(proto)
                if layer is not None:
                    return layer(data, off, end, depth, src, dst)
                return self._skip(SKIP_IPPROTO_NAMES.get(proto, SKIP_OTHER_IPPROTO))
            proto = data[off]
            off += size
            if off > end:
                return self._fail("truncated_ip_ext")
        return self._fail("too_many_ext_headers")

    def _ip_in_ipv4(
        self, data: bytes, off: int, end: int, depth: int, src: bytes, dst: bytes
    ) -> Packet | None:
        if depth >= self.max_depth:
            return self._fail("too_deep")
        return self._by_ethertype[ETH_IPV4](data, off, end, depth + 1)

    def _ip_in_ipv6(
        self, data: bytes, off: int, end: int, depth: int, src: bytes, dst: bytes
    ) -> Packet | None:
        if depth >= self.max_depth:
            return self._fail("too_deep")
        return self._by_ethertype[ETH_IPV6](data, off, end, depth + 1)
