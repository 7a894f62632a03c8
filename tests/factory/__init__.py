"""A small traffic factory for tests: scripted conversations -> real pcap/pcapng files.

    from tests.factory import TcpSession, vlan, write_pcapng
    from tests.sessions import SCRIPTS

    s = TcpSession(("10.1.2.3", 50000), ("198.51.100.7", 3333), mss=200)
    pkts = s.script(SCRIPTS["stratum_v1_btc"].steps).packets()
    write_pcapng(tmp_path / "btc.pcapng", vlan(pkts, 100))

Packets are scapy packets with `.time` set; lists from several conversations
are interleaved with `merge`. Output is deterministic: the same calls write
the same bytes.
"""

from __future__ import annotations

from tests.factory.background import (
    POOL_PORTS,
    app_data,
    broker_exchange,
    client_hello,
    http_get,
    jsonrpc_exchange,
    server_hello,
    syn_scan,
    tls_session,
    xmpp_session,
)
from tests.factory.common import (
    CLIENT,
    SERVER,
    T0,
    Endpoint,
    mac_for,
    merge,
    noise,
    shift,
)
from tests.factory.encap import erspan, ether, gre, l3, mpls, qinq, vlan, vxlan
from tests.factory.tcp import Segment, TcpSession, cut, syn_probe
from tests.factory.udp import UdpExchange, dns_answer, dns_lookup, dns_query
from tests.factory.writers import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    LINKTYPES,
    frame_bytes,
    write_pcap,
    write_pcapng,
)

__all__ = [
    "CLIENT",
    "LINKTYPES",
    "LINKTYPE_ETHERNET",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_NULL",
    "LINKTYPE_RAW",
    "POOL_PORTS",
    "SERVER",
    "T0",
    "Endpoint",
    "Segment",
    "TcpSession",
    "UdpExchange",
    "app_data",
    "broker_exchange",
    "client_hello",
    "cut",
    "dns_answer",
    "dns_lookup",
    "dns_query",
    "erspan",
    "ether",
    "frame_bytes",
    "gre",
    "http_get",
    "jsonrpc_exchange",
    "l3",
    "mac_for",
    "merge",
    "mpls",
    "noise",
    "qinq",
    "server_hello",
    "shift",
    "syn_probe",
    "syn_scan",
    "tls_session",
    "vlan",
    "vxlan",
    "write_pcap",
    "write_pcapng",
    "xmpp_session",
]
