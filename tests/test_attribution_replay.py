"""`minewatch replay --ownership ... --home-net ...`: owners in events, report and summary.

One synthetic capture, one miner per way of being known: an IPv4 and an IPv6
registry line, an IPv4-mapped IPv6 miner, a compiled registry (mmdb built from
a CSV), a prefix listed in both (the text registry wins), a --home-net address
nobody owns, an unknown address and, with MaxMind's test databases in
../shared/mmdb, an address only MaxMind knows and one the registry overrides.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest

from sensor.attribute.build import build_mmdb
from sensor.cli import main
from tests.factory import T0, TcpSession, merge, write_pcap
from tests.sessions import SCRIPTS

MMDB_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "mmdb"
ENTERPRISE = MMDB_DIR / "test-data" / "GeoIP2-Enterprise-Test.mmdb"

REGISTRY = """network,org,org_type,region,asn,contact
10.1.0.0/16,Nanjing Campus,education,Jiangsu/Nanjing,,noc@campus.example
2001:db8:10::/48,Suzhou Bureau,government,Jiangsu/Suzhou,64500,
10.9.0.0/16,Xuzhou Hospital,enterprise,Jiangsu/Xuzhou,,
198.19.0.0/16,Wuxi School,education,Jiangsu/Wuxi,,
214.78.0.0/24,Air Base Computer Club,education,California/San Diego,,
"""
COMPILED = """network,org,org_type,region
198.18.0.0/16,Changzhou Power Plant,enterprise,Jiangsu/Changzhou
198.19.0.0/16,Wrong Owner,other,Nowhere
"""
HOME_NET = "192.0.2.0/28"

# miner -> (pool, expected org name, type, region, source, home)
Expected = tuple[str, str | None, str | None, str | None, str | None, bool]
MINERS: dict[str, Expected] = {
    "10.1.0.2": (
        "198.51.100.10",
        "Nanjing Campus",
        "education",
        "Jiangsu/Nanjing",
        "registry:owners.csv",
        True,
    ),
    "2001:db8:10::2": (
        "2001:db8:ff::10",
        "Suzhou Bureau",
        "government",
        "Jiangsu/Suzhou",
        "registry:owners.csv",
        True,
    ),
    "::ffff:10.9.0.2": (
        "2001:db8:ff::11",
        "Xuzhou Hospital",
        "enterprise",
        "Jiangsu/Xuzhou",
        "registry:owners.csv",
        True,
    ),
    "198.18.0.5": (
        "198.51.100.12",
        "Changzhou Power Plant",
        "enterprise",
        "Jiangsu/Changzhou",
        "mmdb:owners.mmdb",
        True,  # a compiled registry's prefixes are home too
    ),
    "198.19.0.5": (
        "198.51.100.13",
        "Wuxi School",
        "education",
        "Jiangsu/Wuxi",
        "registry:owners.csv",
        True,
    ),
    "192.0.2.9": ("198.51.100.14", None, None, None, None, True),  # --home-net only
    "192.0.2.50": ("89.160.20.115", None, None, None, None, False),
    "214.78.1.1": ("198.51.100.15", None, None, None, None, False),
    "214.78.0.1": (
        "198.51.100.16",
        "Air Base Computer Club",
        "education",
        "California/San Diego",
        "registry:owners.csv",
        True,
    ),
}
WITH_MAXMIND: dict[str, Expected] = {
    "214.78.1.1": (
        "198.51.100.15",
        "US Department of Defense",
        "military",
        "California/San Diego",
        "mmdb:GeoIP2-Enterprise-Test.mmdb",
        False,  # MaxMind says who owns it, not that it is ours
    ),
    "214.78.0.1": (
        "198.51.100.16",
        "Air Base Computer Club",  # the registry outranks MaxMind
        "education",
        "California/San Diego",
        "registry:owners.csv+mmdb:GeoIP2-Enterprise-Test.mmdb",  # ASN from MaxMind
        True,
    ),
}


def _normal(ip: str) -> str:
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("attribution")
    sc = SCRIPTS["stratum_v1_btc"]
    sessions = [
        TcpSession((miner, 40000 + n), (pool, sc.port), start=T0 + n).script(sc.steps)
        for n, (miner, (pool, *_)) in enumerate(MINERS.items())
    ]
    write_pcap(folder / "miners.pcap", merge(*(s.packets() for s in sessions)))
    (folder / "owners.csv").write_text(REGISTRY, encoding="utf-8")
    (folder / "compiled.csv").write_text(COMPILED, encoding="utf-8")
    build_mmdb([folder / "compiled.csv"], folder / "owners.mmdb", build_epoch=1_700_000_000)
    return {name: folder / name for name in ("miners.pcap", "owners.csv", "owners.mmdb")}


def _replay(inputs: dict[str, Path], out: Path, *extra: str) -> dict[str, Any]:
    events, report = out / "events.json", out / "report.json"
    args = [
        "replay",
        str(inputs["miners.pcap"]),
        *("--ownership", str(inputs["owners.csv"]), "--ownership", str(inputs["owners.mmdb"])),
        *("--home-net", HOME_NET, "--events", str(events), "--report", str(report), *extra),
    ]
    assert main(args) == 0
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    return {"events": lines, "report": json.loads(report.read_text())}


@pytest.fixture(scope="module")
def registries(inputs, tmp_path_factory) -> dict[str, Any]:
    """Replayed with the CSV registry and the compiled one (two-pass when libpcap is there)."""
    return _replay(inputs, tmp_path_factory.mktemp("registries"))


@pytest.fixture(scope="module")
def maxmind(inputs, tmp_path_factory) -> dict[str, Any]:
    """The same, plus MaxMind's Enterprise test database given first (order must not matter)."""
    if not ENTERPRISE.exists():
        pytest.skip(f"{ENTERPRISE} not present (MaxMind test data lives in ../shared/mmdb)")
    out = tmp_path_factory.mktemp("maxmind")
    return _replay(inputs, out, "--ownership", str(ENTERPRISE), "--no-prefilter")


