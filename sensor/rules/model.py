"""Typed, frozen records the rule loader builds from the YAML files in rules/."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class DialectRule:
    """Signature of one pool-protocol dialect.

    Method names are data so that a new miner's vocabulary is a rule change,
    not a code change; the detector for the dialect interprets them.
    """

    id: str
    dialect: str
    description: str
    client_methods: frozenset[str]  # requests only a miner sends
    server_methods: frozenset[str]  # notifications only a pool sends
    share_methods: frozenset[str]  # client methods that submit a share
    login_methods: frozenset[str]  # client methods that carry login/wallet
    confirm_on_result: bool = True  # a pool's result to a client method confirms
    coin: str | None = None  # default coin when nothing better is known
    algorithm: str | None = None
    source: str = "minewatch"


@dataclass(frozen=True)
class CoinHint:
    """Maps a wallet/login, agent or host name pattern to a coin and algorithm."""

    id: str
    coin: str
    algorithm: str | None
    wallet: re.Pattern[str] | None = None
    agent: re.Pattern[str] | None = None
    host: re.Pattern[str] | None = None
    source: str = "minewatch"


@dataclass(frozen=True)
class PoolEndpoint:
    """A known pool endpoint: host names and/or addresses, optional ports and coin.

    `kind` says what traffic to the endpoint means. "pool": a mining pool, whose
    web site (HTTPS on 443) is only a web site; mining is shown by the pool
    protocol. "browser": an in-browser mining service (Coinhive and the hosts of
    the NoCoin lists), whose web and WebSocket traffic is itself the mining.
    """

    id: str
    pool: str | None
    domains: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()
    ports: tuple[int, ...] = ()
    coin: str | None = None
    kind: str = "pool"  # "pool" or "browser"
    source: str = ""
    date: str | None = None


@dataclass(frozen=True)
class EfficiencyRule:
    """Joules per hash for an algorithm and hardware class (used by estimates)."""

    id: str
    algorithm: str
    hardware: str
    joules_per_hash: float
    source: str
    date: str | None = None


@dataclass(frozen=True)
class CoinHints:
    """All coin hints, queried by detectors; first match wins, in file order."""

    hints: tuple[CoinHint, ...] = ()

    def for_wallet(self, login: str | None) -> CoinHint | None:
        if not login:
            return None
        return next((h for h in self.hints if h.wallet and h.wallet.search(login)), None)

    def for_agent(self, agent: str | None) -> CoinHint | None:
        if not agent:
            return None
        return next((h for h in self.hints if h.agent and h.agent.search(agent)), None)

    def for_host(self, host: str | None) -> CoinHint | None:
        if not host:
            return None
        return next((h for h in self.hints if h.host and h.host.search(host)), None)


@dataclass(frozen=True)
class RuleSet:
    dialects: dict[str, DialectRule] = field(default_factory=dict)
    coins: CoinHints = field(default_factory=CoinHints)
    pools: tuple[PoolEndpoint, ...] = ()
    efficiency: tuple[EfficiencyRule, ...] = ()
    files: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.dialects) + len(self.coins.hints) + len(self.pools) + len(self.efficiency)
