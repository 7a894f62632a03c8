"""The flow table: bounded, with idle, active and closed timeouts.

Flows live in an insertion-ordered dict that is re-ordered on every packet,
so the least recently seen flow is always first: expiry sweeps stop at the
first live flow, and a full table evicts from the front. Every ended flow is
handed to `on_end` with its reason, and evictions are counted by reason.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sensor.flows.flow import TCP_FIN, TCP_RST, TCP_SYN, Flow, FlowKey, flow_key, new_flow
from sensor.model import Packet, Side

_SWEEP_EVERY = 1.0  # seconds of capture time between expiry sweeps


@dataclass(frozen=True, slots=True)
class FlowSettings:
    max_flows: int = 200_000
    idle_timeout: float = 600.0  # TCP and UDP without traffic
    closed_timeout: float = 10.0  # after RST or both FINs
    active_timeout: float = 0.0  # 0: never cut long flows; else seconds
    stream_depth: int = 64 * 1024  # bytes reassembled per direction before recognition


EndHandler = Callable[[Flow, str], None]


class FlowTable:
    """Tracks flows; calls `on_end(flow, reason)` when one ends."""

    def __init__(self, settings: FlowSettings, on_end: EndHandler) -> None:
        self.settings = settings
        self._on_end = on_end
        self._flows: OrderedDict[FlowKey, Flow] = OrderedDict()
        # Closed flows wait here, in order of closing, for their short timeout;
        # in the main order a closed flow could sit behind live ones.
        self._closing: OrderedDict[FlowKey, float] = OrderedDict()
        self._next_sweep = 0.0
        self.evicted: Counter[str] = Counter()
        self.created = 0

    def __len__(self) -> int:
        return len(self._flows)

    def open_flows(self) -> list[Flow]:
        return list(self._flows.values())

    def get(self, pkt: Packet) -> Flow:
        """The flow of a packet (created if new), counted and moved to the back."""
        if pkt.ts >= self._next_sweep:
            self.expire(pkt.ts)
        key = flow_key(pkt)
        flow = self._flows.get(key)
        if flow is None or self._restarts(flow, pkt):
            flow = self._create(key, pkt)
        else:
            self._flows.move_to_end(key)
        side = flow.side_of(pkt)
        flow.pkts[side] += 1
        flow.bytes[side] += pkt.wire_len
        flow.last = pkt.ts
        if pkt.tcp_flags and flow.state != "closed":
            self._tcp_state(flow, pkt.tcp_flags, side)
            if flow.state == "closed":
                self._closing[key] = pkt.ts
        return flow

    def _restarts(self, flow: Flow, pkt: Packet) -> bool:
        """A new SYN on a closed flow's key is a new connection; so is an over-age flow."""
        active = self.settings.active_timeout
        if active and pkt.ts - flow.start >= active:
            self._end(flow, "active_timeout")
            return True
        if flow.state == "closed" and pkt.tcp_flags & TCP_SYN:
            self._end(flow, "closed")
            return True
        return False

    def _create(self, key: FlowKey, pkt: Packet) -> Flow:
        if len(self._flows) >= self.settings.max_flows:
            self._end(next(iter(self._flows.values())), "table_full")
        flow = self._flows[key] = new_flow(pkt)
        self.created += 1
        return flow

    @staticmethod
    def _tcp_state(flow: Flow, flags: int, side: Side) -> None:
        if flags & TCP_RST:
            flow.state = "closed"
        elif flags & TCP_FIN:
            flow.fins |= 1 << side  # retransmitted FINs of one side do not close
            flow.state = "closed" if flow.fins == 3 else "closing"
        elif flow.state == "new" and flow.pkts[0] and flow.pkts[1]:
            flow.state = "established"

    def expire(self, now: float) -> None:
        """End flows idle past their timeout (closed flows sooner)."""
        self._next_sweep = now + _SWEEP_EVERY
        closed = self.settings.closed_timeout
        while self._closing:
            key, since = next(iter(self._closing.items()))
            if now - since < closed:
                break
            self._end(self._flows[key], "closed")
        idle = self.settings.idle_timeout
        while self._flows:
            flow = next(iter(self._flows.values()))
            if now - flow.last < idle:
                break  # later flows were seen more recently
            self._end(flow, "idle_timeout")

    def _end(self, flow: Flow, reason: str) -> None:
        self._flows.pop(flow.key, None)
        self._closing.pop(flow.key, None)
        if reason != "closed":
            self.evicted[reason] += 1
        self._on_end(flow, reason)

    def flush(self, reason: str = "end_of_input") -> None:
        """End every flow (end of a replay, or shutdown)."""
        self._closing.clear()
        while self._flows:
            _, flow = self._flows.popitem(last=False)
            self._on_end(flow, reason)
