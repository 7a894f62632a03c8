"""EthProxy (Claymore) detector: sessions, mid-session starts and node-API look-alikes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from sensor.detect.base import BinaryChunk, HttpMessage, JsonMessage
from sensor.detect.ethproxy import EthProxyDetector, target_difficulty, work_target
from sensor.model import Side

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"

WALLET = "0x" + "ab12" * 10
HEADER = "0x" + "11" * 32
SEED = "0x" + "22" * 32
TARGET = "0x00000001" + "00" * 28  # 2^224: difficulty 2^32
WORK = [HEADER, SEED, TARGET, "0x9a3f21"]

LOGIN = {
    "worker": "eth1.0",
    "jsonrpc": "2.0",
    "params": [f"{WALLET}.rig7", "x"],
    "id": 2,
    "method": "eth_submitLogin",
}
LOGIN_OK = {"id": 2, "jsonrpc": "2.0", "result": True}
GET_WORK = {"worker": "", "jsonrpc": "2.0", "params": [], "id": 3, "method": "eth_getWork"}
WORK_REPLY = {"id": 3, "jsonrpc": "2.0", "result": WORK}
WORK_PUSH = {"id": 0, "jsonrpc": "2.0", "result": WORK}
HASHRATE = {
    "id": 6,
    "jsonrpc": "2.0",
    "method": "eth_submitHashrate",
    "params": ["0x375198a", "0x" + "00" * 31 + "16"],
}
SUBMIT = {"id": 4, "method": "eth_submitWork", "params": ["0xdd9707281644bea0", HEADER, SEED]}
INVALID_SHARE = {"id": 4, "result": None, "error": {"code": 23, "message": "Invalid share"}}


def as_line(obj: Any, spaced: bool = False) -> bytes:
    """One wire line: compact, or reordered keys with odd whitespace."""
    if not spaced:
        return orjson.dumps(obj)
    if isinstance(obj, dict):
        obj = dict(reversed(obj.items()))
    return b"  " + json.dumps(obj, separators=(" ,\t", " :  ")).encode() + b" \r"


@pytest.fixture
def detector(dialect_rules, coins) -> EthProxyDetector:
    return EthProxyDetector(dialect_rules["ethproxy"], coins)


def feed(det: EthProxyDetector, side: Side, *objs: Any) -> None:
    for obj in objs:
        line = obj if isinstance(obj, str) else as_line(obj)
        det.feed(JsonMessage(side, 1.0, orjson.loads(line)))


def test_full_session(detector):
    feed(detector, Side.ORIG, LOGIN)
    feed(detector, Side.RESP, LOGIN_OK)
    feed(detector, Side.ORIG, GET_WORK)
    feed(detector, Side.RESP, WORK_REPLY)
    feed(detector, Side.ORIG, HASHRATE)
    feed(detector, Side.RESP, {"id": 6, "jsonrpc": "2.0", "result": True}, WORK_PUSH)
    for reply in ({"id": 4, "result": True}, {"id": 4, "result": False}, INVALID_SHARE):
        feed(detector, Side.ORIG, SUBMIT)
        feed(detector, Side.RESP, reply)
    f = detector.finding()
    assert f is not None and not detector.declined
    assert f.dialect == "ethproxy" and f.confirmed
    assert f.miner_side is Side.ORIG
    assert f.rule_id == "minewatch.dialect.ethproxy"
    assert f.evidence == [
        "eth_submitLogin",
        "eth_getWork",
        "eth_submitHashrate",
        "work-push",
        "eth_submitWork",
    ]
    assert (f.login, f.wallet, f.worker) == (WALLET + ".rig7", WALLET, "rig7")
    assert (f.coin, f.algorithm) == ("eth", "ethash")
    assert f.difficulty == 2.0**32
    assert f.reported_hashrate_hs == 0x375198A
    assert (f.shares, f.shares_accepted, f.shares_rejected) == (3, 1, 2)


def test_login_only_is_suspected(detector):
    feed(detector, Side.ORIG, LOGIN)
    f = detector.finding()
    assert f is not None and f.confidence == "suspected" and f.miner_side is Side.ORIG


def test_top_level_worker_used_when_login_has_none(detector):
    feed(detector, Side.ORIG, {**LOGIN, "params": [WALLET, "x"]})
    f = detector.finding()
    assert f is not None and (f.wallet, f.worker) == (WALLET, "eth1.0")


def test_failed_login_stays_suspected(detector):
    feed(detector, Side.ORIG, LOGIN)
    feed(detector, Side.RESP, {"id": 2, "result": None, "error": {"code": -1, "message": "no"}})
    f = detector.finding()
    assert f is not None and not f.confirmed


def test_pushed_work_only_mid_session_is_confirmed(detector):
    # The capture starts inside the session with the pool's pushes; the pool is ORIG here.
    feed(detector, Side.ORIG, WORK_PUSH, {"jsonrpc": "2.0", "result": WORK})
    f = detector.finding()
    assert f is not None and f.confirmed
    assert f.miner_side is Side.RESP
    assert f.evidence == ["work-push"]
    assert f.difficulty == 2.0**32 and f.login is None


def test_submit_only_mid_session_is_confirmed(detector):
    feed(detector, Side.RESP, SUBMIT)
    feed(detector, Side.ORIG, {"id": 4, "jsonrpc": "2.0", "result": True})
    f = detector.finding()
    assert f is not None and f.confirmed and f.miner_side is Side.RESP
    assert (f.shares, f.shares_accepted) == (1, 1)


def test_key_order_and_whitespace_do_not_matter(dialect_rules, coins):
    findings = []
    for spaced in (False, True):
        det = EthProxyDetector(dialect_rules["ethproxy"], coins)
        for side, obj in [
            (Side.ORIG, LOGIN),
            (Side.RESP, LOGIN_OK),
            (Side.ORIG, GET_WORK),
            (Side.RESP, WORK_REPLY),
            (Side.ORIG, HASHRATE),
        ]:
            det.feed(JsonMessage(side, 1.0, orjson.loads(as_line(obj, spaced))))
        findings.append(det.finding())
    assert findings[0] == findings[1]
    assert findings[0] is not None and findings[0].confirmed


@pytest.mark.parametrize(
    "obj",
    [
        {"jsonrpc": "2.0", "method": "eth_blockNumber", "params": [], "id": 1},
        {"jsonrpc": "2.0", "method": "eth_getBalance", "params": [WALLET, "latest"], "id": 1},
        {"jsonrpc": "2.0", "method": "eth_call", "params": [{"to": WALLET}, "latest"], "id": 7},
        {"jsonrpc": "2.0", "method": "net_version", "params": [], "id": 67},
        {
            "id": 1,
            "method": "mining.subscribe",
            "params": ["ethminer/0.19", "EthereumStratum/1.0.0"],
        },
        {"method": "getinfo"},
        {"id": 1, "method": "eth_submitLogin", "params": {"user": "bob"}},
        {"id": 1, "method": "eth_getWork", "params": ["latest"]},
        {"request": "active checks", "host": "web01"},
        [{"jsonrpc": "2.0", "method": "eth_getWork", "id": 1}],
    ],
)
def test_lookalikes_decline(detector, obj):
    feed(detector, Side.ORIG, obj)
    assert detector.declined and detector.finding() is None


def test_node_api_mixing_getwork_with_other_calls_declines(detector):
    # A node client on 8545 may ask for work, but it also asks for everything else.
    feed(detector, Side.ORIG, GET_WORK)
    feed(detector, Side.ORIG, {"jsonrpc": "2.0", "method": "eth_blockNumber", "id": 4})
    assert detector.declined and detector.finding() is None


def test_node_answers_do_not_fire(detector):
    # eth_getFilterChanges can return three block hashes: not a share target.
    hashes = ["0x" + c * 64 for c in "9ab"]
    feed(detector, Side.RESP, {"jsonrpc": "2.0", "id": 0, "result": hashes})
    feed(detector, Side.RESP, {"jsonrpc": "2.0", "id": 1, "result": "0x10d4f"})
    assert detector.finding() is None and not detector.declined


def test_http_and_binary_decline(dialect_rules, coins):
    http = HttpMessage(Side.ORIG, 1.0, True, "POST", "/", None, json=GET_WORK)
    for msg in (http, BinaryChunk(Side.ORIG, 1.0, b"\x16\x03\x01\x02\x00")):
        det = EthProxyDetector(dialect_rules["ethproxy"], coins)
        det.feed(msg)
        assert det.declined and det.finding() is None


def test_noise_after_confirmation_is_tolerated(detector):
    feed(detector, Side.ORIG, LOGIN)
    feed(detector, Side.RESP, LOGIN_OK)
    feed(detector, Side.RESP, {"id": None, "method": "client.show_message", "params": ["hi"]})
    assert not detector.declined and detector.finding() is not None


def test_target_difficulty_is_hashes_per_share():
    assert target_difficulty(1 << 224) == 2.0**32
    assert target_difficulty(0) is None
    assert work_target(WORK) == 1 << 224
    assert work_target([HEADER, SEED]) is None
    assert work_target([HEADER, "0xzz", TARGET]) is None


# -- the real Claymore session in ../shared -------------------------------------------


def capture_flows(path: Path) -> dict[frozenset, list[JsonMessage]]:
    """JSON lines of each TCP flow in a pcap, ORIG being the first sender; a test-only reader."""
    dpkt = pytest.importorskip("dpkt")
    flows: dict[frozenset, list[JsonMessage]] = {}
    origs: dict[frozenset, tuple] = {}
    buffers: dict[tuple, bytes] = {}
    seen: set[tuple] = set()
    with path.open("rb") as fh:
        for ts, buf in dpkt.pcap.Reader(fh):
            ip = dpkt.ethernet.Ethernet(buf).data
            tcp = getattr(ip, "data", None)
            if not isinstance(tcp, dpkt.tcp.TCP):
                continue
            src = (ip.src, tcp.sport)
            flow = frozenset((src, (ip.dst, tcp.dport)))
            side = Side.ORIG if origs.setdefault(flow, src) == src else Side.RESP
            if not tcp.data or (src, tcp.seq) in seen:
                continue  # handshake, bare ack or retransmission
            seen.add((src, tcp.seq))
            *lines, buffers[src] = (buffers.get(src, b"") + tcp.data).split(b"\n")
            msgs = flows.setdefault(flow, [])
            msgs += [JsonMessage(side, ts, orjson.loads(x)) for x in lines if x.strip()]
    return flows


def test_real_claymore_capture(dialect_rules, coins):
    path = SHARED / "captures" / "mining" / "peafowl_ethereum_ethproxy.pcap"
    if not path.exists():
        pytest.skip("shared captures not available")
    findings = []
    for msgs in capture_flows(path).values():
        det = EthProxyDetector(dialect_rules["ethproxy"], coins)
        for msg in msgs:
            det.feed(msg)
        findings.append(det.finding())
    assert len(findings) == 2 and all(f is not None and f.confirmed for f in findings)
    wallets = {f.wallet: f for f in findings if f is not None}
    assert set(wallets) == {
        "0x0fccfff9e61a230ff380530c6827caf4759337c6",
        "0xc1c427cD8E6B7Ee3b5F30c2e1D3f3c5536EC16f5",
    }
    f = wallets["0x0fccfff9e61a230ff380530c6827caf4759337c6"]
    assert f.miner_side is Side.ORIG and f.worker == "rig2" and f.coin == "eth"
    assert f.evidence[:3] == ["eth_submitLogin", "eth_getWork", "work-push"]
    assert "eth_submitHashrate" in f.evidence and "eth_submitWork" in f.evidence
    assert f.shares >= 8 and f.shares_accepted + f.shares_rejected <= f.shares
    assert f.reported_hashrate_hs is not None and 50e6 < f.reported_hashrate_hs < 60e6
    # target 0x0112e0be... (58 hex digits): about 4 GH per share, a usual ETH pool difficulty
    assert f.difficulty is not None and 3.9e9 < f.difficulty < 4.1e9
    assert wallets["0xc1c427cD8E6B7Ee3b5F30c2e1D3f3c5536EC16f5"].worker == "eth1.0"


def test_nicehash_btc_payout_address_keeps_the_ethash_coin(detector):
    # NiceHash takes Ethash work from a BTC payout address: the wallet names no coin mined.
    feed(
        detector,
        Side.ORIG,
        {"id": 1, "method": "eth_submitLogin", "params": ["3J7Gx1V3HvJ2oxCvAJ3rYSvfuiiXBoiJCf.w1"]},
    )
    feed(detector, Side.RESP, {"id": 1, "jsonrpc": "2.0", "result": True})
    finding = detector.finding()
    assert finding is not None and finding.confirmed
    assert (finding.coin, finding.algorithm) == ("eth", "ethash")
    assert finding.wallet == "3J7Gx1V3HvJ2oxCvAJ3rYSvfuiiXBoiJCf"
