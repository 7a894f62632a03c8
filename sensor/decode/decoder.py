"""The decode stage: a captured Frame in, a TCP/UDP Packet (or None) out.

Headers are read with precompiled structs at offsets into the frame's bytes,
and each layer picks the next from a dispatch table, so an untagged
Ethernet/IPv4/TCP frame costs a handful of calls and one Packet object. The
payload slice is the only copy made.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from sensor.decode import numbers as n
from sensor.decode.base import IpLayer, Layer, UdpTunnel
from sensor.decode.ip import IpLayers
from sensor.decode.link import LinkLayers
from sensor.decode.transport import TransportLayers
from sensor.decode.tunnels import TunnelLayers
from sensor.model import Frame, Packet

DEFAULT_MAX_DEPTH = 8


class Decoder(LinkLayers, IpLayers, TransportLayers, TunnelLayers):
    """Decodes frames of the supported link types down to TCP or UDP.

    `errors` counts frames that were broken or used something unsupported,
    by short reason; `skipped` counts well-formed frames that carry no TCP or
    UDP over IP (ARP, ICMP, ...), by protocol name. Both key sets are bounded,
    so they can become metric labels. One Decoder is not thread-safe: give
    each capture thread its own.

    `max_depth` bounds encapsulation levels (each VLAN tag, MPLS label, GRE,
    VXLAN, Geneve or IP-in-IP header is one); deeper frames count as
    `too_deep`. `vxlan_ports` and `geneve_ports` name the UDP destination
    ports decapsulated (some Linux setups use 8472 for VXLAN).
    """

    def __init__(
        self,
        max_depth: int = DEFAULT_MAX_DEPTH,
        vxlan_ports: Iterable[int] = (n.VXLAN_PORT,),
        geneve_ports: Iterable[int] = (n.GENEVE_PORT,),
    ) -> None:
        self._init_state(max_depth)
        self._by_linktype = self._linktype_table()
        self._by_ethertype = self._ethertype_table()
        self._by_ipproto = self._ipproto_table()
        tunnels: dict[int, UdpTunnel] = {port: self._geneve for port in geneve_ports}
        tunnels.update({port: self._vxlan for port in vxlan_ports})
        self._udp_tunnels = tunnels

    def decode(self, frame: Frame) -> Packet | None:
        """The TCP/UDP packet inside `frame`, or None (counted in errors/skipped)."""
        self._frame = frame
        layer = self._by_linktype.get(frame.linktype)
        if layer is None:
            return self._fail("unsupported_linktype")
        data = frame.data
        try:
            return layer(data, 0, len(data), 0)
        except (IndexError, struct.error, ValueError, TypeError):
            # Every read is bounds-checked first; this only keeps a decoder bug
            # from stopping the capture loop. The fuzz tests assert it stays 0.
            return self._fail("internal_error")

    def supports(self, linktype: int) -> bool:
        """Whether frames of this pcap link type can be decoded."""
        return linktype in self._by_linktype

    def _linktype_table(self) -> dict[int, Layer]:
        return {
            n.LINKTYPE_ETHERNET: self._ether,
            n.LINKTYPE_RAW: self._raw_ip,
            n.LINKTYPE_DLT_RAW_12: self._raw_ip,
            n.LINKTYPE_DLT_RAW_14: self._raw_ip,
            n.LINKTYPE_IPV4: self._ipv4,
            n.LINKTYPE_IPV6: self._ipv6,
            n.LINKTYPE_LINUX_SLL: self._sll,
            n.LINKTYPE_LINUX_SLL2: self._sll2,
            n.LINKTYPE_NULL: self._null,
            n.LINKTYPE_LOOP: self._loop,
        }

    def _ethertype_table(self) -> dict[int, Layer]:
        table: dict[int, Layer] = {
            n.ETH_IPV4: self._ipv4,
            n.ETH_IPV6: self._ipv6,
            n.ETH_MPLS_UC: self._mpls,
            n.ETH_MPLS_MC: self._mpls,
            n.ETH_PPPOE_SESSION: self._pppoe,
            n.ETH_TEB: self._ether,
        }
        table.update({vlan: self._vlan for vlan in n.VLAN_TYPES})
        return table

    def _ipproto_table(self) -> dict[int, IpLayer]:
        return {
            n.IPPROTO_TCP: self._tcp,
            n.IPPROTO_UDP: self._udp,
            n.IPPROTO_GRE: self._gre,
            n.IPPROTO_IPIP: self._ip_in_ipv4,
            n.IPPROTO_IPV6: self._ip_in_ipv6,
        }
