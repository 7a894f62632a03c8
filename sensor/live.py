"""The live job of `minewatch run`: interfaces -> pipeline(s) -> the parent's sinks, until stopped.

With one worker (the default) capture and pipeline run in the main process.
With N, N forked children each open a LiveSource on the interfaces in one
PACKET_FANOUT_HASH group (so each flow stays with one child), run their own
pipeline, and send records, flow progress and health snapshots to the parent
over a queue; the parent owns the sinks (events, metrics, report, state).

Timed work runs on the wall clock even when no packet arrives: the capture
loop hands LiveSource a stop event that is also "set" whenever a tick is due,
so `frames()` returns at least every second (it checks between batches and
every 0.1 s when idle) and the loop expires flows, sends progress and health,
then captures on. No lock or clock call is added per packet.

Signal handlers only set flags that the loops read on their next tick (a
signal handler must not take locks the interrupted code may hold).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue as queues
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sensor.attribute import Attributor
from sensor.capture.errors import CaptureError
from sensor.capture.live import LiveSource
from sensor.model import FlowProgress, FlowRecord, MiningRecord, NodeRecord
from sensor.pipeline import Pipeline
from sensor.rules.model import RuleSet
from sensor.sinks import Sink, SinkSet
from sensor.sinks.live_health import LiveHealth
from sensor.sinks.metrics_collector import Health

log = logging.getLogger(__name__)

TICK = 1.0  # seconds between expiry sweeps, health snapshots and checks of the flags
PROGRESS_EVERY = 2.0  # seconds between byte progress records of open mining flows
START_TIMEOUT = 30.0  # seconds workers get to open their sockets
STOP_GRACE = 15.0  # seconds workers get to end their flows after a stop


# -- flags, ticks, reloads ----------------------------------------------------------------------
class Signals:
    """SIGTERM and SIGINT ask to stop, SIGHUP to reload; the loops read the flags."""

    def __init__(self) -> None:
        self.stopping = False
        self.reload = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._hup)

    def _stop(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def _hup(self, signum: int, _frame: object) -> None:
        self.reload = True

    def take_reload(self) -> bool:
        asked, self.reload = self.reload, False
        return asked


class Ticker:
    """The stop event LiveSource.frames() polls: set when stopping or when a tick is due."""

    __slots__ = ("due", "stopped")

    def __init__(self, stopped: Callable[[], bool]) -> None:
        self.stopped = stopped
        self.due = 0.0

    def is_set(self) -> bool:
        return self.stopped() or time.monotonic() >= self.due


# -- one capture loop ------------------------------------------------------------------------------
class Worker:
    """One LiveSource and its pipeline; expiry, progress and health on every tick."""

    def __init__(
        self,
        source: LiveSource,
        pipeline: Pipeline,
        progress: Callable[[list[FlowProgress]], None],
    ) -> None:
        self.source, self.pipeline, self._progress = source, pipeline, progress
        self.adaptive = source.adaptive  # with --prefilter
        self.reload_ok = True
        self._next_progress = time.time() + PROGRESS_EVERY

    def run(self, stopped: Callable[[], bool], on_tick: Callable[[], None]) -> None:
        ticker = Ticker(stopped)
        feed = self.pipeline.feed
        while not stopped():
            ticker.due = time.monotonic() + TICK
            for frame in self.source.frames(ticker):
                feed(frame)
            self.tick(time.time())
            on_tick()

    def tick(self, now: float) -> None:
        self.pipeline.flows.expire(now)
        adaptive = self.adaptive
        if adaptive is not None and adaptive.update(self.pipeline.watch_addresses()):
            self.source.refilter(adaptive.program())
        if now >= self._next_progress:
            self._next_progress = now + PROGRESS_EVERY
            done = self.pipeline.progress(now)
            if done:
                self._progress(done)

    def reload(self, rules: RuleSet | None, ownership: Attributor) -> None:
        """New rules for new flows (None: a refused reload, the old ones stay)."""
        self.reload_ok = rules is not None
        if rules is not None:
            self.pipeline.reload(rules, ownership)

    def finish(self, name: str = "capture") -> None:
        """Stop: every flow ends with reason "shutdown"; then the sinks close."""
        self.pipeline.finish(reason="shutdown")
        self.source.close()
        stats = self.pipeline.stats
        log.info("%s stopped: %d packets, %d mining flows", name, stats.packets, stats.mining_flows)

    def health(self) -> Health:
        p, stats = self.pipeline, self.source.stats()
        errors = p.health()
        return Health(
            packets=p.stats.packets,
            bytes=p.stats.bytes,
            kernel_drops=stats.dropped,
            decode_errors=dict(errors["decode_errors"]),
            flows_active=len(p.flows),
            flows_evicted=dict(errors["flows_evicted"]),
            detector_errors=dict(errors["detector_errors"]),
            sink_errors=dict(errors["sink_errors"]),
            rules_reload_success=self.reload_ok,
        )


class Ownership(Protocol):
    """The ownership sources in use (an Attributor), replaced whole on reload."""

    def lookup(self, ip: str) -> Any: ...

    def swap(self, resolver: Any) -> None: ...


class Outputs(Protocol):
    """The parent's side (sensor.commands.run builds it): sinks, metrics, state."""

    sinks: list[Sink]
    health: LiveHealth

    @property
    def ownership(self) -> Ownership: ...

    def reload(self) -> RuleSet | None:
        """SIGHUP: new rules (ownership swapped), or None when any file is invalid."""

    def progress(self, records: list[FlowProgress]) -> None: ...

    def tick(self) -> None: ...

    def finish(self) -> None: ...


