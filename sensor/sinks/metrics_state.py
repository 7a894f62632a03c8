"""What the Prometheus exporter remembers: a sink fed the same records as the report.

The collector (`metrics_collector`) turns a `StateView` of this into metric
families at scrape time; nothing here knows about Prometheus.

Label values are bounded: coin, org type, region, dialect, rule id, node
protocol. Per-miner state is kept only where a metric needs it: last-seen
times for the suspect window (pruned once older than the window) and, only
when the top-N collector is on, egress bytes per miner.

"Now" for the suspect window is, by default, the newest record time seen:
capture time, so that replaying an old capture counts the miners active at
its end rather than none. A live sensor passes a wall clock instead.

Records arrive on the capture thread and scrapes on HTTP threads, so one lock
guards the state. Records come once per mining flow, never per packet: the
lock costs the packet path nothing.

A live daemon also hands in interim byte progress of mining flows still open
(`progress`), so that pool bytes rise while a long flow lasts; the flow's end
then adds only what its progress did not, and the flow event keeps its totals.
It restores the counters (`restore`), the miners of the suspect window
(`restore_miner`) and the flow estimates behind the gauges (`restore_estimates`)
from its last checkpoint, and reads them back (`totals`, `estimates`).

Estimates arrive with flow ends and, live, with progress: a progress record
carries the open flow's estimate to date. The hash-rate and power gauges sum
one estimate per flow: the latest of each open flow (an open flow stays in
while it is open, as it keeps its miner a suspect), the final one of each flow
that ended within the suspect window. The energy counter adds, per flow, its
energy to date (power x seconds so far) minus what the flow already added,
when that is positive, at each progress and at the end: in replay (ends only)
that is each flow's power times its duration, integrated over capture time.
A counter must never go down, so a flow whose estimated rate falls late (its
final energy below what its progress already added) is slightly over-counted,
never under.

Restored estimates count as flows that ended when they were last estimated
(at a restart every flow ends; the miners' connections that go on become new
flows): the window passes them like any ended flow. They take negative ids,
which no flow has (flow ids are non-negative 51-bit hashes), so they never meet
the flows of the new process. Each estimate also has a sequence
number, kept while its flow is updated, in the order the gauges sum them: a
checkpoint writes only the estimates that changed, by that number, and a
restore puts them back in that order, so that the float sums come out the same.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sensor.model import FlowRecord, MiningRecord, NodeRecord

if TYPE_CHECKING:
    from sensor.model import Estimate, FlowProgress

UNKNOWN = "unknown"
DEFAULT_WINDOW = 900.0  # seconds: the contract's "recent window" of 15 minutes

PoolKey = tuple[str, str, str]  # direction, coin, org_type
SuspectKey = tuple[str, str, str]  # coin, org_type, region
RateKey = tuple[str, str]  # coin, algorithm


@dataclass(slots=True)
class _Miner:
    """One miner IP: where it is, and when each of its coins was last seen."""

    org_type: str
    region: str
    seen: dict[str, float] = field(default_factory=dict)  # coin -> capture time


@dataclass(slots=True)
class _TopMiner:
    org_type: str
    egress: Counter[str] = field(default_factory=Counter)  # coin -> bytes


@dataclass(slots=True)
class TopRow:
    ip: str
    coin: str
    org_type: str
    bytes: int


@dataclass(slots=True)
class StateView:
    """A consistent copy of the state, taken under the lock for one scrape."""

    pool_bytes: dict[PoolKey, int]
    suspects: dict[SuspectKey, int]
    mining_flows: dict[tuple[str, str], int]  # dialect, coin
    detections: dict[str, int]  # rule_id
    node_flows: dict[str, int]  # protocol
    top: list[TopRow]
    top_omitted: int
    hashrate: dict[RateKey, float] = field(default_factory=dict)
    power: dict[str, float] = field(default_factory=dict)  # coin
    energy: dict[str, float] = field(default_factory=dict)  # coin -> joules


@dataclass(frozen=True, slots=True)
class FlowEstimate:
    """One flow's share of the gauges: its latest estimate, and when it was made."""

    seq: int  # a flow's first estimate's place in the order of the gauges' sums
    last: float  # the progress record's time, or the flow's end
    key: RateKey
    hashrate_hs: float
    power_w: float | None


