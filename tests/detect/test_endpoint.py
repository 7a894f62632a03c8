"""The `endpoint` dialect: a flow to a known pool address or DNS name, payload both ways."""

from __future__ import annotations

import ipaddress

import pytest

from sensor.detect.dns import HostNames
from sensor.detect.endpoint import endpoint_finding, match_endpoint
from sensor.model import Side
from sensor.rules.model import PoolEndpoint
from sensor.rules.pools import PoolIndex
from tests.factory import dns_answer

POOLS = PoolIndex(
    [
        PoolEndpoint(
            "test.net.etcpool",
            "EtcPool",
            networks=(
                ipaddress.ip_network("203.0.113.0/24"),
                ipaddress.ip_network("2001:db8:e7c::/48"),
            ),
            ports=(8008, 3333),
            coin="etc",
        ),
        PoolEndpoint(
            "test.pool.examplepool", "ExamplePool", domains=("examplepool.org",), coin="xmr"
        ),
        PoolEndpoint("test.browser.webminer", None, domains=("webminer.example",), kind="browser"),
    ]
)
MINER = ("10.1.2.3", 50000)
BOTH = [120, 4000]


def names_from_dns(name: str, addr: str) -> HostNames:
    names = HostNames()
    names.learn(bytes(dns_answer(name, 1, "A", [addr])))
    return names


def test_pool_address_with_payload_both_ways() -> None:
    found = endpoint_finding(POOLS, HostNames(), (MINER, ("203.0.113.9", 3333)), BOTH)
    assert found is not None
    assert (found.dialect, found.confidence, found.miner_side) == (
        "endpoint",
        "suspected",
        Side.ORIG,
    )
    assert (found.rule_id, found.coin, found.host) == ("test.net.etcpool", "etc", None)
    assert found.evidence == ["endpoint.address"]


@pytest.mark.parametrize("payload", [[0, 0], [120, 0], [0, 4000]])
def test_no_finding_without_payload_both_ways(payload: list[int]) -> None:
    # A SYN scan, or a pool that never answered: not mining.
    assert endpoint_finding(POOLS, HostNames(), (MINER, ("203.0.113.9", 3333)), payload) is None


def test_the_pool_may_be_the_originator_side() -> None:
    # The capture saw the pool's packet first: the miner is then the responder.
    found = endpoint_finding(POOLS, HostNames(), (("2001:db8:e7c::10", 8008), MINER), BOTH)
    assert found is not None and found.miner_side is Side.RESP


def test_ports_of_an_entry_are_respected() -> None:
    assert endpoint_finding(POOLS, HostNames(), (MINER, ("203.0.113.9", 443)), BOTH) is None
    assert endpoint_finding(POOLS, HostNames(), (MINER, ("198.51.100.9", 3333)), BOTH) is None


def test_dns_name_of_a_pool() -> None:
    names = names_from_dns("xmr-eu1.examplepool.org", "198.51.100.7")
    found = endpoint_finding(POOLS, names, (MINER, ("198.51.100.7", 14444)), BOTH)
    assert found is not None and found.miner_side is Side.ORIG
    assert (found.rule_id, found.coin, found.host) == (
        "test.pool.examplepool",
        "xmr",
        "xmr-eu1.examplepool.org",
    )
    assert found.evidence == ["endpoint.dns"]


def test_pool_web_site_on_443_is_not_matched_by_name() -> None:
    names = names_from_dns("www.examplepool.org", "198.51.100.7")
    assert endpoint_finding(POOLS, names, (MINER, ("198.51.100.7", 443)), BOTH) is None
    assert match_endpoint(POOLS, names, "198.51.100.7", 80) is None


def test_browser_miner_on_443_is_matched_by_name() -> None:
    names = HostNames()
    names.remember("198.51.100.8", "ws.webminer.example")
    found = endpoint_finding(POOLS, names, (MINER, ("198.51.100.8", 443)), BOTH)
    assert found is not None and found.rule_id == "test.browser.webminer" and found.coin is None


def test_address_match_keeps_the_dns_name_but_says_how_it_matched() -> None:
    # The pool's address is listed; DNS named it with a name no rule lists.
    names = names_from_dns("node7.hosting.example", "203.0.113.40")
    entry_host = match_endpoint(POOLS, names, "203.0.113.40", 3333)
    assert entry_host is not None
    entry, host = entry_host
    assert entry.id == "test.net.etcpool" and host == "node7.hosting.example"
    found = endpoint_finding(POOLS, names, (MINER, ("203.0.113.40", 3333)), BOTH)
    assert found is not None and found.host == "node7.hosting.example"
    assert found.evidence == ["endpoint.address"]


def test_unknown_addresses_are_not_matched() -> None:
    assert match_endpoint(POOLS, HostNames(), "192.0.2.1", 3333) is None
    assert match_endpoint(POOLS, HostNames(), "not-an-address", 3333) is None


def test_an_any_port_pool_address_on_a_web_port_is_not_an_endpoint_finding() -> None:
    import ipaddress

    from sensor.detect.dns import HostNames
    from sensor.detect.endpoint import endpoint_finding
    from sensor.rules.model import PoolEndpoint
    from sensor.rules.pools import PoolIndex

    listed = PoolEndpoint("t.any", "Pool", networks=(ipaddress.ip_network("192.0.2.9/32"),))
    pools, names = PoolIndex([listed]), HostNames()
    miner, web, stratum = ("10.0.0.1", 50000), ("192.0.2.9", 443), ("192.0.2.9", 3333)
    assert endpoint_finding(pools, names, (miner, web), [100, 100]) is None
    found = endpoint_finding(pools, names, (miner, stratum), [100, 100])
    assert found is not None and found.dialect == "endpoint"
