"""The report's tables: rows per suspect and pool, roll-ups by coin, type, region, org.

Counts are exact; hash rate and power are sums of the known figures (null when
none is known), so a table row never claims more precision than its miners'.
Energy per day follows from power: kWh/day = W x 24 / 1000.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from sensor.sinks.events import iso_time

if TYPE_CHECKING:
    from sensor.sinks.report import PoolSeen, Suspect

UNKNOWN_TYPE = "unknown"


class PoolInfo(Protocol):
    """What the report asks of ownership sources about a pool address (OwnershipResolver)."""

    def pool_info(self, ip: str) -> tuple[int | None, str | None]: ...


def known_sum(values: Iterable[float | None]) -> float | None:
    """The sum of the known values; None when none is known."""
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def kwh_per_day(power_w: float | None) -> float | None:
    return power_w * 24 / 1000 if power_w is not None else None


def estimate_totals(suspects: list[Suspect]) -> dict[str, float | None]:
    power = known_sum(s.power_w() for s in suspects)
    return {
        "hashrate_hs": known_sum(s.hashrate_hs() for s in suspects),
        "power_w": power,
        "energy_kwh_per_day": kwh_per_day(power),
    }


def _work(members: list[Suspect]) -> dict[str, float | None]:
    """Hash rate and power of a group of miners (their sums)."""
    return {
        "hashrate_hs": known_sum(m.hashrate_hs() for m in members),
        "power_w": known_sum(m.power_w() for m in members),
    }


def suspect_row(s: Suspect, home: bool) -> dict[str, Any]:
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


def pool_row(p: PoolSeen, info: PoolInfo | None) -> dict[str, Any]:
    coin = sorted(p.coins)[0] if len(p.coins) == 1 else None
    asn, country = info.pool_info(p.ip) if info else (None, None)
    return {
        "endpoint": p.endpoint,
        "host": p.host,
        "coin": coin,
        "clients": len(p.clients),
        "hashrate_hs": p.hashrate_hs(),
        "power_w": p.power_w(),
        "asn": asn,
        "country": country,
    }


def by_coin(suspects: list[Suspect]) -> list[dict[str, Any]]:
    rows: dict[str | None, dict[str, Any]] = {}
    for s in suspects:
        coins: list[str | None] = [*sorted(s.coins)] or [None]
        for coin in coins:
            row = rows.setdefault(coin, {"coin": coin, "suspect_ips": 0, "pool_egress_bytes": 0})
            row["suspect_ips"] += 1
            row["pool_egress_bytes"] += s.egress
    for coin, row in rows.items():
        rates = [s.rates[coin] for s in suspects if coin in s.rates]
        row["hashrate_hs"] = known_sum(r.hashrate_hs() for r in rates)
        row["power_w"] = known_sum(r.power_w() for r in rates)
    return sorted(rows.values(), key=lambda r: (-r["suspect_ips"], r["coin"] or ""))


def _groups(suspects: list[Suspect], key: str, unknown: str | None) -> dict[Any, list[Suspect]]:
    groups: dict[Any, list[Suspect]] = defaultdict(list)
    for s in suspects:
        groups[getattr(s, key) or unknown].append(s)
    return groups


def by_region(suspects: list[Suspect]) -> list[dict[str, Any]]:
    groups = _groups(suspects, "region", None)
    rows = [
        {"region": key, "suspect_ips": len(members), **_work(members)}
        for key, members in groups.items()
    ]
    return sorted(rows, key=lambda r: (-r["suspect_ips"], r["region"] or ""))


def by_org_type(suspects: list[Suspect]) -> list[dict[str, Any]]:
    groups = _groups(suspects, "org_type", UNKNOWN_TYPE)
    total = len(suspects)
    rows = [
        {
            "org_type": key,
            "suspect_ips": len(members),
            "share": round(len(members) / total, 6),
            **_work(members),
        }
        for key, members in groups.items()
    ]
    return sorted(rows, key=lambda r: (-r["suspect_ips"], r["org_type"]))


def by_org(suspects: list[Suspect]) -> list[dict[str, Any]]:
    """The regulator's list of mining "projects": each organisation, its scale
    (IPs), coins and pools, hash power, power and energy per day."""
    groups = _groups([s for s in suspects if s.org], "org", None)
    rows = []
    for name, members in groups.items():
        work = _work(members)
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
                **work,
                "energy_kwh_per_day": kwh_per_day(work["power_w"]),
            }
        )
    return sorted(rows, key=lambda r: (-r["suspect_ips"], r["org"]))