PipelineFactory = Callable[[list[Sink], Attributor], Pipeline]
Loaded = tuple[RuleSet, Any]  # new rules, and the new ownership resolver (or None)


def run_single(
    source: LiveSource, factory: PipelineFactory, outputs: Outputs, signals: Signals
) -> int:
    """One worker in this process, feeding the parent's sinks directly."""
    worker = Worker(source, factory(outputs.sinks, outputs.ownership), outputs.progress)

    def on_tick() -> None:
        if signals.take_reload():
            worker.reload(outputs.reload(), outputs.ownership)
        outputs.health.update(0, worker.health())
        outputs.tick()

    try:
        worker.run(lambda: signals.stopping, on_tick)
    finally:
        worker.finish()
        outputs.health.update(0, worker.health())
        outputs.finish()
    return 0


# -- several workers -------------------------------------------------------------------------------
class QueueSink:
    """A worker's sink: every record goes to the parent, tagged with its kind."""

    def __init__(self, queue: Any, index: int) -> None:
        self.queue, self.index = queue, index

    def mining(self, rec: MiningRecord) -> None:
        self.queue.put(("mining", self.index, rec))

    def flow_end(self, rec: FlowRecord) -> None:
        self.queue.put(("flow_end", self.index, rec))

    def node(self, rec: NodeRecord) -> None:
        self.queue.put(("node", self.index, rec))

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class WorkerPlan:
    """What every child needs, inherited through fork (nothing here is pickled)."""

    make_source: Callable[[], LiveSource]
    factory: PipelineFactory
    ownership: Ownership
    reload: Callable[[], Loaded | None]  # load the rules and ownership files again
    drop_privileges: Callable[[], None]


def _child(index: int, plan: WorkerPlan, channel: Any, stop: Any, generation: Any) -> None:
    """A worker process: open the sockets, drop privileges, capture until told to stop."""
    # The parent decides when to stop and reload: a terminal's ^C reaches the
    # whole process group, and the parent must see the flows end first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signals = Signals()
    signal.signal(signal.SIGTERM, signals._stop)
    parent = os.getppid()
    try:
        source = plan.make_source()
        source.open()
    except CaptureError as exc:
        channel.put(("failed", index, str(exc)))
        return
    plan.drop_privileges()
    channel.put(("ready", index, None))
    pipeline = plan.factory([QueueSink(channel, index)], plan.ownership)
    worker = Worker(source, pipeline, lambda done: channel.put(("progress", index, done)))
    seen = generation.value

    def on_tick() -> None:
        nonlocal seen
        if generation.value != seen:
            seen = generation.value
            loaded = plan.reload()
            if loaded is not None:
                plan.ownership.swap(loaded[1])
            worker.reload(loaded[0] if loaded is not None else None, plan.ownership)
        channel.put(("health", index, worker.health()))
        if os.getppid() != parent:  # the parent died (kill -9): nobody reads our records
            signals.stopping = True

    try:
        worker.run(lambda: signals.stopping or stop.is_set(), on_tick)
    finally:
        worker.finish(f"worker {index}")
        channel.put(("done", index, worker.health()))
        channel.close()
        if os.getppid() == parent:
            channel.join_thread()  # everything put reaches the parent before we exit
        else:
            channel.cancel_join_thread()  # nobody reads: do not wait on a full pipe