@dataclass(slots=True)
class Estimates:
    """The gauges' state as a checkpoint keeps it: the flow estimates of the window
    and every (coin, algorithm) seen, so that series at 0 stay after a restart."""

    flows: list[FlowEstimate] = field(default_factory=list)  # by seq
    keys: set[RateKey] = field(default_factory=set)


@dataclass(slots=True)
class Totals:
    """The counters behind the detection `_total` families, as a checkpoint keeps them."""

    pool_bytes: dict[PoolKey, int] = field(default_factory=dict)
    mining_flows: dict[tuple[str, str], int] = field(default_factory=dict)  # dialect, coin
    detections: dict[str, int] = field(default_factory=dict)  # rule_id
    node_flows: dict[str, int] = field(default_factory=dict)  # protocol
    energy: dict[str, float] = field(default_factory=dict)  # coin -> joules


def _label(value: str | None) -> str:
    return value or UNKNOWN


def _seq(e: FlowEstimate) -> int:
    return e.seq


class MetricsState:
    """A sink: counts mining, flow-end and node records for the collector.

    `window`: seconds a miner stays a suspect after it was last seen (an open
    mining flow keeps it one). `top_ips`: how many miners the per-IP
    collector shows (0: off, and no per-IP bytes are kept). `clock`: what
    "now" is for the window (default: the newest record time, capture time).
    """

    def __init__(
        self,
        window: float = DEFAULT_WINDOW,
        top_ips: int = 0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if window <= 0:
            raise ValueError(f"window must be positive, not {window}")
        if top_ips < 0:
            raise ValueError(f"top_ips must be 0 (off) or more, not {top_ips}")
        self.window, self.top_ips, self._clock = window, top_ips, clock
        self.newest: float | None = None
        self._lock = threading.Lock()
        self._pool_bytes: Counter[PoolKey] = Counter()
        self._mining_flows: Counter[tuple[str, str]] = Counter()
        self._detections: Counter[str] = Counter()
        self._node_flows: Counter[str] = Counter()
        self._miners: dict[str, _Miner] = {}
        self._open: dict[int, tuple[str, str]] = {}  # flow_id -> (miner ip, coin)
        # flow_id -> (egress, ingress) bytes already counted through progress
        self._progressed: dict[int, tuple[int, int]] = {}
        # Label sets once seen stay, at 0, so that graphs and alerts see a drop
        # instead of a series that vanishes. Bounded like the labels themselves.
        self._suspect_keys: set[SuspectKey] = set()
        self._top: dict[str, _TopMiner] = {}
        self._estimates: dict[int, FlowEstimate] = {}  # flow_id, pruned past the window
        self._rate_keys: set[RateKey] = set()
        self._energy: dict[str, float] = {}  # coin -> joules
        self._energy_added: dict[int, float] = {}  # open flow_id -> joules it added so far
        self._restored_ids = itertools.count(-1, -1)
        self._seqs = itertools.count(1)

    # -- the Sink protocol ----------------------------------------------------
    def mining(self, rec: MiningRecord) -> None:
        f = rec.finding
        coin = _label(f.coin)
        with self._lock:
            self._mining_flows[(f.dialect, coin)] += 1
            self._detections[f.rule_id] += 1
            self._open[rec.flow_id] = (rec.miner_ip, coin)
            self._seen(rec, coin, rec.ts)

    def flow_end(self, rec: FlowRecord) -> None:
        mining = rec.mining
        coin, org_type = _label(mining.finding.coin), _label(mining.org.type)
        with self._lock:
            egress, ingress = self._progressed.pop(mining.flow_id, (0, 0))
            egress = max(rec.bytes_toserver - egress, 0)
            ingress = max(rec.bytes_toclient - ingress, 0)
            self._add_bytes(mining.miner_ip, coin, org_type, egress, ingress)
            self._open.pop(mining.flow_id, None)
            self._seen(mining, coin, rec.end)
            if rec.estimate is None or rec.estimate.hashrate_hs is None:
                self._estimates.pop(mining.flow_id, None)  # the final word: no rate known
            self._estimated(mining.flow_id, coin, mining.finding.algorithm, rec.estimate, rec.end)
            self._energy_added.pop(mining.flow_id, None)

    def _estimated(
        self, flow_id: int, coin: str, algorithm: str | None, e: Estimate | None, at: float
    ) -> None:
        """Called with the lock held: the flow's latest estimate, and its energy to date."""
        if e is None or e.hashrate_hs is None:
            return
        key = (coin, _label(algorithm))
        self._rate_keys.add(key)
        old = self._estimates.get(flow_id)
        seq = old.seq if old is not None else next(self._seqs)
        # Replaced in place: the dict keeps the sequence order.
        self._estimates[flow_id] = FlowEstimate(seq, at, key, e.hashrate_hs, e.power_w)
        if e.power_w is None:
            return
        joules, added = e.power_w * e.seconds, self._energy_added.get(flow_id, 0.0)
        # Adds exactly power x seconds for a flow without progress (replay).
        self._energy[coin] = self._energy.get(coin, 0.0) + max(joules - added, 0.0)
        if joules > added:
            self._energy_added[flow_id] = joules

    def progress(self, rec: FlowProgress) -> None:
        """Bytes an open mining flow carried since its last progress, and its estimate to
        date (live daemon). An estimate counts only for a flow whose mining record came
        and whose end did not: a late record must not bring back a flow that ended."""
        coin, org_type = _label(rec.coin), _label(rec.org_type)
        with self._lock:
            egress, ingress = self._progressed.get(rec.flow_id, (0, 0))
            self._progressed[rec.flow_id] = (egress + rec.egress, ingress + rec.ingress)
            self._add_bytes(rec.miner_ip, coin, org_type, rec.egress, rec.ingress)
            if rec.flow_id in self._open:
                self._estimated(rec.flow_id, coin, rec.algorithm, rec.estimate, rec.ts)

    def _add_bytes(self, ip: str, coin: str, org_type: str, egress: int, ingress: int) -> None:
        """Called with the lock held."""
        self._pool_bytes[("egress", coin, org_type)] += egress
        self._pool_bytes[("ingress", coin, org_type)] += ingress
        if self.top_ips:
            top = self._top.get(ip)
            if top is None:
                top = self._top[ip] = _TopMiner(org_type)
            top.org_type = org_type
            top.egress[coin] += egress

    def node(self, rec: NodeRecord) -> None:
        with self._lock:
            self._node_flows[rec.protocol] += 1

    def close(self) -> None:
        pass

    # -- checkpoints ----------------------------------------------------------
    def totals(self) -> Totals:
        """A copy of the counters, for a checkpoint."""
        with self._lock:
            return Totals(
                dict(self._pool_bytes),
                dict(self._mining_flows),
                dict(self._detections),
                dict(self._node_flows),
                dict(self._energy),
            )

    def restore(self, saved: Totals) -> None:
        """Add a checkpoint's counters: the `_total` series go on from where they were."""
        with self._lock:
            self._pool_bytes.update(saved.pool_bytes)
            self._mining_flows.update(saved.mining_flows)
            self._detections.update(saved.detections)
            self._node_flows.update(saved.node_flows)
            for coin, joules in saved.energy.items():
                self._energy[coin] = self._energy.get(coin, 0.0) + joules

    def estimates(self) -> Estimates:
        """The flow estimates of the window (pruned now) and the label sets, for a checkpoint."""
        with self._lock:
            self._prune_estimates()
            return Estimates(list(self._estimates.values()), set(self._rate_keys))

    def restore_estimates(self, saved: Estimates) -> None:
        """A checkpoint's flow estimates: in the gauges until the window passes them."""
        with self._lock:
            self._rate_keys |= saved.keys
            for e in sorted(saved.flows, key=_seq):
                self._rate_keys.add(e.key)
                self._estimates[next(self._restored_ids)] = replace(e, seq=next(self._seqs))

    def restore_miner(
        self, ip: str, org_type: str | None, region: str | None, coins: Iterable[str], last: float
    ) -> None:
        """A miner of the checkpoint: it counts as a suspect until the window passes it."""
        org, where = _label(org_type), _label(region)
        with self._lock:
            miner = self._miners.get(ip)
            if miner is None:
                miner = self._miners[ip] = _Miner(org, where)
            for coin in list(coins) or [UNKNOWN]:
                miner.seen[coin] = max(last, miner.seen.get(coin, last))
                self._suspect_keys.add((coin, org, where))

    def _seen(self, rec: MiningRecord, coin: str, ts: float) -> None:
        """Called with the lock held."""
        miner = self._miners.get(rec.miner_ip)
        org_type, region = _label(rec.org.type), _label(rec.org.region)
        if miner is None:
            miner = self._miners[rec.miner_ip] = _Miner(org_type, region)
        # The newest attribution wins: ownership sources may be reloaded.
        miner.org_type, miner.region = org_type, region
        miner.seen[coin] = max(ts, miner.seen.get(coin, ts))
        self._suspect_keys.add((coin, org_type, region))
        if self.newest is None or ts > self.newest:
            self.newest = ts

    # -- scrape side ----------------------------------------------------------
    def view(self) -> StateView:
        """Copy what the collector needs, under the lock, with suspects counted now."""
        with self._lock:
            top, omitted = self._top_rows()
            return StateView(
                pool_bytes=dict(self._pool_bytes),
                suspects=self._count_suspects(),
                mining_flows=dict(self._mining_flows),
                detections=dict(self._detections),
                node_flows=dict(self._node_flows),
                top=top,
                top_omitted=omitted,
                **self._current_estimates(),
            )

    def _current_estimates(self) -> dict[str, dict[Any, float]]:
        """Called with the lock held: sums of the window's flow estimates, and energy."""
        hashrate = dict.fromkeys(self._rate_keys, 0.0)
        power = {coin: 0.0 for coin, _ in self._rate_keys}
        self._prune_estimates()
        for e in self._estimates.values():
            hashrate[e.key] += e.hashrate_hs
            if e.power_w is not None:
                power[e.key[0]] += e.power_w
        return {"hashrate": hashrate, "power": power, "energy": dict(self._energy)}

    def _prune_estimates(self) -> None:
        """Called with the lock held: drop the estimates of flows no longer open whose
        last estimate is older than the window."""
        now = self._now()
        if now is None:
            return
        since, is_open = now - self.window, self._open
        for flow_id, e in list(self._estimates.items()):
            if e.last < since and flow_id not in is_open:
                del self._estimates[flow_id]

    def _now(self) -> float | None:
        return self._clock() if self._clock is not None else self.newest

    def _count_suspects(self) -> dict[SuspectKey, int]:
        counts = dict.fromkeys(self._suspect_keys, 0)
        now = self._now()
        if now is None:
            return counts
        since = now - self.window
        active = {(ip, coin) for ip, coin in self._open.values()}
        for ip in list(self._miners):
            miner = self._miners[ip]
            for coin, last in list(miner.seen.items()):
                if last >= since or (ip, coin) in active:
                    key = (coin, miner.org_type, miner.region)
                    counts[key] = counts.get(key, 0) + 1
                    self._suspect_keys.add(key)  # the miner's owner may have changed
                else:
                    del miner.seen[coin]  # out of the window for good, unless seen again
            if not miner.seen:
                del self._miners[ip]
        return counts

    def _top_rows(self) -> tuple[list[TopRow], int]:
        if not self.top_ips:
            return [], 0
        totals = {ip: sum(m.egress.values()) for ip, m in self._top.items()}
        chosen = heapq.nlargest(self.top_ips, totals, key=lambda ip: (totals[ip], ip))
        rows = [
            TopRow(ip, coin, self._top[ip].org_type, count)
            for ip in chosen
            for coin, count in sorted(self._top[ip].egress.items())
        ]
        return rows, len(totals) - len(chosen)
