"""Link layers: pcap link-type headers, Ethernet, VLAN tags, MPLS and PPPoE."""

from __future__ import annotations

import struct

from sensor.decode.base import LayerBase
from sensor.decode.numbers import (
    AF_INET6_VALUES,
    AF_INET_VALUES,
    ARPHRD_NETLINK,
    ETH_IPV4,
    ETH_IPV6,
    ETH_TEB,
    PPP_IPV4,
    PPP_IPV6,
)
from sensor.model import Packet

_U32_LE = struct.Struct("<I")
_U32_BE = struct.Struct("!I")
_SLL_HATYPE_PROTO = struct.Struct("!2xH10xH")  # hatype at 2, protocol at 14
_SLL2_PROTO_HATYPE = struct.Struct("!H6xH")  # protocol at 0, hatype at 8

# Most labels seen on real links are 1-3 deep; each one counts as a level.
_MPLS_LABEL = 4
_MPLS_CONTROL_WORD = 4


class LinkLayers(LayerBase):
    """Decoders for everything between the capture header and the IP header."""

    def _ether(self, data: bytes, off: int, end: int, depth: int) -> Packet | None:
        if end - off < 14:
            return self._fail("truncated_ether")
        etype = data[off + 12] << 8 | data[off + 13]
        layer = self._by_ethertype.get(etype)
        if layer is not None:  # the common case: IPv4/IPv6/VLAN, one lookup
            return layer(data, off + 14, end, depth)
        return self._ethertype(etype, data, off + 14, end, depth)

    def _vlan(self, data: bytes, off: int, end: int, depth: int) -> Packet | None:
        """One 802.1Q / 802.1ad tag: 2 bytes TCI, 2 bytes inner ethertype."""
        if end - off < 4:
            return self._fail("truncated_vlan")
        if depth >= self.max_depth:
            return self._fail("too_deep")
        etype = data[off + 2] << 8 | data[off + 3]
        return self._ethertype(etype, data, off + 4, end, depth + 1)

    def _mpls(self, data: bytes, off: int, end: int, depth: int) -> Packet | None:
        """Pop labels to bottom of stack, then guess the payload from its first nibble."""
        while True:
            if end - off < _MPLS_LABEL:
                return self._fail("truncated_mpls")
            if depth >= self.max_depth:
                return self._fail("too_deep")
            depth += 1
            bottom = data[off + 2] & 1
            off += _MPLS_LABEL
            if bottom:
                break
        if off >= end:
            return self._fail("truncated_mpls")
        nibble = data[off] >> 4
        if nibble == 4:
            return self._by_ethertype[ETH_IPV4](data, off, end, depth)
        if nibble == 6:
            return self._by_ethertype[ETH_IPV6](data, off, end, depth)
        if nibble == 0:  # Ethernet pseudowire behind a control word (RFC 4385)
            if end - off < _MPLS_CONTROL_WORD:
                return self._fail("truncated_mpls")
            return self._by_ethertype[ETH_TEB](data, off + _MPLS_CONTROL_WORD, end, depth)
        # 1 is the associated channel (OAM); anything else we cannot tell apart.
        return self._skip("mpls_other")

    def _pppoe(self, data: bytes, off: int, end: int, depth: int) -> Packet | None:
        """PPPoE session: 6-byte PPPoE header, then a 2-byte PPP protocol."""
        if end - off < 8:
            return self._fail("truncated_pppoe")
        if depth >= self.max_depth:
            return self._fail("too_deep")
        proto = data[off + 6] << 8 | data[off + 7]
        if proto == PPP_IPV4:
            return self._by_ethertype[ETH_IPV4](data, off + 8, end, depth + 1)
        if proto == PPP_IPV6:
            return self._by_ethertype[ETH_IPV6](data, off + 8, end, depth + 1)
        return self._skip("ppp_other")

    def _sll(self, data: bytes, off: int, end: int, depth: int) -> Packet | None:
        """Linux cooked capture v1: 16 bytes, ethertype last."""
        if end - off < 16:
            return self._fail("truncated_link")
        hatype, proto = _SLL_HATYPE_PROTO.unpack_from(data, off)
        if hatype == ARPHRD_NETLINK:
            return self._skip("netlink")
        return self._ethertype(proto, data, off + 16, end, depth)

    def _sll2(self, data: bytes, off: int, end: int, depth: int) -> Packet | None:
        """Linux cooked capture v2: 20 bytes, ethertype first."""
        if end - off < 20:
            return self._fail("truncated_link")
        proto, hatype = _SLL2_PROTO_HATYPE.unpack_from(data, off)
        if hatype == ARPHRD_NETLINK:
            return self._skip("netlink")
        return self._ethertype(proto, data, off + 20, end, depth)

    def _null(self, data: bytes, off: int, end: int, depth: int) -> Packet | None:
        """BSD loopback: the AF is in the byte order of the host that captured."""
        if end - off < 4:
            return self._fail("truncated_link")
        family = _U32_LE.unpack_from(data, off)[0]
        if family > 0xFFFF:  # written big-endian; AF values are all small
            family = _U32_BE.unpack_from(data, off)[0]
        return self._loopback_family(family, data, off + 4, end, depth)

    def _loop(self, data: bytes, off: int, end: int, depth: int) -> Packet | None:
        """OpenBSD loopback: like BSD loopback but always network byte order."""
        if end - off < 4:
            return self._fail("truncated_link")
        family = _U32_BE.unpack_from(data, off)[0]
        return self._loopback_family(family, data, off + 4, end, depth)

    def _loopback_family(
        self, family: int, data: bytes, off: int, end: int, depth: int
    ) -> Packet | None:
        if family in AF_INET_VALUES:
            return self._by_ethertype[ETH_IPV4](data, off, end, depth)
        if family in AF_INET6_VALUES:
            return self._by_ethertype[ETH_IPV6](data, off, end, depth)
        return self._skip("other_address_family")