def _check_events(events: list[dict[str, Any]], expected: dict[str, Expected]) -> None:
    by_ip = {_normal(ip): e for ip, e in expected.items()}
    seen: dict[str, list[str]] = {}
    for event in events:
        ip = _normal(event["src_ip"])
        _, name, org_type, region, source, _ = by_ip[ip]
        org = event["mining"]["org"]
        assert (org["name"], org["type"], org["region"], org["source"]) == (
            name,
            org_type,
            region,
            source,
        ), event["src_ip"]
        assert {"name", "type", "region", "asn", "source"} <= set(org)
        seen.setdefault(ip, []).append(event["event_type"])
    assert {ip: sorted(kinds) for ip, kinds in seen.items()} == {
        ip: ["flow", "mining"] for ip in by_ip
    }


def test_events_name_every_miners_owner(registries):
    _check_events(registries["events"], MINERS)
    by_ip = {_normal(e["src_ip"]): e["mining"]["org"] for e in registries["events"]}
    assert by_ip["10.1.0.2"]["identifiers"] == {"contact": "noc@campus.example"}
    assert by_ip["2001:db8:10::2"]["asn"] == 64500
    assert by_ip["10.9.0.2"]["network"] == "10.9.0.0/16"  # the mapped miner, found as IPv4


def test_ipv4_mapped_miner_keeps_its_address_and_gets_its_ipv4_owner(registries):
    mapped = [e for e in registries["events"] if _normal(e["src_ip"]) == "10.9.0.2"]
    assert {e["src_ip"] for e in mapped} == {"::ffff:10.9.0.2"}
    assert {e["mining"]["org"]["name"] for e in mapped} == {"Xuzhou Hospital"}


def _check_report(report: dict[str, Any], expected: dict[str, Expected]) -> None:
    suspects = {_normal(row["ip"]): row for row in report["suspects"]}
    assert set(suspects) == {_normal(ip) for ip in expected}
    for ip, (_, name, org_type, region, _, home) in expected.items():
        row = suspects[_normal(ip)]
        assert (row["org"], row["org_type"], row["region"], row["home"]) == (
            name,
            org_type,
            region,
            home,
        ), ip
    named = {ip: e for ip, e in expected.items() if e[1] is not None}
    by_org = {row["org"]: row for row in report["by_org"]}
    assert set(by_org) == {e[1] for e in named.values()}
    for ip, (_, name, org_type, region, _, _) in named.items():
        row = by_org[name]
        assert (row["org_type"], row["region"]) == (org_type, region)
        assert ip in row["ips"]
    types: dict[str, int] = {}
    for e in expected.values():
        types[e[2] or "unknown"] = types.get(e[2] or "unknown", 0) + 1
    assert {r["org_type"]: r["suspect_ips"] for r in report["by_org_type"]} == types
    regions: dict[str | None, int] = {}
    for e in expected.values():
        regions[e[3]] = regions.get(e[3], 0) + 1
    assert {r["region"]: r["suspect_ips"] for r in report["by_region"]} == regions


