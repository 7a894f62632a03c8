"""UDP exchanges: generic datagrams and DNS lookups built with scapy's DNS layer."""

from __future__ import annotations

from collections.abc import Sequence

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import UDP
from scapy.packet import Packet, Raw

from tests.factory.common import CLIENT, T0, Endpoint, check_side, ip_layer, stamp


class UdpExchange:
    """Datagrams between a client and a server, in the order they are sent."""

    def __init__(
        self,
        client: Endpoint = ("10.1.2.3", 53000),
        server: Endpoint = ("192.0.2.53", 53),
        *,
        start: float = T0,
        gap: float = 0.005,
        ttl: int = 64,
    ) -> None:
        self.client, self.server = client, server
        self.gap, self.ttl = gap, ttl
        self._clock = start
        self._first = True
        self._pkts: list[Packet] = []

    def send(self, side: str, data: bytes | Packet, *, at: float | None = None) -> UdpExchange:
        """One datagram from `side`; `data` is payload bytes or a scapy layer (e.g. DNS)."""
        if at is not None:
            if not self._first and at < self._clock:
                raise ValueError(f"send at {at} is before the previous datagram ({self._clock})")
            self._clock = at
        elif not self._first:
            self._clock += self.gap
        self._first = False
        to_server = check_side(side) == CLIENT
        src, dst = (self.client, self.server) if to_server else (self.server, self.client)
        ident = len(self._pkts) + 1
        body = data if isinstance(data, Packet) else Raw(load=bytes(data))
        pkt = ip_layer(src[0], dst[0], ttl=self.ttl, ident=ident) / UDP(sport=src[1], dport=dst[1])
        self._pkts.append(stamp(pkt / body, self._clock))
        return self

    def packets(self) -> list[Packet]:
        return list(self._pkts)


def dns_query(name: str, qid: int, qtype: str = "A") -> Packet:
    return DNS(id=qid, rd=1, qd=[DNSQR(qname=name, qtype=qtype)])


def dns_answer(name: str, qid: int, qtype: str, addrs: Sequence[str], ttl: int = 300) -> Packet:
    """The answer to `dns_query`: one record per address, NXDOMAIN when there are none."""
    records = [DNSRR(rrname=name, type=qtype, ttl=ttl, rdata=a) for a in addrs]
    return DNS(
        id=qid,
        qr=1,
        rd=1,
        ra=1,
        rcode=0 if records else 3,
        qd=[DNSQR(qname=name, qtype=qtype)],
        an=records,
    )


def dns_lookup(
    client: Endpoint,
    server: Endpoint,
    name: str,
    *,
    a: Sequence[str] = (),
    aaaa: Sequence[str] = (),
    qid: int = 0x1D2C,
    start: float = T0,
    ttl: int = 300,
) -> list[Packet]:
    """A resolver lookup of `name`: an A query and answer, then AAAA if `aaaa` is given.
    With neither, the A query gets NXDOMAIN."""
    ex = UdpExchange(client, server, start=start)
    ex.send(CLIENT, dns_query(name, qid, "A"))
    ex.send("server", dns_answer(name, qid, "A", a, ttl))
    if aaaa:
        ex.send(CLIENT, dns_query(name, qid + 1, "AAAA"))
        ex.send("server", dns_answer(name, qid + 1, "AAAA", aaaa, ttl))
    return ex.packets()
