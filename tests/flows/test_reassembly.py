"""Per-direction stream reassembly: order, repeats, wrap-around, late starts and bounds.

Conversations are laid out by the traffic factory's `TcpSession` (its `Segment`
records carry the real sequence numbers a capture would show) and fed to one
`Stream` per side; the bytes delivered must be exactly what that side sent.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sensor.flows.reassembly import MAX_PENDING_SEGMENTS, Stream, seq_diff
from tests.factory import CLIENT, SERVER, Segment, TcpSession
from tests.sessions import SCRIPTS

BIG = 1 << 20


def replay(segments: list[Segment], side: str = CLIENT, depth: int = BIG) -> tuple[bytes, Stream]:
    """Feed one side's segments to a Stream as a capture shows them; return what it delivered."""
    stream = Stream(depth)
    out = []
    for seg in segments:
        if seg.side != side:
            continue
        if "S" in seg.flags:
            stream.syn(seg.seq)
        out.append(stream.segment(seg.seq, seg.payload))
    return b"".join(out), stream


def stratum(**options: Any) -> TcpSession:
    return TcpSession(**options).script(SCRIPTS["stratum_v1_btc"].steps)


def test_seq_diff_is_signed_and_wraps() -> None:
    assert seq_diff(10, 3) == 7
    assert seq_diff(3, 10) == -7
    assert seq_diff(5, 0xFFFF_FFFB) == 10
    assert seq_diff(0xFFFF_FFFB, 5) == -10
    assert seq_diff(1 << 31, 0) == -(1 << 31)


def test_in_order_both_sides() -> None:
    session = stratum(mss=37)
    for side in (CLIENT, SERVER):
        data, stream = replay(session.segments(), side)
        assert data == session.stream(side)
        assert stream.delivered == len(data) and stream.gaps == 0


def test_out_of_order_waits_then_delivers() -> None:
    session = TcpSession()
    payload = b'{"id":1,"method":"mining.subscribe","params":["cgminer/4.11.1"]}\n'
    session.send(CLIENT, payload, split=[10, 20, 40], reorder=[2, 0, 3, 1])
    segments = session.segments()
    data_segs = [s for s in segments if s.side == CLIENT and s.payload]
    stream = Stream(BIG)
    stream.syn(session.client_isn)
    got = [stream.segment(s.seq, s.payload) for s in data_segs]
    # [20:40] waits, [0:10] comes, [40:] waits, [10:20] releases everything.
    assert got == [b"", payload[:10], b"", payload[10:]]
    assert stream.pending == {}


def test_reversed_sends_and_retransmissions() -> None:
    session = TcpSession(mss=16)
    for n, (side, data) in enumerate(SCRIPTS["cryptonote_xmrig"].steps):
        session.send(side, data, reorder=bool(n % 2), retransmit=n % 3 == 0)
    for side in (CLIENT, SERVER):
        assert replay(session.segments(), side)[0] == session.stream(side)


def test_overlapping_segments_give_new_bytes_only() -> None:
    session = TcpSession(mss=20)
    session.send(CLIENT, SCRIPTS["ethproxy"].sent_by(CLIENT), overlap=7)
    session.send(
        CLIENT, b'{"id":9,"method":"eth_getWork"}\n', overlap=3, split=[5, 9], reorder=True
    )
    assert replay(session.segments())[0] == session.stream(CLIENT)


def test_longer_repeat_of_a_held_segment_replaces_it() -> None:
    stream = Stream(BIG)
    stream.syn(99)  # first byte at 100
    assert stream.segment(110, b"KL") == b""
    assert stream.segment(110, b"KLMNOP") == b""
    assert stream.segment(110, b"KL") == b""  # a shorter repeat changes nothing
    assert stream.segment(100, b"ABCDEFGHIJ") == b"ABCDEFGHIJKLMNOP"


def test_sequence_numbers_wrap_around() -> None:
    for isn in (0xFFFF_FFF0, 0xFFFF_FFFF, 0xFFFF_FF00):
        session = stratum(client_isn=isn, server_isn=isn - 40, mss=9)
        for side in (CLIENT, SERVER):
            data, stream = replay(session.segments(), side)
            assert data == session.stream(side), hex(isn)
            end = (session.client_isn if side == CLIENT else session.server_isn) + 1 + len(data)
            assert stream.next_seq == end % (1 << 32)


def test_mid_session_start_begins_at_the_first_segment_seen() -> None:
    session = stratum(handshake=False)
    data, _ = replay(session.segments())
    assert data == session.stream(CLIENT)
    # The capture starts one client segment later: the stream starts there.
    client = [s for s in session.segments() if s.side == CLIENT and s.payload]
    late, _ = replay(client[1:])
    assert late == b"".join(s.payload for s in client[1:])


