"""Known pool endpoints, indexed for a lookup per new flow (never per packet).

Host names match exactly or by a parent domain, most specific entry first; a pool
name or coin the most specific entry lacks is taken from its nearest parent entry.
Addresses match by longest prefix: one dict per prefix length of integer network
addresses, so a lookup costs one dict probe per distinct prefix length in the
rules (a handful), however many thousand addresses the rules hold.
"""

from __future__ import annotations

import socket
import weakref
from collections.abc import Iterable
from dataclasses import replace

from sensor.rules.model import PoolEndpoint, RuleSet

_BITS = {4: 32, 6: 128}


def _rank(entry: PoolEndpoint) -> int:
    # When two entries name the same host or network, the one that says more
    # (pool name, coin) wins: a hand-checked entry over a bare imported one.
    return (entry.pool is not None) + (entry.coin is not None)


def _address(ip: str) -> tuple[int, int] | None:
    """(IP version, address as an integer), or None for anything that is not an address."""
    family, version = (socket.AF_INET6, 6) if ":" in ip else (socket.AF_INET, 4)
    try:
        return version, int.from_bytes(socket.inet_pton(family, ip), "big")
    except (OSError, ValueError):
        return None


class PoolIndex:
    """Answers "is this host / address:port a known pool endpoint?"."""

    def __init__(self, entries: Iterable[PoolEndpoint]) -> None:
        self._hosts: dict[str, PoolEndpoint] = {}
        # version -> [(prefix length, {network >> host bits: entries})], longest first
        self._nets: dict[int, list[tuple[int, dict[int, list[PoolEndpoint]]]]] = {4: [], 6: []}
        by_len: dict[tuple[int, int], dict[int, list[PoolEndpoint]]] = {}
        for entry in entries:
            self._add_hosts(entry)
            for net in entry.networks:
                table = by_len.setdefault((net.version, net.prefixlen), {})
                key = int(net.network_address) >> (net.max_prefixlen - net.prefixlen)
                table.setdefault(key, []).append(entry)
        for (version, plen), table in sorted(by_len.items(), key=lambda kv: -kv[0][1]):
            for key, found in table.items():
                table[key] = _ordered(found)
            self._nets[version].append((plen, table))
        # Every parent of a listed name that can fill it in is itself a key of
        # _hosts, so the merge is done once here and a lookup stays dict probes.
        self._hosts = {name: _inherit(self._hosts, name, e) for name, e in self._hosts.items()}

    def _add_hosts(self, entry: PoolEndpoint) -> None:
        for domain in entry.domains:
            old = self._hosts.get(domain)
            # Ties go to the later entry, so a user's --rules directory wins.
            if old is None or _rank(entry) >= _rank(old):
                self._hosts[domain] = entry

    def __len__(self) -> int:
        nets = sum(len(t) for tables in self._nets.values() for _, t in tables)
        return len(self._hosts) + nets

    def match_host(self, host: str) -> PoolEndpoint | None:
        """The entry for `host` or its nearest listed parent domain (case and final dot ignored).

        When that entry names no pool or no coin, the returned copy takes them from
        the nearest parent entry that does (stratum.antpool.com, listed bare by
        Falco, is AntPool's); its id, kind and source stay the specific entry's.
        """
        name = host.lower().rstrip(".")
        hosts = self._hosts
        while True:
            entry = hosts.get(name)
            if entry is not None:
                return entry
            dot = name.find(".")
            if dot < 0:
                return None
            name = name[dot + 1 :]

    def match_ip(self, ip: str, port: int) -> PoolEndpoint | None:
        """The most specific entry whose network holds `ip` and whose ports (if any) hold `port`."""
        parsed = _address(ip)
        if parsed is None:
            return None
        version, value = parsed
        bits = _BITS[version]
        for plen, table in self._nets[version]:
            found = table.get(value >> (bits - plen))
            if found is None:
                continue
            for entry in found:
                if not entry.ports or port in entry.ports:
                    return entry
        return None


def _inherit(hosts: dict[str, PoolEndpoint], name: str, entry: PoolEndpoint) -> PoolEndpoint:
    """`entry` (listed for `name`) with a missing pool name or coin filled from its parents."""
    pool, coin = entry.pool, entry.coin
    parent = name
    while pool is None or coin is None:
        dot = parent.find(".")
        if dot < 0:
            break
        parent = parent[dot + 1 :]
        above = hosts.get(parent)
        if above is not None:
            pool = above.pool if pool is None else pool
            coin = above.coin if coin is None else coin
    if (pool, coin) == (entry.pool, entry.coin):
        return entry
    return replace(entry, pool=pool, coin=coin)


def _ordered(entries: list[PoolEndpoint]) -> list[PoolEndpoint]:
    # Entries that name ports are more specific than "any port" ones for the same
    # network; among equals the better-described and then the later one comes first.
    indexed = list(enumerate(entries))
    indexed.sort(key=lambda ie: (not ie[1].ports, -_rank(ie[1]), -ie[0]))
    return [entry for _, entry in indexed]


_CACHE: dict[int, tuple[weakref.ref[RuleSet], PoolIndex]] = {}


def pool_index(ruleset: RuleSet) -> PoolIndex:
    """The PoolIndex of a rule set, built once per rule set (a reload makes a new one)."""
    key = id(ruleset)
    cached = _CACHE.get(key)
    if cached is not None and cached[0]() is ruleset:
        return cached[1]
    index = PoolIndex(ruleset.pools)
    _CACHE[key] = (weakref.ref(ruleset), index)
    # RuleSet is an unhashable frozen dataclass, so the cache is keyed by identity
    # and the entry dropped when the rule set goes away.
    weakref.finalize(ruleset, _CACHE.pop, key, None)
    return index
