"""Decode stage: link-layer frames to TCP/UDP packets, tags and tunnels stripped.

Supported link types are Ethernet, raw IP, IPv4, IPv6, Linux cooked (SLL and
SLL2) and BSD/OpenBSD loopback; inside them 802.1Q/QinQ, MPLS (with Ethernet
pseudowires), PPPoE, IPv4/IPv6 (extension headers, AH, first fragments),
IP-in-IP, GRE, ERSPAN I/II/III, VXLAN and Geneve, nested to a bounded depth.
"""

from sensor.decode.decoder import DEFAULT_MAX_DEPTH, Decoder
from sensor.decode.numbers import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
)

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "LINKTYPE_ETHERNET",
    "LINKTYPE_IPV4",
    "LINKTYPE_IPV6",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_LOOP",
    "LINKTYPE_NULL",
    "LINKTYPE_RAW",
    "Decoder",
]