def test_report_splits_by_org_type_region_and_org(registries):
    report = registries["report"]
    _check_report(report, MINERS)
    assert report["totals"]["suspect_ips"] == len(MINERS)
    pools = report["pools"]
    assert pools and all(row["asn"] is None and row["country"] is None for row in pools)


def test_maxmind_fills_in_and_the_registry_outranks_it(maxmind):
    expected = {**MINERS, **WITH_MAXMIND}
    _check_events(maxmind["events"], expected)
    _check_report(maxmind["report"], expected)
    org = next(e for e in maxmind["events"] if e["src_ip"] == "214.78.0.1")["mining"]["org"]
    assert (org["asn"], org["country"]) == (5972, "US")
    pools = {row["endpoint"]: row for row in maxmind["report"]["pools"]}
    assert (pools["89.160.20.115:3333"]["asn"], pools["89.160.20.115:3333"]["country"]) == (
        29518,
        "SE",
    )


def test_summary_counts_miners_by_org_type(inputs, tmp_path, capsys):
    args = ["replay", str(inputs["miners.pcap"]), "--ownership", str(inputs["owners.csv"])]
    assert main([*args, "--no-prefilter"]) == 0
    out = capsys.readouterr().out
    # 10.1, 2001:db8:10, 10.9, 198.19 and 214.78.0 are in the registry; 198.18 is not given
    assert "miner IPs by org type: unknown 4, education 3, enterprise 1, government 1" in out
    assert "(at 5 organisations)" in out
    assert "[Nanjing Campus, education]" in out
    assert main(["replay", str(inputs["miners.pcap"]), "--no-prefilter"]) == 0
    assert "by org type" not in capsys.readouterr().out  # no attribution, no line


def _bad_mmdb(kind: str, folder: Path) -> Path:
    if kind == "broken-pointers":  # MaxMind's own corrupt test file
        path = MMDB_DIR / "test-data" / "MaxMind-DB-test-broken-pointers-24.mmdb"
        if not path.exists():
            pytest.skip(f"{path} not present (MaxMind test data lives in ../shared/mmdb)")
        return path
    (folder / "registry.csv").write_text(REGISTRY, encoding="utf-8")
    path = folder / "truncated.mmdb"
    build_mmdb([folder / "registry.csv"], path, build_epoch=1_700_000_000)
    path.write_bytes(path.read_bytes()[:-40])  # cut into the metadata
    return path


@pytest.mark.parametrize("kind", ["broken-pointers", "truncated"])
def test_a_corrupt_mmdb_stops_replay_before_any_capture_is_read(inputs, tmp_path, capsys, kind):
    bad = _bad_mmdb(kind, tmp_path)
    events = tmp_path / "events.json"
    args = ["replay", str(inputs["miners.pcap"]), "--events", str(events)]
    assert main([*args, "--ownership", str(inputs["owners.csv"]), "--ownership", str(bad)]) == 2
    captured = capsys.readouterr()
    assert f"{bad}: " in captured.err and "MaxMind DB file" in captured.err
    assert str(inputs["owners.csv"]) not in captured.err  # only the bad file is named
    assert captured.out == "" and not events.exists()  # no summary, no events: nothing read


def test_a_bad_registry_line_is_named_and_stops_replay(inputs, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("network,org,org_type,region\n10.0.0.0/8,X,college,Y\n", encoding="utf-8")
    assert main(["replay", str(inputs["miners.pcap"]), "--ownership", str(bad)]) == 2
    captured = capsys.readouterr()
    assert f"{bad}:2: unknown org_type 'college'" in captured.err
    assert captured.out == ""


def test_a_bad_home_net_is_bad_usage(inputs, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["replay", str(inputs["miners.pcap"]), "--home-net", "10.1.2.3/8"])
    assert exc.value.code == 2
    assert "--home-net" in capsys.readouterr().err
