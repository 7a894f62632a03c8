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


def test_bare_sub_domain_entry_takes_pool_and_coin_from_parents() -> None:
    # Falco lists stratum.antpool.com bare; the hand-checked parent names the pool.
    index = PoolIndex(
        [
            endpoint("known", domains=["antpool.com"], pool="AntPool"),
            endpoint("single", domains=["xmr.antpool.com"], coin="xmr"),
            endpoint("falco", domains=["stratum.antpool.com", "a.b.xmr.antpool.com"]),
        ]
    )
    found = index.match_host("stratum.antpool.com")
    assert (found.id, found.pool, found.coin) == ("falco", "AntPool", None)
    assert found.source == "test" and found.kind == "pool"
    # Each field comes from the nearest parent that has it: coin from xmr.antpool.com,
    # the pool name from antpool.com; the same entry merges differently per name.
    deep = index.match_host("x.a.b.xmr.antpool.com")
    assert (deep.id, deep.pool, deep.coin) == ("falco", "AntPool", "xmr")
    assert index.match_host("xmr.antpool.com").pool == "AntPool"


def test_specific_values_and_kind_are_never_overwritten() -> None:
    parent = endpoint("parent", domains=["example.com"], pool="Parent", coin="btc")
    child = PoolEndpoint(
        "child", pool="Child", domains=("ws.example.com",), coin="xmr", kind="browser"
    )
    index = PoolIndex([parent, child])
    assert index.match_host("ws.example.com") is child  # nothing to fill: the entry itself
    assert index.match_host("example.com") is parent
    named = endpoint("named", domains=["pool.example.com"], pool="Named")
    found = PoolIndex([parent, named]).match_host("pool.example.com")
    assert (found.pool, found.coin) == ("Named", "btc")


def test_without_a_parent_a_bare_entry_stays_bare() -> None:
    bare = endpoint("bare", domains=["stratum.example.org"])
    other = endpoint("other", domains=["example.com"], pool="Other")
    assert PoolIndex([bare, other]).match_host("stratum.example.org") is bare


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
