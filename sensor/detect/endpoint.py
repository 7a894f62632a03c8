"""The `endpoint` dialect: traffic to a known pool endpoint in no readable protocol.

Decided at the end of a flow, and only when both sides carried payload (a
SYN scan of a pool address is not mining). The pool side is the one whose
address, or the host name DNS gave for it, is a known pool endpoint.
"""

from __future__ import annotations

from sensor.detect.dns import HostNames
from sensor.detect.tls_pool import WEB_PORTS
from sensor.model import Confidence, Finding, Side
from sensor.rules.model import PoolEndpoint
from sensor.rules.pools import PoolIndex

Endpoint = tuple[str, int]


def match_endpoint(
    pools: PoolIndex, names: HostNames, ip: str, port: int
) -> tuple[PoolEndpoint, str | None] | None:
    """The pool entry an address (or its DNS name) belongs to, with the name."""
    host = names.get(ip)
    entry = _by_name(pools, host, port) or _by_address(pools, ip, port)
    return (entry, host) if entry is not None else None


def _by_address(pools: PoolIndex, ip: str, port: int) -> PoolEndpoint | None:
    """The entry an address matches; on a web port only if the entry names that port
    (or is browser mining): listed hosting addresses also serve ordinary web sites."""
    entry = pools.match_ip(ip, port)
    if entry is None or port not in WEB_PORTS or port in entry.ports or entry.kind == "browser":
        return entry
    return None


def _by_name(pools: PoolIndex, host: str | None, port: int) -> PoolEndpoint | None:
    """The entry a DNS name matches, unless it is a pool's web site on a web port."""
    entry = pools.match_host(host) if host else None
    if entry is not None and (port not in WEB_PORTS or entry.kind == "browser"):
        return entry
    return None


def endpoint_finding(
    pools: PoolIndex, names: HostNames, ends: tuple[Endpoint, Endpoint], payload: list[int]
) -> Finding | None:
    """A suspected `endpoint` finding when one side is a known pool endpoint."""
    if not (payload[0] and payload[1]):
        return None
    for pool_side in (Side.RESP, Side.ORIG):
        ip, port = ends[pool_side]
        found = match_endpoint(pools, names, ip, port)
        if found is not None:
            entry, host = found
            # The name may be known from DNS although only the address is listed.
            by_name = _by_name(pools, host, port) is entry
            return Finding(
                dialect="endpoint",
                confidence=Confidence.SUSPECTED,
                miner_side=pool_side.other,
                rule_id=entry.id,
                evidence=["endpoint.dns" if by_name else "endpoint.address"],
                coin=entry.coin,
                host=host,
            )
    return None
