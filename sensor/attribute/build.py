"""Compile registries into one mmdb file, so a huge registry loads instantly (mmap).

Registries are given in precedence order. Overlapping prefixes resolve as in
the resolver: the longest prefix wins, and for a prefix listed twice the first
listing (earliest file, then earliest line) is kept. Every overlap is reported,
because in a hand-kept registry an overlap is as often a mistake as a carve-out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sensor.attribute.errors import OwnershipProblem, RegistryError
from sensor.attribute.mmdb import REGISTRY_DATABASE_TYPE
from sensor.attribute.registry import RegistryRecord, read_registry
from sensor.attribute.writer import MmdbWriter, Pointer


@dataclass(frozen=True, slots=True)
class Overlap:
    """Two registry records whose prefixes overlap: `inner` lies within (or equals) `outer`."""

    outer: RegistryRecord
    inner: RegistryRecord

    @property
    def duplicate(self) -> bool:
        return self.outer.network == self.inner.network

    def __str__(self) -> str:
        if self.duplicate:
            return (
                f"{self.inner.where}: {self.inner.network} is already listed at "
                f"{self.outer.where}; the first listing is kept"
            )
        return (
            f"{self.inner.where}: {self.inner.network} lies inside {self.outer.network} "
            f"({self.outer.where}); the longer prefix wins"
        )


@dataclass(slots=True)
class BuildReport:
    path: Path
    files: list[str]
    networks: int  # distinct prefixes written
    ipv4: int
    ipv6: int
    owners: int  # distinct owner entries, each stored once
    node_count: int
    record_size: int
    file_bytes: int
    overlaps: list[Overlap] = field(default_factory=list)

    @property
    def duplicates(self) -> list[Overlap]:
        return [o for o in self.overlaps if o.duplicate]

    @property
    def nested(self) -> list[Overlap]:
        return [o for o in self.overlaps if not o.duplicate]

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "files": self.files,
            "networks": self.networks,
            "ipv4": self.ipv4,
            "ipv6": self.ipv6,
            "owners": self.owners,
            "node_count": self.node_count,
            "record_size": self.record_size,
            "file_bytes": self.file_bytes,
            "overlaps": [str(o) for o in self.overlaps],
        }


def build_mmdb(
    registries: Sequence[str | Path],
    out_path: str | Path,
    *,
    description: str = "minewatch ownership registry",
    build_epoch: int | None = None,
) -> BuildReport:
    """Compile registry files (in precedence order) into an mmdb file.

    Raises RegistryError naming every bad line of every file; nothing is written then.
    """
    records = load_all(registries)
    report = write_records(records, out_path, description=description, build_epoch=build_epoch)
    report.files = [str(p) for p in registries]
    return report


def write_records(
    records: Sequence[RegistryRecord],
    out_path: str | Path,
    *,
    description: str = "minewatch ownership registry",
    build_epoch: int | None = None,
) -> BuildReport:
    """Write records (in precedence order) as a minewatch-ownership mmdb file."""
    writer = MmdbWriter(REGISTRY_DATABASE_TYPE, description, build_epoch=build_epoch)
    # Many prefixes share an owner: its map is written once and pointed to.
    owners: dict[tuple[Any, ...], Pointer] = {}
    counts = {4: 0, 6: 0}
    for record in records:
        key = _owner_key(record)
        owner = owners.get(key)
        if owner is None:
            owner = owners[key] = Pointer(writer.data.add(owner_value(record)))
        if writer.insert(record.network, {"network": str(record.network), "owner": owner}):
            counts[record.network.version] += 1
    stats = writer.write(out_path)
    return BuildReport(
        path=Path(out_path),
        files=sorted({r.path for r in records}),
        networks=len(writer),
        ipv4=counts[4],
        ipv6=counts[6],
        owners=len(owners),
        node_count=stats.node_count,
        record_size=stats.record_size,
        file_bytes=stats.file_bytes,
        overlaps=find_overlaps(records),
    )


def load_all(registries: Sequence[str | Path]) -> list[RegistryRecord]:
    """Records of every file in order; RegistryError with all problems of all files."""
    records: list[RegistryRecord] = []
    problems: list[OwnershipProblem] = []
    for path in registries:
        found, file_problems = read_registry(path)
        records.extend(found)
        problems.extend(file_problems)
    if problems:
        raise RegistryError(problems)
    return records


def owner_value(record: RegistryRecord) -> dict[str, Any]:
    """What an mmdb record says about the owner (the fields mmdb.registry_attribution reads)."""
    owner: dict[str, Any] = {"org_type": record.org_type}
    for key, value in (
        ("org", record.org),
        ("region", record.region),
        ("asn", record.asn),
        ("country", record.country),
    ):
        if value is not None:
            owner[key] = value
    if record.identifiers:
        owner["identifiers"] = dict(record.identifiers)
    return owner


def _owner_key(record: RegistryRecord) -> tuple[Any, ...]:
    return (
        record.org,
        record.org_type,
        record.region,
        record.asn,
        record.country,
        record.identifiers,
    )


def find_overlaps(records: Iterable[RegistryRecord]) -> list[Overlap]:
    """Every record lying within an earlier-sorted one, paired with its closest container.

    One sweep in address order with a stack of the enclosing prefixes: O(n log n).
    """
    spans = sorted(_span(record, order) for order, record in enumerate(records))
    stack: list[tuple[int, int, int, int, int, RegistryRecord]] = []
    found: list[Overlap] = []
    for span in spans:
        version, _, _, _, end, record = span
        while stack and (stack[-1][0] != version or stack[-1][4] < end):
            stack.pop()  # sorted by start: a container must also reach this end
        if stack:
            found.append(Overlap(stack[-1][5], record))
        if not stack or stack[-1][5].network != record.network:
            stack.append(span)  # a duplicate is dropped, so it encloses nothing
    return found


def _span(record: RegistryRecord, order: int) -> tuple[int, int, int, int, int, RegistryRecord]:
    """Sort key: version, start, prefix length (wider first), listing order; then the end."""
    network = record.network
    start = int(network.network_address)
    end = start + (1 << (network.max_prefixlen - network.prefixlen)) - 1
    return network.version, start, network.prefixlen, order, end, record
