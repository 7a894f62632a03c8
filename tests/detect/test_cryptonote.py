"""CryptoNote (XMRig / xmr-stak / MinerGate) detector: sessions, coins, Grin and look-alikes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from sensor.detect.base import BinaryChunk, HttpMessage, JsonMessage
from sensor.detect.cryptonote import CryptoNoteDetector, algorithm_name, target_difficulty
from sensor.model import Side

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"

XMR_WALLET = "4" + "A" + "b" * 93  # Monero address shape: 95 base58 characters, prefix 4
BLOB = "0c0c" + "ab" * 74
AGENT = "XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/11.4.0"

LOGIN = {
    "id": 1,
    "jsonrpc": "2.0",
    "method": "login",
    "params": {
        "login": f"{XMR_WALLET}.rig1",
        "pass": "x",
        "agent": AGENT,
        "algo": ["cn/1", "cn/2", "cn/r", "rx/0", "rx/wow", "argon2/chukwa"],
    },
}
JOB = {"blob": BLOB, "job_id": "11676", "target": "cf8b0000", "algo": "rx/0", "height": 3100000}
LOGIN_RESULT = {
    "id": 1,
    "jsonrpc": "2.0",
    "result": {"id": "77", "job": {**JOB, "seed_hash": "ff" * 32}, "status": "OK"},
    "error": None,
}
JOB_PUSH = {"jsonrpc": "2.0", "method": "job", "params": {**JOB, "target": "711b0d00"}}
SUBMIT = {
    "id": 2,
    "jsonrpc": "2.0",
    "method": "submit",
    "params": {"id": "77", "job_id": "11676", "nonce": "88030000", "result": "19" * 32},
}
SUBMIT_OK = {"id": 2, "jsonrpc": "2.0", "error": None, "result": {"status": "OK"}}
SUBMIT_LOW = {"id": 2, "jsonrpc": "2.0", "error": {"code": -1, "message": "Low difficulty share"}}
KEEPALIVED = {"id": 3, "jsonrpc": "2.0", "method": "keepalived", "params": {"id": "77"}}
KEEPALIVED_OK = {"id": 3, "jsonrpc": "2.0", "result": {"status": "KEEPALIVED"}}


def as_line(obj: Any, spaced: bool = False) -> bytes:
    """One wire line: compact, or reordered keys with odd whitespace."""
    if not spaced:
        return orjson.dumps(obj)
    if isinstance(obj, dict):
        obj = {k: (dict(reversed(v.items())) if isinstance(v, dict) else v) for k, v in obj.items()}
        obj = dict(reversed(obj.items()))
    return b"  " + json.dumps(obj, separators=(" ,\t", " :  ")).encode() + b" \r"


def login(name: str, agent: str | None = None, **extra: Any) -> dict[str, Any]:
    params = {"login": name, "pass": "x", **extra}
    if agent is not None:
        params["agent"] = agent
    return {"id": 1, "method": "login", "params": params}


@pytest.fixture
def detector(dialect_rules, coins) -> CryptoNoteDetector:
    return CryptoNoteDetector(dialect_rules["cryptonote"], coins)


def feed(det: CryptoNoteDetector, side: Side, *objs: Any, spaced: bool = False) -> None:
    for obj in objs:
        det.feed(JsonMessage(side, 1.0, orjson.loads(as_line(obj, spaced))))


def session(det: CryptoNoteDetector, spaced: bool = False) -> None:
    feed(det, Side.ORIG, LOGIN, spaced=spaced)
    feed(det, Side.RESP, LOGIN_RESULT, JOB_PUSH, spaced=spaced)
    for answer in (SUBMIT_OK, SUBMIT_LOW):
        feed(det, Side.ORIG, SUBMIT, spaced=spaced)
        feed(det, Side.RESP, answer, spaced=spaced)
    feed(det, Side.ORIG, KEEPALIVED, spaced=spaced)
    feed(det, Side.RESP, KEEPALIVED_OK, spaced=spaced)


def test_full_xmrig_session(detector):
    session(detector)
    f = detector.finding()
    assert f is not None and not detector.declined
    assert f.dialect == "cryptonote" and f.confirmed
    assert f.miner_side is Side.ORIG
    assert f.rule_id == "minewatch.dialect.cryptonote"
    assert f.evidence == ["login", "job", "submit", "keepalived"]
    assert (f.wallet, f.worker, f.agent) == (XMR_WALLET, "rig1", AGENT)
    assert (f.coin, f.algorithm) == ("xmr", "randomx")
    assert f.difficulty == pytest.approx(0xFFFFFFFF / 0x000D1B71)  # the pushed job's target
    assert (f.shares, f.shares_accepted, f.shares_rejected) == (2, 1, 1)


def test_key_order_and_whitespace_do_not_matter(dialect_rules, coins):
    findings = []
    for spaced in (False, True):
        det = CryptoNoteDetector(dialect_rules["cryptonote"], coins)
        session(det, spaced)
        findings.append(det.finding())
    assert findings[0] is not None and findings[0] == findings[1]


def test_login_without_answer_is_suspected(detector):
    feed(detector, Side.RESP, LOGIN)
    f = detector.finding()
    assert f is not None and f.confidence == "suspected"
    assert f.miner_side is Side.RESP and f.login == f"{XMR_WALLET}.rig1"


def test_pool_jobs_only_mid_session_are_confirmed(detector):
    # The capture starts after the login; the pool happened to send the first packet.
    feed(detector, Side.ORIG, JOB_PUSH, {**JOB_PUSH, "params": {**JOB, "target": "b88d0600"}})
    f = detector.finding()
    assert f is not None and f.confirmed and f.miner_side is Side.RESP
    assert f.evidence == ["job"]
    assert f.difficulty == pytest.approx(0xFFFFFFFF / 0x00068DB8)
    assert (f.coin, f.algorithm) == ("xmr", "randomx")  # rx/0 with nothing else known


def test_submits_only_mid_session_are_confirmed(detector):
    feed(detector, Side.ORIG, SUBMIT)
    feed(detector, Side.RESP, SUBMIT_OK)
    feed(detector, Side.ORIG, SUBMIT)
    feed(detector, Side.RESP, {"id": 2, "result": {"status": "OK"}})
    f = detector.finding()
    assert f is not None and f.confirmed and f.miner_side is Side.ORIG
    assert (f.shares, f.shares_accepted, f.shares_rejected) == (2, 2, 0)
    assert f.login is None and f.coin is None and f.algorithm is None


def test_login_result_without_request_confirms(detector):
    feed(detector, Side.RESP, LOGIN_RESULT)
    f = detector.finding()
    assert f is not None and f.confirmed and f.miner_side is Side.ORIG


def test_keepalived_alone_is_suspected(detector):
    feed(detector, Side.ORIG, KEEPALIVED)
    f = detector.finding()
    assert f is not None and not f.confirmed and f.evidence == ["keepalived"]


@pytest.mark.parametrize(
    ("miner", "job_algo", "expected"),
    [
        # a Monero wallet names the coin; its hint gives the algorithm when the pool does not
        (login(XMR_WALLET), None, ("xmr", "randomx")),
        (login(XMR_WALLET), "cn/r", ("xmr", "cn/r")),
        # MinerGate logs in with an e-mail: the agent names the coin
        (login("me@example.org", "MinerGate/4.04"), None, ("xmr", "randomx")),
        # XMRig mines many coins: its agent does not make rx/wow Monero
        (login("user1", AGENT), "rx/wow", (None, "randomwow")),
        (login("user1"), "argon2/chukwa", (None, "argon2/chukwa")),
        (login("user1"), None, (None, None)),
        (login("user1", algo=["cn/half"]), None, (None, "cn/half")),
    ],
)
def test_coin_and_algorithm(detector, miner, job_algo, expected):
    job = {k: v for k, v in JOB.items() if k != "algo"}
    if job_algo:
        job["algo"] = job_algo
    feed(detector, Side.ORIG, miner)
    feed(detector, Side.RESP, {"id": 1, "result": {"id": "1", "job": job, "status": "OK"}})
    f = detector.finding()
    assert f is not None and (f.coin, f.algorithm) == expected


@pytest.mark.parametrize(
    "obj",
    [
        {"jsonrpc": "2.0", "method": "eth_blockNumber", "params": [], "id": 1},
        {"method": "getinfo"},
        {"id": 1, "method": "login", "params": {"user": "bob", "password": "hunter2"}},
        {"id": 1, "method": "login", "params": ["bob", "hunter2"]},
        {"id": 5, "method": "job", "params": {"queue": "emails", "id": 991, "attempts": 3}},
        {"id": 5, "method": "submit", "params": {"form": "contact", "name": "bob"}},
        {"request": "active checks", "host": "web01"},
        {"level": "info", "msg": "job done", "job_id": 7},
        {"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.10"]},
        [{"method": "login", "params": {"login": "a", "pass": "b"}}],
    ],
)
def test_lookalikes_decline(detector, obj):
    feed(detector, Side.ORIG, obj)
    assert detector.declined and detector.finding() is None


def test_chat_login_followed_by_chat_calls_declines(detector):
    feed(detector, Side.ORIG, login("bob"))
    feed(detector, Side.ORIG, {"id": 2, "method": "sendMessage", "params": {"to": "al"}})
    assert detector.declined and detector.finding() is None


def test_http_and_binary_decline(dialect_rules, coins):
    http = HttpMessage(Side.ORIG, 1.0, True, "POST", "/login", None, json=LOGIN["params"])
    for msg in (http, BinaryChunk(Side.ORIG, 1.0, b"\x01\x21\x01\x01\x01\x01\x01\x01")):
        det = CryptoNoteDetector(dialect_rules["cryptonote"], coins)
        det.feed(msg)
        assert det.declined and det.finding() is None


GRIN_JOB = {"id": "Stratum", "jsonrpc": "2.0", "method": "job"}
GRIN_JOB["params"] = {"difficulty": 4, "height": 9, "job_id": 5, "pre_pow": "0001" * 20}


@pytest.mark.parametrize(
    "pool_says",
    [
        GRIN_JOB,
        {"id": "1", "jsonrpc": "2.0", "method": "login", "result": "ok", "error": None},
        {"id": "2", "jsonrpc": "2.0", "result": {"difficulty": 1, "job_id": 4, "pre_pow": "00"}},
    ],
)
def test_grin_answers_make_it_decline(detector, pool_says):
    feed(detector, Side.ORIG, login("grin-user", "lolMiner 1.0"))
    feed(detector, Side.RESP, pool_says)
    assert detector.declined and detector.finding() is None


def test_grin_requests_make_it_decline(detector):
    feed(detector, Side.ORIG, {"id": "2", "method": "getjobtemplate", "params": None})
    assert detector.declined


def test_bare_login_pointing_at_grin_is_left_to_grin(detector):
    feed(detector, Side.ORIG, login("u", "grin-miner"))
    assert detector.finding() is None and not detector.declined


def test_target_difficulty():
    assert target_difficulty("711b0d00") == pytest.approx(5000, rel=1e-3)  # NiceHash's 5000
    assert target_difficulty("cf8b0000") == pytest.approx(120001, rel=1e-5)
    assert target_difficulty("ffffffff00000000") == pytest.approx(2.0**32, rel=1e-9)
    for bad in ("00000000", "zz8b0000", "cf8b", 123, None):
        assert target_difficulty(bad) is None


def test_algorithm_names():
    assert algorithm_name("rx/0") == "randomx"
    assert algorithm_name("CN/R") == "cn/r"
    assert algorithm_name("") is None and algorithm_name(7) is None


# -- real sessions in ../shared ---------------------------------------------------------


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip("shared reference material not available")
    return path


def test_real_xmr_stak_transcript(detector):
    path = _need(SHARED / "reference" / "hitcon2017_data_mining_xmrstak_session.txt")
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            obj = orjson.loads(line)
            side = Side.ORIG if "method" in obj and obj["method"] != "job" else Side.RESP
            detector.feed(JsonMessage(side, 1.0, obj))
    f = detector.finding()
    assert f is not None and f.confirmed and f.miner_side is Side.ORIG
    assert f.agent == "xmr-stak-cpu/1.3.0-1.5.0" and f.coin == "xmr"
    assert (f.shares, f.shares_accepted) == (3, 3)
    assert f.difficulty == pytest.approx(0xFFFFFFFF / 0x000795CE)


def test_real_xmrig_log(detector):
    path = _need(SHARED / "reference" / "xmrig_issue1138_tls_session_log.txt")
    for m in re.finditer(r"\] (send|received) \(\d+ bytes\): \"(.*)\"$", path.read_text(), re.M):
        side = Side.ORIG if m[1] == "send" else Side.RESP
        detector.feed(JsonMessage(side, 1.0, orjson.loads(m[2])))
    f = detector.finding()
    assert f is not None and f.confirmed
    assert f.evidence == ["login", "job", "keepalived"] and f.worker == "xmrig_test"
    assert f.difficulty == pytest.approx(120001, rel=1e-5)  # the log says "diff 120001"
    assert f.coin == "xmr"


def test_real_nanopool_capture(detector):
    dpkt = pytest.importorskip("dpkt")
    path = _need(SHARED / "captures" / "mining" / "di_xmr-eu1.nanopool.org.pcapng")
    buffers: dict[int, bytes] = {}
    with path.open("rb") as fh:
        for ts, buf in dpkt.pcapng.Reader(fh):
            tcp = getattr(dpkt.ethernet.Ethernet(buf).data, "data", None)
            if isinstance(tcp, dpkt.tcp.TCP) and tcp.data.strip(b"\x00"):
                side = Side.ORIG if tcp.dport == 14444 else Side.RESP
                *lines, buffers[side] = (buffers.get(side, b"") + tcp.data).split(b"\n")
                for line in lines:
                    detector.feed(JsonMessage(side, ts, orjson.loads(line)))
    f = detector.finding()
    assert f is not None and f.confirmed and f.miner_side is Side.ORIG
    assert (f.agent, f.coin) == ("xmr/1.0", "xmr")
    assert f.difficulty == pytest.approx(0xFFFFFFFF / 0xBA69)
