"""Turn a flow and its finding into the records sinks receive.

Orients the flow miner -> pool, names the pool (host from the protocol, TLS
or DNS, else its address), completes the coin from the pool's host name or
endpoint rule, and attributes the miner (cached per IP: never per packet).
"""

from __future__ import annotations

import ipaddress

from sensor.attribute import Attributor
from sensor.detect.dns import HostNames
from sensor.detect.inspector import DetectContext
from sensor.estimate import EfficiencyTable, estimate_flow
from sensor.flows.flow import Flow
from sensor.model import Attribution, Estimate, Finding, FlowRecord, MiningRecord, NodeRecord, Side

MAX_CACHED_OWNERS = 100_000


class RecordBuilder:
    def __init__(self, ctx: DetectContext, names: HostNames, attributor: Attributor) -> None:
        self._ctx, self.names, self._attributor = ctx, names, attributor
        self._owners: dict[str, Attribution] = {}
        self._efficiency = EfficiencyTable(ctx.rules.efficiency)
        # The pool host each reported flow's mining event named (popped when the
        # flow ends): its flow event names the same pool, even if another flow
        # has taught the address a different name in between.
        self._named: dict[int, str | None] = {}

    def rebind(self, ctx: DetectContext, attributor: Attributor) -> None:
        """New rules and owners (a reload); the pool names of open flows stay."""
        self._ctx, self._attributor = ctx, attributor
        self._owners = {}
        self._efficiency = EfficiencyTable(ctx.rules.efficiency)

    def mining(self, flow: Flow, finding: Finding, ts: float) -> MiningRecord:
        rec = self._record(flow, finding, ts, self._pool_host(flow, finding))
        self._named[flow.id] = rec.pool_host
        return rec

    def _pool_host(self, flow: Flow, finding: Finding) -> str | None:
        pool_ip = flow.endpoint(finding.miner_side.other)[0]
        if finding.host and not _is_address(finding.host):
            # The protocol named the pool (SNI, Host, subscribe): later flows to
            # the same address are named after it too.
            self.names.remember(pool_ip, finding.host)
        return finding.host or self.names.get(pool_ip)

    def _record(self, flow: Flow, finding: Finding, ts: float, host: str | None) -> MiningRecord:
        miner_ip, miner_port = flow.endpoint(finding.miner_side)
        pool_ip, pool_port = flow.endpoint(finding.miner_side.other)
        self._complete_coin(finding, host, pool_ip, pool_port)
        if finding.wallet and not self._looks_like_wallet(finding.wallet):
            finding.wallet = None  # a pool account name: the login keeps it
        return MiningRecord(
            flow_id=flow.id,
            ts=ts,
            proto=flow.proto_name,
            miner_ip=miner_ip,
            miner_port=miner_port,
            pool_ip=pool_ip,
            pool_port=pool_port,
            pool=f"{host or _bracket(pool_ip)}:{pool_port}",
            pool_host=host,
            finding=finding,
            org=self.owner(miner_ip),
            source=flow.source,
        )

    def _complete_coin(self, finding: Finding, host: str | None, ip: str, port: int) -> None:
        if finding.coin is not None:
            return
        entry = (self._ctx.pools.match_host(host) if host else None) or self._ctx.pools.match_ip(
            ip, port
        )
        hint = self._ctx.rules.coins.for_host(host)
        if entry is not None and entry.coin:
            finding.coin = entry.coin
        elif hint is not None:
            finding.coin = hint.coin
        if hint is not None and finding.coin == hint.coin and finding.algorithm is None:
            finding.algorithm = hint.algorithm

    def _looks_like_wallet(self, text: str) -> bool:
        """A known address format, or long enough and alphanumeric to be one."""
        if self._ctx.rules.coins.for_wallet(text) is not None:
            return True
        body = text.split(":", 1)[-1]
        return len(body) >= 26 and body.isalnum()

    def flow_end(self, flow: Flow, finding: Finding, reason: str) -> FlowRecord:
        host = self._pool_host(flow, finding)
        if flow.id in self._named:
            host = finding.host or self._named.pop(flow.id)
        rec = self._record(flow, finding, flow.last, host)
        miner = finding.miner_side
        return FlowRecord(
            mining=rec,
            pkts_toserver=flow.pkts[miner],
            pkts_toclient=flow.pkts[miner.other],
            bytes_toserver=flow.bytes[miner],
            bytes_toclient=flow.bytes[miner.other],
            start=flow.start,
            end=flow.last,
            state=flow.state,
            reason=reason,
            estimate=estimate_flow(finding, flow.start, flow.last, self._efficiency),
        )

    def estimate(self, flow: Flow, current: Finding, reported: Finding) -> Estimate:
        """An open flow's estimate to date, for its progress records (live daemon).

        `current` is the detectors' finding now (the shares so far); where it names
        no coin, the one the mining event completed from the pool's name stands in,
        as at the flow's end, without matching the name again every few seconds.
        """
        if current.coin is None:
            current.coin = reported.coin
            current.algorithm = current.algorithm or reported.algorithm
        return estimate_flow(current, flow.start, flow.last, self._efficiency)

    def node(self, flow: Flow, protocol: str, ts: float) -> NodeRecord:
        (src, sport), (dst, dport) = flow.endpoint(Side.ORIG), flow.endpoint(Side.RESP)
        return NodeRecord(
            flow.id, ts, flow.proto_name, src, sport, dst, dport, protocol, flow.source
        )

    def owner(self, ip: str) -> Attribution:
        owner = self._owners.get(ip)
        if owner is None:
            if len(self._owners) >= MAX_CACHED_OWNERS:
                self._owners.clear()
            owner = self._owners[ip] = self._attributor.lookup(ip)
        return owner


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _bracket(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip
