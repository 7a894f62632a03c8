"""OwnershipResolver: every configured ownership file behind one `lookup(ip)`.

Precedence, highest first:
1. text registries (CSV, YAML), merged into one index: the longest prefix over
   all of them wins, and for a prefix listed twice the file given first;
2. compiled registries (mmdb files of type minewatch-ownership), in the order given;
3. MaxMind databases (Enterprise, ISP, ASN, City, Country), in the order given.

Each field of the answer comes from the highest source that knows it, so a
registry line without an ASN still gets one from an ASN database; a registry
org_type of "unknown" yields to a source that knows better. `source` names the
sources that contributed, highest first, joined by "+".

Answers are cached per IP (bounded LRU): attribution runs once per new miner,
never per packet. Attributions are shared between callers: treat them as read-only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from sensor.attribute.errors import MmdbError, OwnershipError, OwnershipProblem
from sensor.attribute.mmdb import MmdbSource
from sensor.attribute.prefixes import IPNetwork, address_key
from sensor.attribute.registry import REGISTRY_SUFFIXES, index_records, read_registry
from sensor.attribute.vocabulary import UNKNOWN
from sensor.errors import InputProblem
from sensor.model import Attribution

DEFAULT_CACHE_SIZE = 65_536
_MERGED = ("name", "region", "asn", "country", "asn_org", "network")

LOOKUP_COLUMNS = (
    "ip",
    "org",
    "org_type",
    "region",
    "country",
    "asn",
    "asn_org",
    "network",
    "source",
    "identifiers",
    "error",
)


class OwnershipResolver:
    """Attributor over registry and mmdb files; raises OwnershipError listing every bad file."""

    def __init__(
        self,
        paths: Iterable[str | Path] = (),
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        locales: Sequence[str] = ("en",),
        verify: str = "auto",
    ) -> None:
        self.paths = [str(p) for p in paths]
        self.registry_files: list[str] = []
        self.databases: list[MmdbSource] = []
        problems = self._load(tuple(locales), verify)
        if problems:
            self.close()
            raise OwnershipError(problems)
        self._resolve_cached = lru_cache(maxsize=cache_size)(self._resolve)

    def _load(self, locales: tuple[str, ...], verify: str) -> list[InputProblem]:
        problems: list[InputProblem] = []
        records = []
        for path in self.paths:
            suffix = Path(path).suffix.lower()
            if suffix in REGISTRY_SUFFIXES:
                found, file_problems = read_registry(path)
                records.extend(found)
                problems.extend(file_problems)
                self.registry_files.append(path)
            elif suffix == ".mmdb":
                try:
                    self.databases.append(MmdbSource(path, locales=locales, verify=verify))
                except MmdbError as exc:
                    problems.extend(exc.problems)
            else:
                message = "unknown ownership file type (expected .csv, .yaml, .yml or .mmdb)"
                problems.append(OwnershipProblem(path, 0, message))
        self.index = index_records(records)
        # Compiled registries outrank MaxMind files whatever the order given.
        self.databases.sort(key=lambda db: db.kind != "registry")
        return problems

    def lookup(self, ip: str) -> Attribution:
        """Who owns `ip`; every field None when no source knows it (or it is not an address)."""
        return self._resolve_cached(ip)

    def pool_info(self, ip: str) -> tuple[int | None, str | None]:
        """(ASN, country) of a pool address: what a report can say about the far side."""
        found = self._resolve_cached(ip)
        return found.asn, found.country

    def covers(self, ip: str) -> bool:
        """True when a registry (text or compiled) lists `ip`: it is in the home network."""
        key = address_key(ip)
        if key is None:
            return False
        if self.index.lookup_key(*key) is not None:
            return True
        return any(db.lookup(ip) is not None for db in self.databases if db.kind == "registry")

    def networks(self) -> Iterator[IPNetwork]:
        """The prefixes of the text registries."""
        return (network for network, _ in self.index)

    @property
    def sources(self) -> list[str]:
        return [*self.registry_files, *(db.path for db in self.databases)]

    @property
    def lookup_errors(self) -> int:
        """Lookups that met a corrupt mmdb record mid-run and answered unknown."""
        return sum(db.errors for db in self.databases)

    def cache_info(self) -> Any:
        return self._resolve_cached.cache_info()

    def close(self) -> None:
        for db in self.databases:
            db.close()

    def _resolve(self, ip: str) -> Attribution:
        key = address_key(ip)
        if key is None:
            return Attribution()
        answers: list[Attribution] = []
        record = self.index.lookup_key(*key)
        if record is not None:
            answers.append(record.attribution())
        for db in self.databases:
            found = db.lookup(ip)
            if found is not None:
                answers.append(found)
        return merge(answers)


def merge(answers: Sequence[Attribution]) -> Attribution:
    """One attribution from answers in precedence order: each field from the first that has it."""
    if not answers:
        return Attribution()
    if len(answers) == 1:
        return answers[0]
    merged = Attribution()
    contributors: list[str] = []
    for answer in answers:
        gave = False
        for name in _MERGED:
            if getattr(merged, name) is None and getattr(answer, name) is not None:
                setattr(merged, name, getattr(answer, name))
                gave = True
        if _better_type(merged.type, answer.type):
            merged.type, gave = answer.type, True
        if not merged.identifiers and answer.identifiers:
            merged.identifiers, gave = answer.identifiers, True
        if gave and answer.source:
            contributors.append(answer.source)
    merged.source = "+".join(contributors) or None
    return merged


def _better_type(current: str | None, offered: str | None) -> bool:
    """Take the offered type over nothing, and a known type over "unknown"."""
    if offered is None or offered == current:
        return False
    return current is None or (current == UNKNOWN and offered != UNKNOWN)


def lookup_table(resolver: OwnershipResolver, ips: Iterable[str]) -> list[dict[str, Any]]:
    """One row per IP (columns LOOKUP_COLUMNS) for `minewatch ownership lookup`."""
    rows = []
    for raw in ips:
        ip = raw.strip()
        row: dict[str, Any] = dict.fromkeys(LOOKUP_COLUMNS)
        row["ip"] = ip
        if address_key(ip) is None:
            row["error"] = "not an IP address"
        else:
            found = resolver.lookup(ip)
            row.update(
                org=found.name,
                org_type=found.type,
                region=found.region,
                country=found.country,
                asn=found.asn,
                asn_org=found.asn_org,
                network=found.network,
                source=found.source,
                identifiers=dict(found.identifiers),
            )
        rows.append(row)
    return rows
