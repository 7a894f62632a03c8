"""Canonical pool-protocol conversations, one per dialect, written from the public specs.

A `Script` is what the two ends say, as (side, bytes) steps in stream order,
plus `Expect`: the facts a detector should conclude. Scripts are pure bytes
(no scapy), so detector tests can feed them directly and flow tests can put
them on the wire with `tests.factory.TcpSession(...).script(s.steps)`.

Everything is synthetic: hashes and jobs are SHA-256 filler, and wallets have
the right formats with checksums over made-up payloads (except Monero's, whose
Keccak checksum the standard library cannot compute). Nothing comes from a
real capture. `wallet`/`worker` follow `sensor.detect.base.split_login`.
"""

from __future__ import annotations

from tests.sessions.base import (
    BTC_WALLET,
    CLIENT,
    ERG_WALLET,
    ETH_WALLET,
    ETH_WALLET_2,
    GRIN_WALLET,
    KAS_WALLET,
    LTC_WALLET,
    SERVER,
    XMR_WALLET,
    ZEC_WALLET,
    Expect,
    Script,
    Step,
    basic_auth,
    filler,
    http_request,
    http_response,
    line,
)
from tests.sessions.cryptonote import cryptonote_xmrig, grin
from tests.sessions.ethereum import ethereum_stratum, ethproxy
from tests.sessions.http import getwork_gbt, getwork_legacy, pool_daemon_gbt
from tests.sessions.stratum import (
    stratum_v1_btc,
    stratum_v1_erg,
    stratum_v1_kas,
    stratum_v1_ltc,
    stratum_v1_zec,
)
from tests.sessions.sv2 import stratum_v2, sv2_frame

SCRIPTS: dict[str, Script] = {
    sc.name: sc
    for sc in (
        stratum_v1_btc(),
        stratum_v1_ltc(),
        stratum_v1_zec(),
        stratum_v1_kas(),
        stratum_v1_erg(),
        ethereum_stratum(),
        ethproxy(),
        cryptonote_xmrig(),
        grin(),
        getwork_gbt(),
        getwork_legacy(),
        pool_daemon_gbt(),
        stratum_v2(),
    )
}
MINING = tuple(sc for sc in SCRIPTS.values() if sc.expect.mining)
NOT_MINING = tuple(sc for sc in SCRIPTS.values() if not sc.expect.mining)

__all__ = [
    "BTC_WALLET",
    "CLIENT",
    "ERG_WALLET",
    "ETH_WALLET",
    "ETH_WALLET_2",
    "GRIN_WALLET",
    "KAS_WALLET",
    "LTC_WALLET",
    "MINING",
    "NOT_MINING",
    "SCRIPTS",
    "SERVER",
    "XMR_WALLET",
    "ZEC_WALLET",
    "Expect",
    "Script",
    "Step",
    "basic_auth",
    "cryptonote_xmrig",
    "ethereum_stratum",
    "ethproxy",
    "filler",
    "getwork_gbt",
    "getwork_legacy",
    "grin",
    "http_request",
    "http_response",
    "line",
    "pool_daemon_gbt",
    "stratum_v1_btc",
    "stratum_v1_erg",
    "stratum_v1_kas",
    "stratum_v1_ltc",
    "stratum_v1_zec",
    "stratum_v2",
    "sv2_frame",
]
