"""The `tls` dialect: encrypted pool traffic recognised by the ClientHello's SNI.

A pool's own web site on 443 is not mining, while a browser-mining service's
WebSocket on 443 is; so on web ports an SNI match counts only for `browser`
endpoints or for host names that name a stratum endpoint or a coin.
"""

from __future__ import annotations

import re
from typing import ClassVar

from sensor.detect.base import BinaryChunk, Message
from sensor.detect.tls import is_server_hello, parse_client_hello
from sensor.model import Confidence, Finding, Side
from sensor.rules.model import CoinHints, PoolEndpoint
from sensor.rules.pools import PoolIndex

WEB_PORTS = frozenset({80, 443, 8080, 8443})
_STRATUM_LABEL = re.compile(r"(?i)(^|[.-])(stratum|mine|mining|pool)\d*[.-]")
RULE_ID = "minewatch.tls.sni"


class TlsPoolDetector:
    """Matches the SNI of a ClientHello against pool endpoints."""

    dialect: ClassVar[str] = "tls"

    def __init__(self, pools: PoolIndex, coins: CoinHints, server_port: int) -> None:
        self._pools, self._coins, self._port = pools, coins, server_port
        self._match: PoolEndpoint | None = None
        self._sni: str | None = None
        self._client: Side | None = None
        self._answered = False
        self._declined = False

    @property
    def declined(self) -> bool:
        return self._declined

    def feed(self, msg: Message) -> None:
        if not isinstance(msg, BinaryChunk):
            self._declined = self._client is None
            return
        if self._client is None:
            self._hello(msg)
        elif msg.side is not self._client and is_server_hello(msg.data):
            self._answered = True

    def _hello(self, msg: BinaryChunk) -> None:
        hello = parse_client_hello(msg.data)
        if hello is None or not hello.sni:
            self._declined = True
            return
        match = self._pools.match_host(hello.sni)
        if match is None or not self._counts(hello.sni, match):
            self._declined = True
            return
        self._client, self._sni, self._match = msg.side, hello.sni, match

    def _counts(self, sni: str, match: PoolEndpoint) -> bool:
        if self._port not in WEB_PORTS or match.kind == "browser":
            return True
        return bool(_STRATUM_LABEL.search(sni) or self._coins.for_host(sni))

    def finding(self) -> Finding | None:
        if self._client is None or self._match is None:
            return None
        hint = self._coins.for_host(self._sni)
        coin = self._match.coin or (hint.coin if hint else None)
        return Finding(
            dialect=self.dialect,
            confidence=Confidence.CONFIRMED if self._answered else Confidence.SUSPECTED,
            miner_side=self._client,
            rule_id=self._match.id,
            evidence=["tls.sni"] + (["tls.server_hello"] if self._answered else []),
            coin=coin,
            algorithm=hint.algorithm if hint and hint.coin == coin else None,
            host=self._sni,
        )
