"""BPF programs that let only packets which can matter reach Python.

Pass 1 (`candidate_filter`) keeps TCP segments whose payload starts like a
pool protocol or something that names a pool (JSON, HTTP, TLS handshake,
Stratum V2 setup, node P2P magic), DNS, and traffic libpcap cannot look
inside (tunnels, MPLS, fragments, IPv6 extension headers), which Python
decodes itself. Pass 2 (`flow_filter`) keeps every packet of the flows pass 1
found interesting, so byte counts and stream reassembly are exact.

libpcap's `vlan` and `mpls` keywords shift the offsets of everything that
follows them in the expression, whatever the branch; the expressions below
therefore put raw-offset tests first and nest the VLAN cases last.
"""

from __future__ import annotations

from collections.abc import Iterable

# First payload bytes worth a look: each a conjunction of (offset, size, value) loads.
PAYLOAD_STARTS: tuple[tuple[tuple[int, int, int], ...], ...] = (
    ((0, 1, 0x7B),),  # '{'  JSON line
    ((0, 1, 0x5B),),  # '['  JSON batch
    ((0, 4, 0x504F5354),),  # 'POST'
    ((0, 4, 0x47455420),),  # 'GET '
    ((0, 4, 0x48545450),),  # 'HTTP'
    ((0, 2, 0x1603),),  # TLS handshake record (ClientHello / ServerHello)
    ((0, 2, 0x0000), (2, 1, 0x00)),  # Stratum V2 frame: extension 0, SetupConnection
    ((0, 4, 0xF9BEB4D9),),  # Bitcoin mainnet P2P magic
    ((0, 4, 0x0B110907),),  # Bitcoin testnet3
    ((0, 4, 0xFBC0B6DB),),  # Litecoin
    ((0, 4, 0xC0C0C0C0),),  # Dogecoin
    ((0, 4, 0x01210101),),  # Monero levin signature (little-endian 0x0101010101012101)
)

_TCP4_PAYLOAD = "((tcp[12:1] & 0xf0) >> 2)"
_TCP6_PAYLOAD = "(40 + ((ip6[52:1] & 0xf0) >> 2))"
_TUNNELS = "ip proto 47 or ip6 proto 47 or udp port 4789 or udp port 6081"
_OPAQUE_IP = (
    "(ip and (ip[6:2] & 0x3fff) != 0)"  # IPv4 fragments: no TCP header to test
    " or (ip6 and ip6[6] != 6 and ip6[6] != 17)"  # IPv6 extension headers
)
ETHERNET = 1


def _starts(payload_at: str, proto: str) -> str:
    def load(delta: int, size: int, value: int) -> str:
        at = f"{payload_at} + {delta}" if delta else payload_at
        return f"{proto}[{at}:{size}] = {value:#x}"

    tests = (" and ".join(load(*part) for part in start) for start in PAYLOAD_STARTS)
    return " or ".join(f"({test})" for test in tests)


def _candidates_l3() -> str:
    v4 = f"(tcp and ({_starts(_TCP4_PAYLOAD, 'tcp')}))"
    v6 = f"(ip6 and ip6[6] = 6 and ({_starts(_TCP6_PAYLOAD, 'ip6')}))"
    return f"{v4} or {v6} or udp port 53 or {_TUNNELS} or {_OPAQUE_IP}"


def _with_encapsulation(inner: str, linktype: int) -> str:
    """`inner` for untagged, MPLS (all of it), 802.1Q and QinQ frames."""
    if linktype != ETHERNET:
        return inner
    mpls = "ether[12:2] = 0x8847 or ether[12:2] = 0x8848"
    tagged_mpls = "(ether[12:2] = 0x8100 and (ether[16:2] = 0x8847 or ether[16:2] = 0x8848))"
    # Raw-offset tests first: once `vlan` appears, later offsets are shifted.
    return f"{mpls} or {tagged_mpls} or ({inner}) or (vlan and (({inner}) or (vlan and ({inner}))))"


def _ip(address: str) -> str:
    return "ip6" if ":" in address else "ip"


def candidate_filter(linktype: int) -> str:
    """Pass 1: packets that may start, name or carry a pool conversation."""
    return _with_encapsulation(_candidates_l3(), linktype)


def network_filters(linktype: int, networks: Iterable[str]) -> list[str]:
    """Pass 1 extras: every packet to or from known pool networks, untagged or tagged.

    Kept as separate expressions (see `libpcap.UnionFilter`): hundreds of
    networks inside the encapsulation nesting take libpcap seconds to optimise.
    """
    nets = " or ".join(f"{_ip(n)} net {n}" for n in networks)
    if not nets:
        return []
    if linktype != ETHERNET:
        return [nets]
    return [nets, f"vlan and ({nets})"]


def flow_filter(
    linktype: int,
    flows: Iterable[tuple[str, int, str, int]] = (),
    servers: Iterable[tuple[str, int]] = (),
    hosts: Iterable[str] = (),
) -> str:
    """Pass 2: every packet of the given flows, servers (ip, port) and hosts; DNS; tunnels."""
    # Qualified primitives (`ip host`, `tcp port`) keep the program and libpcap's
    # optimiser small: a bare `host` also tests ARP and RARP, a bare `port` UDP and SCTP.
    terms = [
        f"({_ip(a)} host {a} and {_ip(b)} host {b} and tcp port {p} and tcp port {q})"
        for a, p, b, q in flows
    ]
    terms += [f"({_ip(ip)} host {ip} and tcp port {port})" for ip, port in servers]
    terms += [f"{_ip(ip)} host {ip}" for ip in hosts]
    inner = f"udp port 53 or {_TUNNELS} or {_OPAQUE_IP}"
    if terms:
        inner = f"{' or '.join(terms)} or {inner}"
    return _with_encapsulation(inner, linktype)
