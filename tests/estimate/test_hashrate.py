"""Hash rate from shares: units per dialect, the Garwood interval, and its coverage."""

from __future__ import annotations

import random

import pytest

from sensor.estimate.hashrate import (
    TWO_32,
    estimate_hashrate,
    gamma_cdf,
    gamma_ppf,
    hashes_per_share,
    poisson_interval,
)
from sensor.model import Confidence, Finding, Side


def finding(dialect: str, algorithm: str | None, difficulty: float | None, **kw: int) -> Finding:
    f = Finding(dialect, Confidence.CONFIRMED, Side.ORIG, "t", algorithm=algorithm, **kw)
    f.difficulty = difficulty
    return f


@pytest.mark.parametrize(
    ("dialect", "algorithm", "difficulty", "hashes"),
    [
        ("stratum-v1", "sha256d", 8192.0, 8192 * 2**32),  # BDIFF1: difficulty 1 = 2^32 hashes
        ("stratum-v1", "scrypt", 512.0, 512 * 2**16),  # scrypt pools: difficulty 1 = 2^16
        ("ethereum-stratum", "ethash", 0.5, 0.5 * 2**32),  # NiceHash: difficulty 1 = 2^32
        ("ethereum-stratum", "kawpow", 2.0, 2.0 * 2**32),
        ("ethproxy", "ethash", 4e9, 4e9),  # 2^256/target: already hashes
        ("cryptonote", "randomx", 120001.0, 120001.0),  # 0xFFFFFFFF/target: already hashes
        ("cryptonote", None, 5000.0, 5000.0),  # the unit does not depend on the algorithm
    ],
)
def test_hashes_per_share_by_dialect(dialect, algorithm, difficulty, hashes):
    assert hashes_per_share(dialect, algorithm, difficulty) == (pytest.approx(hashes), None)


@pytest.mark.parametrize(
    ("dialect", "algorithm", "difficulty", "why"),
    [
        ("grin", "cuckatoo", 4.0, "not a hash count"),  # graph difficulty
        ("stratum-v1", "equihash", 1.0, "unit unknown"),  # Zcash: solutions, not hashes
        ("stratum-v1", "kheavyhash", 1.0, "unit unknown"),  # not sure of Kaspa's scaling
        ("stratum-v1", None, 1.0, "unit unknown"),  # BTC or LTC? the unit differs
        ("ethereum-stratum", "equihash", 1.0, "solutions"),
        ("tls", None, 1.0, "not a hash count"),
        ("stratum-v1", "sha256d", None, "no share difficulty"),
        ("cryptonote", "randomx", 0.0, "no share difficulty"),
    ],
)
def test_unknown_units_stay_null_with_a_reason(dialect, algorithm, difficulty, why):
    per_share, note = hashes_per_share(dialect, algorithm, difficulty)
    assert per_share is None and note is not None and why in note


def test_rate_uses_accepted_shares_over_the_seconds():
    f = finding("stratum-v1", "sha256d", 1024.0, shares=12, shares_accepted=10)
    e = estimate_hashrate(f, 100.0)
    assert e.hashrate_hs == pytest.approx(10 * 1024 * TWO_32 / 100)
    assert e.low_hs is not None and e.high_hs is not None
    assert e.low_hs < e.hashrate_hs < e.high_hs
    assert (e.seconds, e.note, e.power_w) == (100.0, None, None)


def test_vardiff_work_weighs_each_share_by_its_difficulty():
    # 10 accepted shares: 4 at difficulty 1024, then 6 after a retarget to 4096.
    f = finding("stratum-v1", "sha256d", 4096.0, shares=10, shares_accepted=10)
    f.accepted_work = f.submitted_work = 4 * 1024 + 6 * 4096
    e = estimate_hashrate(f, 100.0)
    assert e.hashrate_hs == pytest.approx((4 * 1024 + 6 * 4096) * TWO_32 / 100)
    assert e.low_hs is not None and e.high_hs is not None
    mean = (4 * 1024 + 6 * 4096) / 10 * TWO_32 / 100  # the count's interval at the mean
    low, high = poisson_interval(10)
    assert (e.low_hs, e.high_hs) == (pytest.approx(low * mean), pytest.approx(high * mean))


