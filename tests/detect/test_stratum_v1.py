"""Stratum v1 detector: sessions crafted from the public stratum specs, look-alikes, captures.

Sessions are lists of (who, line): "M" lines come from the miner, "P" lines from the pool.
`feed` (tests/detect/stratum_helpers.py) maps the miner to Side.ORIG unless told otherwise,
so that the tests also cover captures where the pool's side is the one that sent the first
packet.
"""

from __future__ import annotations

import pytest

from sensor.detect.base import BinaryChunk, HttpMessage, JsonMessage
from sensor.detect.ethereum_stratum import EthereumStratumDetector
from sensor.detect.stratum_shapes import BDIFF1_TARGET, target_to_difficulty
from sensor.detect.stratum_v1 import StratumV1Detector
from sensor.model import Confidence, Side
from tests.detect.stratum_helpers import (
    BTC_NOTIFY,
    BTC_SESSION,
    BTC_WALLET,
    ERG_WALLET,
    ERGO_NOTIFY,
    HASH,
    HASH2,
    KAS_SESSION,
    KAS_WALLET,
    LOOKALIKES,
    LTC_WALLET,
    RVN_WALLET,
    ZEC_HOST,
    ZEC_NOTIFY,
    ZEC_SUBSCRIBE,
    ZEC_WALLET,
    err,
    feed,
    kadena_sessions,
    note,
    ok,
    reformat,
    req,
)


@pytest.fixture
def run(dialect_rules, coins):
    def _run(session, detector_cls=StratumV1Detector, miner=Side.ORIG):
        return feed(session, detector_cls, dialect_rules, coins, miner)

    return _run


def test_full_bitcoin_session(run):
    finding = run(BTC_SESSION).finding()
    assert finding is not None
    assert finding.dialect == "stratum-v1"
    assert finding.rule_id == "minewatch.dialect.stratum-v1"
    assert finding.confidence == Confidence.CONFIRMED
    assert finding.miner_side is Side.ORIG
    assert finding.evidence == [
        "mining.subscribe",
        "mining.authorize",
        "mining.set_difficulty",
        "mining.notify",
        "mining.submit",
    ]
    assert finding.login == BTC_WALLET + ".rig7"
    assert (finding.wallet, finding.worker) == (BTC_WALLET, "rig7")
    assert finding.agent == "cgminer/4.10.0"
    assert (finding.coin, finding.algorithm) == ("btc", "sha256d")
    assert finding.difficulty == 1024.0  # the latest set_difficulty
    assert (finding.shares, finding.shares_accepted, finding.shares_rejected) == (3, 1, 2)
    assert finding.host is None


def test_miner_on_responder_side(run):
    """A capture whose first packet came from the pool: miner side follows the protocol."""
    finding = run(BTC_SESSION, miner=Side.RESP).finding()
    assert finding is not None
    assert finding.miner_side is Side.RESP
    assert finding.shares_accepted == 1


def test_litecoin_wallet_gives_coin(run):
    finding = run([("M", req(1, "mining.authorize", LTC_WALLET, "x"))]).finding()
    assert finding is not None
    assert (finding.coin, finding.algorithm) == ("ltc", "scrypt")
    assert finding.confidence == Confidence.SUSPECTED


@pytest.mark.parametrize("miner", [Side.ORIG, Side.RESP])
def test_pool_only_mid_session_is_confirmed(run, miner):
    session = [("P", note("mining.set_difficulty", 8)), ("P", BTC_NOTIFY)]
    finding = run(session, miner=miner).finding()
    assert finding is not None
    assert finding.confidence == Confidence.CONFIRMED
    assert finding.miner_side is miner  # the side receiving notify
    assert finding.evidence == ["mining.set_difficulty", "mining.notify"]
    assert finding.difficulty == 8.0
    assert finding.coin is None  # a Bitcoin-shaped notify alone does not name the coin


def test_miner_only_is_suspected(run):
    finding = run([BTC_SESSION[0], BTC_SESSION[2]]).finding()
    assert finding is not None
    assert finding.confidence == Confidence.SUSPECTED
    assert finding.miner_side is Side.ORIG
    assert finding.wallet == BTC_WALLET


