"""Bitcoin-family JSON stratum (`mining.*`), and the session tracker it shares with EthereumStratum.

Stratum v1 and NiceHash's EthereumStratum/1.0.0 use the same method names, so each detector
parses a flow with the same `StratumSession` and the two differ only in the *family* they
claim. The family comes from protocol shapes (`Shape`, sensor/detect/stratum_shapes.py),
never from the rule's method lists, so both detectors reach the same verdict on the same
flow and never both claim it:

- Ethash family (ethereum-stratum): notify `[job, seedhash, headerhash, clean]`, the
  subscribe result `[["mining.notify", id, "EthereumStratum/1.0.0"], extranonce]`, or a
  subscribe naming "EthereumStratum/x" with nothing contrary seen.
- everything else (stratum-v1): Bitcoin/Litecoin notify, Zcash `mining.set_target`, Kaspa
  (whose miners also say "EthereumStratum/1.0.0" in subscribe), Ergo, Kadena, KawPow, ...
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sensor.detect.base import JsonMessage, Message, response_ok, split_login
from sensor.detect.jsonrpc import RpcLedger
from sensor.detect.shares import ShareBook
from sensor.detect.stratum_shapes import (
    NO_SHAPE,
    NOTIFY_SHAPES,
    STRONG_ETHASH,
    Shape,
    ethash_verdict,
    host_of,
    is_hex,
    is_number,
    notify_shape,
    result_shape,
    submit_shape,
    subscribe_shape,
    target_to_difficulty,
)
from sensor.model import Confidence, Finding, Side
from sensor.rules.model import CoinHint, CoinHints, DialectRule

ETHASH_ALGOS = frozenset({"ethash", "etchash"})
# Marketplaces (NiceHash first of all) pay every algorithm out in BTC, so a Bitcoin login
# says nothing about what is being hashed: it is the weakest coin hint, and no family hint.
NEUTRAL_PAYOUT_COINS = frozenset({"btc"})
_FAMILY_PREFIXES = ("mining.", "client.")
_EXTRANONCE_METHODS = ("mining.set_extranonce", "set_extranonce")
# FishHash (Iron Fish) carries a `body` object instead of params in these.
_BODY_METHODS = frozenset(
    {"mining.subscribe", "mining.notify", "mining.set_target", "mining.submit"}
)
# Shapes that name the coin outright, and shapes that only name the algorithm.
_SHAPE_COINS = (
    (Shape.KASPA_NOTIFY, "kas", "kheavyhash"),
    (Shape.ERGO_NOTIFY, "erg", "autolykos2"),
    (Shape.KADENA_NOTIFY, "kda", "blake2s"),
)
_SHAPE_ALGOS = ((Shape.KAWPOW_NOTIFY, "kawpow"), (Shape.ZHASH_NOTIFY, "zhash"))


def _well_formed(method: str, params: Any, obj: dict[str, Any]) -> bool:
    """Whether a request has the params shape its method needs to count as evidence."""
    if isinstance(params, list):
        first = params[0] if params else None
        if method == "mining.authorize":
            return isinstance(first, str)
        if method == "mining.submit":
            return len(params) >= 3 and isinstance(first, str)
        if method == "mining.set_difficulty":
            return is_number(first)
        if method == "mining.set_target":
            return isinstance(first, str) and target_to_difficulty(first) is not None
        if method == "mining.notify" or method in _EXTRANONCE_METHODS:
            return bool(params)
        return True
    if isinstance(params, dict):
        if method == "mining.hello":  # EthereumStratum/2.0.0
            return isinstance(params.get("proto"), str) and "Stratum" in params["proto"]
        if method == "mining.set":
            return bool(params)
        return method == "mining.submit" and "nonce" in params  # Alephium submits an object
    return params is None and method in _BODY_METHODS and isinstance(obj.get("body"), dict)


def _in_family(method: str) -> bool:
    return method.startswith(_FAMILY_PREFIXES) or method in _EXTRANONCE_METHODS


def _target_of(params: Any, obj: dict[str, Any]) -> Any:
    if isinstance(params, list):
        return params[0] if params else None
    if isinstance(params, dict):
        return params.get("target")
    return obj["body"].get("target")  # FishHash carries it in a body


def _kadena_login(login: str | None) -> bool:
    # Kadena logins are public keys (64 hex) or k: accounts; Kadena also uses set_target.
    if not login:
        return False
    return login.startswith("k:") or (len(login) == 64 and is_hex(login))


_MAX_TEXT = 256  # bound what a hostile peer can make us keep per flow


def _text(value: Any) -> str | None:
    return value[:_MAX_TEXT] if isinstance(value, str) and value else None


@dataclass(slots=True)
class StratumSession:
    """What one flow's JSON stratum messages tell, whichever stratum family they belong to.

    Fed every message of the flow; the detectors decide from `shapes` whether the flow is
    theirs and turn the rest into a Finding.
    """

    rule: DialectRule
    coins: CoinHints
    tolerated: frozenset[str] = frozenset()  # foreign methods that must not make us decline
    ledger: RpcLedger = field(default_factory=RpcLedger)
    miner_side: Side | None = None
    evidence: list[str] = field(default_factory=list)
    shapes: int = NO_SHAPE
    pool_spoke: bool = False
    declined: bool = False
    login: str | None = None
    agent: str | None = None
    host: str | None = None
    difficulty: float | None = None
    reported_hashrate_hs: float | None = None
    shares: int = 0
    shares_accepted: int = 0
    shares_rejected: int = 0
    book: ShareBook = field(default_factory=ShareBook)
    _vocabulary: frozenset[str] = field(init=False, repr=False, default=frozenset())
    _last_probe: str | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        self._vocabulary = self.rule.client_methods | self.rule.server_methods

    def feed(self, msg: Message) -> None:
        if self.declined:
            return
        if not isinstance(msg, JsonMessage):
            # Stratum is JSON lines from the first byte: HTTP or binary is another protocol,
            # unless a miner already spoke stratum to a server that answers in HTTP or binary.
            self.declined = not self.evidence
            return
        obj = msg.obj
        if not isinstance(obj, dict):
            self.declined = not self.evidence  # stratum never sends arrays or scalars
            return
        method = self.ledger.request(msg.side, obj)
        if method is not None:
            self._on_request(msg.side, method, obj)
        elif "result" in obj or "error" in obj:
            self._on_response(msg.side, obj)
        elif not self.evidence:
            self.declined = True  # JSON that is not JSON-RPC at all: logs, Zabbix, ...

    def _on_request(self, side: Side, method: str, obj: dict[str, Any]) -> None:
        params = obj.get("params")
        known = method in self._vocabulary
        if known or _in_family(method):
            if not _well_formed(method, params, obj):
                return  # a look-alike, not evidence either way
            # Shapes come from every family message, whatever this rule's vocabulary, so
            # that the stratum-v1 and ethereum-stratum sessions always agree on them.
            self.shapes |= self._request_shape(method, params)
            if method in self.rule.client_methods:
                self._client(side, method, params, obj)
            elif known:
                self._server(side, method, params, obj)
        elif method in self.tolerated:
            self._extra(side, method, params)
        elif not self.evidence:
            self.declined = True  # a method no stratum speaks: some other JSON-RPC service

    def _request_shape(self, method: str, params: Any) -> int:
        if method == "mining.notify":
            return notify_shape(params) if isinstance(params, list) else Shape.OTHER_NOTIFY
        if method == "mining.set_target":
            return Shape.SET_TARGET
        if method == "mining.configure":
            return Shape.CONFIGURE
        if not isinstance(params, list):  # FishHash bodies, Alephium submit objects
            return NO_SHAPE
        if method == "mining.subscribe":
            return subscribe_shape(params)
        if method == "mining.authorize":
            return self._wallet_shape(params[0])
        if method == "mining.submit":
            return self._wallet_shape(params[0]) | submit_shape(params)
        if method in _EXTRANONCE_METHODS and len(params) >= 2 and is_number(params[1]):
            return Shape.EXTRANONCE_SIZE
        return NO_SHAPE

    def _wallet_shape(self, login: str) -> int:
        login = login[:_MAX_TEXT]
        if login == self._last_probe:  # submits repeat the login: skip the regexes
            return NO_SHAPE
        self._last_probe = login
        wallet = split_login(login)[0] or login
        hint = self.coins.for_wallet(wallet)
        if hint is None or hint.coin in NEUTRAL_PAYOUT_COINS:
            return NO_SHAPE
        return Shape.ETH_WALLET if hint.algorithm in ETHASH_ALGOS else Shape.OTHER_WALLET

    def _claim_side(self, miner: Side) -> bool:
        """Fix the miner's side on first evidence; later contrary messages are ignored."""
        if self.miner_side is None:
            self.miner_side = miner
        return self.miner_side is miner

    def _saw(self, method: str) -> None:
        if method not in self.evidence:
            self.evidence.append(method)

    def _client(self, side: Side, method: str, params: Any, obj: dict[str, Any]) -> None:
        if not self._claim_side(side):
            return
        self._saw(method)
        if method == "mining.hello" and isinstance(params, dict):
            # EthereumStratum/2.0.0 opens with who is calling and which pool it wants.
            self.agent = _text(params.get("agent")) or self.agent
            self.host = host_of(params.get("host")) or self.host
        elif method == "mining.subscribe":
            if not self._hello_seen():
                self._subscribe(params, obj)
        elif method == "mining.authorize" and isinstance(params, list):
            self.login = _text(params[0]) or self.login
        elif method in self.rule.share_methods:
            self.shares += 1
            self.book.submit(obj.get("id"), self._job_of(params))
            if self.login is None and isinstance(params, list):
                self.login = _text(params[0])  # mid-session: the worker name submits carry

    def _job_of(self, params: Any) -> Any:
        """The job a submit names: [worker, job, ...], or EthereumStratum/2.0.0 [job, ...]."""
        if isinstance(params, list):
            return params[0] if self._hello_seen() else params[1]
        return params.get("jobId") if isinstance(params, dict) else None

    def _hello_seen(self) -> bool:
        # After mining.hello, subscribe carries a session id, not the agent.
        return "mining.hello" in self.evidence

    def _subscribe(self, params: Any, obj: dict[str, Any]) -> None:
        if isinstance(params, list):
            self.agent = _text(params[0] if params else None) or self.agent
            if len(params) >= 4:  # Zcash / KawPow: [agent, session, host, port]
                self.host = host_of(params[2]) or self.host
            return
        body = obj["body"]  # FishHash: {"agent": ..., "publicAddress": "wallet.worker"}
        self.agent = _text(body.get("agent")) or self.agent
        self.login = _text(body.get("publicAddress")) or self.login

    def _server(self, side: Side, method: str, params: Any, obj: dict[str, Any]) -> None:
        if not self._claim_side(side.other):
            return
        self._saw(method)
        self.pool_spoke = True
        if method == "mining.notify" and isinstance(params, list):
            self.book.job(params[0])
            return
        if method == "mining.set_difficulty" and isinstance(params, list) and params[0] > 0:
            difficulty: float | None = float(params[0])
        elif method == "mining.set_target" or method == "mining.set":
            # EthereumStratum/2.0.0 sends its boundary in `mining.set {target}`.
            target = _target_of(params, obj)
            difficulty = target_to_difficulty(target) if isinstance(target, str) else None
        else:
            return
        if difficulty is not None:
            self.difficulty = difficulty
            self.book.difficulty(difficulty)

    def _extra(self, side: Side, method: str, params: Any) -> None:
        """Tolerated foreign requests: only the miner's own hashrate report is kept."""
        if method != "eth_submitHashrate" or self.miner_side not in (None, side):
            return
        if isinstance(params, list) and params and isinstance(params[0], str):
            with suppress(ValueError):  # params[0] is the hashrate as 0x-hex H/s
                self.reported_hashrate_hs = float(int(params[0][:66], 16))

    def _on_response(self, side: Side, obj: dict[str, Any]) -> None:
        method = self.ledger.answered(side, obj)
        if method is None:
            return
        if method == "mining.subscribe":
            self.shapes |= result_shape(obj.get("result"))
        if method == "client.get_version" and side is self.miner_side:
            self.agent = self.agent or _text(obj.get("result"))
        if method not in self.rule.client_methods or self.miner_side is not side.other:
            return
        ok = response_ok(obj)
        if method in self.rule.share_methods:
            if ok and obj.get("result") is not False:
                self.shares_accepted += 1
                self.book.accepted_share(obj.get("id"))
            else:
                self.shares_rejected += 1
                self.book.rejected_share(obj.get("id"))
        if ok and self.rule.confirm_on_result:
            self.pool_spoke = True

    def build(self, coin: str | None, algorithm: str | None) -> Finding:
        """The Finding for this session, once it has evidence."""
        assert self.miner_side is not None  # set with the first evidence
        wallet, worker = split_login(self.login)
        confirmed = self.pool_spoke or self.shares > 0
        submitted_work, accepted_work = self.book.work()
        return Finding(
            dialect=self.rule.dialect,
            confidence=Confidence.CONFIRMED if confirmed else Confidence.SUSPECTED,
            miner_side=self.miner_side,
            rule_id=self.rule.id,
            evidence=list(self.evidence),
            coin=coin,
            algorithm=algorithm,
            host=self.host,
            login=self.login,
            wallet=wallet,
            worker=worker,
            agent=self.agent,
            difficulty=self.difficulty,
            shares=self.shares,
            shares_accepted=self.shares_accepted,
            shares_rejected=self.shares_rejected,
            submitted_work=submitted_work,
            accepted_work=accepted_work,
            reported_hashrate_hs=self.reported_hashrate_hs,
        )


