"""Bitcoin-family stratum v1 (slush/Braiins stratum, ZIP 301 for Zcash, NiceHash notes)."""

from __future__ import annotations

from typing import Any

from tests.sessions.base import (
    BTC_WALLET,
    ERG_WALLET,
    KAS_WALLET,
    LTC_WALLET,
    ZEC_WALLET,
    Expect,
    Script,
    c,
    filler,
    ok,
    s,
)


def _btc_notify(job: str, label: str) -> list[Any]:
    coinb1 = "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff"
    branches = [filler(f"{label}/branch/{n}", 32) for n in range(2)]
    return [
        job,
        filler(f"{label}/prev", 32),
        coinb1 + filler(f"{label}/cb1", 20),
        filler(f"{label}/cb2", 60),
        branches,
        "20000000",
        "17034219",
        "6553f100",
        True,
    ]


def stratum_v1_btc() -> Script:
    login, agent, job = f"{BTC_WALLET}.rig01", "cgminer/4.11.1", "1f4e"
    subscribed = [[["mining.set_difficulty", "1"], ["mining.notify", "1"]], "08000002", 4]
    steps = [
        c({"id": 1, "method": "mining.subscribe", "params": [agent]}, spaced=True),
        s({"id": 1, "result": subscribed, "error": None}),
        c({"id": 2, "method": "mining.authorize", "params": [login, "x"]}, spaced=True),
        s(ok(2)),
        s({"id": None, "method": "mining.set_difficulty", "params": [8192]}),
        s({"id": None, "method": "mining.notify", "params": _btc_notify(job, "btc")}),
        c(
            {
                "id": 3,
                "method": "mining.submit",
                "params": [login, job, "00000001", "6553f100", "b2957c02"],
            },
            spaced=True,
        ),
        s(ok(3)),
        c(
            {
                "id": 4,
                "method": "mining.submit",
                "params": [login, job, "00000002", "6553f104", "0d4a73e9"],
            },
            spaced=True,
        ),
        s(ok(4)),
    ]
    expect = Expect(
        True,
        "stratum-v1",
        "btc",
        login=login,
        wallet=BTC_WALLET,
        worker="rig01",
        agent=agent,
        submits=2,
        accepted=2,
        difficulty=8192,
    )
    return Script("stratum_v1_btc", 3333, "lines", tuple(steps), expect, "slush stratum v1")


def stratum_v1_ltc() -> Script:
    """Scrypt stratum with NiceHash's mining.extranonce.subscribe extension."""
    login, agent, job = f"{LTC_WALLET}.rig03", "sgminer/5.6.1", "7a"
    steps = [
        c({"id": 1, "method": "mining.subscribe", "params": [agent]}),
        s({"id": 1, "result": [[["mining.notify", "a1"]], "2a010000", 4], "error": None}),
        c({"id": 2, "method": "mining.extranonce.subscribe", "params": []}),
        s(ok(2)),
        c({"id": 3, "method": "mining.authorize", "params": [login, "x"]}),
        s(ok(3)),
        s({"id": None, "method": "mining.set_difficulty", "params": [65536]}),
        s({"id": None, "method": "mining.notify", "params": _btc_notify(job, "ltc")}),
        c(
            {
                "id": 4,
                "method": "mining.submit",
                "params": [login, job, "0000a3f1", "6553f100", "9c01d4e2"],
            }
        ),
        s(ok(4)),
    ]
    expect = Expect(
        True,
        "stratum-v1",
        "ltc",
        login=login,
        wallet=LTC_WALLET,
        worker="rig03",
        agent=agent,
        submits=1,
        accepted=1,
        difficulty=65536,
    )
    return Script("stratum_v1_ltc", 3333, "lines", tuple(steps), expect, "stratum v1, NiceHash ext")


