"""Scripts speak each dialect so that minewatch's estimator counts the same hashes."""

from __future__ import annotations

import json

import pytest

from sensor.detect.cryptonote import target_difficulty
from sensor.estimate import hashes_per_share as estimator_hashes
from sensor.synth.scenario import Pool
from sensor.synth.sessions import cryptonote_target, hashes_per_share, script, wallet


def _pool(dialect: str, coin: str, difficulty: float) -> Pool:
    return Pool("p", "198.51.100.1", 3333, coin, dialect, difficulty)


@pytest.mark.parametrize(
    ("dialect", "coin", "algorithm", "difficulty"),
    [
        ("stratum-v1", "btc", "sha256d", 16384.0),
        ("stratum-v1", "ltc", "scrypt", 65536.0),
        ("ethereum-stratum", "eth", "ethash", 0.125),
        ("cryptonote", "xmr", "randomx", 10000.0),
        ("cryptonote", "xmr", "randomx", 3e10),
    ],
)
def test_hashes_per_share_agree_with_estimator(
    dialect: str, coin: str, algorithm: str, difficulty: float
) -> None:
    seen = difficulty
    if dialect == "cryptonote":  # the detector reads the difficulty back from the target
        seen = target_difficulty(cryptonote_target(difficulty))
        assert seen == pytest.approx(difficulty, rel=1e-3)
    expected, note = estimator_hashes(dialect, algorithm, seen)
    assert note is None and hashes_per_share(dialect, coin, difficulty) == expected


@pytest.mark.parametrize("dialect", ["stratum-v1", "ethereum-stratum", "cryptonote"])
def test_every_message_is_one_json_line(dialect: str) -> None:
    coin = {"stratum-v1": "btc", "ethereum-stratum": "eth", "cryptonote": "xmr"}[dialect]
    talk = script(_pool(dialect, coin, 100.0), "p/10.0.0.1")
    lines = [p for _, p in talk.handshake()] + [talk.job(1), talk.submit(5, 1), talk.accept(5)]
    for line in lines:
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        json.loads(line)
    submit, accept = json.loads(talk.submit(5, 1)), json.loads(talk.accept(5))
    assert submit["method"] in ("mining.submit", "submit") and submit["id"] == accept["id"]


@pytest.mark.parametrize(("dialect", "coin"), [("stratum-v1", "btc"), ("ethereum-stratum", "eth")])
def test_stratum_retarget_is_set_difficulty_then_a_clean_job(dialect: str, coin: str) -> None:
    talk = script(_pool(dialect, coin, 1024.0), "p/10.0.0.1")
    handshake_difficulty = [json.loads(p) for _, p in talk.handshake()][-2]
    assert handshake_difficulty["params"] == [1024]  # whole numbers written without a fraction
    set_difficulty, notify = (json.loads(m) for m in talk.retarget(7, 2.0**-3))
    assert set_difficulty == {"id": None, "method": "mining.set_difficulty", "params": [0.125]}
    assert notify["method"] == "mining.notify" and notify["params"][-1] is True
    assert json.loads(talk.job(7)) == notify  # the job the submits then name


def test_cryptonote_retarget_is_a_job_with_the_new_target() -> None:
    talk = script(_pool("cryptonote", "xmr", 5000.0), "p/10.0.0.1")
    login = json.loads(talk.handshake()[1][1])
    assert login["result"]["job"]["target"] == cryptonote_target(5000.0)
    (message,) = talk.retarget(3, 80000.0)
    job = json.loads(message)["params"]
    assert job["job_id"] == "700003" and job["target"] == cryptonote_target(80000.0)
    assert json.loads(talk.job(4))["params"]["target"] == job["target"]  # it stays


def test_wallet_shapes() -> None:
    assert wallet("eth", "x").startswith("0x") and len(wallet("eth", "x")) == 42
    assert wallet("btc", "x")[0] == "1" and len(wallet("btc", "x")) == 34
    assert wallet("xmr", "x")[0] == "4" and len(wallet("xmr", "x")) == 95
    assert wallet("btc", "x") == wallet("btc", "x") != wallet("btc", "y")
