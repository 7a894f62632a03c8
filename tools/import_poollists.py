#!/usr/bin/env python3
"""Regenerate rules/pools/*.yaml from public pool lists that minewatch may redistribute.

Only permissively licensed lists are imported (MIT, Apache-2.0); each output file
carries the list's copyright and licence notice, and each entry its source and
the day the list snapshot was taken. Lists under AGPL/GPL or without a clear
licence (CoinBlockerLists, ET Open rules, the sMaSheD dump, the DI csv files)
must not be added here.

    python tools/import_poollists.py [--lists ../shared/poollists] [--out rules/pools]

Output is deterministic: the same lists always give byte-identical files.
Uses only the standard library and PyYAML, so it runs without minewatch installed.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT_DATE = "2026-11-21"  # the day the list snapshots in shared/poollists were taken


@dataclass(frozen=True, slots=True)
class Item:
    """One usable line of a list: a host name or an address, maybe a port and a pool name."""

    host: str | None = None
    ip: str | None = None
    port: int | None = None
    pool: str | None = None


Parser = Callable[[str], Iterator[Item]]

# Same syntax the rule schema accepts for `domains` (sensor/rules/schema.py).
_HOST = re.compile(r"(?=.{1,253}\Z)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9-]{2,63}\Z")
# Hosting and dynamic-DNS parents: a list entry for one customer's host must never
# turn into a whole-domain entry that matches every other customer too.
_SHARED_PARENTS = frozenset(
    {"now.sh", "ddns.net", "github.io", "herokuapp.com", "amazonaws.com", "stackpathdns.com"}
)
# Tokens of a host's sub-domain labels that clearly name a coin (xmr-eu1.nanopool.org).
_COIN_TOKENS = {
    "xmr": "xmr", "monero": "xmr", "eth": "eth", "etc": "etc", "btc": "btc", "bitcoin": "btc",
    "ltc": "ltc", "litecoin": "ltc", "zec": "zec", "zcash": "zec", "doge": "doge",
    "rvn": "rvn", "raven": "rvn", "erg": "erg", "ergo": "erg", "grin": "grin",
    "kas": "kas", "kaspa": "kas", "dash": "dash",
}  # fmt: skip
# Second-level labels under which registrations happen (zlx.com.br, example.co.uk).
_GENERIC_SLDS = frozenset({"co", "com", "net", "org", "gov", "edu", "ac"})


def host_item(text: str, port: int | None = None, pool: str | None = None) -> Item | None:
    """An Item for a host name or IP address as written in a list, or None if it is neither."""
    text = text.strip().lower().rstrip(".")
    text = text.removeprefix("*.")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        if not _HOST.match(text) or text in _SHARED_PARENTS:
            return None
        return Item(host=text, port=port, pool=pool)
    # Private, loopback and documentation addresses in a list are mistakes or
    # sinkholes (0.0.0.0); importing them would flag local traffic.
    return Item(ip=str(address), port=port, pool=pool) if address.is_global else None


def split_port(text: str) -> tuple[str, int | None]:
    """`host:port` into its parts; IPv6 literals and non-numeric ports are left alone."""
    head, sep, tail = text.rpartition(":")
    if sep and tail.isdigit() and ":" not in head and 0 < int(tail) < 65536:
        return head, int(tail)
    return text, None


def parse_maltrail(text: str) -> Iterator[Item]:
    """maltrail trails: one host, IP or IP:port per line; `# TITLE-HOST/IP=` names a pool."""
    pool: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            if line.startswith("# Reference"):
                pool = None  # a new block of trails begins
            elif "TITLE-HOST/IP=" in line:
                pool = line.split("=", 1)[1].strip() or None
            continue
        line = re.sub(r"^[a-z]+://", "", line, flags=re.I).split("/", 1)[0]
        if line:
            item = host_item(*split_port(line), pool=pool)
            if item is not None:
                yield item


def parse_hosts(text: str) -> Iterator[Item]:
    """hosts-file format: `0.0.0.0 host` lines."""
    for raw in text.splitlines():
        fields = raw.split("#", 1)[0].split()
        if len(fields) >= 2:
            item = host_item(fields[1])
            if item is not None:
                yield item


def parse_adblock(text: str) -> Iterator[Item]:
    """Adblock Plus filters: only whole-host rules `||host^` (with options) are hosts.

    Rules with a path, a wildcard or a query (`||ddns.net^*=ws://`) block part of a
    site, so their host alone is not a mining endpoint and they are skipped.
    """
    for raw in text.splitlines():
        line = raw.strip()
        if not line.startswith("||"):
            continue
        body = line[2:].split("$", 1)[0].removesuffix("^")
        if any(c in body for c in "/*^|?=~"):
            continue
        item = host_item(body)
        if item is not None:
            yield item


def parse_url_patterns(text: str) -> Iterator[Item]:
    """Browser-extension URL patterns `scheme://host/path`.

    A WebSocket pattern points at a miner proxy, and a pattern covering a whole host
    (`/*`) blocks that host; other paths name one script on an ordinary web site.
    """
    for raw in text.splitlines():
        scheme, sep, rest = raw.strip().partition("://")
        if not sep:
            continue
        host, _, path = rest.partition("/")
        if scheme in ("ws", "wss") or path in ("", "*"):
            host, _ = split_port(host)
            item = host_item(host) if "*" not in host.removeprefix("*.") else None
            if item is not None:
                yield item


def parse_falco(text: str) -> Iterator[Item]:
    """Falco rule lists: the items of the `*miner_domains` lists (the port list is generic)."""
    for doc in yaml.safe_load(text) or []:
        if isinstance(doc, dict) and str(doc.get("list", "")).endswith("miner_domains"):
            for name in doc.get("items") or []:
                item = host_item(str(name))
                if item is not None:
                    yield item


@dataclass(frozen=True, slots=True)
class Source:
    """One redistributable list and how to cite it."""

    key: str  # id prefix of its entries
    out: str  # output file name in rules/pools
    files: tuple[str, ...]  # file names in shared/poollists
    parser: Parser
    source: str  # the `source` of every entry
    notice: str  # licence notice for the file header (file name in shared/poollists, or text)
    # "browser" for lists of in-browser mining services (NoCoin): their web and
    # WebSocket traffic is itself mining. "pool" is the default and is not written.
    kind: str = "pool"


SOURCES: tuple[Source, ...] = (
    Source(
        "maltrail",
        "maltrail_crypto_mining.yaml",
        ("maltrail_crypto_mining.txt",),
        parse_maltrail,
        "maltrail trails/static/suspicious/crypto_mining.txt (MIT), stamparm/maltrail@8adace1",
        "maltrail_LICENSE",
    ),
    Source(
        "nocoin",
        "nocoin_hoshsadiq.yaml",
        ("nocoin_hoshsadiq_hosts.txt", "nocoin_hoshsadiq_nocoin.txt"),
        parse_hosts,  # replaced per file below: hosts.txt and the Adblock list
        "adblock-nocoin-list hosts.txt and nocoin.txt (MIT), hoshsadiq/adblock-nocoin-list@9f3caa9",
        "nocoin_hoshsadiq_LICENSE",
        kind="browser",
    ),
    Source(
        "keraf",
        "nocoin_keraf.yaml",
        ("nocoin_keraf_blacklist.txt",),
        parse_url_patterns,
        "NoCoin src/blacklist.txt (MIT), keraf/NoCoin@1bba265",
        "nocoin_keraf_LICENSE",
        kind="browser",
    ),
    Source(
        "falco",
        "falco_miner_domains.yaml",
        ("falco_sandbox_rules_miner_lists.yaml",),
        parse_falco,
        "Falco rules/falco-sandbox_rules.yaml miner_domains lists (Apache-2.0), "
        "falcosecurity/rules@c72713e",
        "Copyright (C) The Falco Authors. Licensed under the Apache License, Version 2.0\n"
        "(http://www.apache.org/licenses/LICENSE-2.0). Changed by minewatch: the host names\n"
        "of the miner_domains, https_miner_domains and http_miner_domains lists,\n"
        "converted to minewatch pool rules.",
    ),
)

# Files whose format differs from their source's default parser.
_FILE_PARSERS: dict[str, Parser] = {"nocoin_hoshsadiq_nocoin.txt": parse_adblock}


def base_domain(host: str) -> str:
    """The registered domain of a host name, near enough to group entries by operator."""
    labels = host.split(".")
    keep = 3 if len(labels) > 2 and len(labels[-1]) == 2 and labels[-2] in _GENERIC_SLDS else 2
    return ".".join(labels[-keep:])


def host_coin(host: str) -> str | None:
    """The coin a host's sub-domain labels name clearly (xmr-eu1, stratum-eth), else None."""
    labels = host.split(".")[: -len(base_domain(host).split("."))]
    tokens = {t.rstrip("0123456789") for label in labels for t in label.split("-")}
    coins = {_COIN_TOKENS[t] for t in tokens if t in _COIN_TOKENS}
    return coins.pop() if len(coins) == 1 else None


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _ip_sort_key(ip: str) -> tuple[int, int]:
    address = ipaddress.ip_address(ip)
    return address.version, int(address)


