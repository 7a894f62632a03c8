"""`minewatch screen CANDIDATES --events FILE...`: which candidate IPs have mining evidence.

A regulator's question ("of these 4,699 addresses, which mined, and at which
organisations?"): a candidate is confirmed when it is the miner (src_ip) of a
`mining` event in the event logs. Its organisation is what the ownership files
say when given (they are newer than the logs), else what the event said.

Candidates: one address per line, or the first column of a CSV file; a header
row, blank lines and `#` comments are allowed; any other line that is not an
address is counted as invalid and listed. IPv4-mapped IPv6 addresses
(`::ffff:a.b.c.d`) are the IPv4 address they carry, in candidates and events.
"""

from __future__ import annotations

import argparse
import csv
import ipaddress
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from sensor.attribute.resolver import OwnershipResolver
from sensor.commands.ownership import add_ownership_option, open_resolver
from sensor.commands.table import format_table

UNKNOWN_ORG = "(unknown organisation)"


@dataclass(slots=True)
class Candidates:
    """Distinct candidate addresses in file order, and the lines that were not addresses."""

    ips: list[str] = field(default_factory=list)
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (line number, text)
    duplicates: int = 0


@dataclass(slots=True)
class Owner:
    org: str | None = None
    org_type: str | None = None
    region: str | None = None


@dataclass(slots=True)
class MinerSeen:
    """A miner IP in the event logs: its owner as the events said, and what it mined."""

    owner: Owner = field(default_factory=Owner)
    events: int = 0
    coins: set[str] = field(default_factory=set)


@dataclass(slots=True)
class EventLogs:
    miners: dict[str, MinerSeen] = field(default_factory=dict)
    bad_lines: int = 0
    errors: list[str] = field(default_factory=list)  # files that could not be read


def normal_ip(text: str) -> str | None:
    """Canonical text of an address (IPv4-mapped folded to IPv4); None if not one."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


# -- candidates ------------------------------------------------------------------------------
def parse_candidates(lines: Iterable[str]) -> Candidates:
    """Candidates from lines of text (one address per line, or CSV with it first)."""
    found = Candidates()
    seen: set[str] = set()
    first = True
    for number, row in enumerate(csv.reader(lines), start=1):
        text = row[0].strip() if row else ""
        if not text or text.startswith("#"):
            continue
        ip = normal_ip(text)
        if ip is None:
            if not (first and _looks_like_header(text)):
                found.invalid.append((number, text))
        elif ip in seen:
            found.duplicates += 1
        else:
            seen.add(ip)
            found.ips.append(ip)
        first = False
    return found


def _looks_like_header(text: str) -> bool:
    """A column name ("ip", "address"), not a mistyped address (which has dots or colons)."""
    return "." not in text and ":" not in text


def read_candidates(path: str | Path) -> Candidates:
    # newline="" as the csv module wants; one physical line per row unless quoted.
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return parse_candidates(fh)


# -- event logs ------------------------------------------------------------------------------
def read_event_logs(paths: Sequence[str | Path]) -> EventLogs:
    """Miner IPs of every `mining` event in JSON Lines files; unreadable files are noted."""
    logs = EventLogs()
    for path in paths:
        try:
            with open(path, "rb") as fh:
                read_events(fh, logs)
        except OSError as exc:
            logs.errors.append(f"{path}: {exc.strerror or exc}")
    return logs


def read_events(lines: Iterable[bytes], logs: EventLogs) -> None:
    for line in lines:
        # Most lines of a long log are flow or other events: a bytes check before parsing.
        if b'"mining"' not in line:
            continue
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            logs.bad_lines += 1
            continue
        if isinstance(event, dict) and event.get("event_type") == "mining":
            _note_miner(event, logs)


def _note_miner(event: dict[str, Any], logs: EventLogs) -> None:
    ip = normal_ip(str(event.get("src_ip", "")))
    if ip is None:
        logs.bad_lines += 1
        return
    seen = logs.miners.get(ip)
    if seen is None:
        seen = logs.miners[ip] = MinerSeen()
    seen.events += 1
    mining = event.get("mining")
    mining = mining if isinstance(mining, dict) else {}
    if isinstance(mining.get("coin"), str):
        seen.coins.add(mining["coin"])
    if seen.owner.org is None:  # the first event that names the owner
        seen.owner = _event_owner(mining.get("org")) or seen.owner


def _event_owner(org: Any) -> Owner | None:
    if not isinstance(org, dict) or not (org.get("name") or org.get("type")):
        return None
    return Owner(_text(org.get("name")), _text(org.get("type")), _text(org.get("region")))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# -- screening -------------------------------------------------------------------------------
def screen(
    candidates: Candidates, logs: EventLogs, resolver: OwnershipResolver | None = None
) -> dict[str, Any]:
    """The contract's result, plus `confirmed_ips`, `invalid_lines` and `unattributed`."""
    confirmed = [ip for ip in candidates.ips if ip in logs.miners]
    groups: dict[str, list[tuple[str, Owner]]] = {}
    unattributed: list[str] = []
    for ip in confirmed:
        owner = _owner(ip, logs.miners[ip], resolver)
        if owner.org is None:
            unattributed.append(ip)
        else:
            groups.setdefault(owner.org, []).append((ip, owner))
    by_org = [_org_row(name, members, logs) for name, members in groups.items()]
    by_org.sort(key=lambda row: (-len(row["ips"]), row["org"]))
    return {
        "candidates": len(candidates.ips),
        "invalid": len(candidates.invalid),
        "confirmed": len(confirmed),
        "organisations": len(by_org),
        "by_org": by_org,
        "confirmed_ips": confirmed,
        "unattributed": unattributed,
        "invalid_lines": [{"line": n, "text": text} for n, text in candidates.invalid],
        "duplicates": candidates.duplicates,
    }


