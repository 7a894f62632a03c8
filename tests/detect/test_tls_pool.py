"""The `tls` dialect: pool SNI in a ClientHello, web ports, browser miners, server hellos.

Hellos come from the traffic factory; pool endpoints are made up here under
reserved names, so the expectations do not follow the shipped pool lists.
"""

from __future__ import annotations

import pytest

from sensor.detect.base import BinaryChunk, JsonMessage
from sensor.detect.tls_pool import WEB_PORTS, TlsPoolDetector
from sensor.model import Side
from sensor.rules.model import CoinHints, PoolEndpoint
from sensor.rules.pools import PoolIndex
from tests.factory import client_hello, server_hello

POOLS = PoolIndex(
    [
        PoolEndpoint("test.pool.examplepool", "ExamplePool", domains=("examplepool.org",)),
        PoolEndpoint(
            "test.browser.webminer",
            "WebMiner",
            domains=("webminer.example",),
            coin="xmr",
            kind="browser",
        ),
    ]
)


def detector(coins: CoinHints, port: int) -> TlsPoolDetector:
    return TlsPoolDetector(POOLS, coins, port)


def hello(sni: str, side: Side = Side.ORIG, ts: float = 1.0) -> BinaryChunk:
    return BinaryChunk(side, ts, client_hello(sni))


def answer(side: Side = Side.RESP) -> BinaryChunk:
    return BinaryChunk(side, 1.1, server_hello("pool"))


@pytest.mark.parametrize("port", [3333, 4443, 14433, 5555])
def test_any_pool_name_matches_off_the_web_ports(coins: CoinHints, port: int) -> None:
    det = detector(coins, port)
    det.feed(hello("www.examplepool.org"))
    found = det.finding()
    assert found is not None and not det.declined
    assert (found.dialect, found.confidence, found.miner_side) == ("tls", "suspected", Side.ORIG)
    assert found.rule_id == "test.pool.examplepool" and found.host == "www.examplepool.org"
    assert found.evidence == ["tls.sni"] and found.coin is None


def test_server_hello_from_the_other_side_confirms(coins: CoinHints) -> None:
    det = detector(coins, 3333)
    det.feed(hello("xmr-eu1.examplepool.org"))
    det.feed(answer(Side.ORIG))  # from the client's own side: not an answer
    before = det.finding()
    assert before is not None and before.confidence == "suspected"
    det.feed(answer(Side.RESP))
    found = det.finding()
    assert found is not None and found.confirmed
    assert found.evidence == ["tls.sni", "tls.server_hello"]
    assert (found.coin, found.algorithm) == ("xmr", "randomx")  # from the host name


def test_the_hello_sender_is_the_miner(coins: CoinHints) -> None:
    det = detector(coins, 3333)
    det.feed(hello("stratum.examplepool.org", side=Side.RESP))
    det.feed(answer(Side.ORIG))
    found = det.finding()
    assert found is not None and found.miner_side is Side.RESP and found.confirmed


@pytest.mark.parametrize("port", sorted(WEB_PORTS))
def test_pool_web_site_on_web_ports_is_not_mining(coins: CoinHints, port: int) -> None:
    for sni in ("examplepool.org", "www.examplepool.org", "api.examplepool.org"):
        det = detector(coins, port)
        det.feed(hello(sni))
        assert det.declined and det.finding() is None, sni


@pytest.mark.parametrize(
    "sni",
    [
        "stratum.examplepool.org",
        "eu-stratum2.examplepool.org",
        "mine.examplepool.org",
        "xmr.examplepool.org",
        "eth-asia.examplepool.org",
    ],
)
def test_stratum_and_coin_names_match_on_443(coins: CoinHints, sni: str) -> None:
    det = detector(coins, 443)
    det.feed(hello(sni))
    found = det.finding()
    assert found is not None and found.host == sni and found.rule_id == "test.pool.examplepool"


def test_browser_miner_matches_on_443(coins: CoinHints) -> None:
    det = detector(coins, 443)
    det.feed(hello("ws3.webminer.example"))
    det.feed(answer())
    found = det.finding()
    assert found is not None and found.confirmed
    assert (found.rule_id, found.coin, found.host) == (
        "test.browser.webminer",
        "xmr",
        "ws3.webminer.example",
    )


@pytest.mark.parametrize(
    "first",
    [
        hello("www.example.com"),  # not a pool
        BinaryChunk(Side.ORIG, 1.0, b"SSH-2.0-OpenSSH_9.6\r\n"),  # not TLS
        BinaryChunk(Side.ORIG, 1.0, client_hello("examplepool.org")[:40]),  # cut before the SNI
        JsonMessage(Side.ORIG, 1.0, {"id": 1, "method": "login"}),  # not binary at all
    ],
)
def test_anything_else_declines(coins: CoinHints, first: BinaryChunk | JsonMessage) -> None:
    det = detector(coins, 3333)
    det.feed(first)
    assert det.declined and det.finding() is None


def test_other_messages_after_a_match_change_nothing(coins: CoinHints) -> None:
    det = detector(coins, 3333)
    det.feed(hello("examplepool.org"))
    det.feed(JsonMessage(Side.RESP, 2.0, {"id": 1}))
    assert not det.declined and det.finding() is not None
