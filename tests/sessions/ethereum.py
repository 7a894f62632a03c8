"""Ethereum pool dialects: NiceHash EthereumStratum/1.0.0 and EthProxy (Claymore)."""

from __future__ import annotations

import json

from tests.sessions.base import ETH_WALLET, ETH_WALLET_2, Expect, Script, c, filler, line, ok, s


def ethereum_stratum() -> Script:
    """The NiceHash spec's handshake, one accepted and one rejected share."""
    login, agent, job = f"{ETH_WALLET}.rig06", "ethminer/0.19.0", "bf0488aa"
    subscribed = [["mining.notify", filler("eths/sub", 16), "EthereumStratum/1.0.0"], "a2eea0"]
    notify = [job, filler("eths/seed", 32), filler("eths/header", 32), True]
    steps = [
        c({"id": 1, "method": "mining.subscribe", "params": [agent, "EthereumStratum/1.0.0"]}),
        s({"id": 1, "result": subscribed, "error": None}),
        c({"id": 2, "method": "mining.extranonce.subscribe", "params": []}),
        s(ok(2)),
        c({"id": 3, "method": "mining.authorize", "params": [login, "x"]}),
        s(ok(3)),
        s({"id": None, "method": "mining.set_difficulty", "params": [4.0]}),
        s({"id": None, "method": "mining.notify", "params": notify}),
        c({"id": 4, "method": "mining.submit", "params": [login, job, "cfae7df760"]}),
        s(ok(4)),
        c({"id": 5, "method": "mining.submit", "params": [login, "0badf00d", "01ab7df761"]}),
        s({"id": 5, "result": False, "error": [-1, "Job not found", None]}),
    ]
    steps = [(side, line(json.loads(data), spaced=True)) for side, data in steps]
    expect = Expect(
        True,
        "ethereum-stratum",
        "eth",
        login=login,
        wallet=ETH_WALLET,
        worker="rig06",
        agent=agent,
        submits=2,
        accepted=1,
        difficulty=4.0,
    )
    return Script("ethereum_stratum", 4444, "lines", tuple(steps), expect, "EthereumStratum/1.0.0")


def ethproxy() -> Script:
    """Claymore/EthProxy (open-ethereum-pool STRATUM.md): worker as a top-level field."""
    worker = "rig07"
    work = [
        "0x" + filler("ethp/header", 32),
        "0x" + filler("ethp/seed", 32),
        "0x00000000dbe6fecebdedd5beb573440e5a884d1b2fbf06fcce912adcb8d8422e",
    ]
    nonce, mix = "0x" + filler("ethp/nonce", 8), "0x" + filler("ethp/mix", 32)
    rpc = {"jsonrpc": "2.0"}
    steps = [
        c(
            {
                "id": 1,
                **rpc,
                "method": "eth_submitLogin",
                "params": [ETH_WALLET_2],
                "worker": worker,
            }
        ),
        s({"id": 1, **rpc, "result": True}),
        c({"id": 2, **rpc, "method": "eth_getWork", "params": []}),
        s({"id": 2, **rpc, "result": work}),
        c(
            {
                "id": 3,
                **rpc,
                "method": "eth_submitHashrate",
                "params": ["0x1dcd6500", "0x" + filler("ethp/id", 32)],
                "worker": worker,
            }
        ),
        s({"id": 3, **rpc, "result": True}),
        s({"id": 0, **rpc, "result": ["0x" + filler("ethp/header2", 32), *work[1:]]}),
        c(
            {
                "id": 4,
                **rpc,
                "method": "eth_submitWork",
                "params": [nonce, work[0], mix],
                "worker": worker,
            }
        ),
        s({"id": 4, **rpc, "result": True}),
    ]
    expect = Expect(
        True,
        "ethproxy",
        "eth",
        login=ETH_WALLET_2,
        wallet=ETH_WALLET_2,
        worker=worker,
        submits=1,
        accepted=1,
        reported_hashrate_hs=500_000_000,
    )
    return Script("ethproxy", 8008, "lines", tuple(steps), expect, "open-ethereum-pool STRATUM.md")
