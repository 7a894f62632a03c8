"""NiceHash EthereumStratum/1.0.0: stratum for the Ethash family (ETH, ETC, ...).

The miner subscribes with `[agent, "EthereumStratum/1.0.0"]`, the pool answers
`[["mining.notify", id, "EthereumStratum/1.0.0"], extranonce]` and sends jobs as
`mining.notify [job_id, seedhash, headerhash, clean_jobs]`; submits are
`[worker, job_id, minernonce]`.

The flow is parsed by the same `StratumSession` as stratum-v1 and the two detectors split
flows by its family verdict (see sensor/detect/stratum_shapes.py), so that:
- Kaspa, whose miners also subscribe with "EthereumStratum/1.0.0", and Ergo stay stratum-v1
  (the product contract), recognised by their wallets, notify shapes and subscribe results;
- KawPow (Zcash-style subscribe with host, set_target, 7-param notify), Zhash (Zcash notify),
  Octopus, Alephium, FishHash, XelisHash and Kadena are stratum-v1 too: none of them sends
  the seedhash/headerhash notify that makes a flow Ethash EthereumStratum;
- this detector declines as soon as a shape of another family is seen.

Difficulty is reported as the pool sends it in mining.set_difficulty. NiceHash defines it
like Bitcoin's (difficulty 1 = target 0x00000000ffff0000...), so difficulty 1 stands for
2**32 hashes per share on average.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sensor.detect.base import Message, split_login
from sensor.detect.stratum_shapes import STRONG_OTHER, ethash_verdict
from sensor.detect.stratum_v1 import ETHASH_ALGOS, StratumSession
from sensor.model import Finding
from sensor.rules.model import CoinHints, DialectRule

# Ethash miners in EthereumStratum mode also send EthProxy's hashrate report; it must not
# make this detector decline a flow whose start it missed.
_TOLERATED = frozenset({"eth_submitHashrate"})


class EthereumStratumDetector:
    """EthereumStratum/1.0.0 (NiceHash) for Ethash-family coins."""

    dialect: ClassVar[str] = "ethereum-stratum"

    def __init__(self, rule: DialectRule, coins: CoinHints) -> None:
        self._session = StratumSession(rule, coins, tolerated=_TOLERATED)
        self._coin_key: tuple[Any, ...] | None = None
        self._coin: tuple[str | None, str | None] = (rule.coin, rule.algorithm)

    def feed(self, msg: Message) -> None:
        session = self._session
        session.feed(msg)
        if session.shapes & STRONG_OTHER:  # Kaspa, Zcash, Bitcoin, ...: stratum-v1's flow
            session.declined = True

    @property
    def declined(self) -> bool:
        return self._session.declined

    def finding(self) -> Finding | None:
        session = self._session
        if session.declined or not session.evidence or not ethash_verdict(session.shapes):
            return None
        return session.build(*self._coin_algorithm())

    def _coin_algorithm(self) -> tuple[str | None, str | None]:
        s = self._session
        key = (s.login, s.agent)
        if key != self._coin_key:  # the hint regexes run only when the inputs change
            self._coin_key, self._coin = key, self._resolve_coin()
        return self._coin

    def _resolve_coin(self) -> tuple[str | None, str | None]:
        # Only Ethash-family hints count: a NiceHash login is a BTC address whatever is mined.
        s, coins = self._session, self._session.coins
        wallet = split_login(s.login)[0] or s.login
        for hint in (coins.for_wallet(wallet), coins.for_agent(s.agent)):
            if hint is not None and hint.algorithm in ETHASH_ALGOS:
                return hint.coin, hint.algorithm
        return s.rule.coin, s.rule.algorithm
