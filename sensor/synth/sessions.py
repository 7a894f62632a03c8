"""What miners and pools say, per dialect: handshake, jobs, retargets, submits and answers.

Each script is sans-I/O: it returns JSON lines as bytes and knows how many
hashes one share stands for, in the unit the estimator uses
(sensor/estimate/hashrate.py), so the ground truth and the estimate speak of
the same hashes. Messages follow the public protocol descriptions: slush
stratum v1, NiceHash EthereumStratum/1.0.0, XMRig's CryptoNote stratum.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import orjson

from sensor.synth.scenario import Pool

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_U32, _U64 = 0xFFFFFFFF, (1 << 64) - 1
TWO_32 = float(1 << 32)
# Stratum-v1 difficulty 1 in hashes: 2^32 for SHA-256d, 2^16 for Scrypt pools.
_V1_UNIT = {"btc": TWO_32, "ltc": float(1 << 16)}
_AGENTS = {
    "btc": "cgminer/4.11.1",
    "ltc": "sgminer/5.6.1",
    "eth": "ethminer/0.19.0",
    "xmr": "XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/11.4.0",
}


def _digest(label: str, size: int) -> bytes:
    return hashlib.shake_128(label.encode()).digest(size)


def hexdata(label: str, nbytes: int) -> str:
    """Stable pseudo-random hex for hashes, blobs and nonces."""
    return _digest(label, nbytes).hex()


def _base58(label: str, length: int) -> str:
    return "".join(_B58[b % 58] for b in _digest(label, length))


def wallet(coin: str, label: str) -> str:
    """An address of the coin's shape (not a valid checksum: nobody pays it)."""
    if coin == "btc":
        return "1" + _base58(label, 33)
    if coin == "ltc":
        return "L" + _base58(label, 33)
    if coin == "eth":
        return "0x" + hexdata(label, 20)
    return "4" + "0123456789AB"[_digest(label, 1)[0] % 12] + _base58(label, 93)


def cryptonote_target(difficulty: float) -> str:
    """The job target for a difficulty: 32 bits little-endian, 64 bits above 2^32."""
    if difficulty < _U32:
        return max(1, round(_U32 / difficulty)).to_bytes(4, "little").hex()
    return max(1, round(_U64 / difficulty)).to_bytes(8, "little").hex()


def hashes_per_share(dialect: str, coin: str, difficulty: float) -> float:
    """Expected hashes behind one share at `difficulty`, as the estimator counts them.

    CryptoNote counts the target actually written (a rounded 32- or 64-bit
    value), since that, not the declared difficulty, is what the estimator reads.
    """
    if dialect == "stratum-v1":
        return difficulty * _V1_UNIT[coin]
    if dialect == "ethereum-stratum":
        return difficulty * TWO_32
    hexed = cryptonote_target(difficulty)
    top = _U32 if len(hexed) == 8 else _U64
    return top / int.from_bytes(bytes.fromhex(hexed), "little")


def _json_number(value: float) -> float | int:
    """A difficulty as pools write it: whole numbers without a fraction."""
    return int(value) if value.is_integer() else value


def line(obj: object) -> bytes:
    return orjson.dumps(obj) + b"\n"


def _ok(rid: int) -> bytes:
    return line({"id": rid, "result": True, "error": None})


class Script(Protocol):
    """One miner's conversation with its pool; request ids count up from the handshake."""

    def handshake(self) -> list[tuple[bool, bytes]]: ...
    def job(self, n: int) -> bytes: ...
    def retarget(self, n: int, difficulty: float) -> list[bytes]: ...
    def submit(self, n: int, job: int) -> bytes: ...
    def accept(self, n: int) -> bytes: ...


