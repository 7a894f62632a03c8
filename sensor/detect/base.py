"""The contract between the flow inspector and the dialect detectors.

A detector is sans-I/O: the inspector frames each direction of a flow into
messages (JSON lines, HTTP messages, binary chunks) and feeds them, in stream
order, to every detector that has not yet declined the flow. A detector never
sees packets, sockets or files, so it is tested with plain messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from sensor.model import Finding, Side
from sensor.rules.model import CoinHints, DialectRule


@dataclass(slots=True)
class JsonMessage:
    """One JSON value read from a newline-delimited stream (or an HTTP body)."""

    side: Side
    ts: float
    obj: Any  # dict for JSON-RPC objects, list for batches, anything else is ignored


@dataclass(slots=True)
class HttpMessage:
    """One HTTP/1.x request or response with its (possibly partial) body."""

    side: Side
    ts: float
    is_request: bool
    method: str | None  # requests only
    target: str | None  # requests only: the request path
    status: int | None  # responses only
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased
    body: bytes = b""
    json: Any = None  # the body parsed as JSON, when it is JSON


@dataclass(slots=True)
class BinaryChunk:
    """Raw bytes of a stream that is neither JSON lines nor HTTP (first bytes only)."""

    side: Side
    ts: float
    data: bytes


Message = JsonMessage | HttpMessage | BinaryChunk


class Detector(Protocol):
    """One dialect family. Built per flow; fed messages; asked for a finding."""

    dialect: ClassVar[str]

    def feed(self, msg: Message) -> None:
        """Take the next message of the flow (either side, in stream order)."""

    @property
    def declined(self) -> bool:
        """True once the flow cannot be this dialect; the inspector stops feeding it."""

    def finding(self) -> Finding | None:
        """The current conclusion: None until the flow shows this dialect."""


class DetectorFactory(Protocol):
    def __call__(self, rule: DialectRule, coins: CoinHints) -> Detector: ...


def method_of(obj: Any) -> str | None:
    """The JSON-RPC method of a request/notification, or None for a response."""
    if isinstance(obj, dict):
        method = obj.get("method")
        if isinstance(method, str):
            return method
    return None


def is_response(obj: Any) -> bool:
    """A JSON-RPC response: has `result` or `error` and no `method`."""
    return isinstance(obj, dict) and "method" not in obj and ("result" in obj or "error" in obj)


def response_ok(obj: Any) -> bool:
    """A response that carries a result and no error."""
    return is_response(obj) and obj.get("error") in (None, False) and obj.get("result") is not None


def split_login(login: str | None) -> tuple[str | None, str | None]:
    """Split `wallet.worker` / `wallet/worker` / `wallet+diff` logins into wallet and worker."""
    if not login:
        return None, None
    if "@" in login:  # MinerGate-style e-mail logins carry no wallet
        return None, None
    wallet, worker = login, None
    for sep in (".", "/"):
        if sep in wallet:
            wallet, _, worker = wallet.partition(sep)
            break
    wallet = wallet.split("+", 1)[0]
    return wallet or None, worker or None