class Supervisor:
    """The parent of N workers: starts them, feeds their records to the sinks, stops them."""

    def __init__(self, plan: WorkerPlan, workers: int, outputs: Outputs, signals: Signals) -> None:
        ctx = multiprocessing.get_context("fork")
        self.channel, self.stop, self.generation = ctx.Queue(), ctx.Event(), ctx.Value("i", 0)
        self.outputs, self.signals, self.plan = outputs, signals, plan
        self.sinks = SinkSet(outputs.sinks)
        self.procs = [
            ctx.Process(
                target=_child,
                args=(i, plan, self.channel, self.stop, self.generation),
                name=f"minewatch-worker-{i}",
                daemon=True,
            )
            for i in range(workers)
        ]
        self.ready: set[int] = set()
        self.done: set[int] = set()
        self.failed = False

    def start(self) -> bool:
        """Fork the workers and wait until each has its sockets open (False: one failed)."""
        for proc in self.procs:
            proc.start()
        deadline = time.monotonic() + START_TIMEOUT
        while len(self.ready) < len(self.procs) and not self.failed:
            if time.monotonic() > deadline or any(p.exitcode for p in self.procs):
                log.error("workers did not all open their sockets; stopping")
                self.failed = True
            self._receive(time.monotonic() + TICK)
        return not self.failed

    def run(self) -> int:
        stop_by: float | None = None
        next_tick = time.monotonic() + TICK
        while len(self.done) < len(self.procs):
            self._receive(next_tick)
            now = time.monotonic()
            if now < next_tick:
                continue
            next_tick = now + TICK
            self._tick()
            if stop_by is None and (self.signals.stopping or self.failed):
                self.stop.set()
                stop_by = now + STOP_GRACE
            elif stop_by is not None and now > stop_by:
                log.error("workers did not stop within %g s; ending them", STOP_GRACE)
                break
        return 1 if self.failed else 0

    def finish(self) -> None:
        self.stop.set()
        for proc in self.procs:
            proc.join(timeout=2.0)
            if proc.is_alive():
                proc.kill()
                proc.join()
        self.sinks.close()
        self.outputs.finish()

    def _tick(self) -> None:
        if self.signals.take_reload() and self.outputs.reload() is not None:
            with self.generation.get_lock():
                self.generation.value += 1  # each worker reloads on its next tick
        self.outputs.health.update(-1, Health(sink_errors=dict(self.sinks.errors)))
        for index, proc in enumerate(self.procs):
            if index not in self.done and proc.exitcode not in (None, 0):
                log.error("worker %d exited with code %s; stopping", index, proc.exitcode)
                self.done.add(index)
                self.failed = True
        self.outputs.tick()

    def _receive(self, until: float) -> None:
        try:
            kind, index, payload = self.channel.get(timeout=max(until - time.monotonic(), 0.0))
        except queues.Empty:
            return
        if kind in ("mining", "flow_end", "node"):
            getattr(self.sinks, kind)(payload)
        elif kind == "progress":
            self.outputs.progress(payload)
        elif kind in ("health", "done"):
            self.outputs.health.update(index, payload)
            if kind == "done":
                self.done.add(index)
                if not self.stop.is_set():  # it failed (logged there): the rest stop too
                    log.error("worker %d stopped unexpectedly; stopping", index)
                    self.failed = True
        elif kind == "ready":
            self.ready.add(index)
        elif kind == "failed":
            log.error("worker %d: %s", index, payload)
            self.done.add(index)
            self.failed = True


def run_workers(
    plan: WorkerPlan,
    workers: int,
    outputs: Outputs,
    signals: Signals,
    started: Callable[[], None],
) -> int:
    """N worker processes; `started()` runs in the parent once every worker captures."""
    supervisor = Supervisor(plan, workers, outputs, signals)
    try:
        if not supervisor.start():
            return 1
        started()
        return supervisor.run()
    finally:
        supervisor.finish()