def stratum_v1_zec() -> Script:
    """ZIP 301: subscribe with host/port, mining.set_target instead of set_difficulty."""
    login, agent, job = f"{ZEC_WALLET}.rig02", "nheqminer/0.5c", "3c1"
    notify = [
        job,
        "04000000",
        filler("zec/prev", 32),
        filler("zec/merkle", 32),
        "00" * 32,
        "6553f100",
        "1c0148e3",
        True,
    ]
    solution = "fd4005" + filler("zec/solution", 1344)
    steps = [
        c(
            {
                "id": 1,
                "method": "mining.subscribe",
                "params": [agent, None, "zec.pool.example", 6666],
            }
        ),
        s({"id": 1, "result": [None, "f8002a01"], "error": None}),
        c({"id": 2, "method": "mining.authorize", "params": [login, "x"]}),
        s(ok(2)),
        s({"id": None, "method": "mining.set_target", "params": ["0007ffff" + "f" * 56]}),
        s({"id": None, "method": "mining.notify", "params": notify}),
        c(
            {
                "id": 3,
                "method": "mining.submit",
                "params": [login, job, "6553f100", filler("zec/nonce2", 28), solution],
            }
        ),
        s(ok(3)),
    ]
    expect = Expect(
        True,
        "stratum-v1",
        "zec",
        login=login,
        wallet=ZEC_WALLET,
        worker="rig02",
        agent=agent,
        submits=1,
        accepted=1,
    )
    return Script("stratum_v1_zec", 6666, "lines", tuple(steps), expect, "ZIP 301")


def stratum_v1_kas() -> Script:
    """kHeavyHash (NiceHash KHeavyHash v1.0): set_extranonce with a nonce prefix."""
    login, agent, job = f"{KAS_WALLET}.rig04", "lolMiner 1.76", "6b2d"
    header = [int(filler(f"kas/h{n}", 8), 16) for n in range(4)]
    steps = [
        c({"id": 1, "method": "mining.subscribe", "params": [agent]}),
        s(ok(1)),
        s({"id": None, "method": "set_extranonce", "params": ["0029", 6]}),
        c({"id": 2, "method": "mining.authorize", "params": [login, "x"]}),
        s(ok(2)),
        s({"id": None, "method": "mining.set_difficulty", "params": [4096]}),
        s({"id": None, "method": "mining.notify", "params": [job, header, 1700000000123]}),
        c({"id": 3, "method": "mining.submit", "params": [login, job, "0x0029a1b2c3d4e5f6"]}),
        s(ok(3)),
    ]
    expect = Expect(
        True,
        "stratum-v1",
        "kas",
        login=login,
        wallet=KAS_WALLET,
        worker="rig04",
        agent=agent,
        submits=1,
        accepted=1,
        difficulty=4096,
    )
    return Script("stratum_v1_kas", 5555, "lines", tuple(steps), expect, "NiceHash KHeavyHash v1.0")


def stratum_v1_erg() -> Script:
    """Autolykos2 stratum: notify carries height, message and the target b as a decimal."""
    login, agent, job = f"{ERG_WALLET}.rig05", "NBMiner/42.3", "3a1c"
    b = str(int("0000000" + filler("erg/b", 28)[:57], 16))
    notify = [job, 1150000, filler("erg/msg", 32), "", "", 2, b, "", True]
    steps = [
        c({"id": 1, "method": "mining.subscribe", "params": [agent]}),
        s({"id": 1, "result": [[["mining.notify", "e1"]], "6f2a", 6], "error": None}),
        c({"id": 2, "method": "mining.authorize", "params": [login, "x"]}),
        s(ok(2)),
        s({"id": None, "method": "mining.set_difficulty", "params": [2]}),
        s({"id": None, "method": "mining.notify", "params": notify}),
        c(
            {
                "id": 3,
                "method": "mining.submit",
                "params": [login, job, "a1b2c3d4e5f6", "", "6f2aa1b2c3d4e5f6"],
            }
        ),
        s(ok(3)),
    ]
    expect = Expect(
        True,
        "stratum-v1",
        "erg",
        login=login,
        wallet=ERG_WALLET,
        worker="rig05",
        agent=agent,
        submits=1,
        accepted=1,
        difficulty=2,
    )
    return Script("stratum_v1_erg", 8888, "lines", tuple(steps), expect, "Ergo pool stratum")
