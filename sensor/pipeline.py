"""The one place that knows the order of stages.

frame -> decode -> flows (+ stream reassembly) -> detect -> attribute -> sinks.
Replay and live capture both hand frames to `Pipeline.feed`; everything
after capture is shared.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sensor.attribute import Attributor, NullAttributor
from sensor.decode import Decoder
from sensor.detect.dns import HostNames
from sensor.detect.endpoint import endpoint_finding
from sensor.detect.inspector import DetectContext, FlowInspector
from sensor.flows.flow import TCP_SYN, Flow
from sensor.flows.reassembly import Stream
from sensor.flows.table import FlowSettings, FlowTable
from sensor.model import UDP, Finding, FlowProgress, Frame, Packet, Side
from sensor.records import RecordBuilder
from sensor.rules.model import RuleSet
from sensor.sinks import Sink, SinkSet

log = logging.getLogger(__name__)

UNLIMITED = 1 << 62
# A pool often confirms (subscribe result, job) a moment before the miner
# authorizes; the event waits this long for the login so that it can name it.
LOGIN_GRACE = 5.0
Endpoints = tuple[str, int, str, int]


@dataclass
class PipelineStats:
    packets: int = 0
    bytes: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    mining_flows: int = 0
    node_flows: int = 0
    input_errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Counted:
    """A reported open flow and the bytes its progress records have carried so far."""

    flow: Flow
    egress: int = 0
    ingress: int = 0


@dataclass(frozen=True)
class PipelineSettings:
    flows: FlowSettings = field(default_factory=FlowSettings)
    # exact=False reads each segment as it comes, without reassembly: the
    # prefilter pass sees only segment starts, so there is nothing to reorder.
    exact: bool = True


class Pipeline:
    """Feeds frames through the stages; hands records to the sinks."""

    def __init__(
        self,
        rules: RuleSet,
        sinks: Iterable[Sink] = (),
        settings: PipelineSettings | None = None,
        attributor: Attributor | None = None,
        admit: Callable[[Endpoints], bool] | None = None,
    ) -> None:
        self.settings = settings or PipelineSettings()
        self.decoder = Decoder()
        self.names = HostNames()
        self.ctx = DetectContext.from_rules(rules)
        self.sinks = SinkSet(list(sinks))
        self.flows = FlowTable(self.settings.flows, self._flow_ended)
        self.records = RecordBuilder(self.ctx, self.names, attributor or NullAttributor())
        self.stats = PipelineStats()
        self.interesting: set[Endpoints] = set()
        self._admit = admit
        self._open_reported: dict[int, _Counted] = {}  # flow id -> progress so far

    # -- stages ---------------------------------------------------------------
    def feed(self, frame: Frame) -> None:
        stats = self.stats
        stats.packets += 1
        stats.bytes += len(frame.data)
        pkt = self.decoder.decode(frame)
        if pkt is None:
            return
        # min and max, not first and last: files of one replay need not come in
        # time order, and the report's window must span all of them.
        if stats.first_ts is None or pkt.ts < stats.first_ts:
            stats.first_ts = pkt.ts
        if stats.last_ts is None or pkt.ts > stats.last_ts:
            stats.last_ts = pkt.ts
        if pkt.proto == UDP:
            if pkt.sport == 53 and pkt.payload:
                self.names.learn(pkt.payload)
            return  # pool protocols run over TCP
        if self._admit is not None and not self._admits(pkt):
            return
        flow = self.flows.get(pkt)
        side = flow.side_of(pkt)
        if pkt.tcp_flags & TCP_SYN:
            self._stream(flow, side).syn(pkt.seq)
        if pkt.payload:
            self._inspect(flow, side, pkt)

    def _admits(self, pkt: Packet) -> bool:
        assert self._admit is not None
        return self._admit((pkt.src, pkt.sport, pkt.dst, pkt.dport)) or self._admit(
            (pkt.dst, pkt.dport, pkt.src, pkt.sport)
        )

    def _stream(self, flow: Flow, side: Side) -> Stream:
        stream = flow.streams[side]
        if stream is None:
            stream = flow.streams[side] = Stream(self.settings.flows.stream_depth)
        return stream

    def _inspect(self, flow: Flow, side: Side, pkt: Packet) -> None:
        flow.payload[side] += len(pkt.payload)
        inspector = flow.inspector
        if inspector is None:
            inspector = flow.inspector = FlowInspector(self.ctx, flow.resp[1])
        elif not inspector.active:
            return
        if self.settings.exact:
            data = self._stream(flow, side).segment(pkt.seq, pkt.payload)
        else:
            data = pkt.payload
        if data:
            inspector.data(side, pkt.ts, data)
            self._detected(flow, inspector, pkt.ts)
            if not inspector.active:
                inspector.release()
                flow.streams = [None, None]

    def _detected(self, flow: Flow, inspector: FlowInspector, ts: float) -> None:
        finding = inspector.finding
        if finding is not None and not flow.reported:
            self._lift_depth(flow)
            if finding.confirmed:
                if flow.confirmed_at is None:
                    flow.confirmed_at = ts
                if finding.login or finding.shares or ts - flow.confirmed_at >= LOGIN_GRACE:
                    self._report(flow, finding, flow.confirmed_at)
        if inspector.node and not flow.node_reported:
            flow.node_reported = True
            self.stats.node_flows += 1
            self.sinks.node(self.records.node(flow, inspector.node, ts))

    @staticmethod
    def _lift_depth(flow: Flow) -> None:
        # A recognised pool flow is read to its end: shares and difficulty
        # changes feed the hash-rate estimate, and pool flows are light.
        for stream in flow.streams:
            if stream is not None:
                stream.depth = UNLIMITED

    def _report(self, flow: Flow, finding: Finding, ts: float) -> None:
        flow.reported = finding
        self._open_reported[flow.id] = _Counted(flow)
        self.stats.mining_flows += 1
        self.sinks.mining(self.records.mining(flow, finding, ts))

    def _flow_ended(self, flow: Flow, reason: str) -> None:
        inspector = flow.inspector
        finding = None
        if inspector is not None:
            inspector.finish(flow.last)
            finding = inspector.finding
        if finding is None and flow.payload[0] and flow.payload[1]:
            finding = endpoint_finding(
                self.ctx.pools, self.names, (flow.orig, flow.resp), flow.payload
            )
        if finding is not None and not flow.reported:
            self._report(flow, finding, flow.confirmed_at or flow.last)
        if flow.reported is not None:
            self._open_reported.pop(flow.id, None)
            # A detector may step back late (a sibling dialect showed itself);
            # the flow event then keeps what the mining event said.
            final = finding if finding is not None else flow.reported
            self.sinks.flow_end(self.records.flow_end(flow, final, reason))
        if finding is not None or (
            inspector is not None and (inspector.node or inspector.undecided)
        ):
            self.interesting.add((*flow.orig, *flow.resp))

    def adopt_names(self, names: HostNames) -> None:
        """Name pools with what an earlier pass learned from DNS (filtered replay)."""
        self.names = names
        self.records.names = names

    def finish(self, clock: float | None = None, reason: str = "end_of_input") -> None:
        """End of input: end every flow (with `reason`), then close the sinks.

        `clock` is the time the input really ended, when the pipeline saw only
        part of it (filtered replay): flows idle or closed by then expire as
        they would have had every packet gone through.
        """
        if clock is not None:
            self.flows.expire(clock)
        self.flows.flush(reason)
        self.sinks.close()

    # -- live operation -------------------------------------------------------
    def watch_addresses(self) -> set[str]:
        """Addresses whose every packet the live prefilter must let through:
        the pool side of mining flows, the server side of undecided ones."""
        out: set[str] = set()
        for flow in self.flows.open_flows():
            inspector = flow.inspector
            if inspector is None:
                continue
            finding = flow.reported or inspector.finding
            if finding is not None:
                out.add(flow.endpoint(finding.miner_side.other)[0])
            elif inspector.undecided:
                out.add(flow.resp[0])
        return out

    def progress(self, now: float) -> list[FlowProgress]:
        """Progress of every reported open flow that carried bytes since the last call."""
        out = []
        for counted in self._open_reported.values():
            flow, finding = counted.flow, counted.flow.reported
            assert finding is not None
            miner = finding.miner_side
            egress, ingress = flow.bytes[miner], flow.bytes[miner.other]
            if egress == counted.egress and ingress == counted.ingress:
                continue
            miner_ip = flow.endpoint(miner)[0]
            pool_ip, pool_port = flow.endpoint(miner.other)
            owner = self.records.owner(miner_ip)
            # The detectors' current finding has the shares so far; the reported one
            # keeps the side and coin the mining event named.
            current = flow.inspector.finding if flow.inspector is not None else None
            if current is None or current.miner_side is not miner:
                current = finding
            estimate = self.records.estimate(flow, current, finding)
            out.append(
                FlowProgress(
                    flow.id,
                    now,
                    miner_ip,
                    finding.coin,
                    owner.type,
                    egress - counted.egress,
                    ingress - counted.ingress,
                    algorithm=current.algorithm or finding.algorithm,
                    pool_endpoint=f"{pool_ip}:{pool_port}",
                    estimate=estimate,
                )
            )
            counted.egress, counted.ingress = egress, ingress
        return out

    def reload(self, rules: RuleSet, attributor: Attributor | None = None) -> None:
        """New rules and ownership for flows that start from now on.

        Open flows keep their state and the detectors (and dialect rules) they
        started with: a reload loses no flow. Known-endpoint matching at a
        flow's end uses the rules in use then. Error counters carry over, so
        that their `_total` series do not drop.
        """
        errors = self.ctx.detector_errors
        self.ctx = DetectContext.from_rules(rules)
        self.ctx.detector_errors = errors
        # The builder keeps the pool each open flow's mining event named.
        self.records.rebind(self.ctx, attributor or NullAttributor())

    def health(self) -> dict[str, Counter[str]]:
        return {
            "decode_errors": self.decoder.errors,
            "flows_evicted": self.flows.evicted,
            "detector_errors": self.ctx.detector_errors,
            "sink_errors": self.sinks.errors,
        }