def test_depth_limit_stops_delivery() -> None:
    session = stratum(mss=10)
    data, stream = replay(session.segments(), depth=25)
    assert data == session.stream(CLIENT)[:25]
    assert stream.exhausted and stream.delivered == 25
    assert stream.segment(stream.next_seq or 0, b"more") == b""


def test_lifting_the_depth_resumes_delivery() -> None:
    stream = Stream(4)
    stream.syn(0)
    assert stream.segment(1, b"abcdef") == b"abcd"
    stream.depth = BIG  # what the pipeline does once a flow is recognised
    assert stream.segment(7, b"ghi") == b"ghi"


def test_skip_gap_jumps_a_hole_that_never_fills() -> None:
    stream = Stream(BIG)
    stream.syn(999)
    assert stream.segment(1000, b"line one\n") == b"line one\n"
    # 1009..1019 is lost; the following lines wait for it.
    assert stream.segment(1020, b'{"id":2}\n') == b""
    assert stream.segment(1029, b'{"id":3}\n') == b""
    assert stream.skip_gap() == b'{"id":2}\n{"id":3}\n'
    assert stream.gaps == 1 and stream.pending == {}
    assert stream.skip_gap() == b""  # nothing left to skip to
    assert stream.gaps == 1


def test_skip_gap_on_a_fresh_stream_does_nothing() -> None:
    assert Stream(BIG).skip_gap() == b""


def test_pending_is_bounded_and_a_full_buffer_skips_the_hole() -> None:
    stream = Stream(BIG)
    stream.syn(0)
    assert stream.segment(1, b"a") == b"a"
    # Byte 2 never comes; the segments after it fill the buffer.
    for n in range(MAX_PENDING_SEGMENTS):
        assert stream.segment(3 + n, bytes([65 + n % 26])) == b""
    assert len(stream.pending) == MAX_PENDING_SEGMENTS
    held = bytes(65 + n % 26 for n in range(MAX_PENDING_SEGMENTS))
    # One more: the stream gives up on byte 2 and delivers everything after it.
    assert stream.segment(3 + MAX_PENDING_SEGMENTS, b"!") == held + b"!"
    assert stream.gaps == 1 and stream.pending == {}
    assert stream.delivered == 2 + MAX_PENDING_SEGMENTS


def test_a_full_buffer_keeps_later_holes_pending() -> None:
    stream = Stream(BIG)
    stream.syn(0)
    for n in range(MAX_PENDING_SEGMENTS):
        stream.segment(10 + 10 * n, b"x" * 5)  # every segment is followed by a hole
    out = stream.segment(10_000, b"late")
    assert out == b"xxxxx"  # only the first held segment is contiguous after the skip
    assert len(stream.pending) == MAX_PENDING_SEGMENTS
    assert 10_000 in stream.pending


def test_empty_segments_are_ignored() -> None:
    stream = Stream(BIG)
    assert stream.segment(5, b"") == b""
    assert stream.next_seq is None  # a pure ACK does not fix where the stream starts


@st.composite
def scrambled(draw: st.DrawFn) -> tuple[int, bytes, list[tuple[int, bytes]]]:
    """A byte string cut into (possibly overlapping) segments, shuffled and repeated."""
    data = draw(st.binary(min_size=1, max_size=300))
    isn = draw(st.integers(0, (1 << 32) - 1))
    cuts = sorted(
        draw(st.sets(st.integers(1, len(data) - 1), max_size=20)) if len(data) > 1 else []
    )
    bounds = [0, *cuts, len(data)]
    pieces = []
    for start, end in itertools.pairwise(bounds):
        back = draw(st.integers(0, start))  # overlap with what came before
        pieces.append((start - back, end))
    pieces += draw(st.lists(st.sampled_from(pieces), max_size=10))  # retransmissions
    order = draw(st.permutations(pieces))
    first = (isn + 1) % (1 << 32)
    return isn, data, [((first + a) % (1 << 32), data[a:b]) for a, b in order]


@settings(max_examples=300, deadline=None)
@given(scrambled())
def test_any_permutation_and_duplication_delivers_exactly_the_string(
    case: tuple[int, bytes, list[tuple[int, bytes]]],
) -> None:
    isn, data, segments = case
    stream = Stream(BIG)
    stream.syn(isn)
    out = b"".join(stream.segment(seq, payload) for seq, payload in segments)
    assert out == data
    assert stream.gaps == 0 and stream.delivered == len(data)
