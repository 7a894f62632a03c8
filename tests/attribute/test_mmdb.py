from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from sensor.attribute.errors import MmdbError
from sensor.attribute.mmdb import MmdbSource, database_kind, open_reader
from sensor.attribute.prefixes import normalize_network
from sensor.attribute.vocabulary import USER_TYPES
from tests.attribute.conftest import load_source

# Files in bad-data that every reader opens and walks without error (they once
# crashed libmaxminddb's metadata or tree code); we refuse them for their type.
READABLE_BAD_DATA = {
    "libmaxminddb-corrupt-search-tree.mmdb",
    "libmaxminddb-empty-array-last-in-metadata.mmdb",
    "libmaxminddb-empty-map-last-in-metadata.mmdb",
    "libmaxminddb-uint64-max-epoch.mmdb",
}


def first_address(network: str) -> str:
    return str(normalize_network(ipaddress.ip_network(network, strict=False)).network_address)


@pytest.mark.parametrize(
    ("database_type", "kind"),
    [
        ("GeoIP2-Enterprise", "enterprise"),
        ("GeoIP2-Precision-Enterprise", "enterprise"),
        ("GeoIP2-Enterprise-Shield", "enterprise"),
        ("GeoIP2-ISP", "isp"),
        ("GeoLite2-ASN", "asn"),
        ("GeoIP2-City", "city"),
        ("GeoLite2-City", "city"),
        ("GeoLite2-Country", "country"),
        ("minewatch-ownership", "registry"),
        ("GeoIP2-Domain", None),
        ("GeoIP2-Anonymous-IP", None),
        ("Test", None),
    ],
)
def test_database_kind(database_type: str, kind: str | None) -> None:
    assert database_kind(database_type) == kind


@pytest.mark.parametrize("name", ["GeoIP2-Enterprise", "GeoIP2-Precision-Enterprise"])
def test_enterprise_user_types_follow_the_source_json(
    test_data: Path, source_data: Path, name: str
) -> None:
    source = MmdbSource(test_data / f"{name}-Test.mmdb")
    assert source.kind == "enterprise"
    checked = set()
    for network, record in load_source(source_data, f"{name}-Test.json"):
        traits = record.get("traits", {})
        if "user_type" not in traits:
            continue
        found = source.lookup(first_address(network))
        assert found is not None
        assert found.type == USER_TYPES[traits["user_type"]], network
        assert found.name == (traits.get("organization") or traits.get("isp")), network
        assert found.asn == traits.get("autonomous_system_number"), network
        checked.add(traits["user_type"])
    assert {"government", "military", "business", "residential", "cellular"} <= checked


def test_enterprise_details(test_data: Path) -> None:
    source = MmdbSource(test_data / "GeoIP2-Enterprise-Test.mmdb")
    military = source.lookup("214.78.0.1")
    assert military is not None
    assert military.as_dict() == {
        "name": "US Department of Defense",
        "type": "military",
        "region": "California/San Diego",
        "asn": 5972,
        "source": "mmdb:GeoIP2-Enterprise-Test.mmdb",
        "country": "US",
        "asn_org": "DNIC-ASBLK-05800-06055",
        "network": "214.78.0.0/23",
        "identifiers": {},
    }
    mapped = source.lookup("::ffff:214.78.0.1")
    assert mapped is not None and mapped.network == "214.78.0.0/23"
    ipv6 = source.lookup("2001:480:10::1")
    assert ipv6 is not None
    assert (ipv6.name, ipv6.type, ipv6.network) == ("DNIC", "military", "2001:480:10::/49")
    traveler = source.lookup("214.214.214.216")
    assert traveler is not None and traveler.type == "other"
    assert source.lookup("192.0.2.1") is None
    assert source.lookup("not an ip") is None


def test_isp_asn_city_country(test_data: Path) -> None:
    isp = MmdbSource(test_data / "GeoIP2-ISP-Test.mmdb").lookup("1.128.0.1")
    assert isp is not None
    assert (isp.name, isp.type, isp.asn, isp.asn_org) == (
        "Telstra Internet",
        None,
        1221,
        "Telstra Pty Ltd",
    )
    asn_db = MmdbSource(test_data / "GeoLite2-ASN-Test.mmdb")
    asn = asn_db.lookup("1.128.0.1")
    assert asn is not None and (asn.name, asn.asn, asn.network) == (None, 1221, "1.128.0.0/11")
    asn6 = asn_db.lookup("2001:1700::1")
    assert asn6 is not None and asn6.asn == 6730
    city = MmdbSource(test_data / "GeoIP2-City-Test.mmdb").lookup("2.125.160.217")
    assert city is not None
    assert (city.region, city.country, city.name) == ("England/Boxford", "GB", None)
    country = MmdbSource(test_data / "GeoLite2-Country-Test.mmdb").lookup("2.125.160.217")
    assert country is not None and (country.country, country.region) == ("GB", None)


def test_locales_choose_names_with_english_fallback(test_data: Path) -> None:
    source = MmdbSource(test_data / "GeoIP2-City-Test.mmdb", locales=("zh-CN",))
    found = source.lookup("214.0.1.1")
    assert found is not None
    assert found.region == "Victoria/墨尔本"  # the subdivision has no zh-CN name


def test_unsupported_and_missing_files(test_data: Path, tmp_path: Path) -> None:
    with pytest.raises(MmdbError) as raised:
        MmdbSource(test_data / "GeoIP2-Domain-Test.mmdb")
    assert "unsupported database type 'GeoIP2-Domain'" in str(raised.value)
    assert raised.value.path == str(test_data / "GeoIP2-Domain-Test.mmdb")
    with pytest.raises(MmdbError, match="no such file"):
        MmdbSource(tmp_path / "absent.mmdb")
    text = tmp_path / "owners.mmdb"
    text.write_text("network,org\n")
    with pytest.raises(MmdbError, match=r"owners\.mmdb: not a valid MaxMind DB file"):
        MmdbSource(text)


def corrupt_files(test_data: Path, bad_data: Path) -> list[Path]:
    files = sorted(bad_data.rglob("*.mmdb")) + sorted(test_data.glob("*-Test-Broken-*.mmdb"))
    files += sorted(test_data.glob("MaxMind-DB-test-broken-*.mmdb"))
    files.append(test_data / "GeoIP2-City-Test-Invalid-Node-Count.mmdb")
    return files


def test_corrupt_files_fail_at_load_naming_the_file(test_data: Path, bad_data: Path) -> None:
    files = corrupt_files(test_data, bad_data)
    assert len(files) >= 25
    for path in files:
        with pytest.raises(MmdbError) as raised:
            MmdbSource(path)
        assert raised.value.path == str(path)
        message = str(raised.value)
        assert message.startswith(f"{path}: ")
        if path.name in READABLE_BAD_DATA:
            assert "unsupported database type 'Test'" in message
        else:
            assert "corrupt MaxMind DB file" in message or "not a valid MaxMind DB" in message


def test_verification_is_what_catches_corrupt_data(test_data: Path) -> None:
    broken = test_data / "GeoIP2-City-Test-Broken-Double-Format.mmdb"
    with pytest.raises(MmdbError, match="corrupt MaxMind DB file"):
        open_reader(broken, verify="sample")
    # Unverified, the file opens; a lookup that meets a broken record answers
    # None and is counted instead of raising mid-run.
    source = MmdbSource(broken, verify="none")
    assert source.lookup("2.125.160.216") is None
    assert source.lookup("81.2.69.160") is None
    assert source.errors == 2
