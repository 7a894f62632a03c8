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

from collections.abc import Iterable, Sequence
from functools import cache

from sensor.capture.bpfgen import address_set_program
from sensor.capture.errors import CaptureError
from sensor.capture.libpcap import Filter, GeneratedFilter, UnionFilter, compiled

# First payload bytes worth a look: each a conjunction of (offset, size, value) loads.
PAYLOAD_STARTS: tuple[tuple[tuple[int, int, int], ...], ...] = (
    ((0, 1, 0x7B),),  # '{'  JSON line
    ((0, 1, 0x5B),),  # '['  JSON batch
    # HTTP requests a miner sends (getwork is POSTed) or a proxy tunnel; GETs,
    # responses and later segments are read in pass 2 for the flows chosen here.
    ((0, 4, 0x504F5354),),  # 'POST'
    ((0, 4, 0x434F4E4E),),  # 'CONN'ECT
    ((0, 4, 0x47455420), (4, 2, 0x2F4C)),  # 'GET /L': getwork long polling (/LP, /LongPoll)
    ((0, 4, 0x47455420), (4, 2, 0x2F6C)),  # 'GET /l'  (/lp, /longpoll)
    ((0, 2, 0x1603), (5, 1, 0x01)),  # TLS handshake record carrying a ClientHello
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
LOOPBACK = (0, 108)  # DLT_NULL, DLT_LOOP


def _starts(payload_at: str, proto: str) -> str:
    def load(delta: int, size: int, value: int) -> str:
        at = f"{payload_at} + {delta}" if delta else payload_at
        return f"{proto}[{at}:{size}] = {value:#x}"

    tests = (" and ".join(load(*part) for part in start) for start in PAYLOAD_STARTS)
    return " or ".join(f"({test})" for test in tests)


def _candidates_l3() -> str:
    v4 = f"(tcp and ({_starts(_TCP4_PAYLOAD, 'tcp')}))"
    v6 = f"(ip6 and ip6[6] = 6 and ({_starts(_TCP6_PAYLOAD, 'ip6')}))"
    # Ethereum RLPx has no clear-text magic: its default port lets the node
    # recogniser see it (a crypto_node event, never mining).
    rlpx = "tcp port 30303"
    dns = "udp src port 53"  # answers name pool addresses; queries say nothing more
    return f"{v4} or {v6} or {rlpx} or {dns} or {_TUNNELS} or {_OPAQUE_IP}"


def _with_encapsulation(inner: str, linktype: int) -> str:
    """`inner` for untagged, MPLS (all of it), 802.1Q and QinQ frames."""
    if linktype in LOOPBACK:
        # libpcap's `ip6` on loopback tests this host's AF_INET6 (10 on Linux)
        # while BSD and macOS captures carry 24, 28 or 30: pass all but IPv4.
        return f"({inner}) or not ip"
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
    """Libpcap expressions for every packet to or from `networks`, untagged or tagged.

    Linear in the number of networks; `address_filter` prefers a generated
    binary search for IPv4 and leaves only what it cannot do to these.
    """
    nets = " or ".join(f"{_ip(n)} net {n}" for n in networks)
    if not nets:
        return []
    if linktype != ETHERNET:
        return [nets]
    return [nets, f"vlan and ({nets})"]


def address_filter(linktype: int, networks: Sequence[str]) -> list[Filter | GeneratedFilter]:
    """Filter parts accepting packets from or to `networks`: generated code for
    IPv4 on Ethernet and raw IP (log n a packet), libpcap expressions otherwise."""
    program = address_set_program(linktype, networks)
    rest = [n for n in networks if ":" in n] if program is not None else list(networks)
    parts: list[Filter | GeneratedFilter] = []
    if program is not None:
        parts.append(GeneratedFilter(program, f"{len(networks) - len(rest)} IPv4 networks"))
    parts += [compiled(linktype, e) for e in network_filters(linktype, rest)]
    return parts


@cache
def _scan_program(linktype: int, networks: tuple[str, ...]) -> UnionFilter:
    return UnionFilter(
        [compiled(linktype, candidate_filter(linktype)), *address_filter(linktype, networks)]
    )


def scan_program(linktype: int, networks: Sequence[str]) -> UnionFilter | None:
    """Pass 1 as one program; None when libpcap cannot filter this link type."""
    try:
        return _scan_program(linktype, tuple(networks))
    except CaptureError:
        return None


MAX_FLOW_TERMS = 150  # exact flow terms up to here; libpcap's optimiser is slow beyond


def flow_program(
    linktype: int, flows: Sequence[tuple[str, int, str, int]], hosts: Sequence[str]
) -> UnionFilter | None:
    """Pass 2 as one program: exact flows when few, else every packet of their servers.

    The server form is a superset; the pipeline admits exactly the wanted flows.
    """
    try:
        if len(flows) + len(hosts) <= MAX_FLOW_TERMS:
            return UnionFilter([compiled(linktype, flow_filter(linktype, flows, (), hosts))])
        servers = sorted({b for _, _, b, _ in flows} | set(hosts))
        base = compiled(linktype, flow_filter(linktype))
        return UnionFilter([base, *address_filter(linktype, servers)])
    except CaptureError:
        return None


def flow_filter(
    linktype: int,
    flows: Iterable[tuple[str, int, str, int]] = (),
    servers: Iterable[tuple[str, int]] = (),
    hosts: Iterable[str] = (),
) -> str:
    """Pass 2: every packet of the given flows, servers (ip, port) and hosts; tunnels.

    DNS is not read again: pass 2 takes over the names pass 1 learned.
    """
    # Qualified primitives (`ip host`, `tcp port`) keep the program and libpcap's
    # optimiser small: a bare `host` also tests ARP and RARP, a bare `port` UDP and SCTP.
    terms = [
        f"({_ip(a)} host {a} and {_ip(b)} host {b} and tcp port {p} and tcp port {q})"
        for a, p, b, q in flows
    ]
    terms += [f"({_ip(ip)} host {ip} and tcp port {port})" for ip, port in servers]
    terms += [f"{_ip(ip)} host {ip}" for ip in hosts]
    inner = f"{_TUNNELS} or {_OPAQUE_IP}"
    if terms:
        inner = f"{' or '.join(terms)} or {inner}"
    return _with_encapsulation(inner, linktype)
