"""Population: addresses from the prefixes, Poisson share counts, truth roll-ups, registry."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path

from sensor.synth.population import plan, registry_csv, truth
from sensor.synth.scenario import MinerGroup, Organisation, Pool, Scenario

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
