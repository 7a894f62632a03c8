"""Population: addresses, share counts, jobs and the shares naming them, truth, registry."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import pytest

from sensor.synth.population import JOB_EVERY_US, plan, registry_csv, truth
from sensor.synth.scenario import MinerGroup, Organisation, Pool, Scenario, Vardiff
from sensor.synth.sessions import hashes_per_share
from sensor.synth.timing import IN_FLIGHT_US

POOL = Pool("p", "198.51.100.1", 3333, "btc", "stratum-v1", 1.0)
ORGS = (
    Organisation("A, Inc.", "enterprise", "Suzhou", "10.0.0.0/24", (MinerGroup("p", 3, 2**32),)),
    Organisation("B", "education", "Nanjing", "10.0.1.0/24", (MinerGroup("p", 1, 2**33),)),
)
SCENARIO = Scenario((POOL,), ORGS, duration=300.0, seed=1, source=Path("s.yaml"))


def test_addresses_and_share_timing() -> None:
    miners = plan(SCENARIO)
    assert [m.ip for m in miners] == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.1.1"]
    for m in miners:
        assert m.per_share == 2**32
        assert all(m.start_us < t < m.end_us for t in m.shares)
        assert list(m.shares) == sorted(m.shares)
        expected = m.hashrate / m.per_share * 300
        assert abs(len(m.shares) - expected) < 5 * expected**0.5  # Poisson, mean 300 or 600


def test_poisson_counts_over_many_seeds() -> None:
    counts = [len(m.shares) for s in range(30) for m in plan(replace(SCENARIO, seed=s))[:3]]
    mean = sum(counts) / len(counts)
    variance = sum((c - mean) ** 2 for c in counts) / (len(counts) - 1)
    assert abs(mean - 300) < 10 and 150 < variance < 500  # Poisson: variance = mean


def test_truth_rollups() -> None:
    facts = truth(SCENARIO, plan(SCENARIO))
    assert facts["totals"]["suspect_ips"] == 4 and facts["totals"]["organisations"] == 2
    assert facts["totals"]["hashrate_hs"] == 3 * 2**32 + 2**33
    assert facts["by_org_type"] == [
        {"org_type": "enterprise", "suspect_ips": 3, "hashrate_hs": 3 * 2**32},
        {"org_type": "education", "suspect_ips": 1, "hashrate_hs": 2**33},
    ]
    assert sum(m["shares"] for m in facts["miners"]) == facts["totals"]["shares"]


def test_registry_csv_quotes_commas() -> None:
    rows = list(csv.DictReader(io.StringIO(registry_csv(SCENARIO))))
    assert rows[0] == {
        "network": "10.0.0.0/24",
        "org": "A, Inc.",
        "org_type": "enterprise",
        "region": "Suzhou",
    }
    assert len(rows) == 2


# 640 shares a second at the start, 20 wanted: three clamped retargets ten seconds
# apart, and shares in flight at most of the new jobs.
FAST = Pool("f", "198.51.100.2", 3333, "btc", "stratum-v1", 2**-6, vardiff=Vardiff(0.05, 10.0))
BUSY = Organisation(
    "C",
    "hosting",
    "Wuxi",
    "10.0.2.0/24",
    (MinerGroup("f", 2, 10 * 2**32), MinerGroup("f", 1, 10 * 2**32, share_timing="regular")),
)
VARDIFF = Scenario((POOL, FAST), (*ORGS, BUSY), duration=120.0, seed=2, source=Path("v.yaml"))


def test_jobs_each_minute_and_at_each_retarget() -> None:
    for m in plan(VARDIFF):
        assert m.jobs[0].at_us == m.start_us and m.jobs[0].difficulty == m.pool.difficulty
        timed = [j.at_us for j in m.jobs[1:] if not j.retarget]
        assert timed == [m.start_us + JOB_EVERY_US]  # 120 s: only the one at 60 s fits
        sent = [j.at_us for j in m.jobs]
        assert sent == sorted(sent)
        for before, job in pairwise(m.jobs):
            # A timed job keeps the difficulty; a retarget job always changes it.
            assert (job.difficulty != before.difficulty) == job.retarget
    busy = [m for m in plan(VARDIFF) if m.org.name == "C"]
    assert all(sum(j.retarget for j in m.jobs) >= 3 for m in busy)


def test_shares_name_the_newest_job_the_miner_has() -> None:
    in_flight = worth_less = 0
    for m in plan(VARDIFF):
        assert len(m.named) == len(m.shares)
        for t, named in zip(m.shares, m.named, strict=True):
            assert m.jobs[named].at_us <= t - IN_FLIGHT_US
            if named + 1 < len(m.jobs):
                after = m.jobs[named + 1].at_us
                assert after > t - IN_FLIGHT_US
                in_flight += after <= t  # sent, but not received yet
                worth_less += (
                    after <= t and m.jobs[named + 1].difficulty != m.jobs[named].difficulty
                )
    assert in_flight >= 10 and worth_less >= 5


def test_share_timing_from_the_group_else_the_scenario() -> None:
    timings = {m.ip: m.share_timing for m in plan(replace(VARDIFF, share_timing="regular"))}
    assert timings["10.0.0.1"] == timings["10.0.2.1"] == timings["10.0.2.3"] == "regular"
    timings = {m.ip: m.share_timing for m in plan(VARDIFF)}
    assert (timings["10.0.2.1"], timings["10.0.2.3"]) == ("poisson", "regular")


def test_truth_counts_each_share_at_the_difficulty_of_its_job() -> None:
    miners = plan(VARDIFF)
    rows = {row["ip"]: row for row in truth(VARDIFF, miners)["miners"]}
    for m in miners:
        row = rows[m.ip]
        hashes = sum(
            hashes_per_share("stratum-v1", "btc", m.jobs[named].difficulty) for named in m.named
        )
        assert row["realised_hs"] == pytest.approx(hashes / 120.0, rel=1e-12)
        assert row["difficulty"] == m.pool.difficulty and row["hashes_per_share"] == m.per_share
        assert row["final_difficulty"] == m.jobs[-1].difficulty
        assert row["retargets"] == sum(j.retarget for j in m.jobs)
        assert row["shares"] == len(m.shares) and row["share_timing"] == m.share_timing
    assert rows["10.0.0.1"]["retargets"] == 0 and rows["10.0.2.1"]["retargets"] >= 3
    # Vardiff keeps the count of shares honest: the realised rate stays near the declared.
    for ip in ("10.0.2.1", "10.0.2.2", "10.0.2.3"):
        assert rows[ip]["realised_hs"] == pytest.approx(10 * 2**32, rel=0.05)
