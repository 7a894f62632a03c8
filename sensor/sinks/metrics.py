"""The Prometheus exporter, assembled: state sink, collector, registry, metrics file.

    exporter = Exporter(window=900, top_ips=0, health=replay_health)
    sinks.append(exporter.state)          # fed mining / flow_end / node records
    MetricsServer(exporter.registry, ...)  # sensor.sinks.web: live scrapes
    exporter.write(Path("minewatch.prom"))  # final exposition, atomically

`ReplayHealth` is the health snapshot a replay provides: totals and error
counters from the pipelines the replay builds, as they run, then the final
figures (packet and byte totals from the C count in two-pass mode).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client.exposition import generate_latest, write_to_textfile
from prometheus_client.registry import CollectorRegistry

from sensor.sinks.metrics_collector import Collector, Health, HealthSource
from sensor.sinks.metrics_state import DEFAULT_WINDOW, MetricsState

if TYPE_CHECKING:
    from sensor.capture.replay import InputErrors
    from sensor.pipeline import Pipeline
    from sensor.replay import ReplayOutcome

__all__ = ["DEFAULT_WINDOW", "Collector", "Exporter", "Health", "MetricsState", "ReplayHealth"]


class Exporter:
    """A metrics state sink and its collector, registered in `registry` (a new one by default)."""

    def __init__(
        self,
        window: float = DEFAULT_WINDOW,
        top_ips: int = 0,
        health: HealthSource | None = None,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.state = MetricsState(window, top_ips, clock)
        self.collector = Collector(self.state, health)
        self.registry = registry if registry is not None else CollectorRegistry()
        self.registry.register(self.collector)

    def text(self) -> bytes:
        """The exposition in Prometheus text format, as a scrape would get it."""
        return generate_latest(self.registry)

    def write(self, path: Path) -> None:
        """Write the exposition to `path` atomically (a temporary file, then a rename),
        so that node_exporter's textfile collector never reads half a file."""
        write_to_textfile(str(path), self.registry)


def _copy(counter: Mapping[str, int]) -> dict[str, int]:
    # The capture thread may add a key while a scrape copies: try again.
    for _ in range(5):
        try:
            return dict(counter)
        except RuntimeError:
            continue
    return {}


def _max_merge(counters: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Per key, the largest count of the pipelines given (a replay has one full pass)."""
    out: Counter[str] = Counter()
    for counter in counters:
        for key, value in _copy(counter).items():
            out[key] = max(out[key], value)
    return dict(out)


class ReplayHealth:
    """The health snapshot of one replay (a `HealthSource`).

    The replay's pipeline factory hands each pipeline it builds to `track`.
    While the replay runs, packet totals are the largest any pass has seen
    (in two-pass mode the scan pass sees the candidate packets, the full
    pass fewer); `finished` then fixes them from the count of every packet
    in the files. Error and flow counters come from the full pass only: the
    scan pass sees segment starts, so its flows end by timeout as artefacts
    of the filter, not of the traffic.
    """

    def __init__(self, rules_loaded: int, rules_loaded_at: float) -> None:
        self.rules_loaded, self.rules_loaded_at = rules_loaded, rules_loaded_at
        self.errors: InputErrors | None = None
        self._pipelines: list[Pipeline] = []
        self._full: list[Pipeline] = []  # the pipelines whose records reach the sinks
        self._final: Health | None = None

    def track(self, pipeline: Pipeline, full: bool = True) -> Pipeline:
        self._pipelines.append(pipeline)
        if full:
            self._full.append(pipeline)
        return pipeline

    def finished(self, outcome: ReplayOutcome) -> None:
        running = self()
        packets, size = max(outcome.packets, running.packets), max(outcome.bytes, running.bytes)
        self._final = self._snapshot(packets, size, outcome.pipeline)
        self._pipelines, self._full = [], []  # the passes' memory is not ours to keep

    def __call__(self) -> Health:
        if self._final is not None:
            return self._final
        pipelines = list(self._pipelines)
        if not pipelines:
            return self._snapshot(0, 0, None)
        packets = max(p.stats.packets for p in pipelines)
        size = max(p.stats.bytes for p in pipelines)
        return self._snapshot(packets, size, pipelines[-1])

    def _snapshot(self, packets: int, size: int, current: Pipeline | None) -> Health:
        healths = [p.health() for p in list(self._full)]
        return Health(
            packets=packets,
            bytes=size,
            kernel_drops=0,  # files drop nothing
            decode_errors=_max_merge(h["decode_errors"] for h in healths),
            flows_active=len(current.flows) if current is not None else 0,
            flows_evicted=_max_merge(h["flows_evicted"] for h in healths),
            detector_errors=_max_merge(h["detector_errors"] for h in healths),
            sink_errors=_max_merge(h["sink_errors"] for h in healths),
            input_errors=len(self.errors.messages) if self.errors is not None else 0,
            rules_loaded=self.rules_loaded,
            rules_reload_ts=self.rules_loaded_at,
        )
