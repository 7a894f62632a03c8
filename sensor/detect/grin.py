"""Grin stratum (grin-miner, lolMiner, GMiner, NiceHash's Grin flavour).

The miner sends `login` {login, pass, agent}, `getjobtemplate`, `submit`
{edge_bits, height, job_id, nonce, pow: 42 ints}, `keepalive` and `status`; the
pool pushes `job` {difficulty, height, job_id, pre_pow}. Unlike plain JSON-RPC,
Grin servers echo the request's `method` in their responses, so a response
names what it answers even when the request was not captured.

CryptoNote uses the same words (login, submit, job) with other shapes (blob,
target, result hash); seeing those, this detector declines in their favour.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sensor.detect.base import JsonMessage, Message, method_of, split_login
from sensor.detect.dialect_base import JsonDialect
from sensor.model import Finding, Side
from sensor.rules.model import CoinHints, DialectRule

# What only Grin says: a CryptoNote detector declines on these.
GRIN_ONLY_METHODS = frozenset({"getjobtemplate"})
GRIN_ONLY_KEYS = frozenset({"pre_pow", "edge_bits", "pow"})

# What only CryptoNote says (XMRig/xmr-stak): this detector declines on these.
_CRYPTONOTE_METHODS = frozenset({"getjob", "keepalived"})
_CRYPTONOTE_PARAM_KEYS = frozenset({"blob", "target", "result", "algo", "rigid"})
_CRYPTONOTE_RESULT_KEYS = frozenset({"job", "blob", "status"})

_LOGIN_KEYS = ("login", "pass", "agent")  # the spec says a login MUST carry all three
_PROOF_SIZE = 42  # Cuckoo Cycle proofs in Grin are cycles of 42 edges


def grin_login_hint(coins: CoinHints, login: str | None, agent: str | None) -> bool:
    """Whether a login (seen without any job or share) points at Grin rather than CryptoNote."""
    for hint in (coins.for_wallet(login), coins.for_agent(agent)):
        if hint is not None:
            return hint.coin == "grin"
    # coins.yaml has no agent pattern for Grin miners; grin-miner names itself.
    return bool(agent) and "grin" in str(agent).lower()


def _is_job(params: Any) -> bool:
    return (
        isinstance(params, dict)
        and isinstance(params.get("pre_pow"), str)
        and "job_id" in params
        and "height" in params
    )


def _is_login(params: Any) -> bool:
    return (
        isinstance(params, dict)
        and all(key in params for key in _LOGIN_KEYS)
        and isinstance(params.get("login"), str)
    )


def _is_submit(params: Any) -> bool:
    if not isinstance(params, dict) or "job_id" not in params:
        return False
    pow_ = params.get("pow")
    return (
        isinstance(params.get("edge_bits"), int)
        and isinstance(params.get("nonce"), int)
        and isinstance(pow_, list)
        and len(pow_) == _PROOF_SIZE
        and all(isinstance(x, int) for x in pow_)
    )


def _cryptonote_shaped(method: str, params: Any) -> bool:
    if method in _CRYPTONOTE_METHODS:
        return True
    return isinstance(params, dict) and not _CRYPTONOTE_PARAM_KEYS.isdisjoint(params)


def _accepted(result: Any) -> bool:
    # "ok", or "blockfound - <hash>" when the share also solved a block.
    return isinstance(result, str) and (result.lower() == "ok" or result.startswith("block"))


def _algorithm(edge_bits: int | None, default: str | None) -> str | None:
    # Grin mines two graph families: 29-bit cuckaroo (GPU) and 31/32-bit cuckatoo (ASIC).
    if edge_bits == 29:
        return "cuckaroo"
    if edge_bits is not None and edge_bits >= 31:
        return "cuckatoo"
    return default


class GrinDetector(JsonDialect):
    """Detects the Grin stratum dialect in one flow."""

    dialect: ClassVar[str] = "grin"

    def __init__(self, rule: DialectRule, coins: CoinHints) -> None:
        super().__init__(rule, coins)
        self._vocab = rule.client_methods | rule.server_methods
        self._login_seen = False  # a Grin-shaped login (ambiguous with CryptoNote alone)
        self._strong = False  # a job, job template or share: Grin beyond doubt
        self._edge_bits: int | None = None

    def feed(self, msg: Message) -> None:
        if self._declined:
            return
        if not isinstance(msg, JsonMessage) or not isinstance(msg.obj, dict):
            self._contrary()  # HTTP, binary or non-object JSON is not Grin stratum
            return
        obj = msg.obj
        method = method_of(obj)
        if "result" in obj or obj.get("error") is not None:
            self._on_response(msg.side, obj, method)
        elif method is not None:
            self._on_request(msg.side, method, obj)
        else:
            self._contrary()

    def finding(self) -> Finding | None:
        if self._declined or self._miner is None:
            return None
        if not (self._strong or self._confirmed or self._grin_login()):
            return None
        return self._build(*self._coin_algorithm())

    def _grin_login(self) -> bool:
        # A bare login is CryptoNote's too: claim it only when it points at Grin.
        draft = self._draft
        return self._login_seen and grin_login_hint(self._coins, draft.login, draft.agent)

    # -- requests and notifications ------------------------------------------------

    def _on_request(self, side: Side, method: str, obj: dict[str, Any]) -> None:
        params: Any = obj.get("params")
        if _cryptonote_shaped(method, params):
            self._declined = True
            return
        verdict = self._handle(side, method, params) if method in self._vocab else False
        if verdict is None:
            return  # a Grin word that tells nothing yet
        if not verdict:
            self._contrary()
            return
        self._ledger.request(side, obj)
        self._note(method)
        if method in self._rule.share_methods:
            self._book.submit(obj.get("id"), params.get("job_id"))

    def _handle(self, side: Side, method: str, params: Any) -> bool | None:
        """True: Grin-shaped and taken in; False: off-shape; None: too generic to judge."""
        rule = self._rule
        if method in rule.server_methods:
            return _is_job(params) and self._claim(side.other) and self._on_job(params)
        if method in rule.login_methods:
            return _is_login(params) and self._claim(side) and self._on_login(params)
        if method in rule.share_methods:
            return _is_submit(params) and self._claim(side) and self._on_submit(params)
        if method in GRIN_ONLY_METHODS:
            ok = self._claim(side)
            self._strong = self._strong or ok
            return ok
        # keepalive / status: Grin words, but too generic to tell anything alone.
        return None if self._miner is None else self._miner == side

    def _on_job(self, params: Any) -> bool:
        self._strong = self._answered = True
        self._set_difficulty(params.get("difficulty"), params.get("job_id"))
        return True

    def _on_login(self, params: dict[str, Any]) -> bool:
        draft = self._draft
        draft.login = str(params["login"])
        draft.wallet, draft.worker = split_login(draft.login)
        agent = params.get("agent")
        draft.agent = agent if isinstance(agent, str) and agent else None
        self._login_seen = True
        return True

    def _on_submit(self, params: dict[str, Any]) -> bool:
        self._strong = True
        self._draft.shares += 1
        self._edge_bits = params["edge_bits"]
        return True

    # -- responses -----------------------------------------------------------------

    def _on_response(self, side: Side, obj: dict[str, Any], echoed: str | None) -> None:
        result = obj.get("result")
        if isinstance(result, dict) and not _CRYPTONOTE_RESULT_KEYS.isdisjoint(result):
            self._declined = True  # a CryptoNote login/submit/keepalived result
            return
        # Match by id (the ledger wants a plain response, without the echoed method);
        # the echo still tells what an answer to a request we missed was about.
        asked = self._ledger.answered(side, {"id": obj.get("id"), "result": True})
        method = asked or echoed
        if method in GRIN_ONLY_METHODS and _is_job(result) and self._claim(side.other):
            self._on_job(result)  # a job template, even if its request was missed
            self._note(method)
            return
        if method is None or self._miner != side.other:
            return  # the request was never seen, or Grin was not seen yet
        failed = obj.get("error") is not None
        # Only shares we saw submitted are tallied.
        if asked in self._rule.share_methods and (failed or _accepted(result)):
            self._tally(obj.get("id"), not failed)
        if not failed and result is not None and self._rule.confirm_on_result:
            self._answered = True

    # -- helpers ---------------------------------------------------------------------

    def _set_difficulty(self, value: Any, job_id: Any) -> None:
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            self._difficulty(float(value), job_id)

    def _coin_algorithm(self) -> tuple[str | None, str | None]:
        hint = self._coins.for_wallet(self._draft.login)
        agent_hint = self._coins.for_agent(self._draft.agent)
        # Miner software mines many coins: its hint counts only when it names Grin.
        if hint is None and agent_hint is not None and agent_hint.coin == self._rule.coin:
            hint = agent_hint
        coin = hint.coin if hint is not None else self._rule.coin
        # The dialect fixes the PoW family whatever coin pays (NiceHash pays Grin in BTC).
        return coin, _algorithm(self._edge_bits, self._rule.algorithm)