class StratumV1:
    """slush stratum v1: subscribe, authorize, set_difficulty, notify, submit."""

    def __init__(self, pool: Pool, label: str) -> None:
        self.pool, self.label = pool, label
        self.login = f"{wallet(pool.coin, label)}.rig{_digest(label, 1)[0]:02d}"

    def _subscribe(self) -> tuple[list[object], list[object]]:
        """The subscribe params the miner sends and the result the pool answers."""
        agent = _AGENTS[self.pool.coin]
        return [agent], [[["mining.set_difficulty", "1"], ["mining.notify", "1"]], "08000002", 4]

    def handshake(self) -> list[tuple[bool, bytes]]:
        params, subscribed = self._subscribe()
        return [
            (True, line({"id": 1, "method": "mining.subscribe", "params": params})),
            (False, line({"id": 1, "result": subscribed, "error": None})),
            (True, line({"id": 2, "method": "mining.authorize", "params": [self.login, "x"]})),
            (False, _ok(2)),
            (False, self._set_difficulty(self.pool.difficulty)),
            (False, self.job(0)),
        ]

    def _set_difficulty(self, difficulty: float) -> bytes:
        params = [_json_number(difficulty)]
        return line({"id": None, "method": "mining.set_difficulty", "params": params})

    def retarget(self, n: int, difficulty: float) -> list[bytes]:
        """A new difficulty, then a job to apply it to: it counts from the next notify on."""
        return [self._set_difficulty(difficulty), self.job(n)]

    def job(self, n: int) -> bytes:
        coinb1 = (
            "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff"
        )
        params = [
            f"{n:x}",
            hexdata(f"{self.pool.name}/prev/{n}", 32),
            coinb1 + hexdata(f"{self.pool.name}/cb1/{n}", 20),
            hexdata(f"{self.pool.name}/cb2/{n}", 40),
            [],
            "20000000",
            "17034219",
            f"{0x6553F100 + n:08x}",
            True,
        ]
        return line({"id": None, "method": "mining.notify", "params": params})

    def submit(self, n: int, job: int) -> bytes:
        nonce = hexdata(f"{self.label}/nonce/{n}", 4)
        params = [self.login, f"{job:x}", f"{n:08x}", "6553f100", nonce]
        return line({"id": n + 3, "method": "mining.submit", "params": params})

    def accept(self, n: int) -> bytes:
        return _ok(n + 3)


class EthereumStratum(StratumV1):
    """NiceHash EthereumStratum/1.0.0: subscribe names the protocol, notify seed/header."""

    def _subscribe(self) -> tuple[list[object], list[object]]:
        agent, proto = _AGENTS["eth"], "EthereumStratum/1.0.0"
        return [agent, proto], [["mining.notify", hexdata(f"{self.label}/sub", 8), proto], "a2eea0"]

    def job(self, n: int) -> bytes:
        seed = hexdata(f"{self.pool.name}/seed", 32)
        header = hexdata(f"{self.pool.name}/header/{n}", 32)
        return line(
            {"id": None, "method": "mining.notify", "params": [f"{n:08x}", seed, header, True]}
        )

    def submit(self, n: int, job: int) -> bytes:
        nonce = hexdata(f"{self.label}/nonce/{n}", 5)
        return line(
            {"id": n + 3, "method": "mining.submit", "params": [self.login, f"{job:08x}", nonce]}
        )


class CryptoNote:
    """XMRig: login (agent, algo list, rig id), pushed jobs, submits answered with status OK.

    The pool's current target is state: after a retarget, later jobs carry the new one.
    """

    def __init__(self, pool: Pool, label: str) -> None:
        self.pool, self.label = pool, label
        self.login = wallet(pool.coin, label)
        self.session = hexdata(f"{label}/session", 5)
        self.target = cryptonote_target(pool.difficulty)

    def _job(self, n: int) -> dict[str, object]:
        return {
            "blob": hexdata(f"{self.pool.name}/blob/{n}", 76),
            "job_id": str(700000 + n),
            "target": self.target,
            "algo": "rx/0",
            "height": 3000000 + n,
            "seed_hash": hexdata(f"{self.pool.name}/seed", 32),
        }

    def handshake(self) -> list[tuple[bool, bytes]]:
        params = {"login": self.login, "pass": "x", "agent": _AGENTS["xmr"], "algo": ["rx/0"]}
        params["rigid"] = f"rig{_digest(self.label, 1)[0]:02d}"
        result = {"id": self.session, "job": self._job(0), "status": "OK"}
        return [
            (True, line({"id": 1, "jsonrpc": "2.0", "method": "login", "params": params})),
            (False, line({"id": 1, "jsonrpc": "2.0", "error": None, "result": result})),
        ]

    def job(self, n: int) -> bytes:
        return line({"jsonrpc": "2.0", "method": "job", "params": self._job(n)})

    def retarget(self, n: int, difficulty: float) -> list[bytes]:
        """CryptoNote has no set_difficulty: the new target rides on a new job."""
        self.target = cryptonote_target(difficulty)
        return [self.job(n)]

    def submit(self, n: int, job: int) -> bytes:
        params = {
            "id": self.session,
            "job_id": str(700000 + job),
            "nonce": hexdata(f"{self.label}/nonce/{n}", 4),
            "result": hexdata(f"{self.label}/result/{n}", 32),
            "algo": "rx/0",
        }
        return line({"id": n + 2, "jsonrpc": "2.0", "method": "submit", "params": params})

    def accept(self, n: int) -> bytes:
        ok = {"status": "OK"}
        return line({"id": n + 2, "jsonrpc": "2.0", "error": None, "result": ok})


SCRIPTS: dict[str, type[StratumV1] | type[CryptoNote]] = {
    "stratum-v1": StratumV1,
    "ethereum-stratum": EthereumStratum,
    "cryptonote": CryptoNote,
}


def script(pool: Pool, label: str) -> Script:
    return SCRIPTS[pool.dialect](pool, label)
