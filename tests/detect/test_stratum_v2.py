"""StratumV2Detector and the SV2 frame codec: plaintext sessions, strictness, look-alikes."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensor.detect.base import BinaryChunk, HttpMessage, JsonMessage
from sensor.detect.stratum_v2 import (
    StratumV2Detector,
    decode_frame,
    recognise,
    split_frames,
)
from sensor.model import Side
from sensor.rules.model import CoinHints, DialectRule

DIFF1 = 0xFFFF << 208
# Values of the decoded session in braiins/braiins#89 (a client against slushpool's SV2 port).
SLUSH_TARGET = 12855308194642691370561826870309825580602120751654703181332480


# --- a small SV2 message factory (spec field layouts, little-endian) ---------------------


def frame(msg_type: int, payload: bytes, ext: int = 0) -> bytes:
    return struct.pack("<HB", ext, msg_type) + len(payload).to_bytes(3, "little") + payload


def s0(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return bytes([len(raw)]) + raw


def setup_connection(
    host: str | bytes = "v2.eu.stratum.slushpool.com",
    protocol: int = 0,
    versions: tuple[int, int] = (2, 2),
    vendor: str = "some_vendor",
) -> bytes:
    body = struct.pack("<BHHI", protocol, versions[0], versions[1], 0) + s0(host)
    body += struct.pack("<H", 3336) + s0(vendor) + s0("1") + s0("unknown") + s0("some_id")
    return frame(0x00, body)


def setup_success(used: int = 0) -> bytes:
    return frame(0x01, struct.pack("<HI", used, 0))


def setup_error(code: str = "unsupported-protocol") -> bytes:
    return frame(0x02, struct.pack("<I", 0) + s0(code))


def open_standard(
    user: str = "xtrinch.worker", rate: float = 100.0, extended: bool = False
) -> bytes:
    body = struct.pack("<I", 1) + s0(user) + struct.pack("<f", rate) + (100).to_bytes(32, "little")
    return frame(0x13, body + b"\x00\x00") if extended else frame(0x10, body)


def open_standard_success(target: int) -> bytes:
    body = struct.pack("<II", 1, 0) + target.to_bytes(32, "little") + s0(b"") + struct.pack("<I", 0)
    return frame(0x11, body)


def new_mining_job(job: int = 0) -> bytes:
    body = struct.pack("<II", 0, job) + b"\x00" + struct.pack("<I", 536870916) + b"\x04" * 32
    return frame(0x15, body)


def set_new_prev_hash() -> bytes:
    return frame(0x20, struct.pack("<II", 0, 0) + b"\x22" * 32 + struct.pack("<II", 1, 2), 0x8000)


def set_target(target: int) -> bytes:
    return frame(0x21, struct.pack("<I", 0) + target.to_bytes(32, "little"), 0x8000)


def submit(seq: int) -> bytes:
    return frame(0x1A, struct.pack("<6I", 0, seq, 0, 7, 8, 9), 0x8000)


def submit_success(count: int) -> bytes:
    return frame(0x1C, struct.pack("<IIIQ", 0, 2, count, 1000), 0x8000)


def submit_error(seq: int) -> bytes:
    return frame(0x1D, struct.pack("<II", 0, seq) + s0("stale-share"), 0x8000)


@pytest.fixture
def make(dialect_rules: dict[str, DialectRule], coins: CoinHints):
    def build(*chunks: tuple[Side, bytes]) -> StratumV2Detector:
        det = StratumV2Detector(dialect_rules["stratum-v2"], coins)
        for side, data in chunks:
            if not det.declined:
                det.feed(BinaryChunk(side, 1.0, data))
        return det

    return build


# --- sessions ----------------------------------------------------------------------------


def test_full_session_like_braiins_issue_89(make):
    client = setup_connection() + open_standard() + submit(1) + submit(2)
    pool = (
        setup_success()
        + open_standard_success(SLUSH_TARGET)
        + new_mining_job()
        + set_new_prev_hash()
        + submit_success(1)
        + submit_error(2)
    )
    f = make((Side.ORIG, client), (Side.RESP, pool)).finding()
    assert f is not None
    assert f.dialect == "stratum-v2" and f.confidence == "confirmed"
    assert f.miner_side is Side.ORIG
    assert f.host == "v2.eu.stratum.slushpool.com"
    assert f.agent == "some_vendor 1 unknown"
    assert (f.login, f.wallet, f.worker) == ("xtrinch.worker", "xtrinch", "worker")
    assert f.reported_hashrate_hs == 100.0
    assert f.difficulty == pytest.approx(DIFF1 / SLUSH_TARGET)
    assert (f.shares, f.shares_accepted, f.shares_rejected) == (2, 1, 1)
    assert f.evidence[:3] == [
        "SetupConnection",
        "OpenStandardMiningChannel",
        "SubmitSharesStandard",
    ]
    assert "SetupConnection.Success" in f.evidence and "SubmitShares.Error" in f.evidence
    assert f.rule_id == "minewatch.dialect.stratum-v2"


def test_miner_side_only_is_suspected(make):
    det = make((Side.ORIG, setup_connection() + open_standard(extended=True)))
    f = det.finding()
    assert f is not None and f.confidence == "suspected" and f.miner_side is Side.ORIG
    assert f.evidence == ["SetupConnection", "OpenExtendedMiningChannel"]
    assert f.login == "xtrinch.worker"


def test_miner_is_whoever_sends_setup_connection(make):
    # Mid-capture start: the first packet seen came from the pool, so the miner is RESP.
    f = make((Side.ORIG, setup_success(2)), (Side.RESP, setup_connection())).finding()
    assert f is not None and f.miner_side is Side.RESP and f.confidence == "confirmed"


def test_pool_side_only_success_confirms(make):
    f = make((Side.RESP, setup_success(2) + open_standard_success(DIFF1))).finding()
    assert f is not None and f.confidence == "confirmed" and f.miner_side is Side.ORIG
    assert f.difficulty == pytest.approx(1.0)
    assert f.login is None


def test_setup_error_is_not_acceptance(make):
    f = make((Side.ORIG, setup_connection()), (Side.RESP, setup_error())).finding()
    assert f is not None and f.confidence == "suspected"
    assert f.evidence == ["SetupConnection", "SetupConnection.Error"]


def test_mid_session_pool_frames(make):
    det = make((Side.RESP, new_mining_job(5) + set_new_prev_hash() + set_target(DIFF1 // 4)))
    f = det.finding()
    assert f is not None and f.confidence == "confirmed" and f.miner_side is Side.ORIG
    assert f.difficulty == pytest.approx(4.0)


def test_mid_session_miner_submits_confirm(make):
    f = make((Side.ORIG, submit(10) + submit(11))).finding()
    assert f is not None and f.confidence == "confirmed" and f.shares == 2


def test_cut_last_frame_is_tolerated(make):
    data = setup_connection() + open_standard()
    f = make((Side.ORIG, data[:-5])).finding()
    assert f is not None and f.login is None  # the channel opening was cut off


def test_ip_endpoint_is_not_a_host_name(make):
    f = make((Side.ORIG, setup_connection(host="192.0.2.1"))).finding()
    assert f is not None and f.host is None


# --- strictness and look-alikes ----------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        setup_connection(protocol=2),  # template distribution: a pool talking to its node
        setup_connection(versions=(1, 2)),
        setup_connection(versions=(2, 1)),
        setup_connection(host=b"bad\x00host"),
        setup_connection()[:-1],  # shorter than its declared length
        frame(0x00, setup_connection()[6:] + b"\x00"),  # one byte too long for its fields
        frame(0x00, setup_connection()[6:], ext=0x8000),
        submit(1),  # a single mid-session frame is too little to go on
        submit(1) + frame(0x1A, b"\x00" * 23, 0x8000),
        b"\x00" * 64,
        b"SSH-2.0-OpenSSH_8.9\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x11" * 64,
        random.Random(89).randbytes(64),  # what a Noise handshake looks like on the wire
        b"",
    ],
)
def test_not_stratum_v2(make, data):
    det = make((Side.ORIG, data))
    assert det.declined and det.finding() is None


@pytest.mark.parametrize(
    "msg",
    [
        JsonMessage(Side.ORIG, 1.0, {"id": 1, "method": "mining.subscribe", "params": []}),
        HttpMessage(Side.ORIG, 1.0, True, "GET", "/", None, {}),
    ],
)
def test_text_protocols_decline(make, msg):
    det = make()
    det.feed(msg)
    assert det.declined and det.finding() is None


def test_garbage_from_pool_after_a_valid_setup_keeps_the_finding(make):
    det = make((Side.ORIG, setup_connection()), (Side.RESP, b"HTTP/1.1 400 Bad Request\r\n"))
    assert not det.declined
    assert det.finding() is not None and det.finding().confidence == "suspected"


def test_random_noise_is_never_recognised():
    rng = random.Random(2)
    for _ in range(3000):
        data = rng.randbytes(rng.randrange(6, 200))
        assert recognise(split_frames(data)) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_raise(data):
    frames = split_frames(data)
    for f in frames:
        decode_frame(f)
    recognise(frames)
    det = StratumV2Detector(
        DialectRule("r", "stratum-v2", "", frozenset(), frozenset(), frozenset(), frozenset()),
        CoinHints(),
    )
    det.feed(BinaryChunk(Side.ORIG, 0.0, data))
    det.feed(BinaryChunk(Side.RESP, 0.0, data[::-1]))
    det.finding()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=255).filter(lambda s: len(s.encode()) <= 255), st.floats(0, 1e20))
def test_open_channel_round_trip(user, rate):
    data = frame(0x10, struct.pack("<I", 9) + s0(user) + struct.pack("<f", rate) + bytes(32))
    (only,) = split_frames(data)
    values = decode_frame(only)
    assert values is not None
    assert values[0] == 9 and values[1] == user.encode()
    assert values[2] == pytest.approx(rate, rel=1e-6)


PLAUSIBLE_FRAMES = st.lists(
    st.builds(
        frame,
        st.sampled_from(
            [
                0x00,
                0x01,
                0x02,
                0x10,
                0x11,
                0x13,
                0x14,
                0x15,
                0x16,
                0x1A,
                0x1B,
                0x1C,
                0x1D,
                0x1F,
                0x20,
                0x21,
                0x99,
            ]
        ),
        st.binary(max_size=80),
        st.sampled_from([0, 0x8000, 0x0001]),
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(PLAUSIBLE_FRAMES, st.integers(0, 40))
def test_well_framed_garbage_never_raises(frames, cut):
    data = b"".join(frames)
    data = data[: len(data) - cut] if cut < len(data) else data
    det = StratumV2Detector(
        DialectRule("r", "stratum-v2", "", frozenset(), frozenset(), frozenset(), frozenset()),
        CoinHints(),
    )
    det.feed(BinaryChunk(Side.ORIG, 0.0, setup_connection() + data))
    det.feed(BinaryChunk(Side.RESP, 0.0, data))
    f = det.finding()
    assert f is not None and f.shares >= 0 and f.shares_accepted >= 0
    assert f.difficulty is None or f.difficulty > 0
