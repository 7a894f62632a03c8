from __future__ import annotations

from pathlib import Path

import pytest

from sensor.attribute import Attributor, NullAttributor
from sensor.attribute.build import build_mmdb
from sensor.attribute.errors import OwnershipError
from sensor.attribute.resolver import LOOKUP_COLUMNS, OwnershipResolver, lookup_table, merge
from sensor.model import Attribution

REGISTRY = """network,org,org_type,region,contact
214.78.0.0/24,Air Base Computer Club,education,California/San Diego,club@example.org
89.160.20.112/28,Linkoping Office,,Ostergotland,
10.0.0.0/8,Campus,education,Jiangsu/Nanjing,
"""


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    path = tmp_path / "owners.csv"
    path.write_text(REGISTRY, encoding="utf-8")
    return path


def test_registry_outranks_mmdb_whatever_the_order(registry: Path, test_data: Path) -> None:
    resolver = OwnershipResolver([test_data / "GeoIP2-Enterprise-Test.mmdb", registry])
    found = resolver.lookup("214.78.0.1")  # the mmdb says: US Department of Defense, military
    assert found.as_dict() == {
        "name": "Air Base Computer Club",
        "type": "education",
        "region": "California/San Diego",
        "asn": 5972,  # filled in from the mmdb, which the registry line lacks
        "source": "registry:owners.csv+mmdb:GeoIP2-Enterprise-Test.mmdb",
        "country": "US",
        "asn_org": "DNIC-ASBLK-05800-06055",
        "network": "214.78.0.0/24",
        "identifiers": {"contact": "club@example.org"},
    }
    # Outside the registry line the mmdb answers alone.
    outside = resolver.lookup("214.78.1.1")
    assert (outside.name, outside.type, outside.source) == (
        "US Department of Defense",
        "military",
        "mmdb:GeoIP2-Enterprise-Test.mmdb",
    )


def test_registry_unknown_type_yields_to_a_known_one(registry: Path, test_data: Path) -> None:
    resolver = OwnershipResolver([registry, test_data / "GeoIP2-Enterprise-Test.mmdb"])
    found = resolver.lookup("89.160.20.113")
    assert (found.name, found.type, found.region) == (
        "Linkoping Office",
        "government",
        "Ostergotland",
    )
    alone = OwnershipResolver([registry]).lookup("89.160.20.113")
    assert alone.type == "unknown"


def test_asn_and_city_databases_combine(test_data: Path) -> None:
    resolver = OwnershipResolver(
        [test_data / "GeoLite2-ASN-Test.mmdb", test_data / "GeoIP2-City-Test.mmdb"]
    )
    found = resolver.lookup("89.160.20.113")
    assert (found.name, found.type, found.region, found.country, found.asn) == (
        None,
        None,
        "Östergötland County/Linköping",
        "SE",
        29518,
    )
    assert found.source == "mmdb:GeoLite2-ASN-Test.mmdb+mmdb:GeoIP2-City-Test.mmdb"
    assert found.network == "89.160.0.0/17"  # from the first source that knew the address
    assert resolver.pool_info("89.160.20.113") == (29518, "SE")
    assert resolver.pool_info("2001:1700::1") == (6730, None)
    assert resolver.pool_info("::ffff:216.160.83.57") == (209, "US")
    assert resolver.pool_info("192.0.2.1") == (None, None)


def test_compiled_registry_outranks_maxmind(
    registry: Path, test_data: Path, tmp_path: Path
) -> None:
    compiled = tmp_path / "owners.mmdb"
    build_mmdb([registry], compiled, build_epoch=1_700_000_000)
    resolver = OwnershipResolver([test_data / "GeoIP2-Enterprise-Test.mmdb", compiled])
    found = resolver.lookup("::ffff:214.78.0.1")
    assert (found.name, found.type, found.asn) == ("Air Base Computer Club", "education", 5972)
    assert found.source == "mmdb:owners.mmdb+mmdb:GeoIP2-Enterprise-Test.mmdb"
    assert resolver.covers("10.1.1.1") and not resolver.covers("214.78.1.1")


