"""EthereumStratum/1.0.0 detector, and its split of flows with the stratum-v1 detector.

Sessions are built from the NiceHash EthereumStratum/1.0.0 specification; the helpers and
the Bitcoin-family sessions are shared with the stratum-v1 tests so that both detectors are
checked against the same flows.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensor.detect.base import JsonMessage
from sensor.detect.ethereum_stratum import EthereumStratumDetector
from sensor.detect.stratum_v1 import StratumV1Detector
from sensor.model import Confidence, Side
from tests.detect.stratum_helpers import (
    BTC_NOTIFY,
    BTC_SESSION,
    BTC_WALLET,
    ERGO_NOTIFY,
    HASH,
    HASH2,
    KAS_SESSION,
    KAS_WALLET,
    LOOKALIKES,
    SHARED,
    ZEC_NOTIFY,
    ZEC_SUBSCRIBE,
    err,
    feed,
    note,
    ok,
    req,
)

ETH_WALLET = "0x5a0b54d5dc17e0aadc383d2db43b0a0d3e029c4c"
SEEDHASH, HEADERHASH = HASH2, HASH
ES = "EthereumStratum/1.0.0"
ES_NOTIFY = note("mining.notify", "bf0488aa", SEEDHASH, HEADERHASH, True)
ES_SESSION: list[tuple[str, Any]] = [
    ("M", req(1, "mining.subscribe", "EthereumMiner/1.0.0", ES)),
    ("P", ok(1, [["mining.notify", "ae6812eb4cd7735a302a8a9dd95cf71f", ES], "a2eea0"])),
    ("M", req(2, "mining.authorize", "test", "password")),
    ("P", ok(2)),
    ("P", note("mining.set_difficulty", 1.0)),
    ("P", ES_NOTIFY),
    ("M", req(3, "mining.submit", "test", "bf0488aa", "cfae7df760")),
    ("P", ok(3)),
    ("M", req(4, "mining.submit", "test", "bf0488aa", "cfae7df761")),
    ("P", {"id": 4, "result": False, "error": [-1, "Job not found", None]}),
]


@pytest.fixture
def run(dialect_rules, coins):
    def _run(session, detector_cls=EthereumStratumDetector, miner=Side.ORIG):
        return feed(session, detector_cls, dialect_rules, coins, miner)

    return _run


def test_spec_session(run):
    finding = run(ES_SESSION).finding()
    assert finding is not None
    assert finding.dialect == "ethereum-stratum"
    assert finding.rule_id == "minewatch.dialect.ethereum-stratum"
    assert finding.confidence == Confidence.CONFIRMED
    assert finding.miner_side is Side.ORIG
    assert finding.evidence == [
        "mining.subscribe",
        "mining.authorize",
        "mining.set_difficulty",
        "mining.notify",
        "mining.submit",
    ]
    assert finding.agent == "EthereumMiner/1.0.0"
    assert finding.login == "test"
    assert (finding.coin, finding.algorithm) == ("eth", "ethash")  # the rule's default
    assert finding.difficulty == 1.0
    assert (finding.shares, finding.shares_accepted, finding.shares_rejected) == (2, 1, 1)
    v1 = run(ES_SESSION, StratumV1Detector)
    assert v1.finding() is None
    assert v1.declined


def test_difficulty_is_reported_as_sent(run):
    session = [("P", note("mining.set_difficulty", 0.5)), ("P", ES_NOTIFY)]
    finding = run(session).finding()
    assert finding is not None
    assert finding.difficulty == 0.5


def test_eth_wallet_and_worker(run):
    session = [*ES_SESSION[:2], ("M", req(2, "mining.authorize", ETH_WALLET + ".rig3", "x"))]
    finding = run(session).finding()
    assert finding is not None
    assert (finding.wallet, finding.worker) == (ETH_WALLET, "rig3")
    assert (finding.coin, finding.algorithm) == ("eth", "ethash")


def test_nicehash_btc_login_keeps_ethash(run):
    """NiceHash logins are BTC payout addresses: the coin stays the Ethash default."""
    session = [*ES_SESSION[:2], ("M", req(2, "mining.authorize", BTC_WALLET + ".w", "x"))]
    finding = run(session).finding()
    assert finding is not None
    assert finding.wallet == BTC_WALLET
    assert (finding.coin, finding.algorithm) == ("eth", "ethash")


@pytest.mark.parametrize("miner", [Side.ORIG, Side.RESP])
def test_pool_only_mid_session(run, miner):
    session = [("P", note("mining.set_difficulty", 2.0)), ("P", ES_NOTIFY)]
    finding = run(session, miner=miner).finding()
    assert finding is not None
    assert finding.confidence == Confidence.CONFIRMED
    assert finding.miner_side is miner  # the side receiving the notify
    assert finding.evidence == ["mining.set_difficulty", "mining.notify"]
    assert run(session, StratumV1Detector, miner).finding() is None


def test_subscribe_result_confirms(run):
    finding = run(ES_SESSION[:2]).finding()
    assert finding is not None
    assert finding.confidence == Confidence.CONFIRMED


def test_miner_only_is_suspected(run):
    finding = run([ES_SESSION[0], ES_SESSION[2]], miner=Side.RESP).finding()
    assert finding is not None
    assert finding.confidence == Confidence.SUSPECTED
    assert finding.miner_side is Side.RESP


def test_submit_only_mid_session(run):
    session = [("M", req(244, "mining.submit", "username", "bf0488aa", "6a909d9bbc0f"))]
    finding = run(session).finding()
    assert finding is not None
    assert finding.confidence == Confidence.CONFIRMED
    assert (finding.shares, finding.login) == (1, "username")
    assert run(session, StratumV1Detector).finding() is None


def test_reported_hashrate(run):
    hashrate = req(5, "eth_submitHashrate", "0x1dcd6500", "0x" + "ab" * 32)
    detector = run([("M", hashrate)])  # mid-session: EthProxy's report must not decline
    assert not detector.declined
    assert detector.finding() is None
    finding = run([*ES_SESSION[:3], ("M", hashrate)]).finding()
    assert finding is not None
    assert finding.reported_hashrate_hs == 500_000_000.0


@pytest.mark.parametrize("variant", ["sorted", "spaced"])
def test_key_order_and_whitespace(run, variant):
    def reformat(message: dict[str, Any]) -> bytes:
        if variant == "sorted":
            return orjson.dumps(message, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
        text = orjson.dumps(dict(reversed(list(message.items())))).decode()
        return text.replace(",", " , ").replace(":", " :\t").encode()

    session = [(who, reformat(message)) for who, message in ES_SESSION]
    assert run(session).finding() == run(ES_SESSION).finding()


# --- the split with stratum-v1 --------------------------------------------------------------


def test_kaspa_saying_ethereumstratum_is_stratum_v1(run):
    assert run(KAS_SESSION).finding() is None
    finding = run(KAS_SESSION, StratumV1Detector).finding()
    assert finding is not None
    assert (finding.dialect, finding.coin) == ("stratum-v1", "kas")


def test_kadena_account_submits_are_stratum_v1(run):
    """A Kadena nonce2 looks like an EthereumStratum minernonce; the k: account says Kadena."""
    login = "k:" + HASH + ".rig2"
    session = [("M", req(7, "mining.submit", login, "6412800009e8", "00000000a1b2"))]
    detector = run(session)
    assert detector.finding() is None
    assert detector.declined
    finding = run(session, StratumV1Detector).finding()
    assert finding is not None
    assert (finding.coin, finding.algorithm, finding.worker) == ("kda", "blake2s", "rig2")


def test_eth_saying_ethereumstratum_is_ethereum_stratum(run):
    session = [
        ("M", req(1, "mining.subscribe", "NBMiner/42.3", ES)),
        ("M", req(2, "mining.authorize", ETH_WALLET, "x")),
    ]
    finding = run(session).finding()
    assert finding is not None
    assert (finding.dialect, finding.coin) == ("ethereum-stratum", "eth")
    assert run(session, StratumV1Detector).finding() is None


def test_kaspa_wallet_after_ethereumstratum_subscribe_hands_over(run):
    """Subscribe alone says EthereumStratum; the Kaspa wallet that follows says stratum-v1."""
    detector = run(KAS_SESSION[:1])
    finding = detector.finding()
    assert finding is not None
    assert finding.confidence == Confidence.SUSPECTED
    detector = run([KAS_SESSION[0], ("M", req(2, "mining.authorize", KAS_WALLET, "x"))])
    assert detector.finding() is None
    assert detector.declined


OTHER_FAMILY = {
    "bitcoin notify": [("P", BTC_NOTIFY)],
    "zcash subscribe": [("M", ZEC_SUBSCRIBE)],
    "zcash notify": [("P", ZEC_NOTIFY)],
    "set_target": [("P", note("mining.set_target", "00000000ffff" + "0" * 52))],
    "ergo notify": [("P", ERGO_NOTIFY)],
    "version rolling": [("M", req(1, "mining.configure", ["version-rolling"], {}))],
    "extranonce2 result": [BTC_SESSION[0], BTC_SESSION[1]],
    "kaspa result": KAS_SESSION[:2],
}


@pytest.mark.parametrize("name", sorted(OTHER_FAMILY))
def test_declines_on_other_family_shapes(run, name):
    detector = run([ES_SESSION[0], *OTHER_FAMILY[name]])
    assert detector.declined
    assert detector.finding() is None


NICEHASH_VARIANTS = {
    "octopus": [
        ("P", note("mining.notify", "0000000086cef644", "2302785", "0x" + HASH, "0x55e63b88c2")),
        ("M", req(2, "mining.submit", BTC_WALLET, "0000000086cef644", "0x30000000002978da")),
    ],
    "alephium": [
        ("P", note("mining.set_extranonce", "515a")),
        ("P", note("mining.notify", {"jobId": "a1", "headerBlob": "00", "targetBlob": "ff"})),
    ],
    "fishhash": [
        ("M", {"id": 0, "method": "mining.subscribe", "body": {"agent": "lolMiner/1.85beta"}}),
        ("P", {"id": None, "method": "mining.notify", "body": {"jobId": 1, "header": HASH}}),
    ],
    "xelishash": [
        ("M", req(1, "mining.subscribe", "NiceHash/1.0.0")),
        ("P", ok(1, ["", "30c874c31a2f", 30, HASH])),
        ("M", req(3, "mining.submit", "xel:ys4peuzztwl67rzhsdu0y", "7", "13639ca53f21df75b94a")),
    ],
    "zhash": [
        ("P", note("mining.notify", "j1", "04000000", HASH, HASH2, "", "5a1b", "1c0a", True,
                   "144_5", "BgoldPoW")),
    ],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(NICEHASH_VARIANTS))
def test_other_nicehash_algorithms_are_stratum_v1(run, name):
    session = NICEHASH_VARIANTS[name]
    assert run(session).finding() is None
    finding = run(session, StratumV1Detector).finding()
    assert finding is not None
    assert finding.confidence == Confidence.CONFIRMED


def test_fishhash_body_gives_agent_and_login(run):
    subscribe = {"agent": "lolMiner/1.85beta", "publicAddress": "addr.rig"}
    session = [("M", {"id": 0, "method": "mining.subscribe", "body": subscribe})]
    finding = run(session, StratumV1Detector).finding()
    assert finding is not None
    assert (finding.agent, finding.wallet, finding.worker) == ("lolMiner/1.85beta", "addr", "rig")


def test_generic_stratum_is_left_to_stratum_v1(run):
    session = [("P", note("mining.set_difficulty", 16))]
    detector = run(session)
    assert detector.finding() is None
    assert not detector.declined  # a job may still show the Ethash shape
    assert run(session, StratumV1Detector).finding() is not None


@pytest.mark.parametrize(("line", "declines"), LOOKALIKES)
def test_lookalikes_do_not_fire(run, line, declines):
    detector = run([("M", line), ("P", line)])
    assert detector.finding() is None
    assert detector.declined is declines


ALL_SESSIONS = {
    "ethereum-stratum": ES_SESSION,
    "bitcoin": BTC_SESSION,
    "kaspa": KAS_SESSION,
    **OTHER_FAMILY,
    **NICEHASH_VARIANTS,
}


def _claims(detectors, message, side):
    for detector in detectors:
        detector.feed(JsonMessage(side, 1.0, orjson.loads(orjson.dumps(message))))
    return [d.finding() for d in detectors if d.finding() is not None]


@pytest.mark.parametrize("name", sorted(ALL_SESSIONS))
def test_never_both_claim(dialect_rules, coins, name):
    detectors = [
        EthereumStratumDetector(dialect_rules["ethereum-stratum"], coins),
        StratumV1Detector(dialect_rules["stratum-v1"], coins),
    ]
    for who, message in ALL_SESSIONS[name]:
        side = Side.ORIG if who == "M" else Side.RESP
        assert len(_claims(detectors, message, side)) <= 1


MESSAGE_POOL = [message for session in ALL_SESSIONS.values() for _, message in session]
JUNK = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
RANDOM_REQUEST = st.builds(
    lambda id_, method, params: {"id": id_, "method": method, "params": params},
    st.none() | st.integers(0, 5),
    st.sampled_from(["mining.subscribe", "mining.notify", "mining.submit", "mining.authorize",
                     "mining.set_target", "mining.set_difficulty", "set_extranonce"]),
    JUNK,
)  # fmt: skip
MESSAGES = st.lists(
    st.tuples(st.sampled_from(MESSAGE_POOL) | RANDOM_REQUEST | JUNK, st.sampled_from(list(Side))),
    max_size=12,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MESSAGES)
def test_random_interleavings_never_both_claim_and_never_raise(dialect_rules, coins, messages):
    detectors = [
        EthereumStratumDetector(dialect_rules["ethereum-stratum"], coins),
        StratumV1Detector(dialect_rules["stratum-v1"], coins),
    ]
    for message, side in messages:
        assert len(_claims(detectors, message, side)) <= 1


# --- the public specification ---------------------------------------------------------------


def _spec_scenario() -> list[tuple[str, Any]]:
    path = SHARED / "reference" / "nicehash_specs" / "EthereumStratum_NiceHash_v1.0.0.txt"
    if not path.is_file():
        pytest.skip("shared reference material not available")
    text = path.read_text()
    # The section headings also appear in the table of contents: take the last ones.
    scenario = text[text.rindex("IV. Real world scenario") : text.rindex("V. Planned")]
    session = []
    for block in re.findall(r"\{.*?\}\\n", scenario, flags=re.DOTALL):
        obj = orjson.loads(block[:-2])
        # The spec's narrative: the miner sends the requests, the pool everything else.
        requests = ("mining.subscribe", "mining.authorize", "mining.submit")
        session.append(("M" if obj.get("method") in requests else "P", obj))
    return session


def test_specification_scenario(run):
    session = _spec_scenario()
    assert len(session) >= 8
    finding = run(session).finding()
    assert finding is not None
    assert finding.confidence == Confidence.CONFIRMED
    assert finding.agent == "EthereumMiner/1.0.0"
    assert (finding.shares, finding.shares_accepted) == (1, 1)
    assert run(session, StratumV1Detector).finding() is None


def test_error_without_result_counts_as_rejected(run):
    submit = req(9, "mining.submit", "t", "bf0488aa", "00aa11bb22")
    session = [*ES_SESSION[:6], ("M", submit), ("P", err(9, 21, "Stale"))]
    finding = run(session).finding()
    assert finding is not None
    assert (finding.shares_accepted, finding.shares_rejected) == (0, 1)


# EthereumStratum/2.0.0 (ethminer's "stratum2"): hello, subscribe with a session id,
# authorize, mining.set for epoch/target/extranonce, then notify and submit.
ETH_WALLET_ES2 = "0x254e7c13a6ea3b7b903928f68c352f25db23e1d6"
ES2_SESSION = [
    (
        "M",
        {
            "id": 0,
            "method": "mining.hello",
            "params": {
                "agent": "ethminer-0.19.0",
                "host": "eu1.pool.example",
                "port": "4444",
                "proto": "EthereumStratum/2.0.0",
            },
        },
    ),
    ("P", {"id": 0, "result": {"proto": "EthereumStratum/2.0.0", "encoding": "plain"}}),
    ("M", {"id": 1, "method": "mining.subscribe", "params": ["s-12345"]}),
    ("P", {"id": 1, "result": "s-12345"}),
    ("M", {"id": 2, "method": "mining.authorize", "params": [f"{ETH_WALLET_ES2}.rig1", "x"]}),
    ("P", {"id": 2, "result": ETH_WALLET_ES2}),
    ("P", {"method": "mining.set", "params": {"epoch": "dc", "algo": "ethash", "target": "0112"}}),
    ("P", {"method": "mining.notify", "params": ["bf0488aa", "6a909d9bbc0f", "0x" + "ab" * 32]}),
    ("M", {"id": 40, "method": "mining.submit", "params": ["bf0488aa", "6a909d9bbc0f", "2b2c"]}),
]


def test_ethereum_stratum_2_session(run):
    finding = run(ES2_SESSION).finding()
    assert finding is not None and finding.dialect == "ethereum-stratum"
    assert finding.confidence == Confidence.CONFIRMED and finding.miner_side is Side.ORIG
    assert finding.agent == "ethminer-0.19.0"  # from hello, not the subscribe session id
    assert finding.host == "eu1.pool.example"
    assert (finding.wallet, finding.worker, finding.coin) == (ETH_WALLET_ES2, "rig1", "eth")
    assert finding.shares == 1
    assert run(ES2_SESSION, StratumV1Detector).finding() is None


def test_hello_of_another_protocol_is_not_evidence(run):
    hello = {"id": 0, "method": "mining.hello", "params": {"proto": "chat/1.0"}}
    assert run([("M", hello)]).finding() is None
