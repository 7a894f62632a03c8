"""Rebuild the report's input records from EVE event logs (`minewatch report`).

The `mining` and `flow` events carry everything ReportBuilder reads, so feeding
the records rebuilt here gives the report a replay's `--report` gave. The
window is what the events show: the earliest and latest of their timestamps
and flow starts and ends. A replay's window spans every packet of the capture,
so the two differ when non-mining traffic came before or after the miners.

Egress over time is only known here (each flow's start, end and bytes), so the
series for the HTML page is built here too: a flow's bytes are spread evenly
over its lifetime, which is exact for steady miners and smooths bursts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from sensor.model import Attribution, Estimate, Finding, FlowRecord, MiningRecord, Side
from sensor.sinks.report import ReportBuilder


class EventLogError(ValueError):
    """An event log line that is not a readable event; names file and line."""


@dataclass(slots=True)
class Span:
    """A flow's lifetime and its egress bytes, for the egress-over-time plot."""

    start: float
    end: float
    egress: int


@dataclass
class EventLog:
    """What the events gave besides the records: their window and flow spans."""

    start: float | None = None
    end: float | None = None
    spans: list[Span] = field(default_factory=list)
    events: int = 0

    def see(self, ts: float) -> None:
        self.start = ts if self.start is None else min(self.start, ts)
        self.end = ts if self.end is None else max(self.end, ts)


def read_events(paths: Iterable[Path]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(file, line number, event) for every non-blank line; EventLogError for bad ones."""
    for path in paths:
        with open(path, "rb") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    event = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise EventLogError(f"{path}:{number}: not JSON: {exc}") from None
                if not isinstance(event, dict):
                    raise EventLogError(f"{path}:{number}: not a JSON object")
                yield str(path), number, event


def feed(paths: Iterable[Path], builder: ReportBuilder) -> EventLog:
    """Give `builder` the records of every mining and flow event in `paths`."""
    log = EventLog()
    for path, number, event in read_events(paths):
        kind = event.get("event_type")
        if kind not in ("mining", "flow"):
            continue  # crypto_node and others do not enter the report
        try:
            _feed_one(event, kind, builder, log)
        except (KeyError, TypeError, ValueError) as exc:
            raise EventLogError(f"{path}:{number}: bad {kind} event: {exc!r}") from None
        log.events += 1
    return log


def _feed_one(event: dict[str, Any], kind: str, builder: ReportBuilder, log: EventLog) -> None:
    rec = mining_record(event)
    if kind == "mining":
        log.see(rec.ts)
        builder.mining(rec)
        return
    flow = flow_record(event, rec)
    log.see(flow.start)
    log.see(flow.end)
    log.spans.append(Span(flow.start, flow.end, flow.bytes_toserver))
    builder.flow_end(flow)


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def mining_record(event: dict[str, Any]) -> MiningRecord:
    """The MiningRecord an event was written from (src is always the miner)."""
    m = event["mining"]
    pool_ip, pool_port = event["dest_ip"], int(event["dest_port"])
    pool = m["pool"]
    # The pool is "host:port" when a name was known, else the bracketed address.
    host = None if pool == f"{_bracket(pool_ip)}:{pool_port}" else pool.rsplit(":", 1)[0]
    return MiningRecord(
        flow_id=int(event["flow_id"]),
        ts=parse_time(event["timestamp"]),
        proto=event["proto"],
        miner_ip=event["src_ip"],
        miner_port=int(event["src_port"]),
        pool_ip=pool_ip,
        pool_port=pool_port,
        pool=pool,
        pool_host=host,
        finding=_finding(m),
        org=_org(m.get("org") or {}),
        source=event.get("pcap_filename") or event.get("in_iface") or "",
    )


def _finding(m: dict[str, Any]) -> Finding:
    return Finding(
        dialect=m["dialect"],
        confidence=m["confidence"],
        miner_side=Side.ORIG,  # events are oriented miner -> pool already
        rule_id=m["rule_id"],
        evidence=list(m.get("evidence") or ()),
        coin=m.get("coin"),
        algorithm=m.get("algorithm"),
        login=m.get("login"),
        wallet=m.get("wallet"),
        worker=m.get("worker"),
        agent=m.get("agent"),
        difficulty=m.get("difficulty"),
        shares=m.get("shares") or 0,
        shares_accepted=m.get("shares_accepted") or 0,
        shares_rejected=m.get("shares_rejected") or 0,
        reported_hashrate_hs=m.get("reported_hashrate_hs"),
    )


def _org(o: dict[str, Any]) -> Attribution:
    return Attribution(
        name=o.get("name"),
        type=o.get("type"),
        region=o.get("region"),
        asn=o.get("asn"),
        source=o.get("source"),
        country=o.get("country"),
        asn_org=o.get("asn_org"),
        network=o.get("network"),
        identifiers=tuple((o.get("identifiers") or {}).items()),
    )


def flow_record(event: dict[str, Any], rec: MiningRecord) -> FlowRecord:
    f = event["flow"]
    start, end = parse_time(f["start"]), parse_time(f["end"])
    return FlowRecord(
        mining=rec,
        pkts_toserver=int(f["pkts_toserver"]),
        pkts_toclient=int(f["pkts_toclient"]),
        bytes_toserver=int(f["bytes_toserver"]),
        bytes_toclient=int(f["bytes_toclient"]),
        start=start,
        end=end,
        state=f.get("state") or "",
        reason=f.get("reason") or "",
        estimate=_estimate(event["mining"], round(end - start, 6)),
    )


def _estimate(m: dict[str, Any], seconds: float) -> Estimate | None:
    # Events before the estimator wrote no estimate fields at all.
    if "hashrate_hs" not in m and "estimate_note" not in m:
        return None
    low, high = m.get("hashrate_interval_hs") or (None, None)
    # The estimator rates a flow over its whole lifetime (sensor.estimate).
    return Estimate(
        hashrate_hs=m.get("hashrate_hs"),
        low_hs=low,
        high_hs=high,
        power_w=m.get("power_w"),
        seconds=seconds,
        note=m.get("estimate_note"),
    )


def _bracket(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def egress_series(log: EventLog, buckets: int = 48) -> list[dict[str, Any]]:
    """Pool egress per time bucket over the window: [{"start", "seconds", "bytes", "mbps"}]."""
    if log.start is None or log.end is None or not log.spans:
        return []
    width = (log.end - log.start) / buckets
    if width <= 0:
        return []
    totals = [0.0] * buckets
    for span in log.spans:
        _spread(span, log.start, width, totals)
    return [
        {
            "start": log.start + i * width,
            "seconds": width,
            "bytes": round(b, 3),
            "mbps": round(b * 8 / 1e6 / width, 6),
        }
        for i, b in enumerate(totals)
    ]


def _spread(span: Span, origin: float, width: float, totals: list[float]) -> None:
    last = len(totals) - 1
    first_i = min(max(int((span.start - origin) / width), 0), last)
    last_i = min(max(int((span.end - origin) / width), 0), last)
    duration = span.end - span.start
    if duration <= 0 or first_i == last_i:
        totals[first_i] += span.egress
        return
    for i in range(first_i, last_i + 1):
        lo = max(span.start, origin + i * width)
        hi = min(span.end, origin + (i + 1) * width) if i < last_i else span.end
        totals[i] += span.egress * max(hi - lo, 0.0) / duration