def _looks_zcash(shapes: int, login: str | None) -> bool:
    if shapes & Shape.ZCASH_NOTIFY:
        return True
    if shapes & NOTIFY_SHAPES:  # a notify of another shape says otherwise
        return False
    return bool(shapes & (Shape.HOST_SUBSCRIBE | Shape.SET_TARGET)) and not _kadena_login(login)


def _hint_pair(hint: CoinHint) -> tuple[str | None, str | None]:
    return hint.coin, hint.algorithm


class StratumV1Detector:
    """Bitcoin-family JSON stratum: BTC, LTC, Zcash set_target, Kaspa, Ergo, Kadena, ..."""

    dialect: ClassVar[str] = "stratum-v1"

    def __init__(self, rule: DialectRule, coins: CoinHints) -> None:
        self._session = StratumSession(rule, coins)
        self._coin_key: tuple[Any, ...] | None = None
        self._coin: tuple[str | None, str | None] = (None, None)

    def feed(self, msg: Message) -> None:
        session = self._session
        session.feed(msg)
        # Once the Ethash family is certain, the flow belongs to ethereum-stratum.
        if session.shapes & STRONG_ETHASH and ethash_verdict(session.shapes):
            session.declined = True

    @property
    def declined(self) -> bool:
        return self._session.declined

    def finding(self) -> Finding | None:
        session = self._session
        if session.declined or not session.evidence or ethash_verdict(session.shapes):
            return None  # no evidence yet, or (so far) an EthereumStratum flow
        return session.build(*self._coin_algorithm())

    def _coin_algorithm(self) -> tuple[str | None, str | None]:
        s = self._session
        key = (s.login, s.agent, s.host, s.shapes)
        if key != self._coin_key:  # the hint regexes run only when the inputs change
            self._coin_key, self._coin = key, self._resolve_coin()
        return self._coin

    def _resolve_coin(self) -> tuple[str | None, str | None]:
        # Most specific first: a chain's own address format, then the protocol's shape,
        # then the miner software and host name, then weaker shapes and a BTC payout login.
        s, coins = self._session, self._session.coins
        by_wallet = coins.for_wallet(split_login(s.login)[0] or s.login)
        if by_wallet and by_wallet.coin not in NEUTRAL_PAYOUT_COINS:
            return _hint_pair(by_wallet)
        for shape, coin, algorithm in _SHAPE_COINS:
            if s.shapes & shape:
                return coin, algorithm
        hint = coins.for_agent(s.agent) or coins.for_host(s.host)
        if hint:
            return _hint_pair(hint)
        for shape, algorithm in _SHAPE_ALGOS:
            if s.shapes & shape:
                return None, algorithm
        if _looks_zcash(s.shapes, s.login):
            return "zec", "equihash"
        if by_wallet:
            return _hint_pair(by_wallet)
        return s.rule.coin, s.rule.algorithm
