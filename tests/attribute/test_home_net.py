from __future__ import annotations

from pathlib import Path

import pytest

from sensor.attribute.home_net import DEFAULT_HOME_NETS, HomeNet
from sensor.attribute.resolver import OwnershipResolver


@pytest.mark.parametrize(
    "ip",
    [
        "10.1.2.3",
        "172.31.255.255",
        "192.168.0.1",
        "100.64.0.1",
        "100.127.255.254",
        "fd00::1",
        "fc00::1",
        "::ffff:192.168.1.1",
    ],
)
def test_defaults_are_home(ip: str) -> None:
    assert HomeNet().contains(ip)


@pytest.mark.parametrize(
    "ip", ["8.8.8.8", "172.32.0.1", "100.128.0.1", "2001:db8::1", "fe80::1", "not-an-ip", ""]
)
def test_elsewhere_is_not_home(ip: str) -> None:
    assert not HomeNet().contains(ip)


def test_extra_cidrs_and_no_defaults() -> None:
    home = HomeNet(["203.0.113.0/24", "2001:db8:1::/48"], defaults=False)
    assert "203.0.113.9" in home and home.contains("2001:db8:1::5")
    assert not home.contains("10.0.0.1")
    assert [str(n) for n in HomeNet().networks] == list(DEFAULT_HOME_NETS)


def test_bad_cidr_is_named() -> None:
    with pytest.raises(ValueError, match=r"bad home network '10\.0\.0\.1/8'"):
        HomeNet(["10.0.0.1/8"])


def test_registry_prefixes_are_home(tmp_path: Path) -> None:
    registry = tmp_path / "owners.csv"
    registry.write_text(
        "network,org,org_type,region\n58.192.0.0/12,Suzhou Government,government,Suzhou\n",
        encoding="utf-8",
    )
    home = HomeNet(registry=OwnershipResolver([registry]))
    assert home.contains("58.192.1.1") and home.contains("::ffff:58.192.1.1")
    assert home.contains("10.0.0.1")
    assert not home.contains("58.208.0.1")