def _kind(src: Source) -> dict[str, object]:
    # The default kind is left out to keep the generated files small.
    return {"kind": src.kind} if src.kind != "pool" else {}


def host_entries(src: Source, items: Iterable[Item]) -> list[dict[str, object]]:
    """Host names grouped by pool, registered domain and coin: one entry each."""
    groups: dict[tuple[str, str, str], set[str]] = {}
    for item in items:
        if item.host:
            key = (item.pool or "", base_domain(item.host), host_coin(item.host) or "")
            groups.setdefault(key, set()).add(item.host)
    entries = []
    for (pool, base, coin), hosts in sorted(groups.items()):
        parts = [src.key, slug(pool), slug(base), coin]
        entry: dict[str, object] = {"id": ".".join(p for p in parts if p)}
        entry.update({"pool": pool} if pool else {})
        entry.update({"coin": coin} if coin else {})
        entry.update(_kind(src))
        entry["domains"] = sorted(hosts)
        entries.append(entry)
    return entries


def network_entries(src: Source, items: Iterable[Item]) -> list[dict[str, object]]:
    """Addresses grouped by pool and port set: one entry each (no ports = any port)."""
    ports: dict[tuple[str, str], set[int] | None] = {}
    for item in items:
        if item.ip:
            key = (item.pool or "", item.ip)
            known = ports.setdefault(key, set())
            if item.port is None or known is None:
                ports[key] = None  # listed without a port: any port
            else:
                known.add(item.port)
    groups: dict[tuple[str, tuple[int, ...]], list[str]] = {}
    for (pool, ip), found in ports.items():
        groups.setdefault((pool, tuple(sorted(found or ()))), []).append(ip)
    entries = []
    for (pool, port_list), networks in sorted(groups.items()):
        port_part = "p" + "-".join(map(str, port_list)) if port_list else "any-port"
        entry: dict[str, object] = {"id": ".".join(p for p in (src.key, slug(pool), "ip") if p)}
        entry["id"] = f"{entry['id']}.{port_part}"
        entry.update({"pool": pool} if pool else {})
        entry.update(_kind(src))
        entry["networks"] = sorted(networks, key=_ip_sort_key)
        entry.update({"ports": list(port_list)} if port_list else {})
        entries.append(entry)
    return entries