def test_submit_only_mid_session_is_confirmed(run):
    submit = req(77, "mining.submit", BTC_WALLET + ".w1", "9", "0000", "5385c669", "00")
    finding = run([("M", submit)]).finding()
    assert finding is not None
    assert finding.confidence == Confidence.CONFIRMED  # shares were submitted
    assert finding.shares == 1
    assert (finding.wallet, finding.worker, finding.coin) == (BTC_WALLET, "w1", "btc")


def test_results_matched_by_id(run):
    session = [
        ("M", req("auth", "mining.authorize", "u", "p")),
        ("P", ok("auth")),
        ("M", req("9", "mining.submit", "u", "1", "00", "01", "02")),
        ("P", ok(9)),  # "9" and 9 name the same request
        ("P", ok(1234)),  # answers nothing we saw
        ("P", ok(9)),  # a repeated answer is not a second share
    ]
    finding = run(session).finding()
    assert finding is not None
    assert (finding.shares, finding.shares_accepted, finding.shares_rejected) == (1, 1, 0)


def test_error_answer_does_not_confirm(run):
    finding = run([BTC_SESSION[0], ("P", err(1, 20, "Parse error"))]).finding()
    assert finding is not None
    assert finding.confidence == Confidence.SUSPECTED


@pytest.mark.parametrize("variant", [1, 2])
def test_key_order_and_whitespace_do_not_matter(run, variant):
    session = [(who, reformat(message, variant)) for who, message in BTC_SESSION]
    assert run(session).finding() == run(BTC_SESSION).finding()


# --- Zcash, extranonce, version rolling, client.* -------------------------------------------


def test_zcash_session(run):
    target = "0003fffc" + "0" * 56
    session = [
        ("M", ZEC_SUBSCRIBE),
        ("P", ok(1, [None, "e66c0000"])),
        ("M", req(2, "mining.authorize", ZEC_WALLET + ".rig", "x")),
        ("M", req(3, "mining.extranonce.subscribe")),
        ("P", ok(2)),
        ("P", req(0, "mining.set_target", target)),
        ("P", ZEC_NOTIFY),
    ]
    finding = run(session).finding()
    assert finding is not None
    assert finding.confidence == Confidence.CONFIRMED
    assert finding.host == ZEC_HOST
    assert finding.agent == "nheqminer/0.5c"
    assert (finding.coin, finding.algorithm) == ("zec", "equihash")
    assert finding.wallet == ZEC_WALLET
    assert "mining.extranonce.subscribe" in finding.evidence
    assert finding.difficulty == pytest.approx(BDIFF1_TARGET / int(target, 16))


@pytest.mark.parametrize(
    ("target", "difficulty"),
    [
        ("00000000ffff" + "0" * 52, 1.0),
        ("0000000000ffff" + "0" * 50, 256.0),
        ("0x00000000ffff" + "0" * 52, 1.0),
        ("00000001fffe" + "0" * 52, 0.5),
        ("0" * 64, None),
        ("zz", None),
        ("1" * 65, None),
    ],
)
def test_target_to_difficulty(target, difficulty):
    assert target_to_difficulty(target) == difficulty


@pytest.mark.parametrize("host", ["10.1.2.3", "3e747837e632920e8cd1", "pool:3333"])
def test_subscribe_host_must_be_a_host_name(run, host):
    finding = run([("M", req(1, "mining.subscribe", "miner/1", None, host, "3357"))]).finding()
    assert finding is not None
    assert finding.host is None


def test_zcash_shape_names_coin_when_nothing_else_does(run):
    """Unknown login, unknown agent: the 8-param notify with version 04000000 says Zcash."""
    session = [("M", req(5, "mining.authorize", "someone", "x")), ("P", ZEC_NOTIFY)]
    finding = run(session).finding()
    assert finding is not None
    assert (finding.coin, finding.algorithm) == ("zec", "equihash")


