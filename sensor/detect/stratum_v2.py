"""Stratum V2 in the clear: binary frames of the Mining Protocol.

Every SV2 message is a 6-byte header (extension_type u16 LE, msg_type u8,
msg_length u24 LE) and a payload whose layout the spec fixes per message type
(stratumprotocol.org, "Protocol Overview" and "Mining Protocol"). A miner opens
with SetupConnection (protocol 0 = mining, versions 2..2) and the pool answers
SetupConnection.Success or .Error; channel opening carries the user identity
and the miner's nominal hash rate.

Random binary must not look like this, so a stream counts only when it starts
with a SetupConnection(.Success/.Error) whose every field checks out, or (for
a capture that starts mid-session) with two or more frames that all decode
exactly under their message layouts. The Noise-encrypted transport that pools
actually deploy is indistinguishable from random bytes and is left to the
endpoint rules.
"""

from __future__ import annotations

import ipaddress
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sensor.detect.base import BinaryChunk, Message, split_login
from sensor.model import Confidence, Finding, Side
from sensor.rules.model import CoinHints, DialectRule

_HEADER = 6
_MAX_FRAMES = 64  # far more than the first 4 KiB of a real session holds
_CHANNEL_BIT = 0x8000
_DIFF1 = 0xFFFF << 208  # the difficulty-1 target of Bitcoin, which SV2 mines

SETUP_CONNECTION = 0x00
SETUP_SUCCESS = 0x01
SETUP_ERROR = 0x02

# Payload layouts per msg_type, as data (several where spec revisions differ).
# u*/f32/u256 are little-endian; str/b32 have a u8 length; opt32 is OPTION[u32];
# seq256 is SEQ0_255[U256]; b64k has a u16 length.
_LAYOUTS: dict[int, tuple[tuple[str, ...], ...]] = {
    0x00: (("u8", "u16", "u16", "u32", "str", "u16", "str", "str", "str", "str"),),
    0x01: (("u16", "u32"),),
    0x02: (("u32", "str"),),
    0x03: (("u32",),),
    0x04: (("str", "u16"),),
    0x10: (("u32", "str", "f32", "u256"),),
    0x11: (("u32", "u32", "u256", "b32", "u32"),),
    0x12: (("u32", "str"),),
    0x13: (("u32", "str", "f32", "u256", "u16"),),
    0x14: (("u32", "u32", "u256", "u16", "b32", "u32"), ("u32", "u32", "u256", "u16", "b32")),
    0x15: (("u32", "u32", "opt32", "u32", "u256"), ("u32", "u32", "u8", "u32", "b32")),
    0x16: (("u32", "f32", "u256"),),
    0x17: (("u32", "str"),),
    0x18: (("u32", "str"),),
    0x19: (("u32", "b32"),),
    0x1A: (("u32", "u32", "u32", "u32", "u32", "u32"),),
    0x1B: (("u32", "u32", "u32", "u32", "u32", "u32", "b32"),),
    0x1C: (("u32", "u32", "u32", "u64"), ("u32", "u32", "u32", "u32")),
    0x1D: (("u32", "u32", "str"),),
    0x1F: (
        ("u32", "u32", "opt32", "u32", "u8", "seq256", "b64k", "b64k"),
        ("u32", "u32", "u8", "u32", "u8", "seq256", "b64k", "b64k"),
    ),
    0x20: (("u32", "u32", "u256", "u32", "u32"),),
    0x21: (("u32", "u256"),),
}
_NAMES = {
    0x00: "SetupConnection",
    0x01: "SetupConnection.Success",
    0x02: "SetupConnection.Error",
    0x03: "ChannelEndpointChanged",
    0x04: "Reconnect",
    0x10: "OpenStandardMiningChannel",
    0x11: "OpenStandardMiningChannel.Success",
    0x12: "OpenMiningChannel.Error",
    0x13: "OpenExtendedMiningChannel",
    0x14: "OpenExtendedMiningChannel.Success",
    0x15: "NewMiningJob",
    0x16: "UpdateChannel",
    0x17: "UpdateChannel.Error",
    0x18: "CloseChannel",
    0x19: "SetExtranoncePrefix",
    0x1A: "SubmitSharesStandard",
    0x1B: "SubmitSharesExtended",
    0x1C: "SubmitShares.Success",
    0x1D: "SubmitShares.Error",
    0x1F: "NewExtendedMiningJob",
    0x20: "SetNewPrevHash",
    0x21: "SetTarget",
}
_FROM_MINER = frozenset({0x00, 0x10, 0x13, 0x16, 0x1A, 0x1B})
_BOTH_WAYS = frozenset({0x18})  # CloseChannel
_POOL_REFUSALS = frozenset({0x02, 0x12, 0x17, 0x1D})  # errors answer but do not accept
_FIXED = {"u8": 1, "u16": 2, "u32": 4, "f32": 4, "u64": 8, "u256": 32}


