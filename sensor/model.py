"""Records that cross stage boundaries: capture -> decode -> flows -> detect -> sinks.

Each stage hands the next one of these and nothing else, so a stage can be
tested by building its input records directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

TCP = 6
UDP = 17
PROTO_NAMES = {TCP: "TCP", UDP: "UDP"}


@dataclass(slots=True)
class Frame:
    """One captured link-layer frame, as read from a file or a socket.

    Not frozen: a frozen dataclass's constructor costs twice as much
    (measured 1.1 µs vs 0.56 µs), and a frame is built for every packet read.
    """

    ts: float
    linktype: int
    data: bytes
    wire_len: int
    source: str  # file name in replay, interface name live


@dataclass(slots=True)
class Packet:
    """A decoded transport segment (or datagram), tunnels and tags stripped."""

    ts: float
    src: str
    dst: str
    sport: int
    dport: int
    proto: int
    payload: bytes
    wire_len: int
    tcp_flags: int = 0
    seq: int = 0
    source: str = ""


class Side(IntEnum):
    """Direction within a flow: ORIG sent the flow's first packet (or its SYN)."""

    ORIG = 0
    RESP = 1

    @property
    def other(self) -> Side:
        return Side.RESP if self is Side.ORIG else Side.ORIG


class Confidence:
    SUSPECTED = "suspected"
    CONFIRMED = "confirmed"


DIALECTS = (
    "stratum-v1",
    "ethereum-stratum",
    "ethproxy",
    "cryptonote",
    "getwork",
    "grin",
    "stratum-v2",
    "tls",
    "endpoint",
)


@dataclass(slots=True)
class Finding:
    """What a dialect detector concluded about one flow, with the evidence."""

    dialect: str
    confidence: str
    miner_side: Side
    rule_id: str
    evidence: list[str] = field(default_factory=list)
    coin: str | None = None
    algorithm: str | None = None
    host: str | None = None
    login: str | None = None
    wallet: str | None = None
    worker: str | None = None
    agent: str | None = None
    difficulty: float | None = None
    shares: int = 0
    shares_accepted: int = 0
    shares_rejected: int = 0
    # Sums over shares of the difficulty in force for each one's job (vardiff-proof
    # work): submitted and accepted. None where the detector does not keep them.
    submitted_work: float | None = None
    accepted_work: float | None = None
    reported_hashrate_hs: float | None = None

    @property
    def confirmed(self) -> bool:
        return self.confidence == Confidence.CONFIRMED


@dataclass(slots=True)
class Attribution:
    """Who owns a miner IP (filled in by the attribute stage)."""

    name: str | None = None
    type: str | None = None
    region: str | None = None
    asn: int | None = None
    source: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2
    asn_org: str | None = None
    network: str | None = None  # the prefix that matched, from the first source that knew the IP
    identifiers: tuple[tuple[str, str], ...] = ()  # registry extras: registration number, contact

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "region": self.region,
            "asn": self.asn,
            "source": self.source,
            "country": self.country,
            "asn_org": self.asn_org,
            "network": self.network,
            "identifiers": dict(self.identifiers),
        }


@dataclass(slots=True)
class MiningRecord:
    """A detected mining flow, oriented miner -> pool, as the sinks receive it."""

    flow_id: int
    ts: float  # when the flow was first confirmed (or, if never, when it ended)
    proto: str
    miner_ip: str
    miner_port: int
    pool_ip: str
    pool_port: int
    pool: str  # host:port when a host name is known, else ip:port
    pool_host: str | None
    finding: Finding
    org: Attribution
    source: str = ""  # pcap file name in replay, interface live


@dataclass(slots=True)
class Estimate:
    """Hash rate and power of one mining flow, from its shares (see sensor.estimate).

    Figures are null where the protocol does not say enough; `note` then says why,
    so a report can state what it left out instead of guessing silently.
    """

    hashrate_hs: float | None = None
    low_hs: float | None = None  # 90% confidence interval from the share count
    high_hs: float | None = None
    power_w: float | None = None
    seconds: float = 0.0  # the observed time the rate is over
    note: str | None = None


@dataclass(slots=True)
class FlowRecord:
    """The end of a flow that carried a mining event; counts are miner -> pool."""

    mining: MiningRecord
    pkts_toserver: int
    pkts_toclient: int
    bytes_toserver: int
    bytes_toclient: int
    start: float
    end: float
    state: str
    reason: str
    estimate: Estimate | None = None


@dataclass(slots=True)
class NodeRecord:
    """A cryptocurrency node P2P flow (not mining)."""

    flow_id: int
    ts: float
    proto: str
    src_ip: str
    src_port: int
    dest_ip: str
    dest_port: int
    protocol: str
    source: str = ""


@dataclass(slots=True)
class FlowProgress:
    """Bytes a reported, still-open mining flow carried since its last progress record.

    The live daemon sends these every few seconds so that pool bytes reach the
    metrics while a long flow lasts; the flow's final record still has totals.
    """

    flow_id: int
    ts: float
    miner_ip: str
    coin: str | None
    org_type: str | None
    egress: int  # miner -> pool, since the last progress
    ingress: int
    algorithm: str | None = None
    # The flow's estimate to date (its shares so far over its time so far), so that
    # the hash-rate and power gauges follow a long flow instead of waiting for its end.
    estimate: Estimate | None = None
    pool_endpoint: str | None = None  # "ip:port", as the report keys pools
