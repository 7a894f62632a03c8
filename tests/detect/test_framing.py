"""Framers: stream bytes of one direction in, JSON / HTTP / binary messages out.

Streams are the session scripts' own bytes (tests/sessions), cut into segments
at arbitrary places, as TCP may deliver them.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensor.detect.base import BinaryChunk, HttpMessage, JsonMessage, Message
from sensor.detect.framing import (
    MAX_BODY,
    MAX_HEAD,
    MAX_LINE,
    TLS_RECORD_MAX,
    BinaryFramer,
    Framer,
    HttpFramer,
    JsonLineFramer,
    parse_json,
)
from sensor.detect.streams import StreamReader, framer_for
from sensor.model import Side
from tests.factory import client_hello
from tests.sessions import SCRIPTS, http_request, http_response

LINES = SCRIPTS["stratum_v1_btc"]
HTTP = SCRIPTS["getwork_gbt"]


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(data)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def feed_all(framer: Framer, chunks: list[bytes], ts: float = 1.0) -> list[Message]:
    out: list[Message] = []
    for n, chunk in enumerate(chunks):
        out += framer.feed(ts + n, chunk)
    return out


def objs(messages: list[Message]) -> list[Any]:
    return [m.obj for m in messages if isinstance(m, JsonMessage)]


# --- choosing a framer -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "kind"),
    [
        (b'{"id":1', JsonLineFramer),
        (b'[{"id":1}]', JsonLineFramer),
        (b"POST / HTTP/1.1\r\n", HttpFramer),
        (b"GET /x HTTP/1.0\r\n", HttpFramer),
        (b"HTTP/1.1 200 OK\r\n", HttpFramer),
        (b"OPTIONS * HTTP/1.1\r\n", HttpFramer),
        (b'ff"],true]}\n{"id":null,"method":"mining.notify"', JsonLineFramer),
        (b"\x16\x03\x01\x02\x00", BinaryFramer),
        (b"\x05\x01\x00", BinaryFramer),
    ],
)
def test_framer_follows_the_first_bytes(first: bytes, kind: type) -> None:
    framer = framer_for(Side.RESP, first)
    assert isinstance(framer, kind)


@pytest.mark.parametrize(
    "first", [b"SSH-2.0-OpenSSH_9.6\r\n", b"GETX", b"PRI * HTTP/2.0\r\n", b'0000"]}']
)
def test_text_that_is_no_known_start_waits(first: bytes) -> None:
    assert framer_for(Side.RESP, first) is None


def test_reader_finds_json_after_a_mid_line_start() -> None:
    reader = StreamReader(Side.RESP)
    assert reader.feed(1.0, b'00","01"],true]}') == []
    msgs = reader.feed(1.1, b'\n{"id":null,"method":"mining.notify","params":[]}\n')
    assert [m.obj["method"] for m in msgs if isinstance(m, JsonMessage)] == ["mining.notify"]
    assert reader.settled


def test_reader_holds_text_then_falls_back_to_binary() -> None:
    reader = StreamReader(Side.RESP)
    assert reader.feed(1.0, b"SSH-2.0-OpenSSH_9.6\r\n") == []
    msgs = reader.feed(1.1, b"\x00\x00\x05\xdc\x06\x14" + bytes(range(200)))
    assert len(msgs) == 1 and isinstance(msgs[0], BinaryChunk)
    assert msgs[0].data.startswith(b"SSH-2.0")


def test_reader_switches_to_json_after_a_socks_preamble() -> None:
    reader = StreamReader(Side.ORIG)
    first = reader.feed(1.0, b"\x05\x01\x00")
    assert len(first) == 1 and isinstance(first[0], BinaryChunk)
    reader.feed(1.1, b"\x05\x01\x00\x03\x0cpool.example\x0d\x05")
    msgs = reader.feed(1.2, b'{"id":1,"method":"mining.subscribe","params":[]}\n')
    assert [m.obj["method"] for m in msgs if isinstance(m, JsonMessage)] == ["mining.subscribe"]


def test_reader_switches_to_json_inside_an_http_connect_tunnel() -> None:
    reader = StreamReader(Side.ORIG)
    msgs = reader.feed(1.0, b"CONNECT pool.example:3333 HTTP/1.1\r\nHost: pool.example\r\n\r\n")
    assert len(msgs) == 1 and isinstance(msgs[0], HttpMessage) and msgs[0].method == "CONNECT"
    msgs = reader.feed(1.1, b'{"id":1,"method":"login","params":{}}\n')
    assert [m.obj["method"] for m in msgs if isinstance(m, JsonMessage)] == ["login"]


def test_a_long_binary_stream_never_switches() -> None:
    reader = StreamReader(Side.ORIG)
    reader.feed(1.0, bytes(2000))
    assert reader.settled
    assert reader.feed(1.1, b'{"id":1}\n') == []


def test_parse_json() -> None:
    assert parse_json(b'{"a":[1,2]}') == {"a": [1, 2]}
    assert parse_json(b"{not json") is None
    assert parse_json(b"\xff\xfe") is None


# --- JSON lines --------------------------------------------------------------------------


def test_json_lines_in_one_piece() -> None:
    framer = JsonLineFramer(Side.ORIG)
    messages = framer.feed(7.5, LINES.sent_by("client"))
    assert objs(messages) == [obj for side, obj in LINES.json_messages() if side == "client"]
    assert all(m.side is Side.ORIG and m.ts == 7.5 for m in messages)
    assert framer.bad_lines == 0


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(n for n, s in SCRIPTS.items() if s.framing == "lines")), st.data())
def test_json_lines_split_anywhere(name: str, data: st.DataObject) -> None:
    script = SCRIPTS[name]
    stream = script.sent_by("server")
    cuts = data.draw(st.lists(st.integers(1, len(stream) - 1), max_size=40))
    framer = JsonLineFramer(Side.RESP)
    got = objs(feed_all(framer, pieces(stream, cuts)))
    assert got == [obj for side, obj in script.json_messages() if side == "server"]
    assert framer.flush(99.0) == [] and framer.bad_lines == 0


def test_message_time_is_when_its_line_completed() -> None:
    framer = JsonLineFramer(Side.ORIG)
    assert framer.feed(1.0, b'{"id":1,') == []
    (first,) = framer.feed(2.0, b'"a":2}\n{"id":')
    (second,) = framer.feed(3.0, b"2}\r\n")  # CRLF endings are fine
    assert (first.ts, first.obj, second.ts, second.obj) == (2.0, {"id": 1, "a": 2}, 3.0, {"id": 2})


def test_partial_first_line_is_skipped() -> None:
    # A capture that starts inside a line: its tail is not JSON, the lines after it are.
    stream = b'{"job":"4f"}],"id":null}\n{"id":5,"result":true,"error":null}\n'
    framer = framer_for(Side.RESP, stream)
    assert isinstance(framer, JsonLineFramer)
    assert objs(framer.feed(1.0, stream)) == [{"id": 5, "result": True, "error": None}]
    assert framer.bad_lines == 1


def test_lines_that_are_not_json_objects_are_counted() -> None:
    framer = JsonLineFramer(Side.ORIG)
    got = framer.feed(1.0, b'hello\n42\n\n   \n[1,2]\n{"ok":1}\n{broken\n')
    assert objs(got) == [[1, 2], {"ok": 1}]
    assert framer.bad_lines == 3  # hello, 42, {broken; blank lines are not lines


def test_a_line_longer_than_the_limit_is_dropped() -> None:
    framer = JsonLineFramer(Side.ORIG)
    assert framer.feed(1.0, b'{"pad":"' + b"x" * MAX_LINE) == []
    assert framer.bad_lines == 1
    # The rest of the long line is not JSON either; the next line is read as usual.
    got = framer.feed(2.0, b'xxxx"}\n{"id":2,"method":"mining.submit"}\n')
    assert objs(got) == [{"id": 2, "method": "mining.submit"}]
    assert framer.bad_lines == 2


def test_a_line_just_under_the_limit_is_kept() -> None:
    framer = JsonLineFramer(Side.ORIG)
    line = b'{"pad":"' + b"x" * (MAX_LINE - 12) + b'"}'
    assert framer.feed(1.0, line) == []
    assert objs(framer.feed(2.0, b"\n")) == [{"pad": "x" * (MAX_LINE - 12)}]


def test_flush_reads_a_last_line_without_newline() -> None:
    framer = JsonLineFramer(Side.ORIG)
    assert framer.feed(1.0, b'{"id":9}') == []
    assert objs(framer.flush(2.0)) == [{"id": 9}]
    assert framer.flush(3.0) == []


# --- HTTP --------------------------------------------------------------------------------


def test_http_request_with_content_length_split_across_segments() -> None:
    request = HTTP.steps[0][1]
    framer = HttpFramer(Side.ORIG)
    chunks = pieces(request, list(range(7, len(request), 23)))
    got = feed_all(framer, chunks)
    (msg,) = got
    assert isinstance(msg, HttpMessage) and msg.is_request
    assert (msg.method, msg.target, msg.status) == ("POST", "/", None)
    assert msg.headers["user-agent"] == "bfgminer/5.5.0"
    assert msg.json == json.loads(msg.body) and msg.json["method"] == "getblocktemplate"
    assert msg.ts == len(chunks)  # completed by the last segment (feed_all numbers from 1)


def test_http_every_session_split_everywhere() -> None:
    for script in (s for s in SCRIPTS.values() if s.framing == "http"):
        for side, who in (("client", Side.ORIG), ("server", Side.RESP)):
            stream = script.sent_by(side)
            whole = HttpFramer(who).feed(1.0, stream)
            for step in (1, 5, 64):
                split = feed_all(
                    HttpFramer(who), pieces(stream, list(range(step, len(stream), step)))
                )
                assert [(m.body, m.headers) for m in split] == [(m.body, m.headers) for m in whole]
            expected = sum(1 for who_, _ in script.steps if who_ == side)
            assert len(whole) == expected, script.name


def chunked(body_parts: list[bytes], trailers: bytes = b"") -> bytes:
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in body_parts)
    return head + chunks + b"0\r\n" + trailers + b"\r\n"


@pytest.mark.parametrize("trailers", [b"", b"X-Checksum: 00ff\r\n"])
def test_chunked_body_split_anywhere(trailers: bytes) -> None:
    parts = [b'{"id":1,"result":', b'{"data":"00ff"},', b'"error":null}']
    stream = chunked(parts, trailers) + http_response(200, "OK", [], b"{}")
    for step in (1, 3, 17, len(stream)):
        framer = HttpFramer(Side.RESP)
        got = feed_all(framer, pieces(stream, list(range(step, len(stream), step))))
        assert [m.body for m in got] == [b"".join(parts), b"{}"], step
        first = got[0]
        assert isinstance(first, HttpMessage) and first.status == 200
        assert first.json == {"id": 1, "result": {"data": "00ff"}, "error": None}


def test_pipelined_requests() -> None:
    one = http_request("POST", "/", [("Host", "pool")], b'{"method":"getwork","params":[],"id":1}')
    two = http_request("GET", "/status", [("Host", "pool")])
    three = http_request("POST", "/lp", [], b'{"id":3}')
    framer = HttpFramer(Side.ORIG)
    got = framer.feed(1.0, one + two + three)
    assert [(m.method, m.target, m.body) for m in got if isinstance(m, HttpMessage)] == [
        ("POST", "/", b'{"method":"getwork","params":[],"id":1}'),
        ("GET", "/status", b""),
        ("POST", "/lp", b'{"id":3}'),
    ]


def test_response_without_length_runs_to_the_end() -> None:
    framer = HttpFramer(Side.RESP)
    head = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n"
    assert framer.feed(1.0, head + b'{"result":') == []
    assert framer.feed(2.0, b'"ok"}') == []
    (msg,) = framer.flush(3.0)
    assert isinstance(msg, HttpMessage)
    assert (msg.status, msg.body, msg.json, msg.ts) == (
        200,
        b'{"result":"ok"}',
        {"result": "ok"},
        3.0,
    )
    assert framer.flush(4.0) == []


@pytest.mark.parametrize("status", [100, 204, 304])
def test_responses_that_never_have_a_body(status: int) -> None:
    framer = HttpFramer(Side.RESP)
    got = framer.feed(
        1.0, b"HTTP/1.1 %d X\r\nServer: t\r\n\r\n" % status + http_response(200, "OK", [], b"[]")
    )
    assert [(m.status, m.body) for m in got if isinstance(m, HttpMessage)] == [
        (status, b""),
        (200, b"[]"),
    ]


def test_flush_gives_a_cut_body() -> None:
    framer = HttpFramer(Side.ORIG)
    assert framer.feed(1.0, http_request("POST", "/", [], b'{"id":1}')[:-3]) == []
    (msg,) = framer.flush(2.0)
    assert isinstance(msg, HttpMessage) and msg.body == b'{"id"' and msg.json is None


def test_a_body_over_the_limit_is_cut_and_the_next_message_still_read() -> None:
    big = b"[" + b"0," * (MAX_BODY // 2 + 10) + b"0]"
    stream = http_response(200, "OK", [], big) + http_response(200, "OK", [], b'{"id":2}')
    framer = HttpFramer(Side.RESP)
    got = feed_all(framer, pieces(stream, list(range(1460, len(stream), 1460))))
    assert [len(m.body) for m in got] == [MAX_BODY, 8]
    assert [m.json for m in got][1] == {"id": 2}


@pytest.mark.parametrize(
    "head",
    [b"HTTP/1.1 200 OK\r\n\r\n", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"],
)
def test_a_body_that_never_ends_is_cut_not_buffered(head: bytes) -> None:
    framer = HttpFramer(Side.RESP)
    chunk = b"%x\r\n%s\r\n" % (4000, b"7" * 4000) if b"chunked" in head else b"7" * 4000
    out = framer.feed(0.0, head)
    for n in range(1, (MAX_HEAD + MAX_BODY) // len(chunk) + 2):
        out += framer.feed(float(n), chunk)
    assert len(out) == 1 and len(out[0].body) > MAX_BODY - 8000


def test_a_head_that_never_ends_breaks_the_framer() -> None:
    framer = HttpFramer(Side.ORIG)
    assert framer.feed(1.0, b"POST / HTTP/1.1\r\nX-Pad: " + b"a" * MAX_HEAD) == []
    assert framer.broken
    assert framer.feed(2.0, b"\r\n\r\n" + http_request("GET", "/", [])) == []
    assert framer.flush(3.0) == []


def test_a_start_line_without_parts_breaks_the_framer() -> None:
    framer = HttpFramer(Side.ORIG)
    assert framer.feed(1.0, b"GARBAGE\r\n\r\n") == []
    assert framer.broken


# --- binary ------------------------------------------------------------------------------


def test_binary_framer_waits_for_a_whole_tls_record() -> None:
    hello = client_hello("xmr.pool.example")
    framer = BinaryFramer(Side.ORIG)
    assert framer.feed(1.0, hello[:5]) == []  # the record header says how much to wait for
    assert framer.feed(2.0, hello[5:100]) == []
    (chunk,) = framer.feed(3.0, hello[100:] + b"\x14\x03\x03\x00\x01\x01")
    assert isinstance(chunk, BinaryChunk)
    assert chunk.data == hello + b"\x14\x03\x03\x00\x01\x01" and chunk.ts == 3.0
    assert framer.feed(4.0, b"\x17\x03\x03\x00\x10" + b"\x00" * 16) == []  # once only
    assert framer.flush(5.0) == []


def test_binary_framer_hands_over_other_streams_at_once() -> None:
    framer = BinaryFramer(Side.RESP)
    (chunk,) = framer.feed(1.0, b"SSH-2.0-OpenSSH_9.6\r\n")
    assert isinstance(chunk, BinaryChunk) and chunk.side is Side.RESP
    assert framer.feed(2.0, b"more") == [] and framer.feed(3.0, b"") == []


def test_binary_framer_flush_gives_a_partial_record() -> None:
    hello = client_hello("pool.example")
    framer = BinaryFramer(Side.ORIG)
    assert framer.feed(1.0, hello[:50]) == []
    (chunk,) = framer.flush(2.0)
    assert isinstance(chunk, BinaryChunk) and chunk.data == hello[:50]


def test_binary_framer_caps_the_record() -> None:
    framer = BinaryFramer(Side.ORIG)
    header = b"\x16\x03\x01\xff\xff"  # claims 65535 bytes: more than TLS allows
    assert framer.feed(1.0, header + b"\x00" * 8000) == []
    (chunk,) = framer.feed(2.0, b"\x00" * 20000)
    assert isinstance(chunk, BinaryChunk) and len(chunk.data) == TLS_RECORD_MAX


def test_objects_run_together_on_one_line_are_all_read() -> None:
    framer = JsonLineFramer(Side.RESP)
    line = b'{"id":1,"result":true} {"method":"mining.notify","params":[]}{"id":2}\n'
    objs = [m.obj for m in framer.feed(1.0, line) if isinstance(m, JsonMessage)]
    assert objs == [{"id": 1, "result": True}, {"method": "mining.notify", "params": []}, {"id": 2}]
    assert framer.bad_lines == 0