@dataclass(slots=True, frozen=True)
class Sv2Frame:
    """One complete SV2 frame: header fields and the raw payload."""

    extension_type: int
    msg_type: int
    payload: bytes

    @property
    def name(self) -> str:
        return _NAMES.get(self.msg_type, f"sv2:0x{self.msg_type:02x}")


def split_frames(data: bytes, limit: int = _MAX_FRAMES) -> list[Sv2Frame]:
    """The complete frames at the start of `data`; a cut-off last frame is dropped."""
    frames: list[Sv2Frame] = []
    pos = 0
    while len(data) - pos >= _HEADER and len(frames) < limit:
        ext = int.from_bytes(data[pos : pos + 2], "little")
        length = int.from_bytes(data[pos + 3 : pos + 6], "little")
        end = pos + _HEADER + length
        if end > len(data):
            break
        frames.append(Sv2Frame(ext, data[pos + 2], data[pos + _HEADER : end]))
        pos = end
    return frames


def _var_field(buf: bytes, pos: int, kind: str) -> tuple[Any, int] | None:
    """A length-prefixed field at `pos`: its value and the offset past it, or None."""
    if kind == "b64k":
        if pos + 2 > len(buf):
            return None
        start, size = pos + 2, int.from_bytes(buf[pos : pos + 2], "little")
    else:
        if pos >= len(buf):
            return None
        start, count = pos + 1, buf[pos]
        limits = {"str": 255, "b32": 32, "opt32": 1, "seq256": 255}
        if count > limits[kind]:
            return None
        size = count * {"opt32": 4, "seq256": 32}.get(kind, 1)
    end = start + size
    return (buf[start:end], end) if end <= len(buf) else None


def decode_payload(payload: bytes, layout: tuple[str, ...]) -> list[Any] | None:
    """Field values when `payload` matches `layout` exactly (no bytes short, none left)."""
    values: list[Any] = []
    pos = 0
    for kind in layout:
        size = _FIXED.get(kind)
        if size is None:
            got = _var_field(payload, pos, kind)
            if got is None:
                return None
            value, pos = got
        elif pos + size > len(payload):
            return None
        else:
            raw = payload[pos : pos + size]
            value = struct.unpack("<f", raw)[0] if kind == "f32" else int.from_bytes(raw, "little")
            pos += size
        values.append(value)
    return values if pos == len(payload) else None


def decode_frame(frame: Sv2Frame) -> list[Any] | None:
    """The fields of a Mining/Common Protocol message, or None if it does not fit its layout."""
    if frame.extension_type & ~_CHANNEL_BIT:
        return None  # an extension's message: layout unknown here
    for layout in _LAYOUTS.get(frame.msg_type, ()):
        values = decode_payload(frame.payload, layout)
        if values is not None:
            return values
    return None


def _text(raw: bytes, ascii_only: bool = False) -> str | None:
    try:
        text = raw.decode("ascii" if ascii_only else "utf-8")
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() else None


def _setup_ok(frame: Sv2Frame, values: list[Any]) -> bool:
    """Field checks for the opening messages, strict so that random bytes fail them."""
    if frame.extension_type != 0:
        return False
    if frame.msg_type == SETUP_CONNECTION:
        protocol, min_version, max_version = values[0], values[1], values[2]
        strings = (values[4], *values[6:])
        return (
            protocol == 0
            and min_version == 2
            and 2 <= max_version <= 16
            and _text(values[4], ascii_only=True) is not None
            and all(_text(s) is not None for s in strings)
        )
    if frame.msg_type == SETUP_SUCCESS:
        return values[0] <= 16  # used_version (some pools report 0)
    return _text(values[1], ascii_only=True) is not None  # SetupConnection.Error


def recognise(frames: list[Sv2Frame]) -> list[tuple[Sv2Frame, list[Any]]] | None:
    """The decoded frames when the stream is plaintext SV2, else None."""
    first = decode_frame(frames[0]) if frames else None
    if first is None:
        return None
    kind = frames[0].msg_type
    if kind in (SETUP_CONNECTION, SETUP_SUCCESS, SETUP_ERROR) and not _setup_ok(frames[0], first):
        return None
    decoded = [(frames[0], first)]
    decoded += [(f, v) for f in frames[1:] if (v := decode_frame(f)) is not None]
    if kind == SETUP_CONNECTION:
        return decoded  # strict enough on its own; later frames may be extensions
    every = len(decoded) == len(frames)
    if kind in (SETUP_SUCCESS, SETUP_ERROR):
        return decoded if every else None
    # Mid-session: no handshake to check, so two or more frames must all decode exactly.
    return decoded if every and len(frames) >= 2 else None


def _host_name(host: str) -> str | None:
    """A host name worth reporting (IP literals say nothing the address does not)."""
    host = host.strip().lower()
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host or None
    return None


def _difficulty(target: int) -> float | None:
    return _DIFF1 / target if target > 0 else None


