from __future__ import annotations

import ipaddress
import tempfile
from pathlib import Path

import maxminddb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensor.attribute.build import build_mmdb, find_overlaps, write_records
from sensor.attribute.errors import RegistryError
from sensor.attribute.prefixes import IPNetwork, normalize_network
from sensor.attribute.registry import RegistryRecord, index_records
from sensor.attribute.resolver import OwnershipResolver

EPOCH = 1_700_000_000

CITY_CSV = """network,org,org_type,region,asn,country,reg_no
10.0.0.0/8,Jiangsu Telecom Campus Net,education,Jiangsu/Nanjing,4134,CN,
10.1.0.0/16,Nanjing University,education,Jiangsu/Nanjing,,,12100000466007
10.1.2.0/24,Physics Lab,education,Jiangsu/Nanjing,,,
10.1.0.0/16,Nanjing University (again),education,Jiangsu/Nanjing,,,
58.192.0.0/12,Suzhou Government,government,Jiangsu/Suzhou,,,
2001:da8:1000::/36,Nanjing University,education,Jiangsu/Nanjing,,,
2001:da8:1000:1::/64,Dorms,residential,Jiangsu/Nanjing,,,
"""

EXTRA_YAML = """\
- network: 10.1.2.128/25
  org: Xuzhou Steel
  org_type: enterprise
  region: Jiangsu/Xuzhou
- network: 58.192.0.0/12
  org: Shadowed
  org_type: other
  region: nowhere
- network: 100.64.0.0/10
  org: Carrier NAT
  org_type: cellular
  region: Jiangsu
"""


@pytest.fixture
def registries(tmp_path: Path) -> list[Path]:
    city = tmp_path / "city.csv"
    city.write_text(CITY_CSV, encoding="utf-8")
    extra = tmp_path / "extra.yaml"
    extra.write_text(EXTRA_YAML, encoding="utf-8")
    return [city, extra]


def test_build_report_counts_and_overlaps(registries: list[Path], tmp_path: Path) -> None:
    report = build_mmdb(registries, tmp_path / "owners.mmdb", build_epoch=EPOCH)
    assert report.files == [str(p) for p in registries]
    assert (report.networks, report.ipv4, report.ipv6) == (8, 6, 2)
    assert report.owners == 10  # distinct owners among the 10 lines
    assert report.file_bytes == (tmp_path / "owners.mmdb").stat().st_size
    city, extra = (str(p) for p in registries)
    assert [str(o) for o in report.overlaps] == [
        f"{city}:3: 10.1.0.0/16 lies inside 10.0.0.0/8 ({city}:2); the longer prefix wins",
        f"{city}:5: 10.1.0.0/16 is already listed at {city}:3; the first listing is kept",
        f"{city}:4: 10.1.2.0/24 lies inside 10.1.0.0/16 ({city}:3); the longer prefix wins",
        f"{extra}:1: 10.1.2.128/25 lies inside 10.1.2.0/24 ({city}:4); the longer prefix wins",
        f"{extra}:5: 58.192.0.0/12 is already listed at {city}:6; the first listing is kept",
        f"{city}:8: 2001:da8:1000:1::/64 lies inside 2001:da8:1000::/36 ({city}:7); "
        "the longer prefix wins",
    ]
    assert len(report.duplicates) == 2 and len(report.nested) == 4
    assert report.as_dict()["overlaps"] == [str(o) for o in report.overlaps]


