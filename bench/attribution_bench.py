"""Micro-benchmark of attribution (not a test): lookups per second, build and load times.

Run: python bench/attribution_bench.py [--v4 N] [--v6 N] [--probes N] [--seed S]
A synthetic registry (random IPv4 and IPv6 prefixes, a few thousand owners) is
written as CSV, loaded into a PrefixIndex, compiled into an mmdb and read back;
half the probe addresses fall inside registry prefixes. Pin it to one core
(taskset -c 0) for steadier figures.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import maxminddb

from sensor.attribute.build import build_mmdb
from sensor.attribute.mmdb import MmdbSource
from sensor.attribute.prefixes import IPNetwork, PrefixIndex
from sensor.attribute.registry import RegistryRecord, index_records, load_registry
from sensor.attribute.resolver import OwnershipResolver

ORG_TYPES = ("government", "education", "enterprise", "residential", "hosting")


def write_registry(path: Path, v4: int, v6: int, rng: random.Random) -> None:
    lines = ["network,org,org_type,region,reg_no"]
    for i in range(v4 + v6):
        net: IPNetwork
        if i < v4:
            length = rng.randint(16, 28)
            net = ipaddress.IPv4Network((rng.getrandbits(32), length), strict=False)
        else:
            length = rng.randint(32, 64)
            net = ipaddress.IPv6Network(
                (0x2400 << 112 | rng.getrandbits(112), length), strict=False
            )
        org = rng.randrange(5_000)
        kind = ORG_TYPES[org % len(ORG_TYPES)]
        lines.append(f"{net},Org {org},{kind},Province {org % 31}/City {org % 300},R{org:08d}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def probes(networks: Sequence[ipaddress.IPv4Network], count: int, rng: random.Random) -> list[str]:
    """Half inside registry prefixes (hits), half anywhere (mostly misses)."""
    out = []
    for i in range(count):
        if i % 2:
            net = networks[rng.randrange(len(networks))]
            value = int(net.network_address) + rng.randrange(net.num_addresses)
        else:
            value = rng.getrandbits(32)
        out.append(str(ipaddress.IPv4Address(value)))
    return out


def rate(label: str, fn: Callable[[str], object], ips: list[str]) -> None:
    start = time.perf_counter()
    for ip in ips:
        fn(ip)
    seconds = time.perf_counter() - start
    per_second = len(ips) / seconds
    print(f"  {label:<44} {per_second:>12,.0f} lookups/s  {1e6 / per_second:7.2f} us")


class timed:
    """Print how long the block took."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        print(f"  {self.label:<44} {time.perf_counter() - self.start:>12.2f} s")


def setup(csv_path: Path, mmdb_path: Path) -> tuple[list[RegistryRecord], PrefixIndex[Any]]:
    """Load, index and compile the registry, timing each step."""
    print("setup:")
    with timed("load CSV registry"):
        records = load_registry(csv_path)
    with timed("build PrefixIndex"):
        index = index_records(records)
    with timed("compile mmdb (build_mmdb)"):
        report = build_mmdb([csv_path], mmdb_path)
    print(
        f"  {'mmdb':<44} {mmdb_path.stat().st_size / 2**20:>12.1f} MiB, "
        f"{report.node_count:,} nodes, {report.record_size}-bit records, "
        f"{len(report.overlaps):,} overlaps"
    )
    with timed("open built mmdb, verify=none (mmap)"):
        MmdbSource(mmdb_path, verify="none").close()
    with timed("open built mmdb, verify=full"):
        MmdbSource(mmdb_path, verify="full").close()
    return records, index


def measure(csv_path: Path, mmdb_path: Path, index: PrefixIndex[Any], ips: list[str]) -> None:
    source = MmdbSource(mmdb_path, verify="none")
    raw = maxminddb.open_database(str(mmdb_path))
    uncached = OwnershipResolver([csv_path], cache_size=0)
    cached = OwnershipResolver([mmdb_path], verify="none")
    hot = ips[:1_000]
    for ip in hot:
        cached.lookup(ip)
    print(f"lookups ({len(ips):,} IPv4 probes, half hits):")
    rate("PrefixIndex.lookup (registry)", index.lookup, ips)
    rate("maxminddb Reader.get (built mmdb, raw)", raw.get, ips)
    rate("MmdbSource.lookup (built mmdb -> Attribution)", source.lookup, ips)
    rate("OwnershipResolver.lookup, cache misses (CSV)", uncached.lookup, ips)
    rate("OwnershipResolver.lookup, cache hits", cached.lookup, hot * (len(ips) // 1_000))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--v4", type=int, default=200_000)
    parser.add_argument("--v6", type=int, default=20_000)
    parser.add_argument("--probes", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    print(f"maxminddb {maxminddb.__version__}; registry {args.v4:,} IPv4 + {args.v6:,} IPv6")
    with tempfile.TemporaryDirectory() as tmp:
        csv_path, mmdb_path = Path(tmp) / "owners.csv", Path(tmp) / "owners.mmdb"
        write_registry(csv_path, args.v4, args.v6, rng)
        records, index = setup(csv_path, mmdb_path)
        v4_networks = [r.network for r in records if isinstance(r.network, ipaddress.IPv4Network)]
        measure(csv_path, mmdb_path, index, probes(v4_networks, args.probes, rng))


if __name__ == "__main__":
    main()
