"""Community ID v1 against the published baseline of the corelight spec.

The vectors are the spec's baseline (community-id-spec, baseline/baseline_deflt.json
and baseline_seed1.json): flows of its sample captures and the IDs every
implementation must give for them.
"""

from __future__ import annotations

import ipaddress
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sensor.sinks.community_id import community_id

TCP, UDP = 6, 17
BASELINE = [  # (seed, proto, saddr, daddr, sport, dport, id)
    (0, TCP, "128.232.110.120", "66.35.250.204", 34855, 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
    (
        0,
        TCP,
        "2001:470:e5bf:dead:4957:2174:e82c:4887",
        "2607:f8b0:400c:c03::1a",
        63943,
        25,
        "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
    ),
    (0, UDP, "192.168.1.52", "8.8.8.8", 54585, 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="),
    (1, TCP, "128.232.110.120", "66.35.250.204", 34855, 80, "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
    (
        1,
        TCP,
        "2001:470:e5bf:dead:4957:2174:e82c:4887",
        "2607:f8b0:400c:c03::1a",
        63943,
        25,
        "1:eJYTW6AOzFLlSUoESovMjnu7rMw=",
    ),
    (1, UDP, "192.168.1.52", "8.8.8.8", 54585, 53, "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
]
FORMAT = re.compile(r"^1:[A-Za-z0-9+/]{27}=$")  # version, then base64 of a SHA-1


@pytest.mark.parametrize("seed,proto,saddr,daddr,sport,dport,expected", BASELINE)
def test_published_baseline_both_directions(seed, proto, saddr, daddr, sport, dport, expected):
    assert community_id(proto, saddr, sport, daddr, dport, seed) == expected
    assert community_id(proto, daddr, dport, saddr, sport, seed) == expected


def test_same_address_orders_by_port():
    one = community_id(TCP, "10.0.0.1", 80, "10.0.0.1", 40000)
    assert one == community_id(TCP, "10.0.0.1", 40000, "10.0.0.1", 80)
    assert one != community_id(TCP, "10.0.0.1", 81, "10.0.0.1", 40000)


def test_protocol_and_seed_change_the_id():
    flow = ("192.0.2.1", 50000, "198.51.100.2", 3333)
    ids = {community_id(TCP, *flow), community_id(UDP, *flow), community_id(TCP, *flow, seed=7)}
    assert len(ids) == 3


ports = st.integers(0, 65535)


@given(st.ip_addresses(v=4), st.ip_addresses(v=4), ports, ports, st.integers(0, 65535))
def test_symmetric_and_well_formed_v4(a, b, sport, dport, seed):
    forward = community_id(TCP, str(a), sport, str(b), dport, seed)
    assert FORMAT.match(forward)
    assert community_id(TCP, str(b), dport, str(a), sport, seed) == forward


@given(st.ip_addresses(v=6), st.ip_addresses(v=6), ports, ports)
def test_symmetric_and_well_formed_v6(a, b, sport, dport):
    forward = community_id(TCP, str(a), sport, str(b), dport)
    assert FORMAT.match(forward)
    assert community_id(TCP, str(b), dport, str(a), sport) == forward


def test_address_spelling_does_not_matter():
    long_form = str(ipaddress.ip_address("2001:db8::1").exploded)
    assert community_id(TCP, long_form, 1, "2001:db8::2", 2) == community_id(
        TCP, "2001:db8::1", 1, "2001:db8::2", 2
    )
