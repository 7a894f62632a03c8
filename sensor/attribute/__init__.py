"""Attribute stage: miner IP -> organisation, type, region, ASN.

Ownership sources (local registries, MaxMind mmdb) plug in behind the
`Attributor` protocol; until one is configured every IP is unknown.

- resolver.OwnershipResolver: every --ownership file behind one cached lookup(ip)
- registry: CSV/YAML registries (line-numbered errors); prefixes.PrefixIndex
- mmdb: MaxMind and compiled databases; writer, build: compile registries to mmdb
- home_net.HomeNet: which addresses are ours; vocabulary: the org types
"""

from __future__ import annotations

from typing import Protocol

from sensor.model import Attribution


class Attributor(Protocol):
    def lookup(self, ip: str) -> Attribution: ...


class NullAttributor:
    """Knows no owners: every field null."""

    def lookup(self, ip: str) -> Attribution:
        return Attribution()
