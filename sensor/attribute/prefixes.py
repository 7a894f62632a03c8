"""Longest-prefix match over IPv4 and IPv6 networks, and the address forms we accept.

IPv4 addresses written as IPv6 (IPv4-mapped `::ffff:a.b.c.d` and the `::/96`
IPv4 subtree where mmdb files keep IPv4 data) are looked up as IPv4 everywhere:
in a PrefixIndex, in mmdb readers and in the mmdb files we write, so that the
three always give the same answer for the same address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Generic, TypeVar

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
V = TypeVar("V")

_V4_MASK = 0xFFFFFFFF
_EMBEDDED_V4 = (0, 0xFFFF)  # address >> 32 for ::/96 and ::ffff:0:0/96


def address_key(ip: str) -> tuple[int, int] | None:
    """(4 or 6, address as int) with IPv4 written as IPv6 folded to IPv4; None if not an IP."""
    try:
        if ":" in ip:
            value = int.from_bytes(socket.inet_pton(socket.AF_INET6, ip), "big")
            if value >> 32 in _EMBEDDED_V4:
                return 4, value & _V4_MASK
            return 6, value
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big")
    except (OSError, ValueError, TypeError):
        return None


def canonical_ip(ip: str) -> str | None:
    """The address as an mmdb reader should be asked: embedded IPv4 as dotted quad."""
    key = address_key(ip)
    if key is None:
        return None
    version, value = key
    if version == 4:
        return socket.inet_ntop(socket.AF_INET, value.to_bytes(4, "big"))
    return ip


def normalize_network(network: IPNetwork) -> IPNetwork:
    """Fold an IPv6 network inside ::/96 or ::ffff:0:0/96 into the IPv4 network it means."""
    if network.version == 6 and network.prefixlen >= 96:
        value = int(network.network_address)
        if value >> 32 in _EMBEDDED_V4:
            return ipaddress.IPv4Network((value & _V4_MASK, network.prefixlen - 96))
    return network


class PrefixIndex(Generic[V]):
    """Networks -> values, queried by address; the longest matching prefix wins.

    One dict per (version, prefix length), keyed by the network's bits as an
    int: a lookup is one dict probe per distinct prefix length, longest first,
    and building costs nothing beyond the dicts (no trie objects).
    """

    __slots__ = ("_count", "_probes", "_tables")

    def __init__(self) -> None:
        self._tables: dict[int, dict[int, dict[int, V]]] = {4: {}, 6: {}}
        self._probes: dict[int, list[tuple[int, dict[int, V]]]] = {4: [], 6: []}
        self._count = 0

    def add(self, network: IPNetwork, value: V) -> V | None:
        """Index `value` under `network`; if the prefix is already there, keep the
        first value and return it (the caller decides whether that is a problem)."""
        network = normalize_network(network)
        bits = 32 if network.version == 4 else 128
        by_length = self._tables[network.version]
        table = by_length.get(network.prefixlen)
        if table is None:
            table = by_length[network.prefixlen] = {}
            self._probes[network.version] = sorted(
                ((bits - length, t) for length, t in by_length.items()),
                key=lambda probe: probe[0],
            )
        key = int(network.network_address) >> (bits - network.prefixlen)
        existing = table.get(key)
        if existing is not None:
            return existing
        table[key] = value
        self._count += 1
        return None

    def lookup(self, ip: str) -> V | None:
        """The value of the longest prefix containing `ip`; None if none or not an IP."""
        key = address_key(ip)
        return None if key is None else self.lookup_key(*key)

    def lookup_key(self, version: int, value: int) -> V | None:
        """As lookup, for an address already parsed by address_key."""
        for shift, table in self._probes[version]:
            hit = table.get(value >> shift)
            if hit is not None:
                return hit
        return None

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[tuple[IPNetwork, V]]:
        for version, by_length in self._tables.items():
            bits = 32 if version == 4 else 128
            for length, table in by_length.items():
                for key, value in table.items():
                    yield _network(version, key << (bits - length), length), value


def _network(version: int, value: int, length: int) -> IPNetwork:
    if version == 4:
        return ipaddress.IPv4Network((value, length))
    return ipaddress.IPv6Network((value, length))
