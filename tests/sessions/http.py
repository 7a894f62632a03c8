"""HTTP mining (getwork, getblocktemplate per BIP 22/23) and a pool's own daemon RPC."""

from __future__ import annotations

import json
from typing import Any

from tests.sessions.base import (
    BTC_WALLET,
    CLIENT,
    SERVER,
    Expect,
    Script,
    Step,
    basic_auth,
    filler,
    http_request,
    http_response,
)


def _miner_post(auth: str, agent: str, body: Any) -> Step:
    headers = [
        ("Authorization", auth),
        ("Host", "btc.pool.example:9332"),
        ("User-Agent", agent),
        ("Accept", "application/json"),
        ("Content-Type", "application/json"),
        ("X-Mining-Extensions", "longpoll midstate rollntime submitold"),
    ]
    return CLIENT, http_request("POST", "/", headers, json.dumps(body).encode())


def _json_reply(body: Any, extra: list[tuple[str, str]] = []) -> Step:  # noqa: B006 (read-only)
    headers = [("Content-Type", "application/json"), *extra]
    return SERVER, http_response(200, "OK", headers, json.dumps(body).encode())


def _template(label: str, height: int, txs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "version": 536870912,
        "rules": ["csv", "segwit"],
        "previousblockhash": filler(f"{label}/prev", 32),
        "transactions": txs,
        "coinbasevalue": 625000000,
        "target": "0000000000000000000342190000000000000000000000000000000000000000",
        "mintime": 1699999000,
        "mutable": ["time", "transactions", "prevblock"],
        "noncerange": "00000000ffffffff",
        "sigoplimit": 80000,
        "sizelimit": 4000000,
        "curtime": 1700000000,
        "bits": "17034219",
        "height": height,
    }


def getwork_gbt() -> Script:
    """A bfgminer-style miner polling getblocktemplate over HTTP and submitting a block."""
    user, agent = f"{BTC_WALLET}.rig10", "bfgminer/5.5.0"
    auth = basic_auth(user, "x")
    caps = {"capabilities": ["coinbasetxn", "workid", "coinbase/append"], "maxversion": 4}
    template = _template("gbt", 817000, []) | {
        "coinbasetxn": {"data": filler("gbt/coinbase", 90)},
        "workid": "2f1c",
    }
    lp = [("X-Long-Polling", "/LP"), ("X-Roll-NTime", "expire=120")]
    block = filler("gbt/header", 80) + "01" + filler("gbt/coinbase", 90)
    steps = [
        _miner_post(auth, agent, {"id": 0, "method": "getblocktemplate", "params": [caps]}),
        _json_reply({"result": template, "error": None, "id": 0}, lp),
        _miner_post(
            auth, agent, {"id": 1, "method": "submitblock", "params": [block, {"workid": "2f1c"}]}
        ),
        _json_reply({"result": None, "error": None, "id": 1}),
    ]
    expect = Expect(
        True,
        "getwork",
        "btc",
        login=user,
        wallet=BTC_WALLET,
        worker="rig10",
        agent=agent,
        submits=1,
        accepted=1,
    )
    return Script("getwork_gbt", 9332, "http", tuple(steps), expect, "BIP 22/23, bfgminer")


def getwork_legacy() -> Script:
    """Pre-2012 getwork: empty params fetch work, one param submits a solved header."""
    user, agent = "minewatch.rig11", "cgminer 2.11.4"
    auth = basic_auth(user, "x")
    work = {
        "midstate": filler("gw/midstate", 32),
        "data": filler("gw/data", 128),
        "hash1": "00" * 28 + "0000008000" + "00" * 26 + "010000",
        "target": "ff" * 28 + "00000000",
    }
    steps = [
        _miner_post(auth, agent, {"method": "getwork", "params": [], "id": 0}),
        _json_reply({"result": work, "error": None, "id": 0}, [("X-Roll-NTime", "Y")]),
        _miner_post(
            auth, agent, {"method": "getwork", "params": [filler("gw/solved", 128)], "id": 1}
        ),
        _json_reply({"result": True, "error": None, "id": 1}),
    ]
    expect = Expect(
        True,
        "getwork",
        None,  # cgminer 2.x mined scrypt too: nothing names the coin
        login=user,
        wallet="minewatch",
        worker="rig11",
        agent=agent,
        submits=1,
        accepted=1,
    )
    return Script("getwork_legacy", 8332, "http", tuple(steps), expect, "getwork (bitcoind 0.x)")


def pool_daemon_gbt() -> Script:
    """NOT mining: a pool server asking its own bitcoind for a template (JSON-RPC 1.0,
    rules=[segwit], no X-Mining-Extensions). The pool is the client here."""
    headers = [
        ("Host", "10.30.0.8:8332"),
        ("Authorization", basic_auth("poolrpc", "s3cret")),
        ("Content-Type", "text/plain"),
    ]
    txs = [
        {
            "data": filler(f"daemon/tx{n}", 120),
            "txid": filler(f"daemon/txid{n}", 32),
            "fee": 1400 + n,
            "sigops": 4,
            "weight": 561,
        }
        for n in range(2)
    ]
    calls = [("gbt", "getblocktemplate", [{"rules": ["segwit"]}]), ("bb", "getbestblockhash", [])]
    steps: list[Step] = []
    for rid, method, params in calls:
        body = {"jsonrpc": "1.0", "id": rid, "method": method, "params": params}
        steps.append((CLIENT, http_request("POST", "/", headers, json.dumps(body).encode())))
        result = _template("daemon", 817000, txs) if rid == "gbt" else filler("daemon/best", 32)
        steps.append(_json_reply({"result": result, "error": None, "id": rid}))
    expect = Expect(False, None, miner_side=None)
    return Script("pool_daemon_gbt", 8332, "http", tuple(steps), expect, "bitcoind RPC")
