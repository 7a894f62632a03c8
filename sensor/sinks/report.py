"""The JSON report: who mines, where, how much, over the observed window.

Built from the same records as the events, so `report` over an event log and
`--report` of a replay agree. Hash rate and power come from the flows'
estimates (sensor.estimate): a miner's rate is the hashes its flows stand for
over the span they cover, so sequential reconnects are not counted twice and
concurrent flows add up. They are sums over what is known: null where no flow
had an estimate (each flow event's `estimate_note` says why it had none).
Rates roll up per miner (by coin, and by pool: the hash power pointed at each
pool), then per organisation, organisation type, region, coin and pool.

A live daemon also hands in progress records of open flows (`progress`): their
estimate to date counts in the report it writes while they last, and is
replaced by the flow's final estimate when it ends, so that a miner connected
for days has a rate before its connection closes.

Beyond the contract: suspects say whether the miner is in the home network
(`home`), pools carry the `asn` and `country` of their address when ownership
sources know them. Both are looked up when the report is built, once per IP,
never per record. The tables themselves are in `report_tables`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import orjson

from sensor.attribute.home_net import HomeNet
from sensor.model import Estimate, FlowProgress, FlowRecord, MiningRecord, NodeRecord
from sensor.sinks import report_tables as tables
from sensor.sinks.events import iso_time
from sensor.sinks.report_tables import PoolInfo


@dataclass(slots=True)
class Rate:
    """Estimated work of one miner on one coin (or pool): hashes and joules over a span."""

    hashes: float = 0.0
    joules: float = 0.0
    powered: bool = False  # some flow had a power figure
    first: float = float("inf")
    last: float = float("-inf")

    def add(self, e: Estimate, start: float, end: float) -> None:
        self.hashes += (e.hashrate_hs or 0.0) * e.seconds
        if e.power_w is not None:
            self.joules += e.power_w * e.seconds
            self.powered = True
        self.first, self.last = min(self.first, start), max(self.last, end)

    @property
    def span(self) -> float:
        # To the microsecond, as events carry times (see estimate_flow).
        return round(self.last - self.first, 6)

    def hashrate_hs(self) -> float:
        span = self.span
        return self.hashes / span if span > 0 else 0.0

    def power_w(self) -> float | None:
        span = self.span
        return (self.joules / span if span > 0 else 0.0) if self.powered else None


def add_rate(rates: dict[Any, Rate], key: Any, e: Estimate, start: float, end: float) -> None:
    rate = rates.get(key)
    if rate is None:
        rate = rates[key] = Rate()
    rate.add(e, start, end)


@dataclass
class Suspect:
    """One miner IP and everything seen of it."""

    ip: str
    org: str | None = None
    org_type: str | None = None
    region: str | None = None
    coins: set[str] = field(default_factory=set)
    dialects: set[str] = field(default_factory=set)
    pools: set[str] = field(default_factory=set)
    wallets: set[str] = field(default_factory=set)
    first_seen: float = float("inf")
    last_seen: float = 0.0
    flows: int = 0
    egress: int = 0
    ingress: int = 0
    rates: dict[str | None, Rate] = field(default_factory=dict)  # by coin

    def hashrate_hs(self) -> float | None:
        return tables.known_sum(r.hashrate_hs() for r in self.rates.values())

    def power_w(self) -> float | None:
        return tables.known_sum(r.power_w() for r in self.rates.values())

    def add(self, rec: MiningRecord) -> None:
        f = rec.finding
        self.org, self.org_type, self.region = rec.org.name, rec.org.type, rec.org.region
        self.dialects.add(f.dialect)
        self.pools.add(rec.pool)
        if f.coin:
            self.coins.add(f.coin)
        if f.wallet:
            self.wallets.add(f.wallet)
        self.first_seen = min(self.first_seen, rec.ts)
        self.last_seen = max(self.last_seen, rec.ts)


@dataclass
class PoolSeen:
    endpoint: str
    host: str | None
    ip: str
    coins: set[str] = field(default_factory=set)
    clients: set[str] = field(default_factory=set)
    rates: dict[str, Rate] = field(default_factory=dict)  # by client IP

    def hashrate_hs(self) -> float | None:
        return tables.known_sum(r.hashrate_hs() for r in self.rates.values())

    def power_w(self) -> float | None:
        return tables.known_sum(r.power_w() for r in self.rates.values())


@dataclass(slots=True)
class _OpenFlow:
    """The latest estimate to date of a reported flow that has not ended."""

    miner_ip: str
    coin: str | None
    pool: str | None
    estimate: Estimate
    start: float
    end: float


class Home(Protocol):
    def contains(self, ip: str) -> bool: ...


class ReportBuilder:
    """A sink that accumulates suspects and pools; `build()` gives the report.

    `pool_info` gives pools their ASN and country (none without ownership
    sources); `home_net` decides suspects' `home` (default: the private ranges).
    """

    def __init__(self, pool_info: PoolInfo | None = None, home_net: Home | None = None) -> None:
        self._pool_info = pool_info
        self._home = home_net if home_net is not None else HomeNet()
        self.suspects: dict[str, Suspect] = {}
        self.pools: dict[str, PoolSeen] = {}  # by ip:port; host names as learned
        self.dialect_flows: Counter[str] = Counter()
        self.mining_flows = 0
        self.node_flows = 0
        self._open: dict[int, _OpenFlow | None] = {}  # flow id -> estimate to date

    def mining(self, rec: MiningRecord) -> None:
        self.mining_flows += 1
        self._suspect(rec).add(rec)
        self.dialect_flows[rec.finding.dialect] += 1
        pool = self._pool(rec)
        pool.host = pool.host or rec.pool_host
        pool.clients.add(rec.miner_ip)
        if rec.finding.coin:
            pool.coins.add(rec.finding.coin)
        self._open[rec.flow_id] = None

    def _suspect(self, rec: MiningRecord) -> Suspect:
        suspect = self.suspects.get(rec.miner_ip)
        if suspect is None:
            suspect = self.suspects[rec.miner_ip] = Suspect(rec.miner_ip)
        return suspect

    def _pool(self, rec: MiningRecord) -> PoolSeen:
        endpoint = f"{rec.pool_ip}:{rec.pool_port}"
        pool = self.pools.get(endpoint)
        if pool is None:
            pool = self.pools[endpoint] = PoolSeen(endpoint, rec.pool_host, rec.pool_ip)
        return pool

    def flow_end(self, rec: FlowRecord) -> None:
        self._open.pop(rec.mining.flow_id, None)
        suspect = self._suspect(rec.mining)
        suspect.add(rec.mining)
        suspect.flows += 1
        suspect.egress += rec.bytes_toserver
        suspect.ingress += rec.bytes_toclient
        suspect.first_seen = min(suspect.first_seen, rec.start)
        suspect.last_seen = max(suspect.last_seen, rec.end)
        e = rec.estimate
        if e is None or e.hashrate_hs is None:
            return  # the flow event's estimate_note says why
        add_rate(suspect.rates, rec.mining.finding.coin, e, rec.start, rec.end)
        add_rate(self._pool(rec.mining).rates, rec.mining.miner_ip, e, rec.start, rec.end)

    def progress(self, rec: FlowProgress) -> None:
        """An open flow's estimate to date (live daemon); its end replaces it."""
        e = rec.estimate
        if rec.flow_id not in self._open or e is None or e.hashrate_hs is None:
            return  # not reported here, already ended, or nothing to count yet
        start = rec.ts - e.seconds
        self._open[rec.flow_id] = _OpenFlow(
            rec.miner_ip, rec.coin, rec.pool_endpoint, e, start, rec.ts
        )

    def node(self, rec: NodeRecord) -> None:
        self.node_flows += 1

    def close(self) -> None:
        pass

    def build(self, start: float | None, end: float | None) -> dict[str, Any]:
        seconds = max((end or 0.0) - (start or 0.0), 0.0)
        suspects, pools = self.with_open_flows()
        ordered = sorted(suspects.values(), key=lambda s: s.ip)
        egress = sum(s.egress for s in ordered)
        return {
            "window": {
                "start": iso_time(start) if start is not None else None,
                "end": iso_time(end) if end is not None else None,
                "seconds": round(seconds, 6),
            },
            "totals": {
                "suspect_ips": len(ordered),
                "mining_flows": self.mining_flows,
                "pool_egress_bytes": egress,
                "pool_ingress_bytes": sum(s.ingress for s in ordered),
                "pool_egress_mbps": round(egress * 8 / 1e6 / seconds, 6) if seconds else 0.0,
                **tables.estimate_totals(ordered),
            },
            "by_coin": tables.by_coin(ordered),
            "by_org_type": tables.by_org_type(ordered),
            "by_region": tables.by_region(ordered),
            "by_org": tables.by_org(ordered),
            "suspects": [tables.suspect_row(s, self._home.contains(s.ip)) for s in ordered],
            "pools": [
                tables.pool_row(p, self._pool_info)
                for p in sorted(pools.values(), key=lambda p: p.endpoint)
            ],
        }

    def with_open_flows(self) -> tuple[dict[str, Suspect], dict[str, PoolSeen]]:
        """Suspects and pools with open flows' estimates to date added, on copies: what the
        report says now, and what a checkpoint keeps (a restart ends the open flows)."""
        suspects, pools = dict(self.suspects), dict(self.pools)
        for flow in self._open.values():
            if flow is None or flow.miner_ip not in suspects:
                continue
            suspect = suspects[flow.miner_ip]
            if suspect is self.suspects.get(flow.miner_ip):
                suspect = suspects[flow.miner_ip] = _copy_rates(suspect)
            add_rate(suspect.rates, flow.coin, flow.estimate, flow.start, flow.end)
            pool = pools.get(flow.pool or "")
            if pool is not None:
                if pool is self.pools.get(pool.endpoint):
                    pool = pools[pool.endpoint] = _copy_rates(pool)
                add_rate(pool.rates, flow.miner_ip, flow.estimate, flow.start, flow.end)
        return suspects, pools

    def write(self, path: Path, start: float | None, end: float | None) -> None:
        data = orjson.dumps(self.build(start, end), option=orjson.OPT_INDENT_2)
        path.write_bytes(data + b"\n")


def _copy_rates(holder: Any) -> Any:
    """A shallow copy whose rates can be added to without touching the original."""
    return replace(holder, rates={key: replace(rate) for key, rate in holder.rates.items()})
