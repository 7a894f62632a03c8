"""EVE-style JSON Lines events: `mining`, `flow` and `crypto_node`.

Common fields follow Suricata's EVE format so that existing pipelines
(Filebeat, jq, SIEM parsers) take them as they are. src is always the miner
and dest the pool, whichever side opened the connection.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from sensor.model import TCP, Estimate, Finding, FlowRecord, MiningRecord, NodeRecord
from sensor.sinks.community_id import community_id


def iso_time(ts: float) -> str:
    """ISO 8601 with microseconds and offset, as EVE's `timestamp`."""
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="microseconds")


def mining_object(
    rec: MiningRecord, final: bool = False, estimate: Estimate | None = None
) -> dict[str, Any]:
    f: Finding = rec.finding
    obj: dict[str, Any] = {
        "dialect": f.dialect,
        "coin": f.coin,
        "algorithm": f.algorithm,
        "pool": rec.pool,
        "login": f.login,
        "wallet": f.wallet,
        "worker": f.worker,
        "agent": f.agent,
        "rule_id": f.rule_id,
        "confidence": f.confidence,
        "evidence": list(f.evidence),
        "org": rec.org.as_dict(),
    }
    if final:
        obj["shares"] = f.shares
        obj["shares_accepted"] = f.shares_accepted
        obj["shares_rejected"] = f.shares_rejected
        obj["difficulty"] = f.difficulty
        obj["reported_hashrate_hs"] = f.reported_hashrate_hs
        obj.update(estimate_fields(estimate))
    return obj


def estimate_fields(e: Estimate | None) -> dict[str, Any]:
    """The flow's estimate: shares x difficulty over time, then x joules per hash."""
    if e is None:
        e = Estimate(note="not estimated")
    interval = None if e.low_hs is None or e.high_hs is None else [e.low_hs, e.high_hs]
    return {
        "hashrate_hs": e.hashrate_hs,
        "hashrate_interval_hs": interval,  # 90% (Garwood, from the share count)
        "power_w": e.power_w,
        "estimate_note": e.note,
    }


def estimate_from_fields(mining: dict[str, Any], seconds: float) -> Estimate | None:
    """The estimate back from a flow event's `mining` object (for reports from event logs).

    `seconds` is the flow's end minus its start; None for events from before estimates.
    """
    if "hashrate_hs" not in mining:
        return None
    interval = mining.get("hashrate_interval_hs") or (None, None)
    return Estimate(
        hashrate_hs=mining["hashrate_hs"],
        low_hs=interval[0],
        high_hs=interval[1],
        power_w=mining.get("power_w"),
        seconds=seconds,
        note=mining.get("estimate_note"),
    )


class EveWriter:
    """Writes events to a file, or to stdout for "-"."""

    def __init__(self, target: str | Path, live: bool = False) -> None:
        # Live, a restart must keep the events written before it: append.
        self._own = str(target) != "-"
        mode = "ab" if live else "wb"
        self._out: IO[bytes] = open(target, mode) if self._own else sys.stdout.buffer  # noqa: SIM115
        self._source_key = "in_iface" if live else "pcap_filename"
        self.written = 0

    def _common(
        self,
        ts: float,
        flow_id: int,
        event_type: str,
        ends: tuple[str, int, str, int],
        proto: str,
        source: str,
    ) -> dict[str, Any]:
        src, sport, dst, dport = ends
        event: dict[str, Any] = {
            "timestamp": iso_time(ts),
            "flow_id": flow_id,
            "event_type": event_type,
            "src_ip": src,
            "src_port": sport,
            "dest_ip": dst,
            "dest_port": dport,
            "proto": proto,
        }
        if proto == "TCP":
            event["community_id"] = community_id(TCP, src, sport, dst, dport)
        if source:
            event[self._source_key] = source
        return event

    def _write(self, event: dict[str, Any]) -> None:
        self._out.write(orjson.dumps(event) + b"\n")
        self.written += 1

    def mining(self, rec: MiningRecord) -> None:
        ends = (rec.miner_ip, rec.miner_port, rec.pool_ip, rec.pool_port)
        event = self._common(rec.ts, rec.flow_id, "mining", ends, rec.proto, rec.source)
        event["mining"] = mining_object(rec)
        self._write(event)

    def flow_end(self, rec: FlowRecord) -> None:
        m = rec.mining
        ends = (m.miner_ip, m.miner_port, m.pool_ip, m.pool_port)
        event = self._common(rec.end, m.flow_id, "flow", ends, m.proto, m.source)
        event["flow"] = {
            "pkts_toserver": rec.pkts_toserver,
            "pkts_toclient": rec.pkts_toclient,
            "bytes_toserver": rec.bytes_toserver,
            "bytes_toclient": rec.bytes_toclient,
            "start": iso_time(rec.start),
            "end": iso_time(rec.end),
            "age": int(rec.end - rec.start),
            "state": rec.state,
            "reason": rec.reason,
        }
        event["mining"] = mining_object(m, final=True, estimate=rec.estimate)
        self._write(event)

    def node(self, rec: NodeRecord) -> None:
        ends = (rec.src_ip, rec.src_port, rec.dest_ip, rec.dest_port)
        event = self._common(rec.ts, rec.flow_id, "crypto_node", ends, rec.proto, rec.source)
        event["crypto_node"] = {"protocol": rec.protocol}
        self._write(event)

    def flush(self) -> None:
        if not self._out.closed:
            self._out.flush()

    def close(self) -> None:
        if self._out.closed:
            return
        self._out.flush()
        if self._own:
            self._out.close()
