"""`minewatch ownership build` and `minewatch ownership lookup` as users run them."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import maxminddb
import pytest

from sensor.cli import main

ENTERPRISE = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "mmdb"
    / "test-data"
    / "GeoIP2-Enterprise-Test.mmdb"
)

CSV = """network,org,org_type,region,asn,country,licence
10.1.0.0/16,Nanjing Campus,education,Jiangsu/Nanjing,AS4538,CN,EDU-0042
10.2.0.0/16,Suzhou Bureau,government,Jiangsu/Suzhou,,,
2001:db8:10::/48,Xuzhou Hospital,enterprise,Jiangsu/Xuzhou,64500,CN,
198.18.0.0/15,Wuxi Data Centre,hosting,,,,
"""
YAML = """- network: 10.2.0.0/16
  org: Bureau Again
  org_type: government
  region: Elsewhere
- network: 198.18.4.0/24
  org: Tenant Lab
  org_type: education
  region: Jiangsu/Wuxi
- network: 2001:db8:20::/48
  org: Changzhou Plant
  org_type: other
  region: Jiangsu/Changzhou
"""
# What each prefix must hold, written out by hand from the two files above (the
# YAML's 10.2.0.0/16 repeats the CSV's: the first listing is kept).
EXPECTED: dict[str, dict[str, Any]] = {
    "10.1.0.0/16": {
        "org": "Nanjing Campus",
        "org_type": "education",
        "region": "Jiangsu/Nanjing",
        "asn": 4538,
        "country": "CN",
        "identifiers": {"licence": "EDU-0042"},
    },
    "10.2.0.0/16": {"org": "Suzhou Bureau", "org_type": "government", "region": "Jiangsu/Suzhou"},
    "2001:db8:10::/48": {
        "org": "Xuzhou Hospital",
        "org_type": "enterprise",
        "region": "Jiangsu/Xuzhou",
        "asn": 64500,
        "country": "CN",
    },
    "198.18.0.0/15": {"org": "Wuxi Data Centre", "org_type": "hosting"},
    "198.18.4.0/24": {"org": "Tenant Lab", "org_type": "education", "region": "Jiangsu/Wuxi"},
    "2001:db8:20::/48": {
        "org": "Changzhou Plant",
        "org_type": "other",
        "region": "Jiangsu/Changzhou",
    },
}
DOD = ("US Department of Defense", "military", 5972)  # 214.78.0.0/23 in MaxMind's test data
NESTING = {"198.18.0.0/15"}  # 198.18.4.0/24 is carved out of it


@pytest.fixture
def registries(tmp_path: Path) -> tuple[Path, Path]:
    csv, yaml = tmp_path / "owners.csv", tmp_path / "more.yaml"
    csv.write_text(CSV, encoding="utf-8")
    yaml.write_text(YAML, encoding="utf-8")
    return csv, yaml


def test_build_writes_every_prefix_and_reports_the_overlaps(registries, tmp_path, capsys):
    csv, yaml = registries
    out = tmp_path / "owners.mmdb"
    assert main(["ownership", "build", str(csv), str(yaml), "-o", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"wrote {out}: 6 networks (4 IPv4, 2 IPv6), 7 owners, ")
    assert lines[0].endswith("from 2 registry file(s)")
    assert lines[1] == "2 overlapping prefixes (1 listed twice, 1 nested):"
    assert sorted(lines[2:]) == [
        f"  {yaml}:1: 10.2.0.0/16 is already listed at {csv}:3; the first listing is kept",
        f"  {yaml}:5: 198.18.4.0/24 lies inside 198.18.0.0/15 ({csv}:5); the longer prefix wins",
    ]
    with maxminddb.open_database(str(out)) as reader:
        assert reader.metadata().database_type == "minewatch-ownership"
        for network, owner in EXPECTED.items():
            _check_prefix(reader, ipaddress.ip_network(network), owner)


def _check_prefix(reader: maxminddb.Reader, network: Any, owner: dict[str, Any]) -> None:
    """The prefix's first and last address answer with its line, and only with it."""
    for address in (network.network_address + 1, network.broadcast_address):
        record, length = reader.get_with_prefix_len(str(address))
        assert record == {"network": str(network), "owner": owner}, address
        if str(network) not in NESTING:  # the outer prefix is split by its carve-out
            assert length == network.prefixlen
        if network.version == 4:  # IPv4-mapped IPv6 is the same address
            assert reader.get(f"::ffff:{address}") == record
    outside = network.broadcast_address + 1
    assert reader.get(str(outside)) != {"network": str(network), "owner": owner}


