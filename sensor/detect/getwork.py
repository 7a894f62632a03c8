"""getwork / getblocktemplate / eth_getWork carried in HTTP: a miner polling a pool.

Legacy Bitcoin miners (cgminer, bfgminer, cpuminer) and ethminer's farm mode
POST JSON-RPC calls to an HTTP endpoint for work and post results back. The
same calls are what a pool asks of its own coin daemon (getblocktemplate,
submitblock) and what apps ask of an Ethereum node (eth_getWork), so the
method names alone prove nothing. A flow is reported only with miner evidence
(mining request headers, a miner User-Agent, the legacy `getwork` call, a
hash rate report, a wallet in the request path) or with a pool's mining
response headers, which no coin daemon sends.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections import deque
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sensor.detect.base import HttpMessage, Message, is_response, method_of, split_login
from sensor.model import Confidence, Finding, Side
from sensor.rules.model import CoinHints, DialectRule

_DIFF1 = 0xFFFF << 208  # Bitcoin's difficulty-1 target
_ETH_SPACE = 1 << 256  # ethash: difficulty = 2^256 / boundary
_MAX_PENDING = 16

# Lower-cased substrings of miner User-Agents (cgminer "cgminer 3.7.2", "bfgminer/5.2.0", ...).
_MINER_AGENTS = (
    "cgminer",
    "bfgminer",
    "bmminer",
    "cpuminer",
    "minerd",
    "sgminer",
    "ccminer",
    "cudaminer",
    "ethminer",
    "poclbm",
    "diablominer",
    "phoenixminer",
    "genoil",
)
_MINER_HEADERS = {
    "x-mining-extensions": "X-Mining-Extensions",
    "x-mining-hashrate": "X-Mining-Hashrate",
}
# Sent by pool servers (pushpool, eloipool, p2pool, ...) to miners; coin daemons never do.
_POOL_HEADERS = {
    "x-stratum": "X-Stratum",
    "x-long-polling": "X-Long-Polling",
    "x-roll-ntime": "X-Roll-NTime",
}
_DAEMON_SERVER = "-json-rpc/"  # "bitcoin-json-rpc/v0.x", "litecoin-json-rpc/v0.8.6.2-beta"
_MINER_METHODS = frozenset({"getwork", "eth_submitHashrate"})


@dataclass(slots=True)
class _Call:
    """A request awaiting its answer: method, and whether it submits a share."""

    key: str | None
    method: str
    share: bool


def _calls(body: Any) -> list[dict[str, Any]]:
    """The JSON-RPC objects in an HTTP body (a single call or a batch)."""
    if isinstance(body, dict):
        return [body]
    if isinstance(body, list):
        return [c for c in body if isinstance(c, dict)]
    return []


def _id_key(obj: dict[str, Any]) -> str | None:
    value = obj.get("id")
    return None if value is None or isinstance(value, (dict, list)) else str(value)


def _is_share(method: str, params: Any) -> bool:
    if method == "getwork":  # getwork with [data] submits; without params it asks for work
        return isinstance(params, list) and bool(params)
    if method == "getblocktemplate":  # BIP 23 block submission through the template call
        first = params[0] if isinstance(params, list) and params else None
        return isinstance(first, dict) and first.get("mode") == "submit"
    return method in ("submitblock", "eth_submitWork")


def _hex_int(value: Any, byteorder: str = "big") -> int | None:
    if not isinstance(value, str):
        return None
    text = value[2:] if value[:2] in ("0x", "0X") else value
    try:
        if byteorder == "little":
            return int.from_bytes(bytes.fromhex(text), "little")
        return int(text, 16)
    except ValueError:
        return None


def work_difficulty(result: Any) -> tuple[bool, float | None]:
    """Whether a result is mining work, and the difficulty its target stands for."""
    if isinstance(result, dict):
        if isinstance(result.get("data"), str) and "target" in result:
            # getwork: target is a 256-bit little-endian hex string
            return True, _ratio(_DIFF1, _hex_int(result["target"], "little"))
        if "previousblockhash" in result or "coinbasevalue" in result:
            return True, _ratio(_DIFF1, _hex_int(result.get("target")))
        return False, None
    if (
        isinstance(result, list)
        and 3 <= len(result) <= 4
        and all(isinstance(v, str) and v[:2] == "0x" for v in result)
    ):
        return True, _ratio(_ETH_SPACE, _hex_int(result[2]))  # [header, seed, boundary, (block)]
    return False, None


def _ratio(top: int, target: int | None) -> float | None:
    return top / target if target is not None and target > 0 else None


def _basic_user(value: str | None) -> str | None:
    """The user name of an HTTP Basic Authorization header."""
    if not value or value[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(value[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user = decoded.decode("utf-8", "replace").partition(":")[0]
    return user or None


def _host_name(value: str | None) -> str | None:
    """The Host header without its port; IP literals are left out (the address says it)."""
    if not value:
        return None
    value = value.strip().lower()
    if value.startswith("["):
        return None  # bracketed IPv6 literal
    host = value.rpartition(":")[0] if value.count(":") == 1 else value
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host or None
    return None


def _hashrate(value: Any) -> float | None:
    """A hash rate from a header (decimal) or eth_submitHashrate (0x-hex)."""
    rate: float | None
    if isinstance(value, str) and value[:2] in ("0x", "0X"):
        rate = _hex_int(value)
    else:
        try:
            rate = float(value)
        except (TypeError, ValueError):
            return None
    return float(rate) if rate is not None and 0 < rate < 1e30 else None


@dataclass(slots=True)
class _State:
    miner_side: Side | None = None
    http: bool = False
    requests: int = 0
    dialect: bool = False  # a getwork-family call was made
    miner: bool = False  # miner evidence
    pool: bool = False  # the pool answered in protocol
    pool_headers: bool = False
    # X-Mining-* request headers exist only in mining clients: enough on their own,
    # even when the pool refused the request before its JSON body was sent.
    mining_headers: bool = False
    evidence: list[str] = field(default_factory=list)
    pending: deque[list[_Call]] = field(default_factory=lambda: deque(maxlen=_MAX_PENDING))
    login: str | None = None
    agent: str | None = None
    host: str | None = None
    difficulty: float | None = None
    hashrate: float | None = None
    shares: int = 0
    accepted: int = 0
    rejected: int = 0

    def note(self, item: str) -> None:
        if item not in self.evidence:
            self.evidence.append(item)


def _match(calls: list[_Call], reply: dict[str, Any]) -> _Call | None:
    """The call a reply answers: HTTP pairs one response per request, batches by id."""
    if len(calls) == 1:
        return calls[0]  # miners reuse id 0 for everything; the HTTP exchange is the match
    key = _id_key(reply)
    return next((c for c in calls if c.key == key), None)


class GetworkDetector:
    """HTTP JSON-RPC mining: getwork, getblocktemplate/submitblock, eth_getWork farm mode."""

    dialect: ClassVar[str] = "getwork"

    def __init__(self, rule: DialectRule, coins: CoinHints) -> None:
        self.rule = rule
        self.coins = coins
        self._declined = False
        self._s = _State()

    @property
    def declined(self) -> bool:
        return self._declined

    def feed(self, msg: Message) -> None:
        if not isinstance(msg, HttpMessage):
            # Before any HTTP, JSON lines or binary mean another protocol. After it, a
            # stratum-only port answering raw JSON ("Parse error") confirms nothing.
            if not self._s.http:
                self._declined = True
            return
        self._s.http = True
        if msg.is_request:
            self._request(msg)
        else:
            self._response(msg)

    def _request(self, msg: HttpMessage) -> None:
        s = self._s
        if s.miner_side is None:
            s.miner_side = msg.side
        elif msg.side is not s.miner_side:
            return
        s.requests += 1
        self._request_headers(msg)
        calls = [c for c in map(self._call, _calls(msg.json)) if c is not None]
        s.pending.append(calls)  # one entry per request keeps responses paired
        if s.requests == 1 and not (s.miner or s.dialect):
            self._declined = True  # an ordinary web or JSON-RPC client

    def _request_headers(self, msg: HttpMessage) -> None:
        s, h = self._s, msg.headers
        agent = h.get("user-agent")
        if agent:
            s.agent = s.agent or agent
            s.miner = s.miner or any(a in agent.lower() for a in _MINER_AGENTS)
        for name, label in _MINER_HEADERS.items():
            if name in h:
                s.miner = s.mining_headers = True
                s.note(label)
        if "x-mining-hashrate" in h:
            s.hashrate = _hashrate(h["x-mining-hashrate"]) or s.hashrate
        s.host = s.host or _host_name(h.get("host"))
        path_login = self._path_login(msg.target)
        s.miner = s.miner or path_login is not None
        s.login = s.login or _basic_user(h.get("authorization")) or path_login

    def _path_login(self, target: str | None) -> str | None:
        """`/<wallet>/<worker>`, as ethminer farm mode sends it to HTTP getwork pools."""
        if not target or not target.startswith("/"):
            return None
        path = target.partition("?")[0].strip("/")
        if not path or self.coins.for_wallet(path.partition("/")[0]) is None:
            return None
        return path

    def _call(self, obj: dict[str, Any]) -> _Call | None:
        method = method_of(obj)
        if method is None:
            return None
        if method not in self.rule.client_methods:
            return _Call(_id_key(obj), method, False)
        s = self._s
        s.dialect = True
        s.note(method)
        s.miner = s.miner or method in _MINER_METHODS
        params = obj.get("params")
        if method == "eth_submitHashrate" and isinstance(params, list) and params:
            s.hashrate = _hashrate(params[0]) or s.hashrate
        share = _is_share(method, params)
        s.shares += int(share)
        return _Call(_id_key(obj), method, share)

    def _response(self, msg: HttpMessage) -> None:
        s, h = self._s, msg.headers
        if s.miner_side is None:
            s.miner_side = msg.side.other
        elif msg.side is s.miner_side:
            return
        for name, label in _POOL_HEADERS.items():
            if name in h:
                s.pool = s.pool_headers = True
                s.note(label)
        if not (s.miner or s.pool_headers) and _DAEMON_SERVER in h.get("server", "").lower():
            self._declined = True  # a coin daemon answering its pool or an app
            return
        calls = s.pending.popleft() if s.pending else []
        for reply in _calls(msg.json):
            self._reply(_match(calls, reply), reply)

    def _reply(self, call: _Call | None, obj: dict[str, Any]) -> None:
        if not is_response(obj):
            return
        s = self._s
        failed = obj.get("error") not in (None, False)
        result = obj.get("result")
        is_work, difficulty = work_difficulty(result)
        if is_work and not failed:
            s.pool = True
            s.difficulty = difficulty or s.difficulty
        elif call is not None and call.share:
            self._share_result(call, result, failed)
        elif call is not None and call.method in self.rule.client_methods:
            s.pool = s.pool or (not failed and result is True)  # e.g. eth_submitHashrate

    def _share_result(self, call: _Call, result: Any, failed: bool) -> None:
        # BIP 22: submitblock answers null when accepted and a reason string when not.
        if call.method in ("submitblock", "getblocktemplate"):
            ok = not failed and result is None
        else:
            ok = not failed and result is True
        s = self._s
        if ok:
            s.accepted += 1
            s.pool = True
        else:
            s.rejected += 1

    def finding(self) -> Finding | None:
        s = self._s
        if s.miner_side is None:
            return None
        if not ((s.dialect and s.miner) or s.pool_headers or s.mining_headers):
            return None
        wallet, worker = split_login(s.login)
        hint = (
            self.coins.for_wallet(s.login)
            or self.coins.for_host(s.host)
            or self.coins.for_agent(s.agent)
        )
        return Finding(
            dialect=self.dialect,
            confidence=Confidence.CONFIRMED if s.pool or s.shares else Confidence.SUSPECTED,
            miner_side=s.miner_side,
            rule_id=self.rule.id,
            evidence=list(s.evidence),
            coin=hint.coin if hint else self.rule.coin,
            algorithm=hint.algorithm if hint else self.rule.algorithm,
            host=s.host,
            login=s.login,
            wallet=wallet,
            worker=worker,
            agent=s.agent,
            difficulty=s.difficulty,
            shares=s.shares,
            shares_accepted=s.accepted,
            shares_rejected=s.rejected,
            reported_hashrate_hs=s.hashrate,
        )
