"""The scenario's population made concrete: miner addresses, jobs, share times, ground truth.

Everything random is drawn here, before a frame is written, from generators
seeded by the scenario seed and the miner's address: the truth is known up
front, and a miner's shares do not depend on how many others there are.
Share timing (Poisson or regular) and pool retargeting are in timing.py.

Each share names the newest job the miner has received: a job the pool sent
less than half a round trip before the share is still in flight, so the share
names the one before and is worth that job's difficulty. The truth counts
each share at the difficulty of the job it names, as a perfect estimator would.
"""

from __future__ import annotations

import bisect
import ipaddress
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from sensor.synth.scenario import MinerGroup, Organisation, Pool, Scenario
from sensor.synth.sessions import hashes_per_share
from sensor.synth.timing import IN_FLIGHT_US, RTT_US, Schedule, schedule

SETUP_US = 200_000  # handshake and login before the first share can arrive
CLOSE_US = 200_000  # no share this close to the end: its answer must fit in the flow
START_SPREAD_US = 2_000_000  # miners connect within the first two seconds
JOB_EVERY_US = 60_000_000  # a new job each minute also keeps the flow from going idle


@dataclass(frozen=True, slots=True)
class Job:
    """One job the pool sends; job 0 comes with the handshake."""

    at_us: int
    difficulty: float  # what a share naming this job is worth
    retarget: bool = False  # sent with a new difficulty (set_difficulty or a new target)


@dataclass(frozen=True, slots=True)
class Miner:
    ip: str
    org: Organisation
    pool: Pool
    hashrate: float  # declared hashes per second
    per_share: float  # hashes one share stands for at the starting difficulty
    start_us: int  # first frame of the pool connection
    end_us: int  # last frame of the pool connection
    shares: tuple[int, ...]  # submit times, microseconds since the epoch
    vlan: int | None
    jobs: tuple[Job, ...]  # in the order sent; a job's id is its index
    named: tuple[int, ...]  # the job each share names
    share_timing: str

    @property
    def label(self) -> str:
        return f"{self.pool.name}/{self.ip}"

    def hashes(self) -> float:
        """The hashes the shares stand for, each at the difficulty of the job it names."""
        by_difficulty = Counter(self.jobs[j].difficulty for j in self.named)
        pool = self.pool
        return sum(
            count * hashes_per_share(pool.dialect, pool.coin, difficulty)
            for difficulty, count in by_difficulty.items()
        )


def plan(scenario: Scenario) -> list[Miner]:
    """Every miner of every organisation, in declaration order."""
    miners: list[Miner] = []
    for org in scenario.organisations:
        hosts = ipaddress.IPv4Network(org.prefix).hosts()
        for group in org.miners:
            miners.extend(
                _miner(scenario, org, group, str(next(hosts))) for _ in range(group.count)
            )
    return miners


def _miner(scenario: Scenario, org: Organisation, group: MinerGroup, ip: str) -> Miner:
    pool = scenario.pool(group.pool)
    timing = group.share_timing or scenario.share_timing
    rng = random.Random(f"{scenario.seed}/{ip}")
    begin = round(scenario.start * 1e6) + rng.randrange(START_SPREAD_US)
    end = begin + round(scenario.duration * 1e6)
    drawn = schedule(pool, group.hashrate, timing, rng, begin + SETUP_US, end - CLOSE_US)
    jobs = _jobs(pool, drawn, begin, end)
    return Miner(
        ip=ip,
        org=org,
        pool=pool,
        hashrate=group.hashrate,
        per_share=hashes_per_share(pool.dialect, pool.coin, pool.difficulty),
        start_us=begin,
        end_us=end,
        shares=drawn.shares,
        vlan=org.vlan if org.vlan is not None else scenario.vlan,
        jobs=jobs,
        named=_named(jobs, drawn.shares),
        share_timing=timing,
    )


def _jobs(pool: Pool, drawn: Schedule, begin: int, end: int) -> tuple[Job, ...]:
    """The handshake's job, one each minute, and one at each difficulty change."""
    timed = [(t, False, 0.0) for t in range(begin + JOB_EVERY_US, end - RTT_US, JOB_EVERY_US)]
    changes = [(t, True, new) for t, new in drawn.changes]
    jobs = [Job(begin, pool.difficulty)]
    for at, is_retarget, new in sorted(timed + changes):
        difficulty = new if is_retarget else jobs[-1].difficulty
        jobs.append(Job(at, difficulty, is_retarget))
    return tuple(jobs)


def _named(jobs: tuple[Job, ...], shares: tuple[int, ...]) -> tuple[int, ...]:
    """For each share, the newest job that reached the miner before it."""
    sent = [job.at_us for job in jobs]
    return tuple(bisect.bisect_right(sent, t - IN_FLIGHT_US) - 1 for t in shares)


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
        "final_difficulty": m.jobs[-1].difficulty,
        "retargets": sum(job.retarget for job in m.jobs),
        "share_timing": m.share_timing,
        "hashrate_hs": m.hashrate,
        "hashes_per_share": m.per_share,
        "shares": len(m.shares),
        # What a perfect estimator would say from these very shares over the flow's time.
        "realised_hs": m.hashes() / seconds,
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
