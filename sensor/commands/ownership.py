"""`minewatch ownership build|lookup`, and the --ownership / --home-net options of other commands.

Ownership files are opened before anything else is read: a bad file stops the
command at once (OwnershipError, exit 2, naming file and line), never half-way
through a capture.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson

from sensor.attribute.build import BuildReport, build_mmdb
from sensor.attribute.home_net import HomeNet
from sensor.attribute.resolver import OwnershipResolver, lookup_table
from sensor.commands.table import format_table

LOOKUP_HEADERS = ("ip", "org", "org_type", "region", "country", "asn", "network", "source")


# -- options shared with replay and screen ------------------------------------------------
def add_ownership_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ownership",
        action="append",
        default=[],
        metavar="FILE",
        help="ownership registry (.csv, .yaml, .yml) or mmdb file (repeatable; registries "
        "outrank compiled registries, which outrank MaxMind files)",
    )


def add_home_net_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--home-net",
        action="append",
        default=[],
        type=home_cidr,
        metavar="CIDR",
        help="a prefix of our own network (repeatable); private ranges and every registry "
        "prefix count already",
    )


def home_cidr(text: str) -> str:
    """argparse type: a network in CIDR form, so a typo is bad usage (exit 2) at once."""
    try:
        return str(ipaddress.ip_network(text.strip(), strict=True))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a network in CIDR form: {exc}") from None


def open_resolver(paths: Sequence[str]) -> OwnershipResolver | None:
    """The resolver over `paths`, or None without any; raises OwnershipError naming bad files."""
    return OwnershipResolver(paths) if paths else None


def home_net(cidrs: Sequence[str], resolver: OwnershipResolver | None) -> HomeNet:
    return HomeNet(cidrs, registry=resolver)


# -- minewatch ownership ---------------------------------------------------------------------
def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("ownership", help="build and query ownership sources")
    actions = parser.add_subparsers(dest="ownership_command", required=True)
    build = actions.add_parser(
        "build", help="compile registries (in precedence order) into one mmdb file"
    )
    build.add_argument("registries", nargs="+", metavar="REGISTRY")
    build.add_argument("-o", "--output", required=True, type=Path, metavar="OUT.mmdb")
    build.add_argument("--description", default="minewatch ownership registry")
    build.add_argument("--json", action="store_true", help="print the build report as JSON")
    build.set_defaults(run=run_build)
    lookup = actions.add_parser("lookup", help="who owns these IP addresses")
    lookup.add_argument("ips", nargs="+", metavar="IP")
    add_ownership_option(lookup)
    lookup.add_argument("--json", action="store_true", help="print JSON rows")
    lookup.set_defaults(run=run_lookup)


def run_build(args: argparse.Namespace) -> int:
    report = build_mmdb(args.registries, args.output, description=args.description)
    if args.json:
        print(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        print(build_text(report))
    return 0


def build_text(report: BuildReport) -> str:
    """What was written, then every overlap (a carve-out or a mistake: the operator decides)."""
    lines = [
        f"wrote {report.path}: {report.networks} networks ({report.ipv4} IPv4, "
        f"{report.ipv6} IPv6), {report.owners} owners, {report.file_bytes:,} bytes, "
        f"from {len(report.files)} registry file(s)"
    ]
    if not report.overlaps:
        lines.append("no overlapping prefixes")
        return "\n".join(lines)
    count = len(report.overlaps)
    lines.append(
        f"{count} overlapping prefix{'' if count == 1 else 'es'} "
        f"({len(report.duplicates)} listed twice, {len(report.nested)} nested):"
    )
    lines.extend(f"  {overlap}" for overlap in report.overlaps)
    return "\n".join(lines)


def run_lookup(args: argparse.Namespace) -> int:
    if not args.ownership:
        print("minewatch: no --ownership files given: every owner is unknown", file=sys.stderr)
    resolver = OwnershipResolver(args.ownership)
    try:
        rows = lookup_table(resolver, args.ips)
    finally:
        resolver.close()
    if args.json:
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
    else:
        table = [[row[h] for h in LOOKUP_HEADERS] for row in rows if row["error"] is None]
        if table:
            print(format_table(LOOKUP_HEADERS, table))
    bad = [row["ip"] for row in rows if row["error"] is not None]
    for ip in bad:
        print(f"minewatch: {ip!r}: not an IP address", file=sys.stderr)
    return 2 if bad else 0
