"""EthProxy / Claymore stratum: Ethereum getwork calls as JSON lines on raw TCP.

The miner sends `eth_submitLogin` [wallet(.worker), pass] (Claymore adds a
top-level "worker"), `eth_getWork`, `eth_submitWork` [nonce, header, mix] and
`eth_submitHashrate` [rate, id]; the pool answers true, or work as
[header, seed, target(, block number)], and pushes new work as a response to
no request ({"id": 0, "result": [...]}).

An Ethereum node speaks eth_* too: any other eth_/net_/web3_ call before the
pool confirmed means this is a node API, not a pool. The same calls carried in
HTTP are the getwork detector's, so HTTP messages end this detector.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sensor.detect.base import JsonMessage, Message, is_response, method_of, split_login
from sensor.detect.dialect_base import JsonDialect
from sensor.model import Finding, Side
from sensor.rules.model import CoinHints, DialectRule

GET_WORK = "eth_getWork"
SUBMIT_HASHRATE = "eth_submitHashrate"
WORK_PUSH = "work-push"  # evidence name for work the pool pushed unasked

_HASH_HEX_LEN = 66  # "0x" + 32 bytes
# Unasked work must carry a real share target: pools set difficulties of 1e8 and
# more (target < 2^230), while a random 32-byte hash (say, block hashes from
# eth_getFilterChanges) falls under 2^240 only once in 65536.
_MAX_PUSHED_TARGET = 1 << 240


def _hex_int(value: Any) -> int | None:
    if not isinstance(value, str) or not value.startswith(("0x", "0X")) or len(value) > 66:
        return None
    try:
        return int(value, 16)
    except ValueError:
        return None


def target_difficulty(target: int) -> float | None:
    """Share difficulty from a 256-bit Ethash target.

    A share is a hash below the target, which a random hash is with probability
    target / 2^256, so difficulty (expected hashes per share) = 2^256 / target.
    """
    return (1 << 256) / target if target > 0 else None


def work_target(result: Any) -> int | None:
    """The target of an eth_getWork result [header, seed, target(, number)], if it is one."""
    if not isinstance(result, list) or len(result) not in (3, 4):
        return None
    header, seed = result[0], result[1]
    if not all(isinstance(h, str) and len(h) == _HASH_HEX_LEN for h in (header, seed)):
        return None
    if _hex_int(header) is None or _hex_int(seed) is None:
        return None
    target = _hex_int(result[2])
    if target is None or (len(result) == 4 and _hex_int(result[3]) is None):
        return None
    return target


def _hashrate(params: Any) -> int | None:
    # eth_submitHashrate [rate, client id]: the miner's own rate in H/s, as hex.
    return _hex_int(params[0]) if isinstance(params, list) and params else None


def _is_login(params: Any) -> bool:
    return isinstance(params, list) and bool(params) and isinstance(params[0], str)


def _is_submit(params: Any) -> bool:
    return (
        isinstance(params, list)
        and len(params) == 3
        and all(_hex_int(p) is not None for p in params)
    )


ETHASH_FAMILY = frozenset({"ethash", "etchash", "ubqhash", "progpow"})


class EthProxyDetector(JsonDialect):
    """Detects the EthProxy (Claymore) dialect in one flow."""

    dialect: ClassVar[str] = "ethproxy"

    def __init__(self, rule: DialectRule, coins: CoinHints) -> None:
        super().__init__(rule, coins)

    def feed(self, msg: Message) -> None:
        if self._declined:
            return
        if not isinstance(msg, JsonMessage) or not isinstance(msg.obj, dict):
            self._contrary()  # HTTP (getwork's), binary, or non-object JSON
            return
        obj = msg.obj
        method = method_of(obj)
        if method is not None:
            self._on_request(msg.side, method, obj)
        elif is_response(obj):
            self._on_response(msg.side, obj)
        else:
            self._contrary()

    def finding(self) -> Finding | None:
        if self._declined or self._miner is None:
            return None
        hint = self._coins.for_wallet(self._draft.login)
        if hint is None or hint.algorithm not in ETHASH_FAMILY:
            # NiceHash pays Ethash work to a BTC address: such a wallet names no coin.
            return self._build(self._rule.coin, self._rule.algorithm)
        return self._build(hint.coin, hint.algorithm)

    # -- requests ------------------------------------------------------------------

    def _on_request(self, side: Side, method: str, obj: dict[str, Any]) -> None:
        params: Any = obj.get("params")
        if method not in self._rule.client_methods or not self._shaped(method, params):
            self._contrary()
            return
        if not self._claim(side):
            return  # a miner's call from the pool's side: not ours to count
        if method in self._rule.login_methods:
            self._on_login(params, obj.get("worker"))
        elif method in self._rule.share_methods:
            self._draft.shares += 1
            self._book.submit(obj.get("id"), params[1].lower())  # [nonce, header, mix digest]
        elif method == SUBMIT_HASHRATE:
            self._draft.reported_hashrate_hs = float(_hashrate(params) or 0)
        self._ledger.request(side, obj)
        self._note(method)

    def _shaped(self, method: str, params: Any) -> bool:
        if method in self._rule.login_methods:
            return _is_login(params)
        if method in self._rule.share_methods:
            return _is_submit(params)
        if method == SUBMIT_HASHRATE:
            return _hashrate(params) is not None
        if method == GET_WORK:
            return not params  # [] or absent: a non-empty one is someone else's call
        return True

    def _on_login(self, params: Any, worker: Any) -> None:
        draft = self._draft
        draft.login = params[0]
        draft.wallet, draft.worker = split_login(draft.login)
        # Claymore sends its -eworker name beside the login; the login's own suffix wins.
        if draft.worker is None and isinstance(worker, str) and worker:
            draft.worker = worker

    # -- responses -----------------------------------------------------------------

    def _on_response(self, side: Side, obj: dict[str, Any]) -> None:
        method = self._ledger.answered(side, obj)
        result: Any = obj.get("result")
        target = work_target(result)
        if method is None:
            # Work the pool pushed (or answered to a request we missed).
            if target is not None and target < _MAX_PUSHED_TARGET and self._claim(side.other):
                self._on_work(target, result[0].lower())
                self._note(WORK_PUSH)
            return
        if self._miner != side.other:
            return
        failed = obj.get("error") not in (None, False)
        if method in self._rule.share_methods:
            self._tally(obj.get("id"), not failed and result is True)
        elif method == GET_WORK and target is not None:
            self._on_work(target, result[0].lower())
        elif result is True and self._rule.confirm_on_result:
            self._answered = True

    def _on_work(self, target: int, header: Any) -> None:
        """Work [header, seed, target, ...]: the header names the job a submit answers."""
        self._answered = True
        difficulty = target_difficulty(target)
        if difficulty is not None:
            self._difficulty(difficulty, header)
