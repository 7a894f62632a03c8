"""Stratum V2 plaintext frames (stratumprotocol.org: 3.2 Framing, 5 Mining Protocol)."""

from __future__ import annotations

import struct

from tests.sessions.base import CLIENT, SERVER, Expect, Script, filler


def sv2_frame(msg_type: int, payload: bytes, *, channel: bool = False) -> bytes:
    """extension_type u16 (high bit: channel message), msg_type u8, length u24, payload."""
    ext = 0x8000 if channel else 0
    return struct.pack("<HB", ext, msg_type) + len(payload).to_bytes(3, "little") + payload


def _str0_255(text: str) -> bytes:
    return bytes([len(text)]) + text.encode()


def stratum_v2() -> Script:
    """SetupConnection, a standard channel, a job and one accepted share, unencrypted."""
    user = "minewatch.rig12"
    setup = (
        struct.pack("<BHHI", 0, 2, 2, 0)
        + _str0_255("v2.pool.example")
        + struct.pack("<H", 3336)
        + _str0_255("Bitmain")
        + _str0_255("S19")
        + _str0_255("braiins-os-2023-06")
        + _str0_255("rig12")
    )
    channel = struct.pack("<I", 1) + _str0_255(user) + struct.pack("<f", 1.1e14) + b"\xff" * 32
    opened = (
        struct.pack("<II", 1, 1)
        + b"\x00\x00\x00\x01"
        + b"\xff" * 28
        + bytes([4])
        + bytes.fromhex("0029a1b2")
        + struct.pack("<I", 0)
    )
    job = struct.pack("<II", 1, 1) + b"\x00" + struct.pack("<I", 0x20000000) + bytes([32])
    job += bytes.fromhex(filler("sv2/merkle", 32))
    prevhash = (
        struct.pack("<II", 1, 1)
        + bytes.fromhex(filler("sv2/prev", 32))
        + struct.pack("<II", 1700000000, 0x17034219)
    )
    share = struct.pack("<IIIIII", 1, 0, 1, 0xB2957C02, 1700000004, 0x20000000)
    steps = [
        (CLIENT, sv2_frame(0x00, setup)),
        (SERVER, sv2_frame(0x01, struct.pack("<HI", 2, 0))),
        (CLIENT, sv2_frame(0x10, channel)),
        (SERVER, sv2_frame(0x11, opened)),
        (SERVER, sv2_frame(0x15, job, channel=True)),
        (SERVER, sv2_frame(0x20, prevhash, channel=True)),
        (CLIENT, sv2_frame(0x1A, share, channel=True)),
        (SERVER, sv2_frame(0x1C, struct.pack("<IIIQ", 1, 0, 1, 1), channel=True)),
    ]
    # the wire names no coin: user_identity is an account, not an address
    expect = Expect(
        True,
        "stratum-v2",
        None,
        login=user,
        wallet="minewatch",
        worker="rig12",
        submits=1,
        accepted=1,
    )
    return Script("stratum_v2", 3336, "binary", tuple(steps), expect, "Stratum V2 spec")