@dataclass(slots=True)
class _Session:
    """What the frames said so far."""

    miner_side: Side | None = None
    accepted_by_pool: bool = False
    evidence: list[str] = field(default_factory=list)
    host: str | None = None
    agent: str | None = None
    login: str | None = None
    difficulty: float | None = None
    hashrate: float | None = None
    shares: int = 0
    accepted: int = 0
    rejected: int = 0


class StratumV2Detector:
    """Plaintext Stratum V2 (Mining Protocol), from the first bytes of each direction."""

    dialect: ClassVar[str] = "stratum-v2"

    def __init__(self, rule: DialectRule, coins: CoinHints) -> None:
        self.rule = rule
        self.coins = coins
        self._declined = False
        self._seen = False
        self._s = _Session()

    @property
    def declined(self) -> bool:
        return self._declined

    def feed(self, msg: Message) -> None:
        if not isinstance(msg, BinaryChunk):
            # JSON or HTTP: a text protocol, never SV2 (unless SV2 was already seen).
            self._declined = self._declined or not self._seen
            return
        data = msg.data
        # Cheap test of the first header (extension 0, a known message type) before parsing.
        plausible = len(data) >= _HEADER and data[0] == 0 and data[1] in (0, 0x80)
        frames = split_frames(data) if plausible else []
        decoded: list[tuple[Sv2Frame, list[Any]]] | None
        if self._seen:
            # Already SV2: later chunks carry single frames (a channel opening, shares).
            decoded = [(f, v) for f in frames if (v := decode_frame(f)) is not None]
        else:
            decoded = recognise(frames) if plausible and data[2] in _LAYOUTS else None
        if decoded is None:
            self._declined = self._declined or not self._seen
            return
        self._seen = True
        for frame, values in decoded:
            self._take(msg.side, frame, values)

    def _take(self, side: Side, frame: Sv2Frame, values: list[Any]) -> None:
        s = self._s
        t = frame.msg_type
        if s.miner_side is None and t not in _BOTH_WAYS:
            s.miner_side = side if t in _FROM_MINER else side.other
        if frame.name not in s.evidence:
            s.evidence.append(frame.name)
        if t not in _FROM_MINER and t not in _BOTH_WAYS and t not in _POOL_REFUSALS:
            s.accepted_by_pool = True
        handler = _HANDLERS.get(t)
        if handler is not None:
            handler(s, values)

    def finding(self) -> Finding | None:
        s = self._s
        if not self._seen or s.miner_side is None:
            return None
        confirmed = s.accepted_by_pool or s.shares > 0
        wallet, worker = split_login(s.login)
        hint = (
            self.coins.for_wallet(s.login)
            or self.coins.for_host(s.host)
            or self.coins.for_agent(s.agent)
        )
        return Finding(
            dialect=self.dialect,
            confidence=Confidence.CONFIRMED if confirmed else Confidence.SUSPECTED,
            miner_side=s.miner_side,
            rule_id=self.rule.id,
            evidence=list(s.evidence),
            coin=hint.coin if hint else self.rule.coin,
            algorithm=hint.algorithm if hint else self.rule.algorithm,
            host=s.host,
            login=s.login,
            wallet=wallet,
            worker=worker,
            agent=s.agent,
            difficulty=s.difficulty,
            shares=s.shares,
            shares_accepted=s.accepted,
            shares_rejected=s.rejected,
            reported_hashrate_hs=s.hashrate,
        )


def _on_setup(s: _Session, v: list[Any]) -> None:
    s.host = _host_name(v[4].decode("ascii"))
    parts = [p.decode("utf-8").strip() for p in (v[6], v[7], v[8])]
    s.agent = " ".join(p for p in parts if p) or None


def _on_open_channel(s: _Session, v: list[Any]) -> None:
    s.login = v[1].decode("utf-8", "replace") or s.login
    _on_hashrate(s, v[2])


def _on_hashrate(s: _Session, rate: float) -> None:
    # Proxies send 0.0 before devices connect; NaN/inf are not reports.
    if math.isfinite(rate) and rate > 0:
        s.hashrate = float(rate)


def _on_target(s: _Session, target: int) -> None:
    s.difficulty = _difficulty(target) or s.difficulty


def _on_shares_ok(s: _Session, v: list[Any]) -> None:
    s.accepted += v[2]


def _count_share(s: _Session, v: list[Any]) -> None:
    s.shares += 1


def _count_reject(s: _Session, v: list[Any]) -> None:
    s.rejected += 1


_HANDLERS: dict[int, Callable[[_Session, list[Any]], None]] = {
    0x00: _on_setup,
    0x10: _on_open_channel,
    0x13: _on_open_channel,
    0x11: lambda s, v: _on_target(s, v[2]),
    0x14: lambda s, v: _on_target(s, v[2]),
    0x16: lambda s, v: _on_hashrate(s, v[1]),
    0x1A: _count_share,
    0x1B: _count_share,
    0x1C: _on_shares_ok,
    0x1D: _count_reject,
    0x21: lambda s, v: _on_target(s, v[1]),
}
