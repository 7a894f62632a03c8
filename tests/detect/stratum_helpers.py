"""Stratum test helpers shared by the stratum-v1 and ethereum-stratum detector tests.

Sessions are lists of (who, message): "M" messages come from the miner, "P" messages from
the pool. Both test modules feed the same sessions so that the two detectors are checked
against the same flows, and never both claim one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from sensor.detect.base import JsonMessage
from sensor.detect.stratum_v1 import StratumV1Detector
from sensor.model import Side

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"

BTC_WALLET = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
ZEC_WALLET = "t1Zk4kJgQ5eYvB6nX1cHuAqTL2fWmRsPD3g7"
RVN_WALLET = "RXk4kJgQ5eYvB6nX1cHuAqTL2fWmRsPD3g"
LTC_WALLET = "LXk4kJgQ5eYvB6nX1cHuAqTL2fWmRsPD3g"
ERG_WALLET = "9fVd3rEtQXTH3XNMAp7WHpE8vRkqdDq1XZv7Zfq5nH5PpYqfMrS"
KAS_WALLET = "kaspa:qz7ulu4c25dh7fzec9zjyku5xc2kz5q2gk3ndkcfzsl9tj0xn36nezu9ek2wq"
HASH = "4ba8cddecb7a291fae3ea0b21445ac4dea6000fef7de9067c0f6f0c4628f9771"
HASH2 = "abad8f99f3918bf903c6a909d9bbc0fdfa5a2f4b9cb1196175ec825c6610126c"


def req(id_: Any, method: str, *params: Any) -> dict[str, Any]:
    """A request (or, with id None, a notification)."""
    return {"id": id_, "method": method, "params": list(params)}


def note(method: str, *params: Any) -> dict[str, Any]:
    return req(None, method, *params)


def ok(id_: Any, result: Any = True) -> dict[str, Any]:
    return {"id": id_, "result": result, "error": None}


def err(id_: Any, code: int, text: str) -> dict[str, Any]:
    return {"id": id_, "result": None, "error": [code, text, None]}


BTC_NOTIFY = note(
    "mining.notify", "1f", HASH, "01000000010000", "0d2f6e6f64652f", [HASH2], "20000000",
    "1a0ffff0", "5385c669", True,
)  # fmt: skip
BTC_SESSION: list[tuple[str, Any]] = [
    ("M", req(1, "mining.subscribe", "cgminer/4.10.0")),
    ("P", ok(1, [[["mining.set_difficulty", "b4b6"], ["mining.notify", "b4b6"]], "08000002", 4])),
    ("M", req(2, "mining.authorize", BTC_WALLET + ".rig7", "x")),
    ("P", ok(2)),
    ("P", note("mining.set_difficulty", 512)),
    ("P", BTC_NOTIFY),
    ("M", req(3, "mining.submit", "w", "1f", "00000001", "5385c669", "d3560b00")),
    ("P", ok(3)),
    ("M", req(4, "mining.submit", "w", "1f", "00000002", "5385c669", "1fe30b00")),
    ("P", err(4, 23, "Low difficulty share")),
    ("M", req(5, "mining.submit", "w", "1f", "00000003", "5385c669", "2d491400")),
    ("P", ok(5, False)),
    ("P", note("mining.set_difficulty", 1024)),
]


def feed(session, detector_cls=StratumV1Detector, rules=None, coins=None, miner=Side.ORIG):
    """Feed (who, message) pairs to a fresh detector and return it.

    A message is a JSON line, or an object that is serialised and parsed again, so every
    message reaches the detector as the inspector would hand it over.
    """
    detector = detector_cls(rules[detector_cls.dialect], coins)
    for who, message in session:
        side = miner if who == "M" else miner.other
        line = message if isinstance(message, str | bytes) else orjson.dumps(message)
        detector.feed(JsonMessage(side, 1.0, orjson.loads(line)))
    return detector


def reformat(message: dict[str, Any], variant: int) -> bytes:
    """The message as JSON, laid out in another way (variant 1 or 2) or compactly."""
    if variant == 1:
        return orjson.dumps(message, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
    if variant == 2:  # keys reversed, blanks around separators
        text = orjson.dumps(dict(reversed(list(message.items())))).decode()
        return text.replace(",", " ,  ").replace(":", " : ").encode()
    return orjson.dumps(message)


def kadena_sessions() -> list[list[tuple[str, Any]]]:
    """The Kadena pool sessions of the shared reference transcript (skips if absent)."""
    path = SHARED / "reference" / "kadena_stratum_example_sessions_f2pool_poolflare.txt"
    if not path.is_file():
        pytest.skip("shared reference material not available")
    sessions: list[list[tuple[str, Any]]] = []
    for line in path.read_text().splitlines():
        if line.startswith("-- $ tel"):
            sessions.append([])
        elif sessions and (found := re.match(r"-- (\{.*\})\s*$", line)):
            text = found.group(1)
            # The telnet user typed the requests, with a blank after the brace.
            sessions[-1].append(("M" if text.startswith("{ ") else "P", text))
    return sessions


# --- Zcash, Kaspa, Ergo --------------------------------------------------------------------

ZEC_HOST = "zec-eu.example-pool.org"
ZEC_SUBSCRIBE = req(1, "mining.subscribe", "nheqminer/0.5c", None, ZEC_HOST, "3357")
ZEC_NOTIFY = note(
    "mining.notify", "6b1c", "04000000", HASH, HASH2, "0" * 64, "5a1b2c3d", "1c0a1b2c", True
)

KAS_HEADER = [12931420455412366080, 3906541393413434386, 13845519497221418830, 95614198463114]
KAS_SESSION: list[tuple[str, Any]] = [
    ("M", req(1, "mining.subscribe", "BzMiner-v21.1.0", "EthereumStratum/1.0.0")),
    ("P", ok(1, [True, "EthereumStratum/1.0.0"])),
    ("M", req(2, "mining.authorize", KAS_WALLET + ".rig1", "x")),
    ("P", ok(2)),
    ("P", note("set_extranonce", "0029", 6)),
    ("P", note("mining.set_difficulty", 4096.5)),
    ("P", note("mining.notify", "7b", KAS_HEADER, 1700000000000)),
    ("M", req(3, "mining.submit", KAS_WALLET + ".rig1", "7b", "0x9a1c3e5f00000001")),
    ("P", ok(3)),
]

ERGO_TARGET = "28269553036454149273332760011886696253239742350009903329945699220681916416"
ERGO_NOTIFY = note("mining.notify", "4c5d", 1148245, HASH, "", "", 2, ERGO_TARGET, [], True)

# --- look-alikes that must not fire: (line, whether the detector declines) -----------------

LOOKALIKES = [
    ('{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":1}', True),
    ('{"method":"getinfo","params":[],"id":1}', True),
    ('{"method":"subscribe","params":["orders.eu"],"id":7}', True),
    ('{"method":"login","params":{"user":"bob","password":"x"},"id":1}', True),
    ('{"method":"post","params":{"text":"mining.subscribe, mining.notify"},"id":3}', True),
    ('{"request":"agent data","data":[{"host":"web1","key":"mining.notify"}]}', True),
    ('{"ts":"2024-01-01T00:00:00Z","level":"info","msg":"mining.submit accepted"}', True),
    ('[{"method":"mining.subscribe","params":[]}]', True),
    ('{"id":1,"result":true,"error":null}', False),
    ('{"id":2,"result":[[["mining.notify","1"]],"0000",4],"error":null}', False),
    ('{"method":"mining.notify","params":{"user":"x"}}', False),
    ('{"method":"mining.subscribe"}', False),
]