def test_set_target_alone_means_zcash(run):
    finding = run([("P", note("mining.set_target", "00000000ffff" + "0" * 52))]).finding()
    assert finding is not None
    assert (finding.coin, finding.difficulty) == ("zec", 1.0)


def test_extranonce_and_version_rolling(run):
    mask = {"version-rolling.mask": "1fffe000", "version-rolling.min-bit-count": 2}
    session = [
        ("M", req(1, "mining.configure", ["version-rolling"], mask)),
        ("P", ok(1, {"version-rolling": True, "version-rolling.mask": "1fffe000"})),
        ("M", req(2, "mining.extranonce.subscribe")),
        ("P", note("mining.set_extranonce", "08000002", 4)),
        ("P", note("mining.set_version_mask", "1fffe000")),
    ]
    finding = run(session).finding()
    assert finding is not None
    assert finding.confidence == Confidence.CONFIRMED
    assert finding.evidence == [
        "mining.configure",
        "mining.extranonce.subscribe",
        "mining.set_extranonce",
        "mining.set_version_mask",
    ]


def test_client_notifications(run):
    session = [
        ("P", note("client.show_message", "maintenance at noon")),
        ("P", req(50, "client.get_version")),
        ("M", ok(50, "bfgminer/5.5.0")),
        ("P", note("client.reconnect", "pool.example.org", 3333, 0)),
    ]
    finding = run(session).finding()
    assert finding is not None
    assert finding.confidence == Confidence.CONFIRMED
    assert finding.miner_side is Side.ORIG
    assert finding.agent == "bfgminer/5.5.0"  # the miner's answer to client.get_version
    assert finding.evidence == ["client.show_message", "client.get_version", "client.reconnect"]


def test_kawpow_shape(run):
    target = "00000000ff" + "0" * 54
    session = [
        ("M", req(1, "mining.subscribe", "GMiner/2.09", None, "rvnt.example.com", "4505")),
        ("P", ok(1, [None, "64290b"])),
        ("P", note("mining.notify", "1a", HASH, HASH2, target, True, 2755000, "1b00f4a3")),
    ]
    finding = run(session).finding()
    assert finding is not None
    assert (finding.coin, finding.algorithm) == (None, "kawpow")  # many coins use KawPow
    finding = run([*session, ("M", req(2, "mining.authorize", RVN_WALLET, "x"))]).finding()
    assert finding is not None
    assert (finding.coin, finding.algorithm) == ("rvn", "kawpow")


# --- Kaspa, Ergo, Kadena: stratum-v1 by the product contract -------------------------------


def test_kaspa_session_is_stratum_v1(run):
    finding = run(KAS_SESSION).finding()
    assert finding is not None
    assert finding.dialect == "stratum-v1"
    assert (finding.coin, finding.algorithm) == ("kas", "kheavyhash")
    assert (finding.wallet, finding.worker) == (KAS_WALLET, "rig1")
    assert finding.agent == "BzMiner-v21.1.0"
    assert finding.difficulty == 4096.5
    assert "set_extranonce" in finding.evidence
    assert (finding.shares, finding.shares_accepted) == (1, 1)
    es = run(KAS_SESSION, EthereumStratumDetector)
    assert es.finding() is None
    assert es.declined


def test_kaspa_waits_for_its_wallet_before_claiming(run):
    """A subscribe naming EthereumStratum alone is ethereum-stratum's until Kaspa shows."""
    detector = run(KAS_SESSION[:1])
    assert detector.finding() is None
    assert not detector.declined
    finding = run([KAS_SESSION[0], KAS_SESSION[2]]).finding()
    assert finding is not None
    assert (finding.confidence, finding.coin) == (Confidence.SUSPECTED, "kas")


def test_kaspa_header_hex_notify_mid_session(run):
    header = "a" * 64 + "00e0a6b28b010000"  # 32-byte pre-PoW hash + 8-byte timestamp
    session = [
        ("P", note("mining.set_difficulty", 2048)),
        ("P", note("mining.notify", "3f", header)),
    ]
    finding = run(session, miner=Side.RESP).finding()
    assert finding is not None
    assert (finding.coin, finding.miner_side) == ("kas", Side.RESP)


