"""Share timing and vardiff: piecewise rates, exact regular gaps, the retarget rule."""

from __future__ import annotations

import math
import random
from itertools import islice, pairwise

import pytest

from sensor.synth.scenario import Pool, Vardiff
from sensor.synth.sessions import hashes_per_share
from sensor.synth.timing import (
    IN_FLIGHT_US,
    MIN_STRATUM_DIFFICULTY,
    arrivals,
    retarget,
    retarget_times,
    rounded,
    schedule,
)

SECOND = 1_000_000
HOUR = 3600 * SECOND
VARDIFF = Vardiff(target=1.0, every=60.0)
BTC = Pool("p", "198.51.100.1", 3333, "btc", "stratum-v1", 1.0, vardiff=VARDIFF)


def _segments(pool: Pool, first: int, last: int, changes: tuple) -> list[tuple[int, int, float]]:
    """(start, end, difficulty) of each stretch the miner works at one difficulty."""
    starts = [first] + [when + IN_FLIGHT_US for when, _ in changes]
    ends = [*starts[1:], last]
    difficulties = [pool.difficulty] + [new for _, new in changes]
    return list(zip(starts, ends, difficulties, strict=True))


def test_regular_gaps_are_exact_and_the_phase_random() -> None:
    times = list(islice(arrivals(random.Random(1), "regular", 5e6, 4.0), 1000))
    assert 5e6 <= times[0] < 5e6 + 250_000
    assert all(b - a == pytest.approx(250_000, abs=1e-6) for a, b in pairwise(times))
    other = next(arrivals(random.Random(2), "regular", 5e6, 4.0))
    assert other != times[0]


def test_poisson_gaps_are_exponential() -> None:
    times = list(islice(arrivals(random.Random(1), "poisson", 0.0, 4.0), 4000))
    gaps = [b - a for a, b in pairwise([0.0, *times])]
    mean = sum(gaps) / len(gaps)
    sd = math.sqrt(sum((g - mean) ** 2 for g in gaps) / len(gaps))
    assert mean == pytest.approx(250_000, rel=0.05) and sd == pytest.approx(mean, rel=0.08)


@pytest.mark.parametrize(
    ("dialect", "wanted", "written"),
    [
        ("stratum-v1", 2800.0, 2048.0),
        ("stratum-v1", 3000.0, 4096.0),  # nearer in log2
        ("ethereum-stratum", 0.3, 0.25),
        ("ethereum-stratum", 1e-9, MIN_STRATUM_DIFFICULTY),
        ("cryptonote", 80_000.4, 80_000.0),
        ("cryptonote", 0.2, 1.0),
    ],
)
def test_difficulties_are_what_the_dialect_writes(
    dialect: str, wanted: float, written: float
) -> None:
    assert rounded(dialect, wanted) == written


@pytest.mark.parametrize(
    ("shares", "new"), [(0, 256.0), (10, 256.0), (30, 512.0), (60, 1024.0), (240, 4096.0)]
)
def test_retarget_is_clamped_to_a_quarter_and_four_times(shares: int, new: float) -> None:
    # One share a second wanted, 60 s per period: 60 shares keep the difficulty.
    assert retarget(BTC, VARDIFF, 1024.0, shares) == new
    assert retarget(BTC, VARDIFF, 1024.0, 10_000) == 4096.0


def test_retarget_times() -> None:
    assert retarget_times(None, 0, HOUR) == []
    assert retarget_times(VARDIFF, 7, 180 * SECOND + 7) == [60 * SECOND + 7, 120 * SECOND + 7]


def test_vardiff_converges_near_the_target_rate() -> None:
    # 16 shares a second at the starting difficulty: the pool wants one (16x too low).
    hashrate = 16 * hashes_per_share("stratum-v1", "btc", 1.0)
    drawn = schedule(BTC, hashrate, "poisson", random.Random(3), 0, HOUR)
    difficulties = [1.0] + [new for _, new in drawn.changes]
    assert difficulties[:3] == [1.0, 4.0, 16.0]  # two clamped steps up
    for old, new in pairwise(difficulties):
        assert new / old in (0.25, 0.5, 2.0, 4.0) and math.log2(new).is_integer()
    late = [t for t in drawn.shares if t >= HOUR // 2]
    gap = (late[-1] - late[0]) / (len(late) - 1) / SECOND
    assert 0.6 < gap < 1.6  # one share per target, give or take a power of two


def test_each_segment_has_the_rate_of_its_difficulty() -> None:
    hashrate = 16 * hashes_per_share("stratum-v1", "btc", 1.0)
    got = expected = 0.0
    for seed in range(5):
        drawn = schedule(BTC, hashrate, "poisson", random.Random(seed), 0, HOUR)
        for start, end, difficulty in _segments(BTC, 0, HOUR, drawn.changes):
            per_second = hashrate / hashes_per_share("stratum-v1", "btc", difficulty)
            expected += per_second * (end - start) / SECOND
            got += sum(start <= t < end for t in drawn.shares)
    assert abs(got - expected) < 4 * math.sqrt(expected)


def test_a_period_without_shares_quarters_the_difficulty() -> None:
    slow = Pool("p", "198.51.100.1", 3333, "btc", "stratum-v1", 2.0**20, vardiff=VARDIFF)
    hashrate = hashes_per_share("stratum-v1", "btc", 1.0) / 100  # a share per 100 s at 1
    drawn = schedule(slow, hashrate, "poisson", random.Random(0), 0, 10 * 60 * SECOND)
    assert drawn.changes[:4] == (
        (60 * SECOND, 2.0**18),
        (120 * SECOND, 2.0**16),
        (180 * SECOND, 2.0**14),
        (240 * SECOND, 2.0**12),
    )


def test_regular_gaps_exact_within_each_segment() -> None:
    hashrate = 16 * hashes_per_share("stratum-v1", "btc", 1.0)
    drawn = schedule(BTC, hashrate, "regular", random.Random(5), 0, HOUR // 4)
    segments = _segments(BTC, 0, HOUR // 4, drawn.changes)
    assert len(segments) >= 3
    for start, end, difficulty in segments:
        gap = hashes_per_share("stratum-v1", "btc", difficulty) / hashrate * SECOND
        inside = [t for t in drawn.shares if start <= t < end]
        assert inside and inside[0] - start <= gap + 1
        assert all(abs(b - a - gap) <= 1 for a, b in pairwise(inside))


def test_cryptonote_difficulties_are_whole_numbers() -> None:
    pool = Pool("x", "198.51.100.1", 5555, "xmr", "cryptonote", 500.0, vardiff=VARDIFF)
    drawn = schedule(pool, 16_000.0, "poisson", random.Random(1), 0, HOUR // 2)
    assert len(drawn.changes) >= 3
    assert all(new >= 1 and new.is_integer() for _, new in drawn.changes)
    assert drawn.changes[0][1] == 2000.0  # 32 shares a second wanted 1: clamped at 4x


def test_without_vardiff_nothing_changes() -> None:
    fixed = Pool("p", "198.51.100.1", 3333, "btc", "stratum-v1", 1.0)
    drawn = schedule(fixed, 2.0**32, "poisson", random.Random(1), 0, HOUR // 6)
    assert drawn.changes == () and 500 < len(drawn.shares) < 700
