"""PoolIndex: host suffix matching, longest-prefix address matching, ports."""

from __future__ import annotations

import ipaddress

import pytest

from sensor.rules.model import PoolEndpoint, RuleSet
from sensor.rules.pools import PoolIndex, pool_index


def endpoint(id: str, *, domains=(), networks=(), ports=(), pool=None, coin=None) -> PoolEndpoint:
    return PoolEndpoint(
        id=id,
        pool=pool,
        domains=tuple(domains),
        networks=tuple(ipaddress.ip_network(n) for n in networks),
        ports=tuple(ports),
        coin=coin,
        source="test",
    )


@pytest.fixture
def index() -> PoolIndex:
    return PoolIndex(
        [
            endpoint("nano", domains=["nanopool.org"], pool="Nanopool"),
            endpoint("nano.xmr", domains=["xmr-eu1.nanopool.org"], coin="xmr"),
            endpoint("wide", networks=["10.0.0.0/8"]),
            endpoint("mid", networks=["10.1.0.0/16"], ports=[3333]),
            endpoint("narrow", networks=["10.1.2.0/24"]),
            endpoint("host", networks=["10.1.2.3"], ports=[4444, 5555]),
            endpoint("v6", networks=["2001:db8::/32"]),
            endpoint("v6.host", networks=["2001:db8::1"], ports=[443]),
        ]
    )


def ids(found: PoolEndpoint | None) -> str | None:
    return found.id if found else None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("nanopool.org", "nano"),
        ("eth-eu1.nanopool.org", "nano"),  # parent domain
        ("a.b.c.nanopool.org", "nano"),
        ("xmr-eu1.nanopool.org", "nano.xmr"),  # the most specific entry wins
        ("XMR-EU1.NanoPool.ORG.", "nano.xmr"),  # case and the final dot are ignored
        ("nanopool.org.evil.com", None),
        ("notnanopool.org", None),  # a suffix of the name, not a parent domain
        ("org", None),
        ("", None),
    ],
)
def test_match_host(index: PoolIndex, host: str, expected: str | None) -> None:
    assert ids(index.match_host(host)) == expected


@pytest.mark.parametrize(
    ("ip", "port", "expected"),
    [
        ("10.1.2.3", 4444, "host"),  # exact address, listed port
        ("10.1.2.3", 80, "narrow"),  # port not listed: falls back to the /24
        ("10.1.2.99", 3333, "narrow"),  # longest prefix wins over the /16 with ports
        ("10.1.9.9", 3333, "mid"),
        ("10.1.9.9", 80, "wide"),  # the /16 wants 3333, the /8 takes any port
        ("10.200.0.1", 1, "wide"),
        ("11.0.0.1", 3333, None),
        ("2001:db8::1", 443, "v6.host"),
        ("2001:DB8:0::1", 8443, "v6"),
        ("2001:db9::1", 443, None),
        ("not-an-ip", 1, None),
        ("10.1.2", 1, None),
    ],
)
def test_match_ip(index: PoolIndex, ip: str, port: int, expected: str | None) -> None:
    assert ids(index.match_ip(ip, port)) == expected


def test_same_host_prefers_the_entry_that_says_more() -> None:
    bare = endpoint("imported", domains=["antpool.com"])
    named = endpoint("known", domains=["antpool.com"], pool="AntPool")
    assert ids(PoolIndex([bare, named]).match_host("ss.antpool.com")) == "known"
    assert ids(PoolIndex([named, bare]).match_host("ss.antpool.com")) == "known"
    later = endpoint("user", domains=["antpool.com"], pool="Mine")
    assert ids(PoolIndex([named, later]).match_host("antpool.com")) == "user"


def test_same_network_prefers_entry_with_ports() -> None:
    anyport = endpoint("any", networks=["192.0.2.1"])
    withport = endpoint("port", networks=["192.0.2.1"], ports=[3333])
    index = PoolIndex([anyport, withport])
    assert ids(index.match_ip("192.0.2.1", 3333)) == "port"
    assert ids(index.match_ip("192.0.2.1", 80)) == "any"


def test_pool_index_is_cached_per_rule_set() -> None:
    rules = RuleSet(pools=(endpoint("n", domains=["nanopool.org"]),))
    index = pool_index(rules)
    assert pool_index(rules) is index
    other = RuleSet(pools=())
    assert pool_index(other) is not index
    assert pool_index(other).match_host("nanopool.org") is None
    assert len(index) == 1
