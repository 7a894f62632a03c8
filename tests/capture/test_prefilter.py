"""The BPF prefilters, run by libpcap over real capture files the factory writes.

Each test writes one capture holding packets that must pass and packets that
must not, in the encapsulation under test, and compares what libpcap lets
through with the expectation, frame by frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from scapy.packet import Packet as ScapyPacket

from sensor.capture import libpcap
from sensor.capture.libpcap import PcapFile, UnionFilter, compiled
from sensor.capture.prefilter import candidate_filter, flow_filter, network_filters
from tests.factory import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    TcpSession,
    UdpExchange,
    client_hello,
    frame_bytes,
    gre,
    mpls,
    noise,
    qinq,
    vlan,
    vxlan,
    write_pcap,
)
from tests.sessions import sv2_frame

pytestmark = pytest.mark.skipif(libpcap.load() is None, reason="libpcap is not installed")

V4 = ("10.1.2.3", "198.51.100.7")
V6 = ("2001:db8::5", "2001:db8:77::9")

# First segments a miner, a pool or something naming a pool sends: pass 1 keeps them.
INTERESTING = {
    "json": b'{"id":1,"method":"mining.subscribe","params":[]}\n',
    "batch": b'[{"id":1,"method":"eth_getWork"}]\n',
    "post": b"POST / HTTP/1.1\r\nHost: pool\r\n\r\n",
    "connect": b"CONNECT pool.example:3333 HTTP/1.1\r\n\r\n",
    "tls": client_hello("xmr.pool.example"),
    "sv2": sv2_frame(0x00, b"\x00\x02\x00\x02\x00" + b"\x00" * 20),
    "btc-magic": bytes.fromhex("f9beb4d9") + b"version\x00\x00\x00\x00\x00" + b"\x00" * 20,
    "testnet-magic": bytes.fromhex("0b110907") + b"version\x00" + b"\x00" * 24,
    "ltc-magic": bytes.fromhex("fbc0b6db") + b"version\x00" + b"\x00" * 24,
    "doge-magic": bytes.fromhex("c0c0c0c0") + b"version\x00" + b"\x00" * 24,
    "levin": bytes.fromhex("0121010101010101") + b"\x00" * 25,
}
# Payloads that start nothing worth reading: pass 1 drops them.
BORING = {
    "ssh": b"SSH-2.0-OpenSSH_9.6\r\n",
    "noise": noise("prefilter/boring", 200),
    "continuation": b'"params":["x"]}\n',
    "smtp": b"220 mail.example ESMTP\r\n",
    # Pass 2 reads these for the flows pass 1 chose; alone they name no pool.
    "get": b"GET /work HTTP/1.1\r\n\r\n",
    "response": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "server-hello": bytes.fromhex("160303003a02000036") + b"\x03\x03" + b"\x00" * 52,
}


def segment(ends: tuple[str, str], sport: int, payload: bytes) -> ScapyPacket:
    """One data segment of a connection seen mid-session (distinct per source port)."""
    session = TcpSession((ends[0], sport), (ends[1], 3333), handshake=False, close=None)
    (pkt,) = session.send("client", payload).packets()
    return pkt


def handshake_and_fin(ends: tuple[str, str], sport: int) -> list[ScapyPacket]:
    """SYN, SYN-ACK, ACK, FIN/ACK both ways and the last ACK: no payload at all."""
    return TcpSession((ends[0], sport), (ends[1], 3333)).packets()


def dns(ends: tuple[str, str], sport: int, answer: bool = True) -> ScapyPacket:
    """A DNS answer (pass 1 keeps it: it may name a pool address) or a query (dropped)."""
    ex = UdpExchange((ends[0], sport), (ends[1], 53))
    side, flags = ("server", b"\x81\x80") if answer else ("client", b"\x01\x00")
    return ex.send(side, b"\x1d\x2c" + flags + b"\x00\x01" + b"\x00" * 6).packets()[0]


def ntp(ends: tuple[str, str], sport: int) -> ScapyPacket:
    ex = UdpExchange((ends[0], sport), (ends[1], 123))
    return ex.send("client", b"\x23" + b"\x00" * 47).packets()[0]


def cases(ends: tuple[str, str]) -> tuple[list[ScapyPacket], list[ScapyPacket]]:
    """(packets pass 1 must keep, packets it must drop) for one address family."""
    keep = [segment(ends, 41000 + n, data) for n, data in enumerate(INTERESTING.values())]
    keep.append(dns(ends, 42000))
    drop = [segment(ends, 43000 + n, data) for n, data in enumerate(BORING.values())]
    drop += handshake_and_fin(ends, 44000)
    drop.append(ntp(ends, 44001))
    drop.append(dns(ends, 44002, answer=False))
    return keep, drop


def tunnels() -> list[ScapyPacket]:
    """GRE and VXLAN carrying pure ACKs: pass 1 keeps them for Python to open."""
    inner = handshake_and_fin(V4, 45000)[:3]
    return [*gre(inner, "192.0.2.1", "192.0.2.2"), *vxlan(inner, "192.0.2.3", "192.0.2.4")]


def passing(
    tmp_path: Path, pkts: Sequence[ScapyPacket], expression: Callable[[int], str | UnionFilter]
) -> set:
    """The frames of `pkts` that the filter `expression(dlt)` lets through."""
    path = tmp_path / "input.pcap"
    write_pcap(path, pkts)
    with PcapFile(path) as pcap:
        dlt = pcap.linktype
    with PcapFile(path, expression(dlt)) as pcap:
        return {f.data for f in pcap.frames()}


def frames(pkts: Sequence[ScapyPacket], linktype: int = LINKTYPE_ETHERNET) -> set[bytes]:
    return {frame_bytes(p, linktype) for p in pkts}


ENCAPSULATIONS: dict[str, Callable[[list[ScapyPacket]], list[ScapyPacket]]] = {
    "untagged": lambda pkts: pkts,
    "vlan": lambda pkts: vlan(pkts, 100),
    "qinq": lambda pkts: qinq(pkts, 200, 100),
    "mpls": lambda pkts: mpls(pkts, [16001]),
    "mpls-stack": lambda pkts: mpls(pkts, [16001, 24005]),
}


# --- pass 1 ------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["v4", "v6"])
@pytest.mark.parametrize("encap", ["untagged", "vlan", "qinq"])
def test_candidates_keep_pool_starts_and_drop_the_rest(
    tmp_path: Path, family: str, encap: str
) -> None:
    keep, drop = cases(V4 if family == "v4" else V6)
    wrap = ENCAPSULATIONS[encap]
    keep, drop = wrap(keep), wrap(drop)
    assert passing(tmp_path, keep + drop, candidate_filter) == frames(keep)


@pytest.mark.parametrize("encap", ["mpls", "mpls-stack"])
def test_candidates_keep_all_of_mpls_for_python(tmp_path: Path, encap: str) -> None:
    # A label stack of any depth (and pseudowires) is for the Python decoder: all of it passes.
    keep, drop = cases(V4)
    pkts = ENCAPSULATIONS[encap](keep + drop)
    assert passing(tmp_path, pkts, candidate_filter) == frames(pkts)


@pytest.mark.parametrize("encap", ["untagged", "vlan"])
def test_candidates_keep_tunnels(tmp_path: Path, encap: str) -> None:
    carried = ENCAPSULATIONS[encap](tunnels())
    _, drop = cases(V4)
    drop = ENCAPSULATIONS[encap](drop)
    assert passing(tmp_path, carried + drop, candidate_filter) == frames(carried)


@pytest.mark.parametrize(
    "linktype",
    [LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_NULL],
)
def test_candidates_compile_and_work_for_every_written_link_type(
    tmp_path: Path, linktype: int
) -> None:
    keep, drop = cases(V4)
    keep6, drop6 = cases(V6)
    if linktype == LINKTYPE_NULL:  # see test_bsd_loopback_ipv6: all IPv6 passes
        keep, drop = keep + keep6 + drop6, drop
    else:
        keep, drop = keep + keep6, drop + drop6
    path = tmp_path / f"lt{linktype}.pcap"
    write_pcap(path, keep + drop, linktype)
    with PcapFile(path) as pcap:
        dlt = pcap.linktype  # what replay passes: libpcap's DLT (12 for LINKTYPE_RAW)
    with PcapFile(path, candidate_filter(dlt)) as pcap:
        got = {f.data for f in pcap.frames()}
    assert got == frames(keep, linktype)


def test_bsd_loopback_ipv6(tmp_path: Path) -> None:
    keep, _ = cases(V6)
    path = tmp_path / "loop6.pcap"
    write_pcap(path, keep, LINKTYPE_NULL)
    with PcapFile(path, candidate_filter(LINKTYPE_NULL)) as pcap:
        got = {f.data for f in pcap.frames()}
    assert got == frames(keep, LINKTYPE_NULL)


@pytest.mark.parametrize(
    "linktype",
    [LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_NULL],
)
def test_pass_two_and_networks_work_for_every_written_link_type(
    tmp_path: Path, linktype: int
) -> None:
    wanted = TcpSession(("10.1.2.3", 50001), ("198.51.100.7", 3333)).send("client", b"x")
    pool = TcpSession(("10.1.2.3", 50002), ("203.0.113.40", 80)).send("client", b"y")
    other = TcpSession(("10.1.2.3", 50003), ("198.51.100.8", 3333)).send("client", b"z")
    path = tmp_path / f"lt{linktype}.pcap"
    write_pcap(path, wanted.packets() + pool.packets() + other.packets(), linktype)
    with PcapFile(path) as pcap:
        dlt = pcap.linktype
    flows = flow_filter(dlt, [("10.1.2.3", 50001, "198.51.100.7", 3333)])
    nets = network_filters(dlt, ["203.0.113.0/24"])
    union = UnionFilter([compiled(dlt, e) for e in [flows, *nets]])
    with PcapFile(path, union) as pcap:
        got = {f.data for f in pcap.frames()}
    assert got == frames(wanted.packets() + pool.packets(), linktype)


# --- pass 1 extras: pool networks --------------------------------------------------------


def test_network_filters_keep_every_packet_of_pool_networks(tmp_path: Path) -> None:
    pool4, pool6 = ("10.1.2.3", "203.0.113.40"), ("2001:db8::5", "2001:db8:99::40")
    to_pools = handshake_and_fin(pool4, 46000) + handshake_and_fin(pool6, 46001)
    others = handshake_and_fin(V4, 46002) + handshake_and_fin(V6, 46003)
    nets = ["203.0.113.0/24", "2001:db8:99::/48"]
    union = UnionFilter([compiled(1, e) for e in network_filters(1, nets)])
    for wrap in (ENCAPSULATIONS["untagged"], ENCAPSULATIONS["vlan"]):
        keep, drop = wrap(to_pools), wrap(others)
        assert passing(tmp_path, keep + drop, lambda _: union) == frames(keep)


def test_network_filters_per_link_type() -> None:
    assert network_filters(1, []) == []
    assert network_filters(1, ["203.0.113.0/24"]) == [
        "ip net 203.0.113.0/24",
        "vlan and (ip net 203.0.113.0/24)",
    ]
    assert network_filters(113, ["203.0.113.0/24", "2001:db8::/32"]) == [
        "ip net 203.0.113.0/24 or ip6 net 2001:db8::/32"
    ]


# --- pass 2 ------------------------------------------------------------------------------


@pytest.mark.parametrize("encap", ["untagged", "vlan", "qinq"])
def test_flow_filter_keeps_all_packets_of_named_flows(tmp_path: Path, encap: str) -> None:
    wrap = ENCAPSULATIONS[encap]
    wanted = TcpSession(("10.1.2.3", 47000), ("198.51.100.7", 3333), acks=True)
    wanted.send("client", INTERESTING["json"]).send("server", BORING["noise"])
    wanted6 = TcpSession(("2001:db8::5", 47001), ("2001:db8:77::9", 4444))
    wanted6.send("client", BORING["ssh"])
    other_port = TcpSession(("10.1.2.3", 47002), ("198.51.100.7", 3333)).send("client", b"x")
    other_host = TcpSession(("10.1.2.4", 47000), ("198.51.100.7", 3333)).send("client", b"y")
    keep = wrap(wanted.packets() + wanted6.packets())
    # DNS is read once, in pass 1; pass 2 takes over the names it learned.
    drop = wrap(other_port.packets() + other_host.packets() + [ntp(V4, 47004), dns(V4, 47003)])
    flows = [
        ("10.1.2.3", 47000, "198.51.100.7", 3333),
        ("2001:db8::5", 47001, "2001:db8:77::9", 4444),
    ]

    def expression(dlt: int) -> str:
        return flow_filter(dlt, flows)

    assert passing(tmp_path, keep + drop, expression) == frames(keep)


def test_flow_filter_servers_and_hosts(tmp_path: Path) -> None:
    server = TcpSession(("10.9.9.9", 48000), ("198.51.100.7", 3333)).send("client", b"a")
    host = TcpSession(("10.9.9.8", 48001), ("203.0.113.5", 80)).send("server", b"b")
    other = TcpSession(("10.9.9.7", 48002), ("198.51.100.7", 3334)).send("client", b"c")
    keep = server.packets() + host.packets()

    def expression(dlt: int) -> str:
        return flow_filter(dlt, servers=[("198.51.100.7", 3333)], hosts=["203.0.113.5"])

    assert passing(tmp_path, keep + other.packets(), expression) == frames(keep)


def test_flow_filter_without_flows_keeps_tunnels_only(tmp_path: Path) -> None:
    keep = [*tunnels()]
    drop = [*handshake_and_fin(V4, 49001), ntp(V4, 49002), dns(V4, 49000)]
    assert passing(tmp_path, keep + drop, flow_filter) == frames(keep)


def test_long_polling_gets_are_candidates_and_other_gets_are_not(tmp_path: Path) -> None:
    lp = segment(V4, 46000, b"GET /LP HTTP/1.1\r\nX-Mining-Extensions: longpoll\r\n\r\n")
    lp_lower = segment(V4, 46001, b"GET /longpoll HTTP/1.1\r\n\r\n")
    page = segment(V4, 46002, b"GET /index.html HTTP/1.1\r\n\r\n")
    got = passing(tmp_path, [lp, lp_lower, page], candidate_filter)
    assert got == frames([lp, lp_lower])
