"""The scenario's population made concrete: miner addresses, share times, ground truth.

Everything random is drawn here, before a frame is written, from generators
seeded by the scenario seed and the miner's address: the truth is known up
front, and a miner's shares do not depend on how many others there are.
Share arrivals are a Poisson process (exponential gaps, mean = hashes per
share / hash rate): that is what the estimator's interval assumes.
"""

from __future__ import annotations

import ipaddress
import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sensor.synth.scenario import Organisation, Pool, Scenario
from sensor.synth.sessions import hashes_per_share

SETUP_US = 200_000  # handshake and login before the first share can arrive
CLOSE_US = 200_000  # no share this close to the end: its answer must fit in the flow
START_SPREAD_US = 2_000_000  # miners connect within the first two seconds


@dataclass(frozen=True, slots=True)
class Miner:
    ip: str
    org: Organisation
    pool: Pool
    hashrate: float  # declared hashes per second
    per_share: float  # hashes one share stands for
    start_us: int  # first frame of the pool connection
    end_us: int  # last frame of the pool connection
    shares: tuple[int, ...]  # submit times, microseconds since the epoch
    vlan: int | None

    @property
    def label(self) -> str:
        return f"{self.pool.name}/{self.ip}"


def plan(scenario: Scenario) -> list[Miner]:
    """Every miner of every organisation, in declaration order."""
    miners: list[Miner] = []
    start_us = round(scenario.start * 1e6)
    span_us = round(scenario.duration * 1e6)
    for org in scenario.organisations:
        hosts = ipaddress.IPv4Network(org.prefix).hosts()
        vlan = org.vlan if org.vlan is not None else scenario.vlan
        for group in org.miners:
            pool = scenario.pool(group.pool)
            per_share = hashes_per_share(pool)
            for _ in range(group.count):
                ip = str(next(hosts))
                rng = random.Random(f"{scenario.seed}/{ip}")
                begin = start_us + rng.randrange(START_SPREAD_US)
                shares = _arrivals(rng, begin, begin + span_us, group.hashrate / per_share)
                miners.append(
                    Miner(
                        ip,
                        org,
                        pool,
                        group.hashrate,
                        per_share,
                        begin,
                        begin + span_us,
                        shares,
                        vlan,
                    )
                )
    return miners


def _arrivals(rng: random.Random, begin: int, end: int, per_second: float) -> tuple[int, ...]:
    times: list[int] = []
    t = begin + SETUP_US + rng.expovariate(per_second) * 1e6
    while t < end - CLOSE_US:
        times.append(round(t))
        t += rng.expovariate(per_second) * 1e6
    return tuple(times)


def truth(scenario: Scenario, miners: list[Miner]) -> dict[str, Any]:
    """The ground truth: each miner, and totals by organisation type, region, coin, org."""
    rows = [_miner_row(m) for m in miners]
    return {
        "scenario": str(scenario.source) if scenario.source else None,
        "seed": scenario.seed,
        "start": scenario.start,
        "duration_s": scenario.duration,
        "totals": {
            "suspect_ips": len(rows),
            "organisations": len({m.org.name for m in miners}),
            "hashrate_hs": sum(r["hashrate_hs"] for r in rows),
            "shares": sum(r["shares"] for r in rows),
        },
        "by_org_type": _rollup(rows, "org_type"),
        "by_region": _rollup(rows, "region"),
        "by_coin": _rollup(rows, "coin"),
        "by_org": _rollup(rows, "org"),
        "miners": rows,
    }


def _miner_row(m: Miner) -> dict[str, Any]:
    seconds = (m.end_us - m.start_us) / 1e6
    return {
        "ip": m.ip,
        "org": m.org.name,
        "org_type": m.org.org_type,
        "region": m.org.region,
        "coin": m.pool.coin,
        "dialect": m.pool.dialect,
        "pool": f"{m.pool.ip}:{m.pool.port}",
        "difficulty": m.pool.difficulty,
        "hashrate_hs": m.hashrate,
        "hashes_per_share": m.per_share,
        "shares": len(m.shares),
        # What a perfect estimator would say from these very shares over the flow's time.
        "realised_hs": len(m.shares) * m.per_share / seconds,
    }


def _rollup(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    ips: dict[str, int] = defaultdict(int)
    rate: dict[str, float] = defaultdict(float)
    for row in rows:
        ips[row[key]] += 1
        rate[row[key]] += row["hashrate_hs"]
    out = [{key: k, "suspect_ips": ips[k], "hashrate_hs": rate[k]} for k in ips]
    return sorted(out, key=lambda r: (-r["suspect_ips"], r[key]))


def registry_csv(scenario: Scenario) -> str:
    """The organisations' prefixes as a registry for `--ownership`."""
    lines = ["network,org,org_type,region"]
    for org in scenario.organisations:
        lines.append(
            ",".join(_csv_field(v) for v in (org.prefix, org.name, org.org_type, org.region))
        )
    return "\n".join(lines) + "\n"


def _csv_field(value: str) -> str:
    if any(ch in value for ch in ',"\n'):
        return '"' + value.replace('"', '""') + '"'
    return value
