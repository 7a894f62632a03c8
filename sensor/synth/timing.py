"""When one miner's shares come, and when its pool changes its difficulty.

Two share timings, chosen per scenario or per miner group (`share_timing`):

- `poisson` (the default) is what real mining looks like: every hash is an
  independent trial, so shares are a Poisson process with exponential gaps of
  mean hashes-per-share / hash rate. The estimator's interval assumes it, and
  an estimate of a Poisson miner is off by sampling noise (about 1/sqrt(shares)).
- `regular` is a calibration aid: shares come exactly every hashes-per-share /
  hash rate seconds after a random phase. With the noise gone, whatever error
  is left in an estimate is the estimator's own (flow timing, difficulty
  bookkeeping), and it must be within a few percent from 100 shares on.

A pool with `vardiff: {target, every}` retargets each miner as real pools do:
every `every` seconds from when the first share could come, new difficulty =
old x clamp(shares in the period x target / period, 1/4, 4), rounded to what
the dialect writes (a power of two for stratum, a whole number for CryptoNote).
The miner hears of it half a round trip after the pool sends it; from then on
it finds shares at the new rate. Both timings are memoryless across a change:
the draw (or the phase) starts afresh there.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from sensor.synth.scenario import Pool, Vardiff
from sensor.synth.sessions import hashes_per_share

RTT_US = 20_000  # pool round trip: an answer comes this long after its request
IN_FLIGHT_US = RTT_US // 2  # a job sent this recently has not reached the miner yet
MIN_STRATUM_DIFFICULTY = 2.0**-20  # smallest vardiff difficulty of the stratum dialects
_LOW, _HIGH = 0.25, 4.0  # a retarget moves the difficulty by at most this factor


@dataclass(frozen=True, slots=True)
class Schedule:
    """One miner's share times and its pool's difficulty changes, in microseconds."""

    shares: tuple[int, ...]
    changes: tuple[tuple[int, float], ...]  # (when the pool sends it, new difficulty)


def arrivals(rng: random.Random, timing: str, start: float, per_second: float) -> Iterator[float]:
    """Share times after `start` (microseconds) at `per_second`, without end."""
    if timing == "regular":
        gap = 1e6 / per_second
        phase = rng.random()
        k = 0
        while True:  # from the start each time: no rounding error piles up
            yield start + (phase + k) * gap
            k += 1
    t = start + rng.expovariate(per_second) * 1e6
    while True:
        yield t
        t += rng.expovariate(per_second) * 1e6


def rounded(dialect: str, difficulty: float) -> float:
    """A difficulty as the pool can write it: a power of two, or a whole number (CryptoNote)."""
    if dialect == "cryptonote":
        return float(max(1, round(difficulty)))
    return max(MIN_STRATUM_DIFFICULTY, 2.0 ** round(math.log2(difficulty)))


def retarget(pool: Pool, vardiff: Vardiff, old: float, shares: int) -> float:
    """The difficulty after a period in which `shares` came (the same if nothing changes)."""
    factor = min(_HIGH, max(_LOW, shares * vardiff.target / vardiff.every))
    return rounded(pool.dialect, old * factor)


def retarget_times(vardiff: Vardiff | None, first: int, last: int) -> list[int]:
    """Every `every` after `first`, before `last`; none without vardiff."""
    if vardiff is None:
        return []
    every = round(vardiff.every * 1e6)
    return list(range(first + every, last, every))


def schedule(
    pool: Pool, hashrate: float, timing: str, rng: random.Random, first: int, last: int
) -> Schedule:
    """Shares in [first, last) at the rate of each difficulty segment, and the changes."""
    difficulty = pool.difficulty
    times: list[int] = []
    changes: list[tuple[int, float]] = []
    draw = _segment(pool, hashrate, timing, rng, first, difficulty)
    t = next(draw)
    period_start = 0
    for when in retarget_times(pool.vardiff, first, last):
        t = _take(draw, t, when, times)
        assert pool.vardiff is not None  # there are no retarget times without it
        new = retarget(pool, pool.vardiff, difficulty, len(times) - period_start)
        period_start = len(times)
        if new == difficulty:
            continue  # nothing sent, and the miner goes on as it was
        # Shares found before the new difficulty reaches the miner are of the old one.
        t = _take(draw, t, min(when + IN_FLIGHT_US, last), times)
        difficulty = new
        changes.append((when, new))
        draw = _segment(pool, hashrate, timing, rng, when + IN_FLIGHT_US, new)
        t = next(draw)
    _take(draw, t, last, times)
    return Schedule(tuple(times), tuple(changes))


def _segment(
    pool: Pool, hashrate: float, timing: str, rng: random.Random, start: int, difficulty: float
) -> Iterator[float]:
    per_share = hashes_per_share(pool.dialect, pool.coin, difficulty)
    return arrivals(rng, timing, start, hashrate / per_share)


def _take(draw: Iterator[float], t: float, before: int, times: list[int]) -> float:
    """Append the draws before `before` to `times`; return the first one at or after it."""
    while t < before:
        times.append(round(t))
        t = next(draw)
    return t
