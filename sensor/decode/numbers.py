"""Protocol numbers the decoder dispatches on, declared as data.

The skip-name tables give every frame we decode correctly but do not need
(ARP, ICMP, ...) a short, bounded name: the names become metric label values,
so anything not listed falls into one catch-all name instead of its number.
"""

from __future__ import annotations

# pcap LINKTYPE_* values (tcpdump.org/linktypes.html).
LINKTYPE_NULL = 0  # BSD loopback: 4-byte AF in the capturing host's byte order
LINKTYPE_ETHERNET = 1
LINKTYPE_DLT_RAW_12 = 12  # DLT_RAW as some systems write it into files
LINKTYPE_DLT_RAW_14 = 14  # DLT_RAW on OpenBSD
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108  # OpenBSD loopback: 4-byte AF in network byte order
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

# Address families found in loopback headers. AF_INET6 differs by OS:
# Linux 10, NetBSD/OpenBSD/BSD-derived 24, FreeBSD 28, macOS/Darwin 30.
AF_INET_VALUES = frozenset({2})
AF_INET6_VALUES = frozenset({10, 24, 28, 30})

# Ethertypes (also used as GRE and Geneve protocol types).
ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_VLAN = 0x8100
ETH_QINQ = 0x88A8
ETH_QINQ_OLD = 0x9100  # pre-802.1ad vendor QinQ tags
ETH_QINQ_OLD2 = 0x9200
ETH_MPLS_UC = 0x8847
ETH_MPLS_MC = 0x8848
ETH_PPPOE_SESSION = 0x8864
ETH_TEB = 0x6558  # transparent Ethernet bridging (Ethernet inside GRE/Geneve)
ETH_ERSPAN_2 = 0x88BE  # ERSPAN type I (no header) and type II (8-byte header)
ETH_ERSPAN_3 = 0x22EB
VLAN_TYPES = (ETH_VLAN, ETH_QINQ, ETH_QINQ_OLD, ETH_QINQ_OLD2)

# PPP protocol numbers inside PPPoE sessions.
PPP_IPV4 = 0x0021
PPP_IPV6 = 0x0057

# ARPHRD_* value of a netlink capture in Linux cooked headers: not packets.
ARPHRD_NETLINK = 824

# IP protocol numbers.
IPPROTO_HOPOPTS = 0
IPPROTO_IPIP = 4
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_IPV6 = 41
IPPROTO_ROUTING = 43
IPPROTO_FRAGMENT = 44
IPPROTO_GRE = 47
IPPROTO_ESP = 50
IPPROTO_AH = 51
IPPROTO_NONE = 59
IPPROTO_DSTOPTS = 60
# IPv6 extension headers laid out as (next header, length in 8-octet units - 1).
IPV6_GENERIC_EXT = frozenset({IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS, 135, 139, 140})

# UDP ports of UDP-carried tunnels (IANA assignments).
VXLAN_PORT = 4789
GENEVE_PORT = 6081

SKIP_ETHERTYPE_NAMES: dict[int, str] = {
    0x0806: "arp",
    0x8035: "rarp",
    0x0842: "wake_on_lan",
    0x8137: "ipx",
    0x8809: "slow_protocols",
    0x8863: "pppoe_discovery",
    0x888E: "eapol",
    0x88CC: "lldp",
    0x88E5: "macsec",
    0x88E7: "pbb",
    0x88F7: "ptp",
    0x8902: "cfm",
    0x8926: "vntag",
    0x893F: "etag",
    0x9000: "loopback",
}
SKIP_OTHER_ETHERTYPE = "other_ethertype"
SKIP_LLC = "llc"  # 802.3 length field instead of an ethertype (STP, CDP, ...)

SKIP_IPPROTO_NAMES: dict[int, str] = {
    1: "icmp",
    2: "igmp",
    33: "dccp",
    IPPROTO_ESP: "esp",
    58: "icmpv6",
    IPPROTO_NONE: "no_next_header",
    88: "eigrp",
    89: "ospf",
    97: "etherip",
    103: "pim",
    112: "vrrp",
    115: "l2tp",
    132: "sctp",
    136: "udplite",
}
SKIP_OTHER_IPPROTO = "other_ip_proto"
