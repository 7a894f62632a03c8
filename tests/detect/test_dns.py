"""Host names learned from DNS answers (built with the traffic factory's DNS helpers)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dns import DNS, DNSQR, DNSRR

from sensor.detect.dns import HostNames
from tests.factory import dns_answer, dns_lookup, dns_query


def test_a_and_aaaa_answers_are_learned_under_the_asked_name() -> None:
    names = HostNames()
    names.learn(bytes(dns_answer("XMR-EU1.Pool.Example.", 7, "A", ["203.0.113.5", "203.0.113.6"])))
    names.learn(bytes(dns_answer("xmr-eu1.pool.example", 8, "AAAA", ["2001:db8:77::5"])))
    assert names.get("203.0.113.5") == "xmr-eu1.pool.example"  # lower case, no final dot
    assert names.get("203.0.113.6") == "xmr-eu1.pool.example"
    assert names.get("2001:db8:77::5") == "xmr-eu1.pool.example"
    assert len(names) == 3 and names.malformed == 0


def test_answers_from_a_whole_lookup() -> None:
    names = HostNames()
    pkts = dns_lookup(
        ("10.1.2.3", 53000),
        ("192.0.2.53", 53),
        "btc.pool.example",
        a=["198.51.100.7"],
        aaaa=["2001:db8::7"],
    )
    for pkt in pkts:
        names.learn(bytes(pkt["DNS"]))
    assert names.items() == [
        ("198.51.100.7", "btc.pool.example"),
        ("2001:db8::7", "btc.pool.example"),
    ]


def test_cname_chain_names_the_address_after_the_asked_name() -> None:
    # The client dialled the name it asked for, not the CDN name the chain ends in.
    reply = DNS(
        id=9,
        qr=1,
        qd=[DNSQR(qname="stratum.pool.example", qtype="A")],
        an=[
            DNSRR(rrname="stratum.pool.example", type="CNAME", rdata="edge-7.cdn.example"),
            DNSRR(rrname="edge-7.cdn.example", type="A", rdata="203.0.113.77"),
        ],
    )
    names = HostNames()
    names.learn(bytes(reply))
    assert names.items() == [("203.0.113.77", "stratum.pool.example")]


def test_answer_without_question_uses_the_record_name() -> None:
    reply = DNS(id=9, qr=1, qd=[], an=[DNSRR(rrname="pool.example", type="A", rdata="203.0.113.9")])
    names = HostNames()
    names.learn(bytes(reply))
    assert names.get("203.0.113.9") == "pool.example"


def test_queries_and_empty_answers_teach_nothing() -> None:
    names = HostNames()
    names.learn(bytes(dns_query("pool.example", 1)))
    names.learn(bytes(dns_answer("gone.example", 2, "A", [])))  # NXDOMAIN
    txt = DNS(id=3, qr=1, an=[DNSRR(rrname="pool.example", type="TXT", rdata="v=spf1 -all")])
    names.learn(bytes(txt))
    assert len(names) == 0 and names.malformed == 0


def test_malformed_messages_are_counted() -> None:
    names = HostNames()
    whole = bytes(dns_answer("pool.example", 4, "A", ["203.0.113.5"]))
    for payload in (b"", b"\x12", whole[:20], b"\xff" * 11):
        names.learn(payload)
    assert names.malformed == 4 and len(names) == 0


def test_the_map_is_bounded_and_forgets_the_oldest() -> None:
    names = HostNames(limit=2)
    for n in range(1, 4):
        names.learn(bytes(dns_answer(f"h{n}.pool.example", n, "A", [f"203.0.113.{n}"])))
    assert names.items() == [("203.0.113.2", "h2.pool.example"), ("203.0.113.3", "h3.pool.example")]
    names.learn(bytes(dns_answer("h2.pool.example", 9, "A", ["203.0.113.2"])))  # refreshed
    names.remember("203.0.113.4", "SNI.Example.")
    assert names.items() == [("203.0.113.2", "h2.pool.example"), ("203.0.113.4", "sni.example")]


def test_a_later_answer_replaces_the_name() -> None:
    names = HostNames()
    names.learn(bytes(dns_answer("old.example", 1, "A", ["203.0.113.5"])))
    names.learn(bytes(dns_answer("new.example", 2, "A", ["203.0.113.5"])))
    assert names.get("203.0.113.5") == "new.example" and len(names) == 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80) | st.binary(max_size=60).map(lambda b: b"\x00\x01\x81\x80" + b))
def test_any_payload_is_read_or_counted_never_raised(payload: bytes) -> None:
    names = HostNames(limit=4)
    names.learn(payload)
    assert names.malformed in (0, 1) and len(names) <= 4
