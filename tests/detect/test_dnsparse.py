"""The small DNS answer reader agrees with dpkt and never raises but ValueError."""

from __future__ import annotations

import contextlib

import dpkt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.dns import DNS, DNSQR, DNSRR

from sensor.detect.dnsparse import answers


def response(name: str, records: list[tuple[str, str, str]]) -> bytes:
    """A DNS response for `name` with (owner, type, rdata) answers, built by scapy."""
    an = [DNSRR(rrname=owner, type=kind, rdata=data) for owner, kind, data in records]
    msg = DNS(id=7, qr=1, rd=1, ra=1, qd=DNSQR(qname=name), an=an)
    return bytes(msg)


def test_a_and_aaaa_answers_with_the_asked_name() -> None:
    msg = response(
        "xmr.pool.example",
        [
            ("xmr.pool.example", "CNAME", "lb.pool.example"),
            ("lb.pool.example", "A", "192.0.2.10"),
            ("lb.pool.example", "AAAA", "2001:db8::10"),
        ],
    )
    asked, records = answers(msg)  # type: ignore[misc]
    assert asked == "xmr.pool.example"
    assert records == [("192.0.2.10", "lb.pool.example"), ("2001:db8::10", "lb.pool.example")]
    parsed = dpkt.dns.DNS(msg)
    assert [rr.name for rr in parsed.an if rr.type in (1, 28)] == [o for _, o in records]


def test_a_query_is_not_a_response() -> None:
    query = bytes(DNS(id=1, qr=0, qd=DNSQR(qname="pool.example")))
    assert answers(query) is None


@pytest.mark.parametrize("data", [b"", b"\x00" * 5, b"\x00\x01\x81\x80\x00\x01" + b"\x00" * 6])
def test_unreadable_messages_raise_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        answers(data)


def test_answers_cut_short_keep_what_was_read() -> None:
    msg = response("p.example", [("p.example", "A", "192.0.2.1"), ("p.example", "A", "192.0.2.2")])
    asked, records = answers(msg[:-3])  # type: ignore[misc]
    assert asked == "p.example" and records == [("192.0.2.1", "p.example")]


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_anything_else(data: bytes) -> None:
    with contextlib.suppress(ValueError):
        answers(data)


@given(st.binary(min_size=1, max_size=40), st.integers(0, 80))
def test_damaged_responses_never_raise_anything_else(noise: bytes, at: int) -> None:
    msg = bytearray(response("a.pool.example", [("a.pool.example", "A", "192.0.2.9")]))
    at = min(at, len(msg) - 1)
    msg[at : at + len(noise)] = noise
    with contextlib.suppress(ValueError):
        answers(bytes(msg))