def probes(network: IPNetwork) -> list[str]:
    """First, last and middle address of a network, IPv4 also written as IPv6 both ways."""
    first, last = int(network.network_address), int(network.broadcast_address)
    addresses = [ipaddress.ip_address(a) for a in (first, last, (first + last) // 2)]
    if network.version == 4:
        return [form for a in addresses for form in (str(a), f"::ffff:{a}", f"::{a}")]
    return [str(a) for a in addresses]


def test_built_file_answers_like_the_registries(registries: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "owners.mmdb"
    build_mmdb(registries, out, build_epoch=EPOCH)
    text = OwnershipResolver(registries)
    built = OwnershipResolver([out])
    addresses = [p for network in text.networks() for p in probes(network)]
    addresses += ["11.0.0.1", "2001:db8::1", "::1", "::ffff:11.0.0.1"]
    for ip in addresses:
        expected, found = text.lookup(ip).as_dict(), built.lookup(ip).as_dict()
        assert expected.pop("source") in ("registry:city.csv", "registry:extra.yaml", None)
        assert found.pop("source") in ("mmdb:owners.mmdb", None)
        assert found == expected, ip
    lab = built.lookup("::ffff:10.1.2.1")
    assert (lab.name, lab.network, lab.asn) == ("Physics Lab", "10.1.2.0/24", None)
    campus = built.lookup("10.9.0.1")
    assert (campus.asn, campus.country, campus.type) == (4134, "CN", "education")
    uni = built.lookup("10.1.0.1")
    assert uni.identifiers == (("reg_no", "12100000466007"),)


def test_bad_registries_stop_the_build(registries: list[Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("network,org,org_type,region\n10.0.0.0/33,X,education,\n", encoding="utf-8")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("- network: 10.0.0.0/8\n  org_type: army\n", encoding="utf-8")
    out = tmp_path / "owners.mmdb"
    with pytest.raises(RegistryError) as raised:
        build_mmdb([*registries, bad, bad_yaml], out, build_epoch=EPOCH)
    assert raised.value.paths == [str(bad), str(bad_yaml)]
    assert [p.line for p in raised.value.problems] == [2, 1]
    assert not out.exists()


def record(network: str, order: int) -> RegistryRecord:
    """A record as the loader makes it (embedded IPv4 folded to IPv4)."""
    folded = normalize_network(ipaddress.ip_network(network))
    return RegistryRecord(folded, f"org{order}", "other", None, line=order)


def test_find_overlaps_pairs_each_prefix_with_its_closest_container() -> None:
    records = [
        record("10.0.0.0/8", 1),
        record("10.1.0.0/16", 2),
        record("10.1.1.0/24", 3),
        record("10.2.0.0/16", 4),
        record("11.0.0.0/8", 5),
        record("10.1.1.0/24", 6),
        record("::/0", 7),
        record("2001:db8::/32", 8),
        record("10.0.0.0/24", 9),
        record("10.0.0.0/16", 10),
    ]
    pairs = [(o.outer.line, o.inner.line, o.duplicate) for o in find_overlaps(records)]
    assert pairs == [
        (1, 10, False),
        (10, 9, False),
        (1, 2, False),
        (2, 3, False),
        (3, 6, True),
        (1, 4, False),
        (7, 8, False),
    ]


# Prefixes crowded into small spaces so that they overlap, plus IPv6 prefixes
# around the IPv4 subtrees (::/0, ::/64, ::fffe:0:0/95) that must not leak into them.
v4 = st.builds(
    lambda a, n: ipaddress.IPv4Network((0x0A000000 | a, n), strict=False),
    st.integers(0, 0xFFFF),
    st.integers(8, 32),
)
v6 = st.builds(
    lambda a, n: ipaddress.IPv6Network((0x20010DB8 << 96 | a << 80, n), strict=False),
    st.integers(0, 0xFFFF),
    st.integers(32, 128),
)
special = st.sampled_from(
    [
        ipaddress.ip_network(n)
        for n in ("::/0", "::/64", "::fffe:0:0/95", "0.0.0.0/0", "::ffff:10.0.0.0/104")
    ]
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(v4, v6, special), min_size=1, max_size=30), st.integers(0, 2**32 - 1))
def test_mmdb_equals_registry_on_every_prefix(networks: list[IPNetwork], seed: int) -> None:
    records = [record(str(n), i) for i, n in enumerate(networks)]
    index = index_records(records)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "random.mmdb"
        write_records(records, out, build_epoch=EPOCH)
        reader = maxminddb.open_database(str(out))
        extra = [
            str(ipaddress.IPv4Address(0x0A000000 | seed & 0xFFFF)),
            str(ipaddress.IPv6Address(0x20010DB8 << 96 | seed << 64 | seed)),
        ]
        for ip in [p for r in records for p in probes(r.network)] + extra:
            expected = index.lookup(ip)
            found = reader.get(ip)
            assert (found or {}).get("network") == (expected and str(expected.network)), ip
        reader.close()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(v4, v6, special), max_size=30))
def test_find_overlaps_matches_brute_force(networks: list[IPNetwork]) -> None:
    records = [record(str(n), i) for i, n in enumerate(networks)]
    expected = set()
    for inner in records:
        containers = [
            outer
            for outer in records
            if outer.network.version == inner.network.version
            and inner.network.subnet_of(outer.network)  # type: ignore[arg-type]
            and (outer.network != inner.network or outer.line < inner.line)
        ]
        if containers:
            closest = max(containers, key=lambda o: (o.network.prefixlen, -o.line))
            expected.add((closest.line, inner.line))
    assert {(o.outer.line, o.inner.line) for o in find_overlaps(records)} == expected