def test_ergo_session(run):
    session = [
        ("M", req(1, "mining.subscribe", "lolMiner 1.76")),
        ("P", ok(1, [[["mining.notify", "1"]], "6a8f", 6])),
        ("M", req(2, "mining.authorize", ERG_WALLET + ".w", "x")),
        ("P", note("mining.set_difficulty", 3.5)),
        ("P", ERGO_NOTIFY),
    ]
    finding = run(session).finding()
    assert finding is not None
    assert (finding.coin, finding.algorithm, finding.worker) == ("erg", "autolykos2", "w")
    finding = run([("P", ERGO_NOTIFY)]).finding()  # the notify shape alone names Ergo
    assert finding is not None
    assert finding.coin == "erg"


def test_ethash_flow_is_not_stratum_v1(run):
    session = [
        ("P", note("mining.set_difficulty", 1)),
        ("P", note("mining.notify", "bf0488aa", HASH2, HASH, True)),
    ]
    detector = run(session)
    assert detector.finding() is None
    assert detector.declined


# --- look-alikes that must not fire --------------------------------------------------------


@pytest.mark.parametrize(("line", "declines"), LOOKALIKES)
def test_lookalikes_do_not_fire(run, line, declines):
    for miner in (Side.ORIG, Side.RESP):
        detector = run([("M", line), ("P", line)], miner=miner)
        assert detector.finding() is None
        assert detector.declined is declines


def test_node_api_session_does_not_fire(run):
    session = [
        (
            "M",
            {"id": 1, "jsonrpc": "2.0", "method": "eth_getBalance", "params": ["0x5a", "latest"]},
        ),
        ("P", {"id": 1, "jsonrpc": "2.0", "result": "0x1"}),
        ("M", req(2, "mining.subscribe")),
    ]
    detector = run(session)
    assert detector.declined
    assert detector.finding() is None


def test_binary_and_http_decline(dialect_rules, coins):
    detector = StratumV1Detector(dialect_rules["stratum-v1"], coins)
    detector.feed(BinaryChunk(Side.ORIG, 1.0, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"))
    assert detector.declined
    assert detector.finding() is None
    detector = StratumV1Detector(dialect_rules["stratum-v1"], coins)
    detector.feed(HttpMessage(Side.ORIG, 1.0, True, "POST", "/", None, {"host": "x"}, b"{}", {}))
    assert detector.declined


def test_pool_answering_http_keeps_miner_evidence(dialect_rules, coins):
    """A miner probing a web server: its stratum stays evidence, the flow stays suspected."""
    detector = StratumV1Detector(dialect_rules["stratum-v1"], coins)
    detector.feed(JsonMessage(Side.ORIG, 1.0, req(1, "mining.subscribe")))
    detector.feed(HttpMessage(Side.RESP, 1.1, False, None, None, 400, {}, b"Bad Request"))
    finding = detector.finding()
    assert not detector.declined
    assert finding is not None
    assert finding.confidence == Confidence.SUSPECTED


def test_unknown_methods_mid_session_do_not_decline(run):
    detector = run([*BTC_SESSION[:4], ("M", req(9, "getstatus"))])
    assert not detector.declined
    assert detector.finding() is not None


def test_long_strings_are_bounded(run):
    finding = run([("M", req(1, "mining.authorize", "w" * 100_000, "x"))]).finding()
    assert finding is not None
    assert finding.login == "w" * 256


# --- public transcripts --------------------------------------------------------------------


def test_kadena_transcripts(run):
    sessions = kadena_sessions()
    assert len(sessions) >= 3
    for session in sessions:
        finding = run(session).finding()
        assert finding is not None
        assert finding.dialect == "stratum-v1"
        assert finding.confidence == Confidence.CONFIRMED
        assert (finding.coin, finding.algorithm) == ("kda", "blake2s")
        assert finding.agent == "my-miner"
        assert finding.difficulty is not None
        assert finding.difficulty > 1
        assert run(session, EthereumStratumDetector).finding() is None
