"""The records and byte builders every session script uses."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

BTC_WALLET = "bc1qut98v2r0r0v7kyvf8x7y66vra09aflj5hek0ud"
LTC_WALLET = "LZJ8pHPy9yCkDkF5Qj4E8aooPBTWV5wMEK"
ZEC_WALLET = "t1WRzkqvS8DmTsm3udx2W8RsLV21MgG7xBc"
ETH_WALLET = "0x90bdf4ef831cbc0dabf48963dadf59a713f8fef0"
ETH_WALLET_2 = "0x254e7c13a6ea3b7b903928f68c352f25db23e1d6"
ERG_WALLET = "9foSNB4C8r7gWnygVmv2WPP4k3sWYagzzoaYvfT7FtAY1K1wap1"
KAS_WALLET = "kaspa:qrytfxa6yaalyvk5kfysgsexjm3dd4akmyjdqsmphg7gc64v98ga70ly84nmk"
GRIN_WALLET = "grin1cwv3ex79skv9nuvryupsjntau4y5fmqda5hk8t00qyaesdkv2nsqx8mmga"
XMR_WALLET = (
    "48Z98wuMAFdGAszDGwXTQR1816yqHPhETDsBMsT1gWp47vURBwxQnWE"
    "hvaAZxULS1XgRyLsGGHZDKLwNc9pTMbLR4gv2nr8"
)

CLIENT, SERVER = "client", "server"
Step = tuple[str, bytes]


@dataclass(frozen=True, slots=True)
class Expect:
    """What the wire reveals about a conversation (not what a pool's web page would)."""

    mining: bool
    dialect: str | None
    coin: str | None = None
    miner_side: str | None = CLIENT
    login: str | None = None
    wallet: str | None = None
    worker: str | None = None
    agent: str | None = None
    submits: int = 0  # shares the miner sent
    accepted: int = 0  # of those, the pool accepted
    difficulty: float | None = None  # last share difficulty the pool set
    reported_hashrate_hs: float | None = None  # what the miner said it does


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    port: int  # a port pools commonly use for it
    framing: str  # "lines" (JSON lines), "http" or "binary"
    steps: tuple[Step, ...]
    expect: Expect
    source: str  # the spec it follows

    def sent_by(self, side: str) -> bytes:
        return b"".join(data for who, data in self.steps if who == side)

    def json_messages(self) -> list[tuple[str, Any]]:
        """(side, parsed JSON) for every line of a "lines" script."""
        if self.framing != "lines":
            raise ValueError(f"{self.name} is not JSON lines")
        return [(side, json.loads(data)) for side, data in self.steps]


# --- builders ----------------------------------------------------------------------------


def filler(label: str, size: int) -> str:
    """`size` bytes of deterministic filler as hex (SHA-256 in counter mode)."""
    out = b"".join(hashlib.sha256(f"{label}/{n}".encode()).digest() for n in range(size // 32 + 1))
    return out[:size].hex()


def line(obj: Any, *, spaced: bool = False) -> bytes:
    """One JSON line; `spaced` mimics miners that print `{"id": 1, ...}` (cgminer, specs)."""
    seps = (", ", ": ") if spaced else (",", ":")
    return json.dumps(obj, separators=seps).encode() + b"\n"


def c(obj: Any, *, spaced: bool = False) -> Step:
    return CLIENT, line(obj, spaced=spaced)


def s(obj: Any, *, spaced: bool = False) -> Step:
    return SERVER, line(obj, spaced=spaced)


def http_request(
    method: str, target: str, headers: list[tuple[str, str]], body: bytes = b""
) -> bytes:
    head = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers)]
    if body or method == "POST":
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def http_response(status: int, reason: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    head = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers)]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def ok(rid: Any) -> dict[str, Any]:
    return {"id": rid, "result": True, "error": None}
