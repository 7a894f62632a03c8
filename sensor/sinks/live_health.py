"""The daemon's counters as rows, and the health its collector reads.

A checkpoint keeps every `_total` counter the daemon exports (`counters_of`)
and a restart reads them back into the metrics state (`totals_from`) and the
health counters (`health_from`). `LiveHealth` is what the collector asks for
health: the restored base plus each capture worker's latest snapshot, summed
(`combine`), so that counters go on across restarts and worker restarts alike.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping

from sensor.sinks.metrics_collector import Health
from sensor.sinks.metrics_state import Totals

# Counter name (the metric's, without prefix and _total) -> label values -> value
Counters = dict[str, dict[tuple[str, ...], float]]

# -- counters: metrics state and health <-> rows ---------------------------------------------
_HEALTH_LABELLED = ("decode_errors", "flows_evicted", "detector_errors", "sink_errors")


def counters_of(totals: Totals, health: Health) -> Counters:
    """Every `_total` counter the daemon exports, as rows for the state file."""
    out: Counters = {
        "pool_bytes": {key: value for key, value in totals.pool_bytes.items()},
        "mining_flows": {key: value for key, value in totals.mining_flows.items()},
        "detections": _one_label(totals.detections),
        "crypto_node_flows": _one_label(totals.node_flows),
        "packets": {(): health.packets},
        "bytes": {(): health.bytes},
        "capture_kernel_drops": {(): health.kernel_drops},
        "input_errors": {(): health.input_errors},
        "estimated_energy_joules": _one_label(totals.energy),
    }
    for name in _HEALTH_LABELLED:
        out[name] = _one_label(getattr(health, name))
    return out


def _one_label(values: Mapping[str, float]) -> dict[tuple[str, ...], float]:
    return {(key,): value for key, value in values.items()}


def totals_from(counters: Counters) -> Totals:
    def plain(name: str) -> dict[str, int]:
        return {labels[0]: int(v) for labels, v in counters.get(name, {}).items()}

    def pairs(name: str) -> dict:
        return {tuple(labels): int(v) for labels, v in counters.get(name, {}).items()}

    energy = {labels[0]: v for labels, v in counters.get("estimated_energy_joules", {}).items()}
    return Totals(
        pairs("pool_bytes"),
        pairs("mining_flows"),
        plain("detections"),
        plain("crypto_node_flows"),
        energy,
    )


def health_from(counters: Counters) -> Health:
    """The health counters of a checkpoint (gauges and rule figures left at their defaults)."""

    def single(name: str) -> int:
        return int(sum(counters.get(name, {}).values()))

    def labelled(name: str) -> dict[str, int]:
        return {labels[0]: int(v) for labels, v in counters.get(name, {}).items()}

    return Health(
        packets=single("packets"),
        bytes=single("bytes"),
        kernel_drops=single("capture_kernel_drops"),
        input_errors=single("input_errors"),
        decode_errors=labelled("decode_errors"),
        flows_evicted=labelled("flows_evicted"),
        detector_errors=labelled("detector_errors"),
        sink_errors=labelled("sink_errors"),
    )


# -- the health the live collector reads ------------------------------------------------------
def _merge(into: Counter[str], values: Mapping[str, int]) -> None:
    for key, value in values.items():
        into[key] += value


def combine(parts: Iterable[Health]) -> Health:
    """Counters and gauges summed over `parts` (a checkpoint's base, each worker)."""
    total = Health()
    labelled: dict[str, Counter[str]] = {
        name: Counter() for name in ("decode_errors", "flows_evicted", "detector_errors")
    }
    sinks: Counter[str] = Counter()
    for part in parts:
        total.packets += part.packets
        total.bytes += part.bytes
        total.kernel_drops += part.kernel_drops
        total.flows_active += part.flows_active
        total.input_errors += part.input_errors
        for name, counter in labelled.items():
            _merge(counter, getattr(part, name))
        _merge(sinks, part.sink_errors)
    total.decode_errors, total.flows_evicted = labelled["decode_errors"], labelled["flows_evicted"]
    total.detector_errors, total.sink_errors = labelled["detector_errors"], sinks
    return total


class LiveHealth:
    """The collector's HealthSource: restored counters plus each worker's latest snapshot.

    Snapshots are replaced whole, once a tick, so a scrape from the web thread
    never reads a counter the capture loop is changing.
    """

    def __init__(self, rules_loaded: int) -> None:
        self.base = Health()
        self.parts: dict[int, Health] = {}
        self.rules_loaded, self.loaded_at, self.reload_ok = rules_loaded, time.time(), True

    def update(self, key: int, snapshot: Health) -> None:
        self.parts[key] = snapshot

    def reloaded(self, rules_loaded: int) -> None:
        self.rules_loaded, self.loaded_at, self.reload_ok = rules_loaded, time.time(), True

    def refused(self) -> None:
        self.reload_ok = False

    def __call__(self) -> Health:
        parts = list(self.parts.values())
        total = combine([self.base, *parts])
        total.rules_loaded, total.rules_reload_ts = self.rules_loaded, self.loaded_at
        total.rules_reload_success = self.reload_ok and all(p.rules_reload_success for p in parts)
        return total
