"""TLS ClientHello / ServerHello sniffing: fields, truncation, records, fuzzing, real hellos."""

from __future__ import annotations

import struct
from pathlib import Path

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensor.detect.tls import ClientHello, is_server_hello, parse_client_hello

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"


# --- a small ClientHello factory (RFC 8446 4.1.2 layout) ---------------------------------


def ext(ext_type: int, body: bytes) -> bytes:
    return struct.pack(">HH", ext_type, len(body)) + body


def sni(name: bytes | str) -> bytes:
    raw = name.encode() if isinstance(name, str) else name
    entry = b"\x00" + struct.pack(">H", len(raw)) + raw
    return ext(0x0000, struct.pack(">H", len(entry)) + entry)


def alpn(*protocols: str) -> bytes:
    items = b"".join(bytes([len(p)]) + p.encode() for p in protocols)
    return ext(0x0010, struct.pack(">H", len(items)) + items)


def supported_versions(*versions: int) -> bytes:
    body = b"".join(struct.pack(">H", v) for v in versions)
    return ext(0x002B, bytes([len(body)]) + body)


def hello_body(*exts: bytes, legacy: int = 0x0303, with_ext_block: bool = True) -> bytes:
    body = struct.pack(">H", legacy) + b"\x01" * 32 + b"\x20" + b"\x02" * 32
    body += struct.pack(">H", 4) + b"\x13\x01\xc0\x2b" + b"\x01\x00"
    if with_ext_block:
        joined = b"".join(exts)
        body += struct.pack(">H", len(joined)) + joined
    return body


def handshake(body: bytes, hs_type: int = 1) -> bytes:
    return bytes([hs_type]) + len(body).to_bytes(3, "big") + body


def record(fragment: bytes, content_type: int = 0x16, version: int = 0x0301) -> bytes:
    return struct.pack(">BHH", content_type, version, len(fragment)) + fragment


def client_hello(*exts: bytes, **kw: int) -> bytes:
    return record(handshake(hello_body(*exts, **kw)))


POOL_HELLO = client_hello(
    ext(0xFF01, b"\x00"),
    sni("Pool.Example.ORG"),
    alpn("h2", "http/1.1"),
    supported_versions(0x1A1A, 0x0304, 0x0303),  # GREASE first, as browsers send it
)


def test_fields_of_a_client_hello():
    hello = parse_client_hello(POOL_HELLO)
    assert hello == ClientHello(version=0x0304, sni="pool.example.org", alpn=("h2", "http/1.1"))


def test_legacy_hello_without_extensions():
    hello = parse_client_hello(record(handshake(hello_body(legacy=0x0301, with_ext_block=False))))
    assert hello == ClientHello(version=0x0301)


def test_hello_split_over_two_records():
    hs = handshake(hello_body(sni("xmr.pool.example"), ext(0x0015, b"\x00" * 600)))
    data = record(hs[:100]) + record(hs[100:])
    hello = parse_client_hello(data)
    assert hello is not None and hello.sni == "xmr.pool.example" and not hello.truncated


def test_every_truncation_is_tolerated():
    for cut in range(len(POOL_HELLO)):
        hello = parse_client_hello(POOL_HELLO[:cut])
        assert hello is None or hello.truncated
    sni_end = POOL_HELLO.index(b"ORG") + 3
    cut_after_sni = parse_client_hello(POOL_HELLO[:sni_end])
    assert cut_after_sni is not None
    assert cut_after_sni.sni == "pool.example.org" and cut_after_sni.truncated
    assert cut_after_sni.version == 0x0303  # supported_versions had not arrived yet


def test_a_cut_before_the_random_yields_nothing():
    assert parse_client_hello(POOL_HELLO[:10]) is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GET / HTTP/1.1\r\n\r\n",
        b'{"id":1,"method":"login"}\n',
        record(handshake(hello_body(), hs_type=2)),  # a ServerHello
        record(handshake(hello_body()), content_type=0x17),  # application data
        record(handshake(hello_body()), version=0x0201),
        record(handshake(hello_body(legacy=0x0203))),
        b"\x16\x03\x01\x00\x00",
    ],
)
def test_not_a_client_hello(data):
    assert parse_client_hello(data) is None


def test_non_ascii_server_name_is_dropped():
    hello = parse_client_hello(client_hello(sni(b"p\xffol.example"), alpn("h2")))
    assert hello is not None and hello.sni is None and hello.alpn == ("h2",)


def test_is_server_hello():
    assert is_server_hello(record(handshake(hello_body(), hs_type=2), version=0x0303))
    assert is_server_hello(b"\x16\x03\x03\x00\x5a\x02")  # cut right after the type
    assert not is_server_hello(POOL_HELLO)
    assert not is_server_hello(b"\x16\x03\x03\x00\x02\x02\x00")
    assert not is_server_hello(b"HTTP/1.1 200 OK\r\n")
    assert not is_server_hello(b"")


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(data):
    parse_client_hello(data)
    is_server_hello(data)
    # Push the fuzz past the record header, where the interesting parsing is.
    parse_client_hello(b"\x16\x03\x01" + struct.pack(">H", len(data) + 4) + b"\x01\x00" + data)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(POOL_HELLO) - 1), st.integers(0, 255))
def test_corrupted_hello_never_raises(index, value):
    data = bytearray(POOL_HELLO)
    data[index] = value
    hello = parse_client_hello(bytes(data))
    assert hello is None or isinstance(hello.version, int)


def _first_payloads(path: Path, port: int) -> list[bytes]:
    """The first payload of each direction of each TCP flow touching `port`."""
    seen: set[tuple[bytes, int, bytes, int]] = set()
    firsts: list[bytes] = []
    with path.open("rb") as fh:
        for _ts, buf in dpkt.pcap.Reader(fh):
            ip = dpkt.ethernet.Ethernet(buf).data
            tcp = getattr(ip, "data", None)
            if (
                not isinstance(tcp, dpkt.tcp.TCP)
                or not tcp.data
                or port not in (tcp.sport, tcp.dport)
            ):
                continue
            key = (bytes(ip.src), tcp.sport, bytes(ip.dst), tcp.dport)
            if key not in seen:
                seen.add(key)
                firsts.append(bytes(tcp.data))
    return firsts


def test_real_hellos_from_shared_captures():
    mining = SHARED / "captures" / "mining" / "zeekcm_bitcoin-mining.pcap"
    curl = SHARED / "captures" / "negative" / "ndpi_443-curl.pcap"
    if not mining.exists() or not curl.exists():
        pytest.skip("shared captures not available")
    hellos = [h for d in _first_payloads(mining, 3333) if (h := parse_client_hello(d))]
    assert hellos and {h.sni for h in hellos} == {"us1.bitminter.com"}  # stratum+TLS attempt
    firsts = _first_payloads(curl, 443)
    assert any(is_server_hello(d) for d in firsts)
    curl_hellos = [h for d in firsts if (h := parse_client_hello(d))]
    assert [h.sni for h in curl_hellos] == ["www.ntop.org"]
