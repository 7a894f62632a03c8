"""Cryptocurrency node P2P recognition: Bitcoin-family, Monero levin, Ethereum RLPx."""

from __future__ import annotations

import random
import struct
from pathlib import Path
from typing import Any

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensor.detect.node import NodeHello, classify_node, identify_node

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
# secp256k1 generator point (SEC 2), a valid public key on the curve.
GX = 0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798
GY = 0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8
G = b"\x04" + GX.to_bytes(32, "big") + GY.to_bytes(32, "big")


def btc_message(magic: str, command: bytes, payload: bytes = b"\x00" * 85) -> bytes:
    header = bytes.fromhex(magic) + command.ljust(12, b"\x00")
    return header + struct.pack("<I", len(payload)) + b"\xaa\xbb\xcc\xdd" + payload


def levin(command: int = 1001, flags: int = 1, version: int = 1, body: int = 262) -> bytes:
    head = (0x0101010101012101).to_bytes(8, "little") + struct.pack("<QB", body, 1)
    return head + struct.pack("<IiII", command, 0, flags, version) + b"\x01\x11\x01\x01"


@pytest.mark.parametrize(
    ("magic", "network"),
    [
        ("f9beb4d9", "bitcoin"),
        ("0b110907", "bitcoin-testnet3"),
        ("fabfb5da", "bitcoin-regtest"),
        ("0a03cf40", "bitcoin-signet"),
        ("fbc0b6db", "litecoin"),
        ("c0c0c0c0", "dogecoin"),
        ("e3e1f3e8", "bitcoin-cash"),
        ("24e92764", "zcash"),
        ("bf0c6bbd", "dash"),
        ("5241564e", "ravencoin"),
    ],
)
def test_bitcoin_family_version_message(magic, network):
    data = btc_message(magic, b"version")
    assert identify_node(data) == NodeHello("bitcoin-p2p", network, "version")
    assert classify_node(data) == "bitcoin-p2p"


@pytest.mark.parametrize("command", [b"verack", b"sendaddrv2", b"wtxidrelay", b"inv", b"block"])
def test_other_first_commands(command):
    assert classify_node(btc_message("f9beb4d9", command, b"")) == "bitcoin-p2p"


@pytest.mark.parametrize(
    "data",
    [
        btc_message("f9beb4d9", b"")[:24],  # empty command
        btc_message("f9beb4d9", b"ver\x00sion"),  # junk after the NUL padding
        btc_message("f9beb4d9", b"vers ion"),
        btc_message("f9beb4d9", b"version")[:20],  # shorter than a header
        bytes.fromhex("f9beb4d9") + b"version".ljust(12, b"\x00") + b"\xff\xff\xff\xff" + b"1234",
        btc_message("f9beb4da", b"version"),  # not a known magic
    ],
)
def test_bitcoin_family_look_alikes(data):
    assert identify_node(data) is None


def test_monero_levin_handshake():
    assert identify_node(levin()) == NodeHello("monero-levin", None, "1001")
    assert classify_node(levin(command=1002, flags=2)) == "monero-levin"


@pytest.mark.parametrize(
    "data",
    [levin(version=2), levin(flags=0), levin(body=2**40), levin()[:32], b"\x01\x21" + b"\x01" * 40],
)
def test_levin_look_alikes(data):
    assert identify_node(data) is None


def test_ethereum_rlpx_handshakes():
    rng = random.Random(8)
    eip8_auth = struct.pack(">H", 420) + G + rng.randbytes(420 - 65)
    legacy_auth = G + rng.randbytes(307 - 65)
    assert identify_node(eip8_auth) == NodeHello("ethereum-rlpx", "ethereum", "handshake")
    assert classify_node(legacy_auth) == "ethereum-rlpx"


def test_rlpx_needs_a_point_on_the_curve():
    rng = random.Random(9)
    for _ in range(200):
        fake_key = b"\x04" + rng.randbytes(64)
        assert identify_node(struct.pack(">H", 420) + fake_key + rng.randbytes(355)) is None
        assert identify_node(fake_key + rng.randbytes(242)) is None
    off_curve = G[:-1] + bytes([G[-1] ^ 1])
    assert identify_node(off_curve + bytes(242)) is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b'{"id":0,"method":"mining.subscribe","params":[]}\n',
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64),
        b"SSH-2.0-OpenSSH_8.9\r\n",
        b"\x00\x00\x00\x00" * 20,
    ],
)
def test_ordinary_traffic_is_not_a_node(data):
    assert classify_node(data) is None


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(data):
    identify_node(data)
    for prefix in (bytes.fromhex("f9beb4d9"), levin()[:8], b"\x04", b"\x01\xa4\x04"):
        identify_node(prefix + data)


def _packets(path: Path) -> list[bytes]:
    """Link-layer frames of a pcap or pcapng file (some ".pcap" files are pcapng)."""
    with path.open("rb") as fh:
        try:
            reader: Any = dpkt.pcap.Reader(fh)
        except ValueError:
            fh.seek(0)
            reader = dpkt.pcapng.Reader(fh)
        return [buf for _ts, buf in reader]


def _first_payloads(path: Path) -> list[bytes]:
    """The first payload of each direction of each TCP flow in a capture."""
    seen: set[tuple[bytes, int]] = set()
    firsts: list[bytes] = []
    for buf in _packets(path):
        ip = dpkt.ethernet.Ethernet(buf).data
        tcp = getattr(ip, "data", None)
        if not isinstance(tcp, dpkt.tcp.TCP) or not tcp.data:
            continue
        if (bytes(ip.src), tcp.sport) not in seen:
            seen.add((bytes(ip.src), tcp.sport))
            firsts.append(bytes(tcp.data))
    return firsts


@pytest.mark.parametrize(
    ("name", "protocol", "network", "command"),
    [
        ("ndpi_bitcoin_p2p.pcap", "bitcoin-p2p", "bitcoin", "version"),
        ("ndpi_monero_p2p.pcap", "monero-levin", None, "1001"),
    ],
)
def test_real_node_captures(name, protocol, network, command):
    path = SHARED / "captures" / "node" / name
    if not path.exists():
        pytest.skip("shared captures not available")
    firsts = _first_payloads(path)
    assert len(firsts) >= 8  # both directions of every peer connection
    assert {identify_node(d) for d in firsts} == {NodeHello(protocol, network, command)}


def test_real_mining_and_ordinary_captures_are_not_nodes():
    folders = [SHARED / "captures" / "mining", SHARED / "captures" / "negative"]
    paths = [p for f in folders if f.exists() for p in sorted(f.glob("*.pcap*"))]
    if not paths:
        pytest.skip("shared captures not available")
    firsts = [d for p in paths for d in _first_payloads(p)]
    assert firsts and not any(classify_node(d) for d in firsts)