def _owner(ip: str, seen: MinerSeen, resolver: OwnershipResolver | None) -> Owner:
    """The ownership files' answer when they know the IP, else the events'."""
    if resolver is not None:
        found = resolver.lookup(ip)
        if found.name is not None:
            return Owner(found.name, found.type, found.region)
    return seen.owner


def _org_row(name: str, members: list[tuple[str, Owner]], logs: EventLogs) -> dict[str, Any]:
    ips = sorted((ip for ip, _ in members), key=_ip_order)
    first = members[0][1]
    coins = set().union(*(logs.miners[ip].coins for ip in ips))
    return {
        "org": name,
        "org_type": first.org_type,
        "region": first.region,
        "ips": ips,
        "coins": sorted(coins),
    }


def _ip_order(ip: str) -> tuple[int, int]:
    address = ipaddress.ip_address(ip)
    return address.version, int(address)


def screen_text(result: dict[str, Any], candidates_name: str) -> str:
    orgs = result["organisations"]
    lines = [
        f"{result['confirmed']} of {result['candidates']} candidate IPs confirmed, "
        f"at {orgs} organisation{'' if orgs == 1 else 's'}"
    ]
    rows = [
        [row["org"], row["org_type"], row["region"], len(row["ips"]), ", ".join(row["ips"])]
        for row in result["by_org"]
    ]
    if result["unattributed"]:
        ips = result["unattributed"]
        rows.append([UNKNOWN_ORG, None, None, len(ips), ", ".join(ips)])
    if rows:
        lines.append(format_table(("org", "org_type", "region", "count", "ips"), rows))
    if result["invalid"]:
        lines.append(f"{result['invalid']} invalid candidate line(s) (not an IP address):")
        lines.extend(
            f"  {candidates_name}:{item['line']}: {item['text']!r}"
            for item in result["invalid_lines"]
        )
    return "\n".join(lines)


# -- the command -----------------------------------------------------------------------------
def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("screen", help="which candidate IPs have mining evidence in event logs")
    p.add_argument(
        "candidates",
        type=Path,
        metavar="CANDIDATES",
        help="candidate IPs, one per line or the first column of a CSV file",
    )
    p.add_argument(
        "--events",
        action="extend",
        nargs="+",
        required=True,
        type=Path,
        metavar="FILE",
        help="JSON Lines event logs written by replay or run (repeatable)",
    )
    add_ownership_option(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        candidates = read_candidates(args.candidates)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        print(f"minewatch: {args.candidates}: {reason or exc}", file=sys.stderr)
        return 2
    resolver = open_resolver(args.ownership)  # bad files stop us before the logs are read
    try:
        logs = read_event_logs(args.events)
        result = screen(candidates, logs, resolver)
    finally:
        if resolver is not None:
            resolver.close()
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    else:
        print(screen_text(result, str(args.candidates)))
    if logs.bad_lines:
        print(f"minewatch: {logs.bad_lines} unreadable event line(s) skipped", file=sys.stderr)
    for error in logs.errors:
        print(f"minewatch: input error: {error}", file=sys.stderr)
    return 2 if logs.errors else 0