def test_unknown_and_invalid_addresses(registry: Path) -> None:
    resolver = OwnershipResolver([registry])
    assert resolver.lookup("192.0.2.1") == Attribution()
    assert resolver.lookup("not-an-ip") == Attribution()
    assert resolver.lookup("::ffff:10.2.3.4").name == "Campus"
    assert resolver.covers("10.2.3.4") and not resolver.covers("junk")
    assert sorted(str(n) for n in resolver.networks()) == [
        "10.0.0.0/8",
        "214.78.0.0/24",
        "89.160.20.112/28",
    ]


def test_answers_are_cached_and_the_cache_is_bounded(registry: Path) -> None:
    resolver = OwnershipResolver([registry], cache_size=2)
    first = resolver.lookup("10.0.0.1")
    assert resolver.lookup("10.0.0.1") is first
    for i in range(5):
        resolver.lookup(f"10.0.0.{i + 2}")
    info = resolver.cache_info()
    assert (info.hits, info.currsize, info.maxsize) == (1, 2, 2)


def test_every_bad_file_is_reported(registry: Path, test_data: Path, tmp_path: Path) -> None:
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("network,org,org_type,region\nnope,X,education,\n", encoding="utf-8")
    broken = test_data / "MaxMind-DB-test-broken-pointers-24.mmdb"
    odd = tmp_path / "owners.json"
    with pytest.raises(OwnershipError) as raised:
        OwnershipResolver([registry, bad_csv, broken, odd, tmp_path / "absent.mmdb"])
    assert raised.value.paths == [
        str(bad_csv),
        str(broken),
        str(odd),
        str(tmp_path / "absent.mmdb"),
    ]
    lines = str(raised.value).splitlines()
    assert lines[0].startswith(f"{bad_csv}:2: bad network 'nope'")
    assert lines[1].startswith(f"{broken}: corrupt MaxMind DB file")
    assert lines[2] == f"{odd}: unknown ownership file type (expected .csv, .yaml, .yml or .mmdb)"
    assert lines[3] == f"{tmp_path / 'absent.mmdb'}: no such file"


def test_merge_takes_each_field_from_the_first_that_has_it() -> None:
    registry = Attribution(name="Campus", type="unknown", source="registry:a.csv", network="10/8")
    isp = Attribution(name="ISP", type=None, asn=4134, source="mmdb:isp.mmdb")
    enterprise = Attribution(type="education", region="Nanjing", source="mmdb:ent.mmdb")
    city = Attribution(region="Elsewhere", country="CN", source="mmdb:city.mmdb")
    merged = merge([registry, isp, enterprise, city])
    assert (merged.name, merged.type, merged.region, merged.asn, merged.country) == (
        "Campus",
        "education",
        "Nanjing",
        4134,
        "CN",
    )
    assert merged.source == "registry:a.csv+mmdb:isp.mmdb+mmdb:ent.mmdb+mmdb:city.mmdb"
    assert merge([]) == Attribution()
    assert merge([city]) is city


def test_lookup_table_rows(registry: Path, test_data: Path) -> None:
    resolver = OwnershipResolver([registry, test_data / "GeoLite2-ASN-Test.mmdb"])
    rows = lookup_table(resolver, ["10.0.0.1", " 1.128.0.1\n", "999.1.1.1"])
    assert all(tuple(row) == LOOKUP_COLUMNS for row in rows)
    assert rows[0]["org"] == "Campus" and rows[0]["org_type"] == "education"
    assert rows[0]["source"] == "registry:owners.csv" and rows[0]["error"] is None
    assert (rows[1]["ip"], rows[1]["asn"], rows[1]["asn_org"]) == (
        "1.128.0.1",
        1221,
        "Telstra Pty Ltd",
    )
    assert rows[2]["error"] == "not an IP address" and rows[2]["org"] is None


def test_resolver_is_an_attributor(registry: Path) -> None:
    attributors: list[Attributor] = [OwnershipResolver([registry]), NullAttributor()]
    assert [a.lookup("10.0.0.1").name for a in attributors] == ["Campus", None]
