"""The JSON report: who mines, where, how much, over the observed window.

Built from the same records as the events, so `report` over an event log and
`--report` of a replay agree. Hash rate and power come from the flows'
estimates (sensor.estimate): a miner's rate is the hashes its flows stand for
over the span they cover, so sequential reconnects are not counted twice and
concurrent flows add up. They are sums over what is known: null where no flow
had an estimate (each flow event's `estimate_note` says why it had none).

Beyond the contract: suspects say whether the miner is in the home network
(`home`), pools carry the `asn` and `country` of their address when ownership
sources know them. Both are looked up when the report is built, once per IP,
never per record.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from sensor.attribute.home_net import HomeNet
from sensor.model import Estimate, FlowRecord, MiningRecord, NodeRecord
from sensor.sinks.events import iso_time


@dataclass(slots=True)
class Rate:
    """Estimated work of one miner on one coin: hashes and joules over a span."""

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
        return _sum(r.hashrate_hs() for r in self.rates.values())

    def power_w(self) -> float | None:
        return _sum(r.power_w() for r in self.rates.values())

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


class PoolInfo(Protocol):
    """What the report asks of ownership sources about a pool address (OwnershipResolver)."""

    def pool_info(self, ip: str) -> tuple[int | None, str | None]: ...


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

    def mining(self, rec: MiningRecord) -> None:
        self.mining_flows += 1
        self._suspect(rec).add(rec)
        self.dialect_flows[rec.finding.dialect] += 1
        endpoint = f"{rec.pool_ip}:{rec.pool_port}"
        pool = self.pools.get(endpoint)
        if pool is None:
            pool = self.pools[endpoint] = PoolSeen(endpoint, rec.pool_host, rec.pool_ip)
        pool.host = pool.host or rec.pool_host
        pool.clients.add(rec.miner_ip)
        if rec.finding.coin:
            pool.coins.add(rec.finding.coin)

    def _suspect(self, rec: MiningRecord) -> Suspect:
        suspect = self.suspects.get(rec.miner_ip)
        if suspect is None:
            suspect = self.suspects[rec.miner_ip] = Suspect(rec.miner_ip)
        return suspect

    def flow_end(self, rec: FlowRecord) -> None:
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
        coin = rec.mining.finding.coin
        rate = suspect.rates.get(coin)
        if rate is None:
            rate = suspect.rates[coin] = Rate()
        rate.add(e, rec.start, rec.end)

    def node(self, rec: NodeRecord) -> None:
        self.node_flows += 1

    def close(self) -> None:
        pass

    def build(self, start: float | None, end: float | None) -> dict[str, Any]:
        seconds = max((end or 0.0) - (start or 0.0), 0.0)
        suspects = sorted(self.suspects.values(), key=lambda s: s.ip)
        egress = sum(s.egress for s in suspects)
        return {
            "window": {
                "start": iso_time(start) if start is not None else None,
                "end": iso_time(end) if end is not None else None,
                "seconds": round(seconds, 6),
            },
            "totals": {
                "suspect_ips": len(suspects),
                "mining_flows": self.mining_flows,
                "pool_egress_bytes": egress,
                "pool_ingress_bytes": sum(s.ingress for s in suspects),
                "pool_egress_mbps": round(egress * 8 / 1e6 / seconds, 6) if seconds else 0.0,
                **_estimate_totals(suspects),
            },
            "by_coin": _by_coin(suspects),
            "by_org_type": _by_org_type(suspects),
            "by_region": _by_key(suspects, "region"),
            "by_org": _by_org(suspects),
            "suspects": [_suspect_row(s, self._home.contains(s.ip)) for s in suspects],
            "pools": [self._pool_row(p) for p in sorted(self.pools.values(), key=_endpoint)],
        }

    def _pool_row(self, p: PoolSeen) -> dict[str, Any]:
        coin = sorted(p.coins)[0] if len(p.coins) == 1 else None
        asn, country = self._pool_info.pool_info(p.ip) if self._pool_info else (None, None)
        return {
            "endpoint": p.endpoint,
            "host": p.host,
            "coin": coin,
            "clients": len(p.clients),
            "asn": asn,
            "country": country,
        }

    def write(self, path: Path, start: float | None, end: float | None) -> None:
        data = orjson.dumps(self.build(start, end), option=orjson.OPT_INDENT_2)
        path.write_bytes(data + b"\n")


def _endpoint(p: PoolSeen) -> str:
    return p.endpoint


def _suspect_row(s: Suspect, home: bool) -> dict[str, Any]:
    return {
        "ip": s.ip,
        "org": s.org,
        "org_type": s.org_type,
        "region": s.region,
        "coins": sorted(s.coins),
        "dialects": sorted(s.dialects),
        "pools": sorted(s.pools),
        "wallets": sorted(s.wallets),
        "first_seen": iso_time(s.first_seen),
        "last_seen": iso_time(s.last_seen),
        "pool_egress_bytes": s.egress,
        "hashrate_hs": s.hashrate_hs(),
        "power_w": s.power_w(),
        "home": home,
    }


def _by_coin(suspects: list[Suspect]) -> list[dict[str, Any]]:
    rows: dict[str | None, dict[str, Any]] = {}
    for s in suspects:
        coins: list[str | None] = [*sorted(s.coins)] or [None]
        for coin in coins:
            row = rows.setdefault(coin, {"coin": coin, "suspect_ips": 0, "pool_egress_bytes": 0})
            row["suspect_ips"] += 1
            row["pool_egress_bytes"] += s.egress
    for coin, row in rows.items():
        rates = [s.rates[coin] for s in suspects if coin in s.rates]
        row["hashrate_hs"] = _sum(r.hashrate_hs() for r in rates)
        row["power_w"] = _sum(r.power_w() for r in rates)
    return sorted(rows.values(), key=lambda r: (-r["suspect_ips"], r["coin"] or ""))


def _by_key(suspects: list[Suspect], attr: str) -> list[dict[str, Any]]:
    counts: dict[str | None, int] = defaultdict(int)
    for s in suspects:
        counts[getattr(s, attr)] += 1
    rows = [{attr: key, "suspect_ips": n} for key, n in counts.items()]
    return sorted(rows, key=lambda r: (-r["suspect_ips"], r[attr] or ""))


def _by_org_type(suspects: list[Suspect]) -> list[dict[str, Any]]:
    counts: dict[str, int] = defaultdict(int)
    for s in suspects:
        counts[s.org_type or "unknown"] += 1
    total = len(suspects)
    rows = [
        {"org_type": key, "suspect_ips": n, "share": round(n / total, 6)}
        for key, n in counts.items()
    ]
    return sorted(rows, key=lambda r: (-r["suspect_ips"], r["org_type"]))


def _by_org(suspects: list[Suspect]) -> list[dict[str, Any]]:
    orgs: dict[str, list[Suspect]] = defaultdict(list)
    for s in suspects:
        if s.org:
            orgs[s.org].append(s)
    rows = []
    for name, members in orgs.items():
        rows.append(
            {
                "org": name,
                "org_type": members[0].org_type,
                "region": members[0].region,
                "suspect_ips": len(members),
                "ips": sorted(m.ip for m in members),
                "coins": sorted(set().union(*(m.coins for m in members))),
                "pools": sorted(set().union(*(m.pools for m in members))),
                "first_seen": iso_time(min(m.first_seen for m in members)),
                "last_seen": iso_time(max(m.last_seen for m in members)),
            }
        )
    return sorted(rows, key=lambda r: (-r["suspect_ips"], r["org"]))


def _sum(values: Iterable[float | None]) -> float | None:
    """The sum of the known values; None when none is known."""
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _estimate_totals(suspects: list[Suspect]) -> dict[str, float | None]:
    power = _sum(s.power_w() for s in suspects)
    return {
        "hashrate_hs": _sum(s.hashrate_hs() for s in suspects),
        "power_w": power,
        "energy_kwh_per_day": power * 24 / 1000 if power is not None else None,
    }
