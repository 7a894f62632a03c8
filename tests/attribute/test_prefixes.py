from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from sensor.attribute.prefixes import (
    PrefixIndex,
    address_key,
    canonical_ip,
    normalize_network,
)


def net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text)


def test_address_key_folds_embedded_ipv4() -> None:
    assert address_key("10.1.2.3") == (4, 0x0A010203)
    assert address_key("::ffff:10.1.2.3") == (4, 0x0A010203)
    assert address_key("::10.1.2.3") == (4, 0x0A010203)
    assert address_key("2001:db8::1") == (6, 0x20010DB8 << 96 | 1)


def test_address_key_refuses_what_is_not_an_address() -> None:
    for text in ("", "10.1.2", "10.1.2.256", "example.com", "fe80::1%eth0", "1.2.3.4/32"):
        assert address_key(text) is None


def test_canonical_ip() -> None:
    assert canonical_ip("::FFFF:1.2.3.4") == "1.2.3.4"
    assert canonical_ip("2001:db8::1") == "2001:db8::1"
    assert canonical_ip("nope") is None


def test_normalize_network() -> None:
    assert normalize_network(net("::ffff:1.2.3.0/120")) == net("1.2.3.0/24")
    assert normalize_network(net("::1.2.0.0/112")) == net("1.2.0.0/16")
    assert normalize_network(net("::ffff:0:0/96")) == net("0.0.0.0/0")
    assert normalize_network(net("2001:db8::/32")) == net("2001:db8::/32")
    assert normalize_network(net("::/64")) == net("::/64")  # wider than the IPv4 subtree


def test_longest_prefix_wins() -> None:
    index: PrefixIndex[str] = PrefixIndex()
    index.add(net("10.0.0.0/8"), "wide")
    index.add(net("10.1.0.0/16"), "narrow")
    index.add(net("10.1.2.3/32"), "host")
    assert index.lookup("10.9.9.9") == "wide"
    assert index.lookup("10.1.9.9") == "narrow"
    assert index.lookup("10.1.2.3") == "host"
    assert index.lookup("11.0.0.1") is None
    assert index.lookup("junk") is None
    assert len(index) == 3


def test_first_value_stays_for_a_repeated_prefix() -> None:
    index: PrefixIndex[str] = PrefixIndex()
    assert index.add(net("10.0.0.0/8"), "first") is None
    assert index.add(net("10.0.0.0/8"), "second") == "first"
    assert index.lookup("10.0.0.1") == "first"
    assert len(index) == 1


def test_ipv6_and_ipv4_mapped_lookups() -> None:
    index: PrefixIndex[str] = PrefixIndex()
    index.add(net("2001:db8::/32"), "doc")
    index.add(net("2001:db8:1::/48"), "doc-1")
    index.add(net("192.0.2.0/24"), "v4")
    index.add(net("::/0"), "all-v6")
    assert index.lookup("2001:db8:1::5") == "doc-1"
    assert index.lookup("2001:db8:2::5") == "doc"
    assert index.lookup("2001:4860::1") == "all-v6"
    assert index.lookup("::ffff:192.0.2.7") == "v4"
    assert index.lookup("::192.0.2.7") == "v4"
    # IPv4 space is its own: an IPv6 ::/0 does not answer for IPv4 addresses.
    assert index.lookup("198.51.100.1") is None
    assert index.lookup("::ffff:198.51.100.1") is None


def test_mapped_network_is_indexed_as_ipv4() -> None:
    index: PrefixIndex[str] = PrefixIndex()
    index.add(net("::ffff:198.51.100.0/120"), "mapped")
    assert index.lookup("198.51.100.9") == "mapped"
    assert [str(n) for n, _ in index] == ["198.51.100.0/24"]


def test_iteration_gives_back_networks() -> None:
    index: PrefixIndex[int] = PrefixIndex()
    nets = [net("0.0.0.0/0"), net("10.0.0.0/8"), net("2001:db8::/32"), net("::/0")]
    for i, network in enumerate(nets):
        index.add(network, i)
    assert sorted(index, key=lambda p: p[1]) == list(zip(nets, range(4), strict=True))


v4_networks = st.builds(
    lambda addr, length: ipaddress.IPv4Network((addr, length), strict=False),
    st.integers(0, 2**32 - 1).map(lambda a: 0x0A000000 | a & 0xFFFF),  # inside 10.0.0.0/16
    st.integers(8, 32),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(v4_networks, max_size=25), st.lists(st.integers(0, 0xFFFF), max_size=20))
def test_matches_brute_force(networks: list[ipaddress.IPv4Network], probes: list[int]) -> None:
    index: PrefixIndex[ipaddress.IPv4Network] = PrefixIndex()
    for network in networks:
        index.add(network, network)
    addresses = [ipaddress.IPv4Address(0x0A000000 | p) for p in probes]
    addresses += [n.network_address for n in networks] + [n.broadcast_address for n in networks]
    for address in addresses:
        containing = [n for n in networks if address in n]
        expected = max(containing, key=lambda n: n.prefixlen) if containing else None
        assert index.lookup(str(address)) == expected