def header(src: Source, lists: Path) -> str:
    notice_file = lists / src.notice
    notice = notice_file.read_text(encoding="utf-8") if notice_file.is_file() else src.notice
    lines = [
        "Pool endpoints imported from",
        f"  {src.source}.",
        f"Snapshot taken {SNAPSHOT_DATE}. Generated by tools/import_poollists.py: do not edit,",
        "change the importer or the list and regenerate. Licence of the list:",
        "",
        *notice.strip().splitlines(),
    ]
    return "".join(f"# {line}".rstrip() + "\n" for line in lines)


def generate(src: Source, lists: Path) -> str:
    """The text of one output file, built from that source's lists in `lists`."""
    items: list[Item] = []
    for name in src.files:
        parser = _FILE_PARSERS.get(name, src.parser)
        items.extend(parser((lists / name).read_text(encoding="utf-8")))
    entries = host_entries(src, items) + network_entries(src, items)
    for entry in entries:
        entry["source"] = src.source
        entry["date"] = SNAPSHOT_DATE
    body = yaml.safe_dump({"pools": entries}, sort_keys=False, default_flow_style=None, width=100)
    return header(src, lists) + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lists", type=Path, default=REPO.parent / "shared" / "poollists")
    parser.add_argument("--out", type=Path, default=REPO / "rules" / "pools")
    args = parser.parse_args(argv)
    missing = [n for s in SOURCES for n in s.files if not (args.lists / n).is_file()]
    if missing:
        print(f"missing lists in {args.lists}: {', '.join(missing)}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for src in SOURCES:
        text = generate(src, args.lists)
        (args.out / src.out).write_text(text, encoding="utf-8")
        print(f"{src.out}: {text.count('- id: ')} entries", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
