"""Cryptocurrency node peer-to-peer traffic, told apart from pool mining.

A full node syncing blocks is not a miner, but it talks to the same kind of
peers on the same kind of ports, so the sensor names it (a `crypto_node`
event) instead of leaving it to endpoint rules that might call it mining.
Every protocol here is recognised from the first bytes of one TCP direction:

- Bitcoin and its forks frame every message with a 4-byte network magic and a
  12-byte NUL-padded ASCII command; the magic also names the network.
- Monero (and other CryptoNote coins) use levin, whose header starts with a
  fixed 8-byte signature.
- Ethereum's RLPx encrypts everything, but its first handshake message is
  ECIES: an uncompressed secp256k1 point at a fixed offset. A point that lies
  on the curve is a 2^-256 coincidence for any other protocol, so that check is
  sound where a byte pattern alone would not be.

Bitcoin's BIP 324 v2 transport starts with ElligatorSwift keys that are
indistinguishable from random bytes by design; it is left undetected.
"""

from __future__ import annotations

from dataclasses import dataclass

BITCOIN_P2P = "bitcoin-p2p"
MONERO_LEVIN = "monero-levin"
ETHEREUM_RLPX = "ethereum-rlpx"

# pchMessageStart of each network, as written in the coins' chainparams.cpp.
_MAGICS: dict[bytes, str] = {
    bytes.fromhex("f9beb4d9"): "bitcoin",
    bytes.fromhex("0b110907"): "bitcoin-testnet3",
    bytes.fromhex("1c163f28"): "bitcoin-testnet4",
    bytes.fromhex("0a03cf40"): "bitcoin-signet",
    bytes.fromhex("fabfb5da"): "bitcoin-regtest",
    bytes.fromhex("fbc0b6db"): "litecoin",
    bytes.fromhex("fdd2c8f1"): "litecoin-testnet",
    bytes.fromhex("c0c0c0c0"): "dogecoin",
    bytes.fromhex("fcc1b7dc"): "dogecoin-testnet",
    bytes.fromhex("e3e1f3e8"): "bitcoin-cash",  # shared by Bitcoin SV
    bytes.fromhex("f4e5f3f4"): "bitcoin-cash-testnet",
    bytes.fromhex("bf0c6bbd"): "dash",
    bytes.fromhex("24e92764"): "zcash",
    bytes.fromhex("5241564e"): "ravencoin",
    bytes.fromhex("f9beb4fe"): "namecoin",
}
_BTC_HEADER = 24  # magic, command[12], payload length u32, checksum[4]
_BTC_MAX_PAYLOAD = 32 * 1024 * 1024  # MAX_SIZE in Bitcoin Core's serialize.h
_COMMAND_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")

_LEVIN_SIGNATURE = (0x0101010101012101).to_bytes(8, "little")
_LEVIN_HEADER = 33  # signature, cb u64, have_to_return u8, command u32, rc i32, flags u32, ver u32
_LEVIN_MAX_BODY = 100 * 1024 * 1024  # levin's default packet limit

_SECP256K1_P = 2**256 - 2**32 - 977
_RLPX_LEGACY_ACK = 210  # pre-EIP-8 sizes: ack 210, auth 307 (65 key, 16 IV, body, 32 MAC)
_ECIES_OVERHEAD = 65 + 16 + 32


@dataclass(slots=True, frozen=True)
class NodeHello:
    """A recognised node protocol, with the network and first command where known."""

    protocol: str
    network: str | None = None
    command: str | None = None


def _bitcoin(data: bytes) -> NodeHello | None:
    network = _MAGICS.get(data[:4])
    if network is None or len(data) < _BTC_HEADER:
        return None
    name, _, padding = data[4:16].partition(b"\0")
    if not name or padding.strip(b"\0") or not _COMMAND_CHARS.issuperset(name):
        return None
    if int.from_bytes(data[16:20], "little") > _BTC_MAX_PAYLOAD:
        return None
    return NodeHello(BITCOIN_P2P, network, name.decode("ascii"))


def _levin(data: bytes) -> NodeHello | None:
    if len(data) < _LEVIN_HEADER or data[:8] != _LEVIN_SIGNATURE:
        return None
    body = int.from_bytes(data[8:16], "little")
    flags = int.from_bytes(data[25:29], "little")
    version = int.from_bytes(data[29:33], "little")
    # flags: 1 request, 2 response (plus fragment bits); version 1 is the only one.
    if body > _LEVIN_MAX_BODY or version != 1 or not 0 < flags < 16:
        return None
    command = int.from_bytes(data[17:21], "little")
    return NodeHello(MONERO_LEVIN, None, str(command))


def _on_secp256k1(point: bytes) -> bool:
    """`point` is 0x04 || X || Y; true when (X, Y) satisfies y^2 = x^3 + 7 mod p."""
    x = int.from_bytes(point[1:33], "big")
    y = int.from_bytes(point[33:65], "big")
    p = _SECP256K1_P
    return x < p and y < p and (y * y - x * x * x - 7) % p == 0


def _rlpx(data: bytes) -> NodeHello | None:
    # EIP-8 handshake: u16 size prefix, then the ECIES message starting with its key.
    if len(data) >= 67 and data[2] == 0x04:
        size = int.from_bytes(data[:2], "big")
        if size > _ECIES_OVERHEAD and _on_secp256k1(data[2:67]):
            return NodeHello(ETHEREUM_RLPX, "ethereum", "handshake")
    # Pre-EIP-8 auth/ack: a bare ECIES message of fixed size.
    if len(data) >= _RLPX_LEGACY_ACK and data[0] == 0x04 and _on_secp256k1(data[:65]):
        return NodeHello(ETHEREUM_RLPX, "ethereum", "handshake")
    return None


def identify_node(data: bytes) -> NodeHello | None:
    """The node protocol the first bytes of a TCP direction speak, or None."""
    if len(data) < 4:
        return None
    # Cheap byte checks first: most flows fail on the first byte comparison.
    if data[:4] in _MAGICS:
        return _bitcoin(data)
    if data[0] == 0x01 and data[:8] == _LEVIN_SIGNATURE:
        return _levin(data)
    if data[0] == 0x04 or (len(data) > 2 and data[2] == 0x04):
        return _rlpx(data)
    return None


def classify_node(data: bytes) -> str | None:
    """The node protocol name ("bitcoin-p2p", "monero-levin", "ethereum-rlpx") or None."""
    hello = identify_node(data)
    return hello.protocol if hello else None
