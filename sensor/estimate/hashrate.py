"""Hash rate of one mining flow from its shares: shares x hashes per share / seconds.

A share is a hash below the pool's share target, so each one stands for the
expected number of hashes it takes to find one: the difficulty in the unit of
the dialect. Share arrivals are a Poisson process, so the count gives an exact
(Garwood) confidence interval for the rate, computed here from the Poisson /
gamma duality with math functions only.

Where the unit of a dialect's difficulty is not known for sure (Equihash
solutions, Kaspa, Ergo, Grin graphs, ...), the rate is null with a note rather
than a guess.
"""

from __future__ import annotations

import functools
import math
from statistics import NormalDist

from sensor.model import Estimate, Finding

LEVEL = 0.90  # two-sided confidence level of the intervals
TWO_32 = float(1 << 32)

# Stratum-v1 difficulty 1 is Bitcoin's difficulty-1 target (BDIFF1), i.e. 2^32
# expected SHA-256d hashes. Scrypt pools (Litecoin, Dogecoin) scale their
# difficulty by 2^16: their difficulty 1 is the target 0x0000ffff..., 2^16 hashes.
_STRATUM_V1_UNITS = {"sha256d": TWO_32, "scrypt": float(1 << 16)}
# NiceHash EthereumStratum: difficulty 1 = 2^32 hashes; Equihash variants count
# solutions, not hashes, so they are left out.
_NOT_HASHES = frozenset({"equihash", "zhash", "cuckatoo", "cuckaroo"})
# Difficulty is already expected hashes per share: 2^256/target (ethproxy) and
# 0xFFFFFFFF/target (cryptonote).
_DIFFICULTY_IS_HASHES = frozenset({"ethproxy", "cryptonote"})
# Above this many shares the Wilson-Hilferty approximation of the gamma quantile
# is within 1e-4 relative of the exact one, and the exact sum gets long.
_EXACT_LIMIT = 100


def hashes_per_share(
    dialect: str, algorithm: str | None, difficulty: float | None
) -> tuple[float | None, str | None]:
    """Expected hashes behind one share, or None and the reason it is unknown."""
    if difficulty is None or difficulty <= 0:
        return None, "no share difficulty seen"
    if dialect in _DIFFICULTY_IS_HASHES:
        return difficulty, None
    if dialect == "ethereum-stratum":
        if algorithm in _NOT_HASHES:
            return None, f"{algorithm} difficulty counts solutions, not hashes"
        return difficulty * TWO_32, None
    if dialect == "stratum-v1":
        unit = _STRATUM_V1_UNITS.get(algorithm or "")
        if unit is None:
            return None, f"stratum-v1 difficulty unit unknown for algorithm {algorithm}"
        return difficulty * unit, None
    return None, f"{dialect} difficulty is not a hash count"


def estimate_hashrate(finding: Finding, seconds: float) -> Estimate:
    """Rate from accepted shares (else all submitted) over `seconds` of the flow.

    Each share counts at the difficulty of the job it answered (the detector's
    work sums), so a pool's retargets within the flow weigh every share right;
    the interval scales the count's Poisson interval by the mean difficulty.
    """
    shares, difficulty = _counted(finding)
    per_share, note = hashes_per_share(finding.dialect, finding.algorithm, difficulty)
    if per_share is None:
        return Estimate(seconds=seconds, note=note)
    if shares <= 0:
        return Estimate(seconds=seconds, note="no shares seen")
    if seconds <= 0:
        return Estimate(seconds=seconds, note="flow too short to time")
    low, high = poisson_interval(shares)
    scale = per_share / seconds
    return Estimate(
        hashrate_hs=shares * scale, low_hs=low * scale, high_hs=high * scale, seconds=seconds
    )


def _counted(finding: Finding) -> tuple[int, float | None]:
    """The shares the rate counts, and their mean difficulty (else the last one seen)."""
    if finding.shares_accepted:
        shares, work = finding.shares_accepted, finding.accepted_work
    else:
        shares, work = finding.shares, finding.submitted_work
    if work and shares > 0:
        return shares, work / shares
    return shares, finding.difficulty


@functools.lru_cache(maxsize=4096)
def poisson_interval(count: int, level: float = LEVEL) -> tuple[float, float]:
    """Garwood's exact interval for the mean of a Poisson count.

    Cached: the exact form costs up to 2 ms for small counts, and a live sensor
    re-estimates every open flow every few seconds with counts that repeat.

    low = Gamma(count).ppf(alpha/2), high = Gamma(count + 1).ppf(1 - alpha/2):
    the chi-square form chi2(alpha/2, 2n)/2, chi2(1 - alpha/2, 2n + 2)/2.
    """
    if count < 0:
        raise ValueError(f"count must be 0 or more, not {count}")
    tail = (1.0 - level) / 2.0
    low = gamma_ppf(tail, count) if count else 0.0
    return low, gamma_ppf(1.0 - tail, count + 1)


def gamma_ppf(p: float, shape: int) -> float:
    """Quantile of the gamma distribution with integer `shape` and scale 1."""
    if shape > _EXACT_LIMIT:
        # Wilson-Hilferty: the cube root of a chi-square variable is nearly normal.
        nu = 2.0 * shape
        z = NormalDist().inv_cdf(p)
        return nu * (1.0 - 2.0 / (9.0 * nu) + z * math.sqrt(2.0 / (9.0 * nu))) ** 3 / 2.0
    lo, hi = 0.0, shape + 20.0 * math.sqrt(shape) + 20.0
    for _ in range(80):  # bisection to well below float resolution of the rate
        mid = (lo + hi) / 2.0
        if gamma_cdf(mid, shape) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def gamma_cdf(x: float, shape: int) -> float:
    """P(Gamma(shape) <= x) = P(Poisson(x) >= shape), summed in log space."""
    if x <= 0:
        return 0.0
    log_x = math.log(x)
    below = sum(math.exp(-x + i * log_x - math.lgamma(i + 1)) for i in range(shape))
    return max(0.0, 1.0 - below)