def test_submitted_work_counts_when_nothing_was_accepted():
    f = finding("cryptonote", "randomx", 9000.0, shares=3)
    f.submitted_work = 1000.0 + 2000.0 + 9000.0
    assert estimate_hashrate(f, 12.0).hashrate_hs == pytest.approx(12000.0 / 12)


def test_rate_falls_back_to_submitted_shares():
    # ethproxy pools often answer submits with bare `true`s the detector cannot pair
    e = estimate_hashrate(finding("ethproxy", "ethash", 4e9, shares=30), 60.0)
    assert e.hashrate_hs == pytest.approx(30 * 4e9 / 60)


@pytest.mark.parametrize(
    ("f", "seconds", "why"),
    [
        (finding("stratum-v1", "sha256d", 1024.0), 60.0, "no shares"),
        (finding("stratum-v1", "sha256d", 1024.0, shares=3), 0.0, "too short"),
        (finding("grin", "cuckatoo", 4.0, shares=3), 60.0, "not a hash count"),
    ],
)
def test_no_rate_without_shares_time_or_unit(f, seconds, why):
    e = estimate_hashrate(f, seconds)
    assert (e.hashrate_hs, e.low_hs, e.high_hs) == (None, None, None)
    assert e.note is not None and why in e.note


@pytest.mark.parametrize(
    ("count", "low", "high"),
    [  # Garwood 90% limits, as tabulated (e.g. chi2.ppf(0.05, 2n)/2, chi2.ppf(0.95, 2n+2)/2)
        (0, 0.0, 2.996),
        (1, 0.051, 4.744),
        (5, 1.970, 10.513),
        (10, 5.425, 16.962),
        (100, 84.139, 118.079),
    ],
)
def test_poisson_interval_matches_the_tables(count, low, high):
    lo, hi = poisson_interval(count)
    assert (lo, hi) == (pytest.approx(low, abs=1e-3), pytest.approx(high, abs=1e-3))
    # and from the definition: the gamma CDF at each limit
    assert gamma_cdf(hi, count + 1) == pytest.approx(0.95, abs=2e-4)  # 101: Wilson-Hilferty
    if count:
        assert gamma_cdf(lo, count) == pytest.approx(0.05, abs=1e-9)


def test_large_counts_use_an_accurate_approximation():
    # Wilson-Hilferty beyond 100 shares: continuous with the exact sum at the switch
    for shape in (101, 150):
        for p in (0.05, 0.95):
            x = gamma_ppf(p, shape)
            assert gamma_cdf(x, shape) == pytest.approx(p, abs=2e-4)
    # n -/+ z sqrt(n) + (z^2 - 1)/3 (Poisson's normal approximation with skew correction)
    low, high = poisson_interval(10_000)
    assert (low, high) == (pytest.approx(9836.08, abs=0.05), pytest.approx(10166.07, abs=0.05))


def test_poisson_interval_rejects_negative_counts():
    with pytest.raises(ValueError, match="count"):
        poisson_interval(-1)


def test_interval_covers_the_true_rate_about_ninety_percent_of_the_time():
    """Simulated miners: shares are a Poisson process at rate true_hs / hashes_per_share."""
    rng = random.Random(6)
    true_hs, difficulty, seconds = 100e12, 65536.0, 600.0  # a 100 TH/s SHA-256 farm
    per_share = difficulty * TWO_32
    covered = 0
    trials = 2000
    for _ in range(trials):
        shares, t = 0, rng.expovariate(true_hs / per_share)
        while t < seconds:
            shares, t = shares + 1, t + rng.expovariate(true_hs / per_share)
        f = finding("stratum-v1", "sha256d", difficulty, shares=shares, shares_accepted=shares)
        e = estimate_hashrate(f, seconds)
        assert e.low_hs is not None and e.high_hs is not None
        covered += e.low_hs <= true_hs <= e.high_hs
    # Garwood is conservative: at least the nominal 90%, not much more at ~213 shares
    assert 0.88 <= covered / trials <= 0.95
