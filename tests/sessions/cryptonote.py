"""Login-style JSON-RPC dialects: CryptoNote (XMRig) and Grin."""

from __future__ import annotations

from typing import Any

from tests.sessions.base import GRIN_WALLET, XMR_WALLET, Expect, Script, Step, c, filler, s


def _xmr_job(n: int) -> dict[str, Any]:
    # target b88d0600 = 0x00068db8 little-endian: difficulty 0xffffffff / 0x68db8 = 10000
    return {
        "blob": filler(f"xmr/blob{n}", 76),
        "job_id": str(731200 + n),
        "target": "b88d0600",
        "algo": "rx/0",
        "height": 3000000 + n,
        "seed_hash": filler("xmr/seed", 32),
    }


def _xmr_submit(rid: int, session: str, n: int, nonce: str) -> Step:
    params = {
        "id": session,
        "job_id": str(731200 + n),
        "nonce": nonce,
        "result": filler(f"xmr/result{rid}", 32),
        "algo": "rx/0",
    }
    return c({"id": rid, "jsonrpc": "2.0", "method": "submit", "params": params})


def cryptonote_xmrig() -> Script:
    """XMRig's login (agent, algo list, rigid), pushed jobs, submits and keepalived."""
    agent, session = "XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/11.4.0", "a1b2c3d4e5"
    login = {
        "login": XMR_WALLET,
        "pass": "x",
        "agent": agent,
        "algo": ["rx/0", "cn/r", "cn/2", "rx/wow"],
        "rigid": "rig08",
    }
    logged_in = {
        "id": session,
        "job": _xmr_job(0),
        "status": "OK",
        "extensions": ["algo", "nicehash", "connect", "tls", "keepalive"],
    }
    rpc = {"jsonrpc": "2.0"}
    steps = [
        c({"id": 1, **rpc, "method": "login", "params": login}),
        s({"id": 1, **rpc, "error": None, "result": logged_in}),
        _xmr_submit(2, session, 0, "0d3a0000"),
        s({"id": 2, **rpc, "error": None, "result": {"status": "OK"}}),
        s({**rpc, "method": "job", "params": _xmr_job(1)}),
        c({"id": 3, **rpc, "method": "keepalived", "params": {"id": session}}),
        s({"id": 3, **rpc, "error": None, "result": {"status": "KEEPALIVED"}}),
        _xmr_submit(4, session, 1, "b7110000"),
        s({"id": 4, **rpc, "error": None, "result": {"status": "OK"}}),
    ]
    expect = Expect(
        True,
        "cryptonote",
        "xmr",
        login=XMR_WALLET,
        wallet=XMR_WALLET,
        worker="rig08",
        agent=agent,
        submits=2,
        accepted=2,
        difficulty=10000,
    )
    return Script("cryptonote_xmrig", 3333, "lines", tuple(steps), expect, "XMRig stratum")


def grin() -> Script:
    """Grin stratum (grin doc/stratum.md): string ids, the method echoed in responses."""
    login, agent = f"{GRIN_WALLET}.rig09", "grin-miner"
    pow42 = sorted(int(filler(f"grin/pow{n}", 4), 16) >> 3 for n in range(42))
    rpc = {"jsonrpc": "2.0"}

    def job(n: int) -> dict[str, Any]:
        return {
            "difficulty": 4,
            "height": 1500000 + n,
            "job_id": 7 + n,
            "pre_pow": filler(f"grin/prepow{n}", 208),
        }

    def answer(rid: str, method: str, result: Any) -> Step:
        return s({"id": rid, **rpc, "method": method, "result": result, "error": None})

    submit = {
        "edge_bits": 32,
        "height": 1500001,
        "job_id": 8,
        "nonce": 8895699060858340771,
        "pow": pow42,
    }
    steps = [
        c(
            {
                "id": "0",
                **rpc,
                "method": "login",
                "params": {"login": login, "pass": "x", "agent": agent},
            }
        ),
        answer("0", "login", "ok"),
        c({"id": "1", **rpc, "method": "getjobtemplate", "params": None}),
        answer("1", "getjobtemplate", job(0)),
        s({"id": "Stratum", **rpc, "method": "job", "params": job(1)}),
        c({"id": "2", **rpc, "method": "submit", "params": submit}),
        answer("2", "submit", "ok"),
        c({"id": "3", **rpc, "method": "keepalive", "params": None}),
        answer("3", "keepalive", "ok"),
    ]
    expect = Expect(
        True,
        "grin",
        "grin",
        login=login,
        wallet=GRIN_WALLET,
        worker="rig09",
        agent=agent,
        submits=1,
        accepted=1,
        difficulty=4,
    )
    return Script("grin", 3416, "lines", tuple(steps), expect, "grin doc/stratum.md")
