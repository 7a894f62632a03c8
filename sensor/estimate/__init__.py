"""Estimates of how much mining a flow does: hash rate from shares, power from efficiency."""

from __future__ import annotations

from sensor.estimate.hashrate import estimate_hashrate, hashes_per_share, poisson_interval
from sensor.estimate.power import EfficiencyTable, bundled_table
from sensor.model import Estimate, Finding


def estimate_flow(finding: Finding, start: float, end: float, table: EfficiencyTable) -> Estimate:
    """Hash rate over the flow's observed time [start, end], and the power it draws.

    The duration is taken to the microsecond, as events carry times: readers
    that keep nanoseconds (libpcap) or microseconds (pcap files, event logs)
    then give the same estimate to the last digit.
    """
    return table.apply(estimate_hashrate(finding, round(end - start, 6)), finding)


__all__ = [
    "EfficiencyTable",
    "Estimate",
    "bundled_table",
    "estimate_flow",
    "estimate_hashrate",
    "hashes_per_share",
    "poisson_interval",
]
