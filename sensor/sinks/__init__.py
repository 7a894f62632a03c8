"""Sinks: where detection records go (events, reports, summaries, metrics).

A sink that fails is logged and counted, and the other sinks still get the
record: losing a report must not lose the events.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Protocol

from sensor.model import FlowRecord, MiningRecord, NodeRecord

log = logging.getLogger(__name__)


class Sink(Protocol):
    def mining(self, rec: MiningRecord) -> None: ...

    def flow_end(self, rec: FlowRecord) -> None: ...

    def node(self, rec: NodeRecord) -> None: ...

    def close(self) -> None: ...


class SinkSet:
    """Fans records out to every sink, isolating their failures."""

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks
        self.errors: Counter[str] = Counter()

    def _each(self, method: str, *args: object) -> None:
        for sink in self.sinks:
            try:
                getattr(sink, method)(*args)
            except Exception:
                name = type(sink).__name__
                self.errors[name] += 1
                log.exception("sink %s failed in %s", name, method)

    def mining(self, rec: MiningRecord) -> None:
        self._each("mining", rec)

    def flow_end(self, rec: FlowRecord) -> None:
        self._each("flow_end", rec)

    def node(self, rec: NodeRecord) -> None:
        self._each("node", rec)

    def close(self) -> None:
        self._each("close")
