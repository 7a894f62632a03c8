#!/usr/bin/env python3
"""Write the bundled sample capture and its ground truth.

    python tools/make_sample.py [--out samples]

samples/minewatch-sample.pcapng holds a few mining flows of different dialects
(miners at private addresses, pools at documentation addresses) mixed with
ordinary traffic, some of it on VLANs; samples/minewatch-sample.truth.json
lists which flows are mining and what they are. The output is deterministic:
tests/test_factory.py checks that the committed files are exactly what this
script writes, so change both together.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `tests` importable
    sys.path.insert(0, str(ROOT))

from scapy.packet import Packet  # noqa: E402

from tests.factory import (  # noqa: E402
    T0,
    Endpoint,
    TcpSession,
    broker_exchange,
    dns_lookup,
    http_get,
    jsonrpc_exchange,
    merge,
    syn_scan,
    tls_session,
    vlan,
    write_pcapng,
    xmpp_session,
)
from tests.sessions import SCRIPTS  # noqa: E402

CAPTURE = "minewatch-sample.pcapng"
TRUTH = "minewatch-sample.truth.json"
RESOLVER = ("10.0.0.53", 53)


@dataclass(frozen=True)
class MiningFlow:
    script: str
    miner: Endpoint
    pool: Endpoint
    at: float  # seconds after T0
    vlan: int | None = None
    pool_host: str | None = None
    mss: int | None = None
    # mid-session: the capture starts inside this step (at `cut` bytes), handshake unseen
    from_step: int | None = None
    cut: int = 0


FLOWS = (
    MiningFlow("stratum_v1_btc", ("10.20.1.11", 49152), ("203.0.113.10", 3333), 1.0, mss=536),
    MiningFlow(
        "cryptonote_xmrig",
        ("10.20.1.12", 49153),
        ("203.0.113.20", 3333),
        2.0,
        vlan=100,
        pool_host="pool.supportxmr.com",
    ),
    MiningFlow("ethproxy", ("10.20.2.13", 49154), ("198.51.100.30", 8008), 3.0, vlan=200),
    MiningFlow("ethereum_stratum", ("2001:db8:20::14", 49155), ("2001:db8:ffff::40", 4444), 4.0),
    MiningFlow(
        "getwork_gbt",
        ("10.20.3.15", 49156),
        ("203.0.113.50", 9332),
        5.0,
        pool_host="btc.pool.example",
    ),
    # joins at step 6 (the pool's set_difficulty), 20 bytes into the line
    MiningFlow(
        "stratum_v1_ltc", ("10.20.1.16", 49157), ("203.0.113.10", 3333), 6.0, from_step=6, cut=20
    ),
)


def mining_packets(flow: MiningFlow) -> list[Packet]:
    steps = SCRIPTS[flow.script].steps
    start = T0 + flow.at
    if flow.from_step is None:
        session = TcpSession(flow.miner, flow.pool, start=start, mss=flow.mss, acks=True)
        pkts = session.script(steps).packets()
    else:
        session = TcpSession(flow.miner, flow.pool, start=start, handshake=False, acks=True)
        first_side, first_data = steps[flow.from_step]
        session.send(first_side, first_data, split=[flow.cut])
        pkts = session.script(steps[flow.from_step + 1 :]).packets(skip=1)
    return vlan(pkts, flow.vlan) if flow.vlan is not None else pkts


def background_packets() -> list[list[Packet]]:
    daemon = TcpSession(("10.30.0.7", 50103), ("10.30.0.8", 8332), start=T0 + 3.5, acks=True)
    return [
        dns_lookup(
            ("10.20.1.30", 53002),
            RESOLVER,
            "www.example.com",
            a=["192.0.2.80"],
            aaaa=["2001:db8::80"],
            start=T0 + 0.2,
        ),
        http_get(("10.20.1.30", 50100), ("192.0.2.80", 80), "www.example.com", start=T0 + 0.3),
        tls_session(("10.20.1.31", 50101), ("192.0.2.44", 443), "www.example.org", start=T0 + 0.5),
        vlan(
            dns_lookup(
                ("10.20.1.12", 53001),
                RESOLVER,
                "pool.supportxmr.com",
                a=["203.0.113.20"],
                qid=0x5A11,
                start=T0 + 1.9,
            ),
            100,
        ),
        jsonrpc_exchange(("10.20.4.5", 50102), ("10.30.0.5", 8545), start=T0 + 2.5),
        daemon.script(SCRIPTS["pool_daemon_gbt"].steps).packets(),
        http_get(
            ("10.20.1.31", 50104),
            ("192.0.2.91", 4444),
            "status.example.net",
            "/status",
            start=T0 + 4.5,
        ),
        vlan(broker_exchange(("10.20.4.6", 50105), ("10.30.0.9", 5555), start=T0 + 5.5), 200),
        xmpp_session(("10.20.1.32", 50106), ("192.0.2.52", 5222), start=T0 + 6.5),
        syn_scan("203.0.113.99", "10.20.1.40", start=T0 + 7.0),
    ]


NOT_MINING = [
    ("10.20.1.30:53002", "10.0.0.53:53", "DNS lookup of www.example.com (A, AAAA)"),
    ("10.20.1.30:50100", "192.0.2.80:80", "HTTP GET www.example.com"),
    ("10.20.1.31:50101", "192.0.2.44:443", "TLS, SNI www.example.org"),
    ("10.20.1.12:53001", "10.0.0.53:53", "DNS lookup of pool host pool.supportxmr.com (VLAN 100)"),
    ("10.20.4.5:50102", "10.30.0.5:8545", "Ethereum node JSON-RPC eth_blockNumber over HTTP"),
    ("10.30.0.7:50103", "10.30.0.8:8332", "pool server -> bitcoind getblocktemplate RPC"),
    ("10.20.1.31:50104", "192.0.2.91:4444", "HTTP GET on a pool port"),
    ("10.20.4.6:50105", "10.30.0.9:5555", "message broker JSON lines (VLAN 200)"),
    ("10.20.1.32:50106", "192.0.2.52:5222", "XMPP STARTTLS"),
    ("203.0.113.99", "10.20.1.40", "SYN scan of pool ports"),
]


def endpoint(ep: Endpoint) -> str:
    host, port = ep
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def truth_entry(flow: MiningFlow) -> dict[str, Any]:
    exp = SCRIPTS[flow.script].expect
    mid = flow.from_step is not None
    return {
        "miner": endpoint(flow.miner),
        "pool": endpoint(flow.pool),
        "dialect": exp.dialect,
        "coin": exp.coin,
        "pool_host": flow.pool_host,
        "login": exp.login,
        "wallet": exp.wallet,
        "worker": exp.worker,
        "agent": None if mid else exp.agent,  # the subscribe is before the capture starts
        "submits": exp.submits,
        "vlan": flow.vlan,
        "mid_session": mid,
        "script": flow.script,
    }


def truth() -> dict[str, Any]:
    return {
        "capture": CAPTURE,
        "generator": "tools/make_sample.py",
        "start": T0,
        "mining_flows": [truth_entry(f) for f in FLOWS],
        "not_mining": [{"client": c, "server": s, "what": w} for c, s, w in NOT_MINING],
    }


def build(out: Path) -> tuple[Path, Path]:
    """Write the capture and the truth file into `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    packets = merge(*[mining_packets(f) for f in FLOWS], *background_packets())
    capture, truth_file = out / CAPTURE, out / TRUTH
    note = f"minewatch synthetic sample written by tools/make_sample.py; truth in {TRUTH}"
    write_pcapng(capture, packets, comment=note)
    truth_file.write_text(json.dumps(truth(), indent=2) + "\n")
    return capture, truth_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "samples", help="output folder")
    args = parser.parse_args(argv)
    capture, truth_file = build(args.out)
    print(f"wrote {capture} ({capture.stat().st_size} bytes) and {truth_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
