"""Power from hash rate: watts = hashes per second x joules per hash of the algorithm.

The figures are rules (`rules/efficiency.yaml`), each with its source and date.
An algorithm may list several hardware classes; the first one in file order is
the default used for estimates, because the sensor cannot see the hardware.
An unknown algorithm gets no power and a note, never a borrowed figure.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from sensor.model import Estimate, Finding
from sensor.rules.loader import load_rules
from sensor.rules.model import EfficiencyRule


class EfficiencyTable:
    """The default efficiency rule of each algorithm (the first listed for it)."""

    def __init__(self, rules: Iterable[EfficiencyRule] = ()) -> None:
        self._default: dict[str, EfficiencyRule] = {}
        for rule in rules:
            self._default.setdefault(rule.algorithm, rule)

    def __len__(self) -> int:
        return len(self._default)

    def rule(self, algorithm: str | None) -> EfficiencyRule | None:
        return self._default.get(algorithm) if algorithm else None

    def watts(self, hashrate_hs: float, algorithm: str | None) -> tuple[float | None, str | None]:
        """Power for a hash rate, or None and why."""
        if algorithm is None:
            return None, "algorithm unknown: no efficiency figure applies"
        rule = self._default.get(algorithm)
        if rule is None:
            return None, f"no efficiency figure for algorithm {algorithm}"
        return hashrate_hs * rule.joules_per_hash, None

    def apply(self, estimate: Estimate, finding: Finding) -> Estimate:
        """Fill in the estimate's power (in place, and returned) when its rate is known."""
        if estimate.hashrate_hs is None:
            return estimate
        estimate.power_w, note = self.watts(estimate.hashrate_hs, finding.algorithm)
        estimate.note = estimate.note or note
        return estimate


@lru_cache(maxsize=1)
def bundled_table() -> EfficiencyTable:
    """The efficiency figures shipped with minewatch (loaded once)."""
    return EfficiencyTable(load_rules().efficiency)
