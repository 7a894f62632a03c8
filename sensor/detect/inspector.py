"""Per-flow inspection: frame both directions, feed the dialect detectors.

The inspector is the only place that knows which detectors exist for which
kind of message; detectors know nothing of each other. A detector that
raises is counted and dropped for that flow; the others go on.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from sensor.detect.base import BinaryChunk, Detector, DetectorFactory, Message
from sensor.detect.cryptonote import CryptoNoteDetector
from sensor.detect.ethereum_stratum import EthereumStratumDetector
from sensor.detect.ethproxy import EthProxyDetector
from sensor.detect.framing import BinaryFramer, Framer, HttpFramer, Sv2Framer
from sensor.detect.getwork import GetworkDetector
from sensor.detect.grin import GrinDetector
from sensor.detect.node import identify_node
from sensor.detect.stratum_v1 import StratumV1Detector
from sensor.detect.stratum_v2 import StratumV2Detector
from sensor.detect.streams import StreamReader
from sensor.detect.tls_pool import TlsPoolDetector
from sensor.model import Finding, Side
from sensor.rules.model import RuleSet
from sensor.rules.pools import PoolIndex, pool_index

log = logging.getLogger(__name__)

JSON_DETECTORS: dict[str, DetectorFactory] = {
    "ethereum-stratum": EthereumStratumDetector,
    "grin": GrinDetector,
    "ethproxy": EthProxyDetector,
    "cryptonote": CryptoNoteDetector,
    "stratum-v1": StratumV1Detector,
}
HTTP_DETECTORS: dict[str, DetectorFactory] = {"getwork": GetworkDetector}
BINARY_DETECTORS: dict[str, DetectorFactory] = {"stratum-v2": StratumV2Detector}
# Ties in confidence go to the more specific dialect.
PRIORITY = {
    name: rank
    for rank, name in enumerate(
        [
            *("ethereum-stratum", "grin", "ethproxy", "cryptonote", "stratum-v1", "getwork"),
            *("stratum-v2", "tls", "endpoint"),
        ]
    )
}


@dataclass
class DetectContext:
    """What every flow's inspector shares: rules, pool index, error counters."""

    rules: RuleSet
    pools: PoolIndex
    detector_errors: Counter[str] = field(default_factory=Counter)

    @classmethod
    def from_rules(cls, rules: RuleSet) -> DetectContext:
        return cls(rules, pool_index(rules))

    def build(self, table: dict[str, DetectorFactory]) -> list[Detector]:
        coins = self.rules.coins
        return [
            cls(rule, coins)
            for name, cls in table.items()
            if (rule := self.rules.dialects.get(name))
        ]


class FlowInspector:
    """Reads one flow's streams and keeps the best current finding."""

    __slots__ = ("_ctx", "_detectors", "_readers", "_released", "_server_port", "finding", "node")

    def __init__(self, ctx: DetectContext, server_port: int) -> None:
        self._ctx = ctx
        self._server_port = server_port
        self._readers: list[StreamReader | None] = [None, None]
        self._detectors: list[Detector] = []
        self.finding: Finding | None = None
        self.node: str | None = None
        self._released = False

    @property
    def active(self) -> bool:
        """Whether more stream bytes could still change the outcome."""
        if self._released:
            return False
        if self.finding is not None:
            return True
        if not all(reader is not None and reader.settled for reader in self._readers):
            return True
        return any(not d.declined for d in self._detectors)

    def release(self) -> None:
        """Drop framers and detectors once nothing can change (keeps `node`).

        A flow the detectors all declined may live on for minutes; its HTTP or
        line buffers should not (64 KiB each, for every ordinary web flow).
        """
        self._released = True
        self._readers = [None, None]
        self._detectors = []

    @property
    def undecided(self) -> bool:
        """Some detector still weighs the flow (it neither matched nor declined)."""
        return any(not d.declined for d in self._detectors)

    def data(self, side: Side, ts: float, data: bytes) -> None:
        reader = self._readers[side]
        if reader is None:
            reader = self._readers[side] = StreamReader(side)
        before = reader.framer
        messages = reader.feed(ts, data)
        if reader.framer is not before and reader.framer is not None:
            self._detectors.extend(self._new_detectors(reader.framer))
        self._dispatch(messages)

    def finish(self, ts: float) -> None:
        for reader in self._readers:
            if reader is not None:
                before = reader.framer
                messages = reader.flush(ts)
                if reader.framer is not before and reader.framer is not None:
                    self._detectors.extend(self._new_detectors(reader.framer))
                self._dispatch(messages)

    def _new_detectors(self, framer: Framer) -> list[Detector]:
        """Detectors for the kind of stream just seen, once per kind per flow."""
        # Only the detectors that can read this kind of stream: most flows are
        # ordinary TLS, and building detectors is most of what they cost here.
        have = {d.dialect for d in self._detectors}
        extra: list[Detector] = []
        if isinstance(framer, Sv2Framer):
            table = BINARY_DETECTORS
        elif isinstance(framer, BinaryFramer):
            table = {}
            if "tls" not in have:
                pools, coins = self._ctx.pools, self._ctx.rules.coins
                extra.append(TlsPoolDetector(pools, coins, self._server_port))
        elif isinstance(framer, HttpFramer):
            table = HTTP_DETECTORS
        else:
            table = JSON_DETECTORS
        fresh = {k: v for k, v in table.items() if k not in have}
        return self._ctx.build(fresh) + extra

    def _dispatch(self, messages: list[Message]) -> None:
        if not messages:
            return
        for msg in messages:
            if isinstance(msg, BinaryChunk) and self.node is None:
                hello = identify_node(msg.data)
                self.node = hello.protocol if hello else None
            for detector in list(self._detectors):
                if not detector.declined:
                    self._feed(detector, msg)
        self.finding = self._best()

    def _feed(self, detector: Detector, msg: Message) -> None:
        try:
            detector.feed(msg)
        except Exception:  # a detector bug must not stop the sensor
            self._drop(detector)

    def _ask(self, detector: Detector) -> Finding | None:
        try:
            return detector.finding()
        except Exception:  # as in _feed: count, log, and go on without it
            self._drop(detector)
            return None

    def _drop(self, detector: Detector) -> None:
        self._ctx.detector_errors[detector.dialect] += 1
        log.exception("detector %s failed; dropped for this flow", detector.dialect)
        self._detectors.remove(detector)

    def _best(self) -> Finding | None:
        best: Finding | None = None
        for detector in list(self._detectors):
            found = self._ask(detector)
            if found is not None and (best is None or _rank(found) < _rank(best)):
                best = found
        return best


def _rank(finding: Finding) -> tuple[int, int]:
    return (0 if finding.confirmed else 1, PRIORITY.get(finding.dialect, 99))
