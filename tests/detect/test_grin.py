"""Grin stratum detector: sessions, echoed-method responses, CryptoNote and look-alikes."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from sensor.detect.base import BinaryChunk, HttpMessage, JsonMessage
from sensor.detect.grin import GrinDetector, grin_login_hint
from sensor.model import Side

PRE_POW = "0001" + "3c" * 100
PROOF = list(range(4210040, 4210040 + 42 * 1000, 1000))  # 42 edges, as Cuckoo Cycle has
GRIN_WALLET = "grin1" + "q" * 58


def rpc(id_: str, method: str, **rest: Any) -> dict[str, Any]:
    return {"id": id_, "jsonrpc": "2.0", "method": method, **rest}


def login(name: str = "miner7/rig1", agent: str = "grin-miner") -> dict[str, Any]:
    return rpc("0", "login", params={"login": name, "pass": "x", "agent": agent})


def job(difficulty: int, job_id: int = 5) -> dict[str, Any]:
    params = {"difficulty": difficulty, "height": 16375, "job_id": job_id, "pre_pow": PRE_POW}
    return rpc("Stratum", "job", params=params)


def submit(edge_bits: int = 31, id_: str = "4") -> dict[str, Any]:
    params = {"edge_bits": edge_bits, "height": 16375, "job_id": 5, "nonce": 8895699060858340771}
    return rpc(id_, "submit", params={**params, "pow": PROOF})


def answer(id_: str, method: str, result: Any = "ok", error: Any = None) -> dict[str, Any]:
    # Grin servers echo the request's method in the response.
    return rpc(id_, method, result=result, error=error)


TEMPLATE = {"difficulty": 3, "height": 13726, "job_id": 4, "pre_pow": PRE_POW}
LATE = {"code": -32503, "message": "Solution submitted too late"}


def as_line(obj: Any, spaced: bool = False) -> bytes:
    """One wire line: compact, or reordered keys with odd whitespace."""
    if not spaced:
        return orjson.dumps(obj)
    if isinstance(obj, dict):
        obj = {k: (dict(reversed(v.items())) if isinstance(v, dict) else v) for k, v in obj.items()}
        obj = dict(reversed(obj.items()))
    return b"  " + json.dumps(obj, separators=(" ,\t", " :  ")).encode() + b" \r"


@pytest.fixture
def detector(dialect_rules, coins) -> GrinDetector:
    return GrinDetector(dialect_rules["grin"], coins)


def feed(det: GrinDetector, side: Side, *objs: Any, spaced: bool = False) -> None:
    for obj in objs:
        det.feed(JsonMessage(side, 1.0, orjson.loads(as_line(obj, spaced))))


def session(det: GrinDetector, spaced: bool = False) -> None:
    steps = [
        (Side.ORIG, login()),
        (Side.RESP, answer("0", "login")),
        (Side.ORIG, rpc("1", "getjobtemplate", params=None)),
        (Side.RESP, answer("1", "getjobtemplate", TEMPLATE)),
        (Side.RESP, job(8)),
        (Side.ORIG, submit(id_="2")),
        (Side.RESP, answer("2", "submit")),
        (Side.ORIG, submit(id_="3")),
        (Side.RESP, answer("3", "submit", "blockfound - 23025af9032de812d15228121d5e4b0e")),
        (Side.ORIG, submit(id_="4")),
        (Side.RESP, answer("4", "submit", None, LATE)),
        (Side.ORIG, rpc("5", "keepalive", params=None)),
        (Side.RESP, answer("5", "keepalive")),
        (Side.ORIG, rpc("6", "status", params=None)),
    ]
    for side, obj in steps:
        feed(det, side, obj, spaced=spaced)


def test_full_session(detector):
    session(detector)
    f = detector.finding()
    assert f is not None and not detector.declined
    assert f.dialect == "grin" and f.confirmed
    assert f.miner_side is Side.ORIG
    assert f.rule_id == "minewatch.dialect.grin"
    assert f.evidence == ["login", "getjobtemplate", "job", "submit", "keepalive", "status"]
    assert (f.login, f.wallet, f.worker, f.agent) == ("miner7/rig1", "miner7", "rig1", "grin-miner")
    assert (f.coin, f.algorithm) == ("grin", "cuckatoo")
    assert f.difficulty == 8.0  # the pushed job's, as given
    assert (f.shares, f.shares_accepted, f.shares_rejected) == (3, 2, 1)


def test_key_order_and_whitespace_do_not_matter(dialect_rules, coins):
    findings = []
    for spaced in (False, True):
        det = GrinDetector(dialect_rules["grin"], coins)
        session(det, spaced)
        findings.append(det.finding())
    assert findings[0] is not None and findings[0] == findings[1]


def test_job_template_answer_sets_difficulty(detector):
    feed(detector, Side.ORIG, rpc("1", "getjobtemplate", params=None))
    feed(detector, Side.RESP, answer("1", "getjobtemplate", TEMPLATE))
    f = detector.finding()
    assert f is not None and f.confirmed and f.difficulty == 3.0


def test_job_template_answer_alone_is_confirmed(detector):
    feed(detector, Side.RESP, answer("1", "getjobtemplate", TEMPLATE))
    f = detector.finding()
    assert f is not None and f.confirmed and f.miner_side is Side.ORIG
    assert f.evidence == ["getjobtemplate"] and f.difficulty == 3.0


def test_pool_jobs_only_mid_session_are_confirmed(detector):
    feed(detector, Side.ORIG, job(16, 6), job(32, 7))  # the pool sent the first packet seen
    f = detector.finding()
    assert f is not None and f.confirmed and f.miner_side is Side.RESP
    assert f.evidence == ["job"] and f.difficulty == 32.0


def test_submits_only_mid_session_are_confirmed(detector):
    # Grin responses name their method, so even a reply to a missed request counts.
    feed(detector, Side.RESP, submit(edge_bits=29, id_="9"))
    feed(detector, Side.ORIG, answer("9", "submit"), answer("8", "submit"))
    f = detector.finding()
    assert f is not None and f.confirmed and f.miner_side is Side.RESP
    assert (f.shares, f.shares_accepted) == (1, 1)  # only answers to submits seen are tallied
    assert f.algorithm == "cuckaroo"  # 29-bit graphs


def test_plain_jsonrpc_responses_are_matched_by_id(detector):
    # NiceHash-style servers may leave the method out of their answers.
    feed(detector, Side.ORIG, submit(id_="7"), submit(id_="8"))
    feed(detector, Side.RESP, {"id": "7", "result": "ok"}, {"id": "8", "error": LATE})
    f = detector.finding()
    assert f is not None and (f.shares_accepted, f.shares_rejected) == (1, 1)


def test_keepalive_before_evidence_is_neutral(detector):
    feed(detector, Side.ORIG, rpc("1", "keepalive", params=None))
    assert detector.finding() is None and not detector.declined
    feed(detector, Side.RESP, job(4))
    f = detector.finding()
    assert f is not None and f.miner_side is Side.ORIG


def test_login_pointing_at_grin_is_suspected(detector):
    feed(detector, Side.ORIG, login())
    f = detector.finding()
    assert f is not None and f.confidence == "suspected" and f.evidence == ["login"]


def test_login_answered_ok_is_confirmed(detector):
    feed(detector, Side.ORIG, login(name=GRIN_WALLET, agent="lolMiner 1.76"))
    feed(detector, Side.RESP, answer("0", "login"))
    f = detector.finding()
    assert f is not None and f.confirmed and f.coin == "grin" and f.wallet == GRIN_WALLET


@pytest.mark.parametrize("agent", ["xmr-stak/2.10", "SomeMiner/1.0"])
def test_bare_login_not_pointing_at_grin_is_not_claimed(detector, agent):
    # The same login words are CryptoNote's: without a Grin hint, leave it to that detector.
    feed(detector, Side.ORIG, login(name="user1", agent=agent))
    assert detector.finding() is None and not detector.declined


@pytest.mark.parametrize(
    ("side", "obj"),
    [
        # XMRig's login offers algorithms, and CryptoNote jobs / results carry blob & target
        (
            Side.ORIG,
            rpc("1", "login", params={"login": "u", "pass": "x", "agent": "a", "algo": []}),
        ),
        (Side.RESP, rpc("", "job", params={"blob": "0c0c", "job_id": "1", "target": "711b0d00"})),
        (Side.RESP, {"id": "0", "result": {"id": "1", "job": {"blob": "0c"}, "status": "OK"}}),
        (Side.RESP, {"id": "4", "result": {"status": "OK"}}),
        (Side.ORIG, rpc("3", "keepalived", params={"id": "1"})),
        (Side.ORIG, rpc("2", "submit", params={"job_id": "1", "nonce": "00", "result": "ab"})),
    ],
)
def test_cryptonote_shapes_make_it_decline(detector, side, obj):
    feed(detector, Side.ORIG, login())
    feed(detector, side, obj)
    assert detector.declined and detector.finding() is None


@pytest.mark.parametrize(
    "obj",
    [
        {"jsonrpc": "2.0", "method": "eth_blockNumber", "params": [], "id": 1},
        {"method": "getinfo"},
        rpc("1", "login", params={"user": "bob", "password": "hunter2"}),
        rpc("1", "login", params={"login": "bob", "password": "hunter2"}),
        rpc("5", "job", params={"queue": "emails", "id": 991, "attempts": 3}),
        rpc("5", "submit", params={"job_id": 1, "nonce": 2, "pow": [1, 2, 3], "edge_bits": 31}),
        {"request": "active checks", "host": "web01"},
        {"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.10"]},
        [job(1)],
        "job",
    ],
)
def test_lookalikes_decline(detector, obj):
    feed(detector, Side.ORIG, obj)
    assert detector.declined and detector.finding() is None


def test_http_and_binary_decline(dialect_rules, coins):
    http = HttpMessage(Side.ORIG, 1.0, True, "POST", "/", None, json=login())
    for msg in (http, BinaryChunk(Side.ORIG, 1.0, b"\x00\x01binary")):
        det = GrinDetector(dialect_rules["grin"], coins)
        det.feed(msg)
        assert det.declined and det.finding() is None


def test_noise_after_confirmation_is_tolerated(detector):
    feed(detector, Side.RESP, job(4))
    feed(detector, Side.RESP, rpc("7", "mining.set_extranonce", params=["00"]))
    assert not detector.declined and detector.finding() is not None


def test_grin_login_hint(coins):
    assert grin_login_hint(coins, GRIN_WALLET, None)
    assert grin_login_hint(coins, "user", "grin-miner")
    assert not grin_login_hint(coins, "user", "XMRig/6.21.0")
    assert not grin_login_hint(coins, "user", None)
