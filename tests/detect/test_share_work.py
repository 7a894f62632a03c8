"""Share work under vardiff: each share counts at the difficulty of the job it answers."""

from __future__ import annotations

from typing import Any

import pytest

from sensor.detect.base import JsonMessage
from sensor.detect.cryptonote import CryptoNoteDetector, target_difficulty
from sensor.detect.ethereum_stratum import EthereumStratumDetector
from sensor.detect.ethproxy import EthProxyDetector
from sensor.detect.ethproxy import target_difficulty as eth_difficulty
from sensor.detect.grin import GrinDetector
from sensor.detect.shares import MAX_JOBS, ShareBook
from sensor.detect.stratum_v1 import StratumV1Detector
from sensor.model import Finding, Side

M, P = Side.ORIG, Side.RESP
BTC_LOGIN = "1BoatSLRHtKNngkdXEeobR76b53LETtpyT.rig1"


def run(detector: Any, messages: list[tuple[Side, dict[str, Any]]]) -> Finding:
    for n, (side, obj) in enumerate(messages):
        detector.feed(JsonMessage(side, 1000.0 + n, obj))
    finding = detector.finding()
    assert finding is not None
    return finding


def ok(rid: int) -> tuple[Side, dict[str, Any]]:
    return P, {"id": rid, "result": True, "error": None}


# -- the book itself --------------------------------------------------------------------


def test_a_share_is_worth_its_jobs_difficulty_not_the_latest() -> None:
    book = ShareBook()
    book.difficulty(8.0)
    book.job("a")
    book.difficulty(32.0)  # applies from the next job on
    book.submit(1, "a")  # still the old job
    book.job("b")
    book.submit(2, "b")
    book.submit(3, "unseen")  # a job from before the capture: the difficulty in force
    book.accepted_share(1)
    book.accepted_share(2)
    book.rejected_share(3)
    assert book.work() == (8.0 + 32.0 + 32.0, 8.0 + 32.0)


def test_shares_before_any_difficulty_take_the_first_seen() -> None:
    book = ShareBook()
    book.submit(1, "x")
    book.accepted_share(1)
    assert book.work() == (None, None)
    book.difficulty(16.0)
    book.difficulty(64.0)
    assert book.work() == (16.0, 16.0)


def test_an_answer_to_an_unseen_submit_counts_at_the_current_difficulty() -> None:
    book = ShareBook()
    book.job("j", 4.0)
    book.accepted_share(99)
    assert book.work() == (0.0, 4.0)


def test_jobs_and_pending_shares_are_bounded() -> None:
    book = ShareBook()
    book.difficulty(1.0)
    for n in range(MAX_JOBS + 10):
        book.job(n, float(n + 1))
        book.submit(f"r{n}", n)
    assert book.worth(0) == book.current  # forgotten: priced at the difficulty in force
    assert book.worth(MAX_JOBS + 9) == MAX_JOBS + 10


# -- the dialects -----------------------------------------------------------------------


def _notify(job: str) -> dict[str, Any]:
    params = [job, "00" * 32, "01000000", "ff", [], "20000000", "17034219", "6553f100", True]
    return {"id": None, "method": "mining.notify", "params": params}


def _diff(value: float) -> tuple[Side, dict[str, Any]]:
    return P, {"id": None, "method": "mining.set_difficulty", "params": [value]}


def _submit(rid: int, job: str) -> tuple[Side, dict[str, Any]]:
    return M, {"id": rid, "method": "mining.submit", "params": [BTC_LOGIN, job, "00", "01", "02"]}


def test_stratum_v1_weights_shares_by_their_jobs_difficulty(dialect_rules, coins) -> None:
    session = [
        (M, {"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.11"]}),
        (P, {"id": 1, "result": [[["mining.notify", "1"]], "08000002", 4], "error": None}),
        (M, {"id": 2, "method": "mining.authorize", "params": [BTC_LOGIN, "x"]}),
        ok(2),
        _diff(1024),
        (P, _notify("a")),
        _submit(10, "a"),
        ok(10),
        _diff(4096),  # vardiff: for jobs from the next notify
        _submit(11, "a"),  # in flight on the old job: still 1024
        ok(11),
        (P, _notify("b")),
        _submit(12, "b"),
        ok(12),
        _submit(13, "b"),
        (P, {"id": 13, "result": None, "error": [23, "Low difficulty share", None]}),
    ]
    det = StratumV1Detector(dialect_rules["stratum-v1"], coins)
    finding = run(det, session)
    assert (finding.shares, finding.shares_accepted, finding.shares_rejected) == (4, 3, 1)
    assert finding.difficulty == 4096  # the last one the pool set, as events report it
    assert finding.submitted_work == 1024 + 1024 + 4096 + 4096
    assert finding.accepted_work == 1024 + 1024 + 4096


