"""The replay job: capture files through the pipeline into the sinks.

With libpcap, replay makes two filtered passes so that only packets that can
matter reach Python (see `capture.prefilter`):

1. scan: the candidate filter; a sink-less pipeline reads segment starts and
   DNS answers, and notes the flows worth a full look (any finding, node
   traffic, or a detector still undecided) and the addresses DNS gave for
   pool host names;
2. full: a filter for exactly those flows and hosts; the real pipeline
   reassembles and detects them and writes every record, naming pools with
   the names pass 1 learned (so a name is known even when its DNS answer came
   after the flow started).

Meanwhile a thread counts every packet and byte in C (libpcap releases the
GIL), for the totals. Without libpcap one pure-Python pass reads everything;
both ways give the same events.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sensor.capture.errors import CaptureError
from sensor.capture.pcapfile import time_span
from sensor.capture.prefilter import flow_program, scan_program
from sensor.capture.progress import Progress
from sensor.capture.replay import FileReader, InputErrors, expand
from sensor.decode import Decoder
from sensor.pipeline import Endpoints, Pipeline, PipelineSettings

PipelineFactory = Callable[[PipelineSettings, bool, Callable[[Endpoints], bool] | None], Pipeline]


@dataclass
class ReplayOutcome:
    files: list[Path]
    errors: InputErrors
    pipeline: Pipeline
    packets: int = 0
    bytes: int = 0
    candidates: int = 0  # packets that passed the prefilter (two-pass mode)
    mode: str = "python"
    pass2: str = ""
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)


class Replay:
    """Runs files through pipelines built by `factory(settings, with_sinks, admit)`."""

    def __init__(
        self,
        paths: Iterable[Path],
        factory: PipelineFactory,
        settings: PipelineSettings,
        prefilter: bool = True,
        progress: Progress | None = None,
    ) -> None:
        self.errors = InputErrors()
        self.reader = FileReader(self.errors, use_libpcap=prefilter)
        self.files = self._supported(expand(paths, self.errors))
        self.factory, self.settings = factory, settings
        self.progress = progress or Progress(enabled=False)

    def _supported(self, files: list[Path]) -> list[Path]:
        """Files whose link type the decoder reads; the others are input errors."""
        decoder, kept = Decoder(), []
        for path in files:
            linktype = self.reader.linktype(path)
            if linktype is not None and not decoder.supports(linktype):
                self.errors.add(CaptureError(path.name, f"unsupported link type {linktype}"))
            else:
                kept.append(path)  # unreadable files are reported when read
        return kept

    def run(self) -> ReplayOutcome:
        if self.reader.use_libpcap:
            return self._two_pass()
        return self._one_pass()

    def _one_pass(self) -> ReplayOutcome:
        pipeline = self.factory(self.settings, True, None)
        for path in self.progress.files(self.files, "reading"):
            for frame in self.reader.frames(path):
                pipeline.feed(frame)
        pipeline.finish()
        out = ReplayOutcome(self.files, self.errors, pipeline)
        out.packets, out.bytes = pipeline.stats.packets, pipeline.stats.bytes
        return out

    def _two_pass(self) -> ReplayOutcome:
        counts: dict[str, tuple[int, int]] = {}
        counter = threading.Thread(target=self._count_all, args=(counts,), daemon=True)
        counter.start()
        scan = self._scan()
        pipeline, pass2 = self._full(scan)
        counter.join()
        out = ReplayOutcome(self.files, self.errors, pipeline, mode="libpcap two-pass")
        out.packets = sum(p for p, _ in counts.values())
        out.bytes = sum(b for _, b in counts.values())
        out.candidates, out.pass2, out.counts = scan.stats.packets, pass2, counts
        return out

    def _count_all(self, counts: dict[str, tuple[int, int]]) -> None:
        for path in self.files:
            counts[str(path)] = self.reader.count(path)

    def _scan(self) -> Pipeline:
        scan_settings = PipelineSettings(flows=self.settings.flows, exact=False)
        scan = self.factory(scan_settings, False, None)
        pool_nets = [str(n) for e in scan.ctx.rules.pools for n in e.networks]
        for path in self.progress.files(self.files, "pass 1/2"):
            linktype = self.reader.linktype(path)
            bpf = scan_program(linktype, pool_nets) if linktype is not None else None
            for frame in self.reader.frames(path, bpf):
                scan.feed(frame)
        scan.flows.flush()
        return scan

    def _full(self, scan: Pipeline) -> tuple[Pipeline, str]:
        flows = sorted(scan.interesting)
        pool_ips = sorted(_pool_addresses(scan))
        wanted = set(flows)
        hosts = set(pool_ips)

        def admit(ends: Endpoints) -> bool:
            return ends in wanted or ends[0] in hosts or ends[2] in hosts

        pipeline = self.factory(self.settings, True, admit)
        pipeline.adopt_names(scan.names)
        pass2 = f"{len(flows)} flows, {len(pool_ips)} pool addresses"
        for path in self.progress.files(self.files, "pass 2/2"):
            linktype = self.reader.linktype(path)
            bpf = flow_program(linktype, flows, pool_ips) if linktype is not None else None
            for frame in self.reader.frames(path, bpf):
                pipeline.feed(frame)
        self._widen_window(pipeline, scan)
        pipeline.finish(clock=pipeline.stats.last_ts)
        return pipeline, pass2

    def _widen_window(self, pipeline: Pipeline, scan: Pipeline) -> None:
        """The capture's own time span, not just that of the packets pass 2 read."""
        firsts, lasts = [], []
        for stats in (pipeline.stats, scan.stats):
            if stats.first_ts is not None and stats.last_ts is not None:
                firsts.append(stats.first_ts)
                lasts.append(stats.last_ts)
        for path in self.files:
            span = time_span(path)
            if span is not None:
                firsts.append(span[0])
                lasts.append(span[1])
        if firsts:
            pipeline.stats.first_ts, pipeline.stats.last_ts = min(firsts), max(lasts)


def _pool_addresses(scan: Pipeline) -> set[str]:
    """Addresses that DNS answers in pass 1 gave for pool host names."""
    pools = scan.ctx.pools
    return {ip for ip, name in scan.names.items() if pools.match_host(name) is not None}
