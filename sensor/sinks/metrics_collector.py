"""The Prometheus collector: metric families built at scrape time from the sensor's state.

As in client_python's own collectors, nothing is updated on the packet path:
the state sink counts records, the command hands in a callable that says how
the sensor is doing (`Health`), and `collect()` reads both when Prometheus
asks. The registry is passed in, so tests use a fresh `CollectorRegistry`.

Names and labels are the contract of product.md (Metrics): alert rules and
dashboards depend on them. Counters are exposed with the `_total` suffix
(client_python adds it to counter families).
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from sensor import __version__
from sensor.sinks.metrics_state import MetricsState, StateView

PREFIX = "minewatch_"
# The flow table's eviction reasons (sensor.flows.table), present from the
# first scrape at 0 so that rate() and increase() see the first eviction.
EVICTION_REASONS = ("idle_timeout", "active_timeout", "table_full")


@dataclass(slots=True)
class Health:
    """How the sensor is doing, as the command that runs it knows it."""

    packets: int = 0
    bytes: int = 0
    kernel_drops: int = 0
    decode_errors: Mapping[str, int] = field(default_factory=dict)
    flows_active: int = 0
    flows_evicted: Mapping[str, int] = field(default_factory=dict)
    detector_errors: Mapping[str, int] = field(default_factory=dict)
    sink_errors: Mapping[str, int] = field(default_factory=dict)
    input_errors: int = 0
    rules_loaded: int = 0
    rules_reload_ts: float | None = None
    rules_reload_success: bool = True  # False: the last reload was refused, old rules kept


HealthSource = Callable[[], Health]


def _counter(name: str, doc: str, labels: Mapping[str, int] | None = None, key: str = "") -> Metric:
    family = CounterMetricFamily(PREFIX + name, doc, labels=[key] if key else None)
    if labels is not None:
        for value, count in sorted(labels.items()):
            family.add_metric([value], count)
    return family


def _gauge(name: str, doc: str, value: float | None = None) -> Metric:
    family = GaugeMetricFamily(PREFIX + name, doc)
    if value is not None:
        family.add_metric([], value)
    return family


class Collector:
    """Builds every minewatch metric family from `state` and `health` on each scrape."""

    def __init__(self, state: MetricsState, health: HealthSource | None = None) -> None:
        self.state = state
        self.health = health

    def describe(self) -> Iterator[Metric]:
        """The families without samples: lets the registry check names and filter by name[]."""
        yield from self._families(_EMPTY_VIEW, Health(), samples=False)

    def collect(self) -> Iterator[Metric]:
        health = self.health() if self.health is not None else Health()
        yield from self._families(self.state.view(), health, samples=True)

    def _families(self, view: StateView, health: Health, samples: bool) -> Iterator[Metric]:
        yield from _detection_families(view)
        yield from _estimate_families(view)
        yield from _health_families(health, samples)
        if self.state.top_ips:
            yield from _top_families(view, samples)


def _detection_families(view: StateView) -> Iterator[Metric]:
    pool = CounterMetricFamily(
        PREFIX + "pool_bytes",
        "Bytes of mining flows by direction (egress: miner to pool), counted when a flow ends.",
        labels=["direction", "coin", "org_type"],
    )
    for key, count in sorted(view.pool_bytes.items()):
        pool.add_metric(list(key), count)
    yield pool
    suspects = GaugeMetricFamily(
        PREFIX + "suspect_ips",
        "Distinct miner IPs seen mining within the recent window (capture time in replay).",
        labels=["coin", "org_type", "region"],
    )
    for key, count in sorted(view.suspects.items()):
        suspects.add_metric(list(key), count)
    yield suspects
    flows = CounterMetricFamily(
        PREFIX + "mining_flows", "Mining flows detected.", labels=["dialect", "coin"]
    )
    for (dialect, coin), count in sorted(view.mining_flows.items()):
        flows.add_metric([dialect, coin], count)
    yield flows
    yield _counter(
        "detections", "Mining flows by the rule that detected them.", view.detections, "rule_id"
    )
    yield _counter(
        "crypto_node_flows",
        "Cryptocurrency node P2P flows (not mining).",
        view.node_flows,
        "protocol",
    )


def _estimate_families(view: StateView) -> Iterator[Metric]:
    hashrate = GaugeMetricFamily(
        PREFIX + "estimated_hashrate_hashes_per_second",
        "Estimated hash rate (shares x difficulty) of the mining flows open (their rate to date)"
        " or ended within the recent window.",
        labels=["coin", "algorithm"],
    )
    for (coin, algorithm), value in sorted(view.hashrate.items()):
        hashrate.add_metric([coin, algorithm], value)
    yield hashrate
    yield _by_coin(
        GaugeMetricFamily(
            PREFIX + "estimated_power_watts",
            "Estimated power (hash rate x rules/efficiency.yaml) of the mining flows open or ended"
            " within the recent window; algorithms without a figure add nothing.",
            labels=["coin"],
        ),
        view.power,
    )
    yield _by_coin(
        CounterMetricFamily(
            PREFIX + "estimated_energy_joules",
            "Estimated energy of mining flows: power x duration, counted as flows go on (live)"
            " and when they end.",
            labels=["coin"],
        ),
        view.energy,
    )


def _by_coin(
    family: GaugeMetricFamily | CounterMetricFamily, values: Mapping[str, float]
) -> Metric:
    for coin, value in sorted(values.items()):
        family.add_metric([coin], value)
    return family


def _health_families(h: Health, samples: bool) -> Iterator[Metric]:
    def v(value: float | None) -> float | None:
        return value if samples else None

    yield _plain_counter(
        "packets", "Packets captured (replay: in the capture files).", v(h.packets)
    )
    yield _plain_counter("bytes", "Bytes of the packets captured.", v(h.bytes))
    yield _plain_counter(
        "capture_kernel_drops",
        "Packets the kernel dropped before capture (always 0 in replay).",
        v(h.kernel_drops),
    )
    yield _plain_counter(
        "input_errors", "Capture inputs that could not be read.", v(h.input_errors)
    )
    yield _counter(
        "decode_errors", "Frames that could not be decoded, by reason.", h.decode_errors, "reason"
    )
    yield _gauge("flows_active", "Flows in the flow table.", v(h.flows_active))
    evicted = dict.fromkeys(EVICTION_REASONS, 0) if samples else {}
    evicted.update(h.flows_evicted)
    yield _counter("flows_evicted", "Flows ended before they closed, by reason.", evicted, "reason")
    yield _counter(
        "detector_errors", "Detector failures (logged), by dialect.", h.detector_errors, "detector"
    )
    yield _counter("sink_errors", "Sink failures (logged), by sink.", h.sink_errors, "sink")
    yield from _rules_and_build(h, samples)


def _rules_and_build(h: Health, samples: bool) -> Iterator[Metric]:
    def v(value: float | None) -> float | None:
        return value if samples else None

    yield _gauge("rules_loaded", "Rules in use.", v(h.rules_loaded))
    yield _gauge(
        "rules_last_reload_timestamp_seconds",
        "When the rules in use were loaded (Unix time).",
        v(h.rules_reload_ts),
    )
    yield _gauge(
        "rules_last_reload_success",
        "Whether the last rule (re)load succeeded (1) or was refused, keeping the old rules (0).",
        v(int(h.rules_reload_success)),
    )
    info = GaugeMetricFamily(
        PREFIX + "build_info",
        "minewatch version and Python, as labels.",
        labels=["version", "python"],
    )
    if samples:
        info.add_metric([__version__, platform.python_version()], 1)
    yield info


def _plain_counter(name: str, doc: str, value: float | None) -> Metric:
    family = CounterMetricFamily(PREFIX + name, doc)
    if value is not None:
        family.add_metric([], value)
    return family


def _top_families(view: StateView, samples: bool) -> Iterator[Metric]:
    top = CounterMetricFamily(
        PREFIX + "top_miner_pool_bytes",
        "Egress bytes toward pools of the miners with the most (opt-in, capped top N).",
        labels=["ip", "coin", "org_type"],
    )
    for row in view.top:
        top.add_metric([row.ip, row.coin, row.org_type], row.bytes)
    yield top
    yield _gauge(
        "top_miner_omitted_ips",
        "Miner IPs with pool egress left out of the top-N collector.",
        view.top_omitted if samples else None,
    )


_EMPTY_VIEW = StateView({}, {}, {}, {}, {}, [], 0)
