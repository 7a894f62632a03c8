"""CryptoNote / Monero pool stratum (XMRig, xmr-stak, MinerGate, NiceHash CryptoNight).

The miner sends `login` {login, pass, agent[, algo, rigid]}, `getjob` {id},
`submit` {id, job_id, nonce, result} and `keepalived` {id}; the pool answers the
login with {id, job, status} and pushes `job` {blob, job_id, target[, algo,
height, seed_hash]}. Shares are answered {"status": "OK"} or with an error.

Grin uses the same words (login, submit, job) with other shapes (pre_pow,
edge_bits, pow, getjobtemplate); seeing those, this detector declines.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sensor.detect.base import JsonMessage, Message, is_response, method_of, split_login
from sensor.detect.dialect_base import JsonDialect
from sensor.detect.grin import GRIN_ONLY_KEYS, GRIN_ONLY_METHODS, grin_login_hint
from sensor.model import Finding, Side
from sensor.rules.model import CoinHints, DialectRule

# XMRig's algorithm names where the project has a family name for them.
_ALGORITHMS = {
    "rx/0": "randomx",
    "randomx": "randomx",
    "rx/wow": "randomwow",
    "rx/arq": "randomarq",
    "rx/sfx": "randomsfx",
    "rx/keva": "randomkeva",
    "rx/graft": "randomgraft",
}

_U32_MAX = 0xFFFFFFFF
_U64_MAX = 0xFFFFFFFFFFFFFFFF


def target_difficulty(target: Any) -> float | None:
    """Share difficulty from a CryptoNote job target (8 or 16 hex characters).

    The target is the top 32 (or 64) bits of the 256-bit boundary a share hash
    must stay under, little-endian. A random hash passes with probability
    target / 2^32, so difficulty = 0xFFFFFFFF / target32 (or (2^64 - 1) / target64
    for 64-bit targets): "711b0d00" is NiceHash's 5000, "cf8b0000" is 120001.
    """
    if not isinstance(target, str) or len(target) not in (8, 16):
        return None
    try:
        value = int.from_bytes(bytes.fromhex(target), "little")
    except ValueError:
        return None
    if value == 0:
        return None
    return (_U32_MAX if len(target) == 8 else _U64_MAX) / value


def algorithm_name(algo: Any) -> str | None:
    """Our algorithm name for an XMRig `algo` value (rx/0 -> randomx; others as given)."""
    if not isinstance(algo, str) or not algo:
        return None
    name = algo.lower()
    return _ALGORITHMS.get(name, name)


def _is_job(params: Any) -> bool:
    return (
        isinstance(params, dict)
        and isinstance(params.get("blob"), str)
        and isinstance(params.get("target"), str)
        and "job_id" in params
    )


def _is_login(params: Any) -> bool:
    # A web API's {"user", "password"} login is not this: the pool login names
    # the wallet as `login` and comes with `pass` and/or the miner's `agent`.
    return (
        isinstance(params, dict)
        and isinstance(params.get("login"), str)
        and ("pass" in params or "agent" in params)
    )


def _is_submit(params: Any) -> bool:
    return (
        isinstance(params, dict)
        and "job_id" in params
        and isinstance(params.get("nonce"), str)
        and isinstance(params.get("result"), str)
    )


def _is_session_call(params: Any) -> bool:
    # getjob / keepalived carry the session id the login result handed out.
    return isinstance(params, dict) and "id" in params


def _grin_shaped(method: str, obj: dict[str, Any]) -> bool:
    if method in GRIN_ONLY_METHODS or "result" in obj or obj.get("error") is not None:
        return True  # Grin servers echo the method in their responses
    params = obj.get("params")
    return isinstance(params, dict) and not GRIN_ONLY_KEYS.isdisjoint(params)


def _share_ok(result: Any) -> bool:
    # Pools answer {"status": "OK"}; a few answer a bare true.
    if isinstance(result, dict):
        return str(result.get("status", "")).upper() == "OK"
    return result is True


def _job_in(result: Any) -> dict[str, Any] | None:
    """The job a login result ({id, job, status}) or getjob result carries."""
    if not isinstance(result, dict):
        return None
    job = result.get("job", result)
    return job if _is_job(job) else None


class CryptoNoteDetector(JsonDialect):
    """Detects the CryptoNote stratum dialect in one flow."""

    dialect: ClassVar[str] = "cryptonote"

    def __init__(self, rule: DialectRule, coins: CoinHints) -> None:
        super().__init__(rule, coins)
        self._vocab = rule.client_methods | rule.server_methods
        self._strong = False  # a job or share: not just a login Grin could share
        self._job_algo: str | None = None  # what the pool says the job is
        self._login_algo: str | None = None  # what the miner offered, if only one

    def feed(self, msg: Message) -> None:
        if self._declined:
            return
        if not isinstance(msg, JsonMessage) or not isinstance(msg.obj, dict):
            self._contrary()  # HTTP, binary or non-object JSON is not CryptoNote stratum
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
        draft = self._draft
        if not (self._strong or self._confirmed) and grin_login_hint(
            self._coins, draft.login, draft.agent
        ):
            return None  # a bare login that points at Grin is the Grin detector's
        return self._build(*self._coin_algorithm())

    # -- requests and notifications ------------------------------------------------

    def _on_request(self, side: Side, method: str, obj: dict[str, Any]) -> None:
        if _grin_shaped(method, obj):
            self._declined = True
            return
        verdict = self._handle(side, method, obj.get("params")) if method in self._vocab else False
        if verdict is None:
            return  # a CryptoNote word whose shape we do not know (mining.authorize)
        if not verdict:
            self._contrary()
            return
        self._ledger.request(side, obj)
        self._note(method)
        if method in self._rule.share_methods:
            self._book.submit(obj.get("id"), obj["params"].get("job_id"))

    def _handle(self, side: Side, method: str, params: Any) -> bool | None:
        """True: CryptoNote-shaped and taken in; False: off-shape; None: cannot judge."""
        rule = self._rule
        if method in rule.server_methods:
            return _is_job(params) and self._claim(side.other) and self._on_job(params)
        if method in rule.login_methods:
            return _is_login(params) and self._claim(side) and self._on_login(params)
        if method in rule.share_methods:
            return _is_submit(params) and self._claim(side) and self._on_submit()
        if isinstance(params, dict):  # getjob / keepalived: CryptoNote's own words
            ok = _is_session_call(params) and self._claim(side)
            self._strong = self._strong or ok
            return ok
        return None

    def _on_job(self, job: dict[str, Any]) -> bool:
        self._strong = self._answered = True
        difficulty = target_difficulty(job.get("target"))
        if difficulty is not None:
            self._difficulty(difficulty, job.get("job_id"))
        self._job_algo = algorithm_name(job.get("algo")) or self._job_algo
        return True

    def _on_login(self, params: dict[str, Any]) -> bool:
        draft = self._draft
        draft.login = params["login"]
        draft.wallet, draft.worker = split_login(draft.login)
        rigid = params.get("rigid")  # XMRig's rig id names the worker beside the login
        if draft.worker is None and isinstance(rigid, str) and rigid:
            draft.worker = rigid
        agent = params.get("agent")
        draft.agent = agent if isinstance(agent, str) and agent else None
        algos = params.get("algo")
        # XMRig offers every algorithm it supports; only a single one says what is mined.
        if isinstance(algos, list) and len(algos) == 1:
            self._login_algo = algorithm_name(algos[0])
        return True

    def _on_submit(self) -> bool:
        self._strong = True
        self._draft.shares += 1
        return True

    # -- responses -----------------------------------------------------------------

    def _on_response(self, side: Side, obj: dict[str, Any]) -> None:
        result = obj.get("result")
        if isinstance(result, dict) and not GRIN_ONLY_KEYS.isdisjoint(result):
            self._declined = True  # a Grin job template
            return
        method = self._ledger.answered(side, obj)
        job = _job_in(result)
        if job is not None and self._claim(side.other):
            self._on_job(job)  # login / getjob result, even when the request was missed
            self._note("job")
        if method is None or self._miner != side.other:
            return
        failed = obj.get("error") not in (None, False)
        if method in self._rule.share_methods:
            self._tally(obj.get("id"), not failed and _share_ok(result))
        if not failed and result is not None and self._rule.confirm_on_result:
            self._answered = True

    # -- helpers ---------------------------------------------------------------------

    def _coin_algorithm(self) -> tuple[str | None, str | None]:
        algorithm = self._job_algo or self._login_algo
        draft = self._draft
        hint = self._coins.for_wallet(draft.login)
        if hint is not None:  # the wallet decides the coin
            same_family = hint.coin == self._rule.coin
            return hint.coin, algorithm or (hint.algorithm if same_family else None)
        hint = self._coins.for_agent(draft.agent)
        # Miner software mines many coins: trust its hint only if the algorithm agrees.
        if hint is not None and algorithm in (None, hint.algorithm):
            return hint.coin, hint.algorithm
        if algorithm is not None and algorithm == self._rule.algorithm:
            return self._rule.coin, algorithm
        return None, algorithm