def test_build_json_report(registries, tmp_path, capsys):
    out = tmp_path / "owners.mmdb"
    assert main(["ownership", "build", *map(str, registries), "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["networks"], report["ipv4"], report["ipv6"]) == (6, 4, 2)
    assert report["path"] == str(out) and report["file_bytes"] == out.stat().st_size
    assert len(report["overlaps"]) == 2


def test_build_names_every_bad_line_and_writes_nothing(registries, tmp_path, capsys):
    csv, _ = registries
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "network,org,org_type,region\n10.0.0.0/33,X,education,\n10.5.0.0/16,Y,college,\n",
        encoding="utf-8",
    )
    out = tmp_path / "owners.mmdb"
    assert main(["ownership", "build", str(csv), str(bad), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: bad network '10.0.0.0/33'" in err
    assert f"{bad}:3: unknown org_type 'college'" in err
    assert str(csv) not in err and not out.exists()


def test_lookup_prints_a_table(registries, tmp_path, capsys):
    csv, yaml = registries
    ips = ["10.1.2.3", "2001:db8:20::1", "::ffff:198.18.4.9", "192.0.2.1"]
    args = ["ownership", "lookup", *ips, "--ownership", str(csv), "--ownership", str(yaml)]
    assert main(args) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == [
        "ip",
        "org",
        "org_type",
        "region",
        "country",
        "asn",
        "network",
        "source",
    ]
    assert [row.split("  ")[0].strip() for row in rows] == ips
    assert "Nanjing Campus" in rows[0] and "education" in rows[0] and "4538" in rows[0]
    assert "Changzhou Plant" in rows[1] and "registry:more.yaml" in rows[1]
    assert "Tenant Lab" in rows[2] and "198.18.4.0/24" in rows[2]  # mapped -> its IPv4 owner
    assert rows[3].split() == ["192.0.2.1", *["-"] * 7]  # nobody knows it
    columns = header.index("org_type"), header.index("region")
    assert rows[0][columns[0] : columns[1]].strip() == "education"  # aligned columns


def test_lookup_json_rows_and_a_bad_address(registries, capsys):
    csv, _ = registries
    args = ["ownership", "lookup", "10.2.0.1", "10.2.0.300", "--ownership", str(csv), "--json"]
    assert main(args) == 2  # every row is printed, then the bad input counts
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert [row["ip"] for row in rows] == ["10.2.0.1", "10.2.0.300"]
    assert rows[0]["org"] == "Suzhou Bureau" and rows[0]["network"] == "10.2.0.0/16"
    assert rows[0]["error"] is None and rows[0]["source"] == "registry:owners.csv"
    assert rows[1]["error"] == "not an IP address" and rows[1]["org"] is None
    assert "'10.2.0.300': not an IP address" in captured.err


def test_lookup_with_maxmind_below_the_registry(registries, capsys):
    if not ENTERPRISE.exists():
        pytest.skip(f"{ENTERPRISE} not present (MaxMind test data lives in ../shared/mmdb)")
    csv, _ = registries
    args = ["ownership", "lookup", "214.78.1.1", "10.1.0.1", "--json"]
    assert main([*args, "--ownership", str(ENTERPRISE), "--ownership", str(csv)]) == 0
    dod, campus = json.loads(capsys.readouterr().out)
    assert (dod["org"], dod["org_type"], dod["asn"]) == DOD
    assert campus["org"] == "Nanjing Campus" and campus["source"] == "registry:owners.csv"


def test_lookup_without_ownership_files_says_so(capsys):
    assert main(["ownership", "lookup", "10.0.0.1", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)[0]["org"] is None
    assert "no --ownership files" in captured.err


def test_lookup_with_a_missing_file_exits_2_naming_it(tmp_path, capsys):
    missing = tmp_path / "absent.mmdb"
    assert main(["ownership", "lookup", "10.0.0.1", "--ownership", str(missing)]) == 2
    assert f"{missing}: no such file" in capsys.readouterr().err