def test_ethereum_stratum_2_boundary_and_job_first_submits(dialect_rules, coins) -> None:
    wallet = "0x254e7c13a6ea3b7b903928f68c352f25db23e1d6"
    target = format((0xFFFF << 208) // 2, "x")  # difficulty 2 in NiceHash units
    session = [
        (M, {"id": 0, "method": "mining.hello", "params": {"proto": "EthereumStratum/2.0.0"}}),
        (P, {"id": 0, "result": {"proto": "EthereumStratum/2.0.0", "encoding": "plain"}}),
        (M, {"id": 1, "method": "mining.subscribe", "params": ["s-1"]}),
        (P, {"id": 1, "result": "s-1"}),
        (M, {"id": 2, "method": "mining.authorize", "params": [f"{wallet}.rig1", "x"]}),
        (P, {"id": 2, "result": "w-1"}),
        (P, {"method": "mining.set", "params": {"epoch": "dc", "target": target}}),
        (P, {"method": "mining.notify", "params": ["bf01", "6526d5", "ab" * 32, True]}),
        (M, {"id": 40, "method": "mining.submit", "params": ["bf01", "6a909d9bbc0f", "w-1"]}),
        (P, {"id": 40, "result": True}),
    ]
    finding = run(EthereumStratumDetector(dialect_rules["ethereum-stratum"], coins), session)
    assert finding.difficulty == pytest.approx(2.0)
    assert finding.accepted_work == pytest.approx(2.0)


def _cn_job(job_id: str, target: str) -> dict[str, Any]:
    return {"blob": "0c0c" + "ab" * 74, "job_id": job_id, "target": target, "algo": "rx/0"}


def _cn_submit(rid: int, job_id: str) -> tuple[Side, dict[str, Any]]:
    params = {"id": "s", "job_id": job_id, "nonce": "88030000", "result": "19" * 32}
    return M, {"id": rid, "jsonrpc": "2.0", "method": "submit", "params": params}


def _cn_ok(rid: int) -> tuple[Side, dict[str, Any]]:
    return P, {"id": rid, "jsonrpc": "2.0", "error": None, "result": {"status": "OK"}}


def test_cryptonote_prices_each_share_at_its_jobs_target(dialect_rules, coins) -> None:
    low, high = "b88d0600", "e2340000"  # difficulty 10000 and about 73,000
    login = {"login": "4" + "A" + "b" * 93, "pass": "x", "agent": "XMRig/6.21.0"}
    result = {"id": "s", "job": _cn_job("1", low), "status": "OK"}
    push = {"jsonrpc": "2.0", "method": "job", "params": _cn_job("2", high)}
    session = [
        (M, {"id": 1, "jsonrpc": "2.0", "method": "login", "params": login}),
        (P, {"id": 1, "jsonrpc": "2.0", "error": None, "result": result}),
        _cn_submit(2, "1"),
        _cn_ok(2),
        (P, push),
        _cn_submit(3, "1"),  # sent before the new job arrived
        _cn_ok(3),
        _cn_submit(4, "2"),
        _cn_ok(4),
    ]
    finding = run(CryptoNoteDetector(dialect_rules["cryptonote"], coins), session)
    d_low, d_high = target_difficulty(low), target_difficulty(high)
    assert d_low is not None and d_high is not None
    assert finding.accepted_work == pytest.approx(2 * d_low + d_high)
    assert finding.difficulty == pytest.approx(d_high)


def test_ethproxy_keys_jobs_by_header(dialect_rules, coins) -> None:
    h1, h2, seed = "0x" + "11" * 32, "0x" + "22" * 32, "0x" + "33" * 32
    t1, t2 = 1 << 224, 1 << 222  # 2^32 and 2^34 hashes per share
    login = {"id": 1, "method": "eth_submitLogin", "params": ["0x" + "ab" * 20]}
    session = [
        (M, login),
        ok(1),
        (M, {"id": 3, "method": "eth_getWork", "params": []}),
        (P, {"id": 3, "result": [h1, seed, hex(t1)]}),
        (P, {"id": 0, "result": [h2.upper().replace("0X", "0x"), seed, hex(t2)]}),
        (M, {"id": 4, "method": "eth_submitWork", "params": ["0x01", h1, "0x" + "44" * 32]}),
        ok(4),
        (M, {"id": 5, "method": "eth_submitWork", "params": ["0x02", h2, "0x" + "44" * 32]}),
        ok(5),
    ]
    finding = run(EthProxyDetector(dialect_rules["ethproxy"], coins), session)
    assert finding.accepted_work == pytest.approx(eth_difficulty(t1) + eth_difficulty(t2))


def test_grin_prices_shares_by_job_difficulty(dialect_rules, coins) -> None:
    def job(job_id: int, difficulty: int) -> dict[str, Any]:
        params = {"difficulty": difficulty, "height": 1, "job_id": job_id, "pre_pow": "00" * 8}
        return {"jsonrpc": "2.0", "method": "job", "params": params}

    def submit(rid: int, job_id: int) -> tuple[Side, dict[str, Any]]:
        proof = list(range(42))  # Cuckoo Cycle: 42 edges
        params = {"edge_bits": 32, "height": 1, "job_id": job_id, "nonce": 7, "pow": proof}
        return M, {"id": rid, "jsonrpc": "2.0", "method": "submit", "params": params}

    login = {"login": "grin1rig", "pass": "x", "agent": "grin-miner"}
    session = [
        (M, {"id": "1", "jsonrpc": "2.0", "method": "login", "params": login}),
        (P, job(5, 4)),
        submit(2, 5),
        (P, {"id": 2, "jsonrpc": "2.0", "method": "submit", "result": "ok", "error": None}),
        (P, job(6, 16)),
        submit(3, 6),
        (P, {"id": 3, "jsonrpc": "2.0", "method": "submit", "result": "ok", "error": None}),
    ]
    finding = run(GrinDetector(dialect_rules["grin"], coins), session)
    assert finding.shares_accepted == 2
    assert finding.accepted_work == 4 + 16
