"""Which addresses are "ours": the side of a flow whose owner we attribute.

Defaults are the private and shared ranges a sensor on an ISP or campus link
sees behind NAT (RFC 1918, CGNAT 100.64.0.0/10, IPv6 ULA fc00::/7); operators
add their public prefixes with --home-net, and every registry prefix counts.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Protocol

from sensor.attribute.prefixes import IPNetwork, PrefixIndex, address_key

DEFAULT_HOME_NETS = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "fc00::/7",
)


class Registry(Protocol):
    """Anything that knows registry prefixes (OwnershipResolver does)."""

    def covers(self, ip: str) -> bool: ...


class HomeNet:
    """Home prefixes: defaults, extra CIDRs and a registry; `contains(ip)` answers membership."""

    def __init__(
        self,
        cidrs: Iterable[str | IPNetwork] = (),
        *,
        registry: Registry | None = None,
        defaults: bool = True,
    ) -> None:
        self._index: PrefixIndex[bool] = PrefixIndex()
        self.networks: list[IPNetwork] = []
        for cidr in (*(DEFAULT_HOME_NETS if defaults else ()), *cidrs):
            network = _network(cidr)
            self.networks.append(network)
            self._index.add(network, True)
        self._registry = registry

    def contains(self, ip: str) -> bool:
        """True for an address in a home prefix (IPv4-mapped IPv6 counts as its IPv4)."""
        key = address_key(ip)
        if key is None:
            return False
        if self._index.lookup_key(*key):
            return True
        return self._registry is not None and self._registry.covers(ip)

    __contains__ = contains


def _network(cidr: str | IPNetwork) -> IPNetwork:
    if not isinstance(cidr, str):
        return cidr
    try:
        return ipaddress.ip_network(cidr.strip(), strict=True)
    except ValueError as exc:
        raise ValueError(f"bad home network {cidr!r}: {exc}") from None
