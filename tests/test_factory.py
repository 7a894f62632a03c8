"""The traffic factory, the session scripts and the bundled sample, checked from outside:
files are read back with dpkt, frames re-dissected with scapy, streams reassembled."""

from __future__ import annotations

import importlib.util
import json
import re
import socket
import sys
from pathlib import Path

import dpkt
import pytest
import yaml
from scapy.contrib.erspan import ERSPAN_II
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE, Dot1AD, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN

from sensor.detect.base import split_login
from sensor.model import DIALECTS
from tests.factory import (
    LINKTYPE_ETHERNET,
    LINKTYPE_RAW,
    LINKTYPES,
    T0,
    TcpSession,
    UdpExchange,
    broker_exchange,
    client_hello,
    dns_lookup,
    erspan,
    frame_bytes,
    gre,
    http_get,
    jsonrpc_exchange,
    merge,
    mpls,
    qinq,
    syn_probe,
    syn_scan,
    tls_session,
    vlan,
    vxlan,
    write_pcap,
    write_pcapng,
    xmpp_session,
)
from tests.sessions import MINING, NOT_MINING, SCRIPTS, Script

ROOT = Path(__file__).resolve().parents[1]
MASK = 0xFFFFFFFF
CLIENT_EP, SERVER_EP = ("10.1.2.3", 50000), ("198.51.100.7", 3333)
BTC = SCRIPTS["stratum_v1_btc"]


# --- helpers: read files back with dpkt, reassemble with a tiny loop ----------------------


def read_frames(path: Path) -> tuple[int, list[tuple[float, bytes]]]:
    with path.open("rb") as f:
        reader = dpkt.pcapng.Reader(f) if path.suffix == ".pcapng" else dpkt.pcap.Reader(f)
        return reader.datalink(), [(ts, bytes(buf)) for ts, buf in reader]


def decode_ip(linktype: int, buf: bytes) -> dpkt.ip.IP | dpkt.ip6.IP6:
    if linktype == LINKTYPE_RAW:
        return dpkt.ip6.IP6(buf) if buf[0] >> 4 == 6 else dpkt.ip.IP(buf)
    link = {
        0: dpkt.loopback.Loopback,
        1: dpkt.ethernet.Ethernet,
        113: dpkt.sll.SLL,
        276: dpkt.sll2.SLL2,
    }[linktype](buf)
    return link.data


def tcp_of(path: Path) -> list[tuple[int, int, int, int, bytes]]:
    """(sport, flags, seq, ack, payload) for every TCP segment in a file."""
    linktype, frames = read_frames(path)
    out = []
    for _, buf in frames:
        seg = decode_ip(linktype, buf).data
        out.append((seg.sport, seg.flags, seg.seq, seg.ack, bytes(seg.data)))
    return out


def reassemble(segments: list[tuple[int, bytes]], first_seq: int) -> bytes:
    """Accept bytes in sequence order, hold early segments, drop old ones (mod 2**32)."""
    expected, held, out = first_seq, list(segments), bytearray()
    progress = True
    while progress:
        progress = False
        for seq, data in list(held):
            offset = (expected - seq) & MASK
            if offset < len(data):
                out += data[offset:]
                expected = (seq + len(data)) & MASK
            elif offset >= 1 << 31:
                continue  # still in the future
            held.remove((seq, data))
            progress = True
    return bytes(out)


def reassembled(path: Path, session: TcpSession) -> dict[str, bytes]:
    segs = tcp_of(path)
    result = {}
    for side, port, isn in (
        ("client", session.client[1], session.client_isn),
        ("server", session.server[1], session.server_isn),
    ):
        mine = [(seq, data) for sport, _, seq, _, data in segs if sport == port and data]
        result[side] = reassemble(mine, (isn + 1) & MASK)
    return result


# --- writers -----------------------------------------------------------------------------


@pytest.mark.parametrize("linktype", LINKTYPES)
@pytest.mark.parametrize(
    "client,server", [(CLIENT_EP, SERVER_EP), (("2001:db8::3", 50000), ("2001:db8::7", 3333))]
)
def test_pcap_link_types_read_back(tmp_path, linktype, client, server):
    pkts = TcpSession(client, server).script(BTC.steps[:2]).packets()
    path = tmp_path / "x.pcap"
    assert write_pcap(path, pkts, linktype) == len(pkts)
    got_linktype, frames = read_frames(path)
    assert got_linktype == linktype
    assert len(frames) == len(pkts) == 3 + 2 + 3
    ip = decode_ip(linktype, frames[3][1])
    assert bytes(ip.data.data) == BTC.steps[0][1]
    assert frames[0][0] == pytest.approx(T0)


def test_pcapng_reads_back_with_times_and_link_type(tmp_path):
    pkts = TcpSession().script(BTC.steps).packets()
    path = tmp_path / "x.pcapng"
    write_pcapng(path, pkts, comment="made by a test")
    linktype, frames = read_frames(path)
    assert linktype == LINKTYPE_ETHERNET
    assert [round(ts, 6) for ts, _ in frames] == [round(float(p.time), 6) for p in pkts]
    assert frames[0][1] == frame_bytes(pkts[0])


def test_output_is_deterministic(tmp_path):
    def build(name: str) -> bytes:
        pkts = merge(
            TcpSession(mss=100).script(BTC.steps).packets(),
            dns_lookup(("10.1.2.3", 53000), ("192.0.2.53", 53), "pool.example", a=["192.0.2.9"]),
            tls_session(("10.1.2.3", 50001), ("192.0.2.44", 443), "www.example.org"),
        )
        write_pcapng(tmp_path / name, vxlan(vlan(pkts, 7), "192.0.2.1", "192.0.2.2"))
        return (tmp_path / name).read_bytes()

    assert build("a.pcapng") == build("b.pcapng")


def test_bare_ip_link_types_refuse_tagged_frames():
    tagged = vlan(TcpSession().packets(), 100)
    with pytest.raises(ValueError, match="IP packet"):
        frame_bytes(tagged[0], LINKTYPE_RAW)


# --- TCP sessions ---------------------------------------------------------------------------


def test_handshake_data_and_close_have_consistent_numbers():
    s = TcpSession(client_isn=1000, server_isn=5000)
    s.send("client", b"hello\n").send("server", b"hi there\n")
    segs = [(g.side, g.flags, g.seq, g.ack, g.payload) for g in s.segments()]
    assert segs == [
        ("client", "S", 1000, 0, b""),
        ("server", "SA", 5000, 1001, b""),
        ("client", "A", 1001, 5001, b""),
        ("client", "PA", 1001, 5001, b"hello\n"),
        ("server", "PA", 5001, 1007, b"hi there\n"),
        ("client", "FA", 1007, 5010, b""),
        ("server", "FA", 5010, 1008, b""),
        ("client", "A", 1008, 5011, b""),
    ]
    times = [g.ts for g in s.segments()]
    assert times == sorted(times)


def test_acks_option_acknowledges_each_send():
    s = TcpSession(acks=True, close=None, client_isn=0, server_isn=0)
    segs = s.send("client", b"abc", split=[1]).send("server", b"de").segments()[3:]
    assert [(g.side, g.flags, g.seq, g.ack) for g in segs] == [
        ("client", "A", 1, 1),
        ("client", "PA", 2, 1),
        ("server", "A", 1, 4),
        ("server", "PA", 1, 4),
        ("client", "A", 4, 3),
    ]


TRICKS = {
    "plain": {},
    "split": {"split": [1, 7, 30]},
    "reorder": {"split": [10, 20], "reorder": True},
    "permutation": {"split": [10, 20], "reorder": [1, 2, 0]},
    "retransmit": {"split": [10], "retransmit": True},
    "overlap": {"split": [10, 20, 40], "overlap": 4},
    "everything": {"split": [5, 9, 33], "reorder": [3, 0, 2, 1], "retransmit": [2], "overlap": 3},
}


@pytest.mark.parametrize("trick", TRICKS)
@pytest.mark.parametrize("isn", [0x1000_0000, MASK - 20])  # the second wraps around 2**32
def test_tricky_segmentation_reassembles_to_the_script(tmp_path, trick, isn):
    s = TcpSession(client_isn=isn, server_isn=isn - 5)
    for side, data in BTC.steps:
        s.send(side, data, **TRICKS[trick])
    write_pcap(tmp_path / "x.pcap", s.packets())
    streams = reassembled(tmp_path / "x.pcap", s)
    assert streams["client"] == s.stream("client") == BTC.sent_by("client")
    assert streams["server"] == BTC.sent_by("server")


def test_tricks_are_visible_on_the_wire():
    data = bytes(range(50))
    segs = TcpSession(close=None, handshake=False, client_isn=99).send(
        "client", data, split=[10, 20], reorder=True, retransmit=[0], overlap=2
    )
    seen = [(g.seq - 100, len(g.payload)) for g in segs.segments()]
    assert seen == [(18, 32), (8, 12), (0, 10), (0, 10)]  # last-first, overlapped, one resent


def test_mss_bounds_segment_size():
    s = TcpSession(mss=100).script(SCRIPTS["stratum_v1_zec"].steps)
    sizes = [len(g.payload) for g in s.segments() if g.payload]
    assert max(sizes) == 100
    assert sum(sizes) == len(SCRIPTS["stratum_v1_zec"].sent_by("client")) + len(
        SCRIPTS["stratum_v1_zec"].sent_by("server")
    )


def test_mid_session_start_skips_handshake_and_can_cut_a_line():
    notify = BTC.steps[5][1]
    s = TcpSession(handshake=False, close=None, server_isn=123456)
    pkts = s.send("server", notify, split=[25]).send("client", BTC.steps[6][1]).packets(skip=1)
    first = pkts[0]
    assert first[TCP].flags == "PA"  # the line's tail ends the send
    assert first[TCP].seq == 123456 + 1 + 25
    assert bytes(first[TCP].payload) == notify[25:]
    assert not any(p[TCP].flags.S for p in pkts)


@pytest.mark.parametrize(
    "reply,flags", [(None, ["S"]), ("rst", ["S", "RA"]), ("synack", ["S", "SA", "R"])]
)
def test_syn_probes(reply, flags):
    pkts = syn_probe(CLIENT_EP, SERVER_EP, reply=reply, isn=41)
    assert [str(p[TCP].flags) for p in pkts] == flags
    assert all(p[TCP].ack == 42 for p in pkts[1:2])


def test_bad_scripts_are_refused():
    with pytest.raises(ValueError, match="before the previous"):
        TcpSession().send("client", b"a", at=T0 + 5).send("server", b"b", at=T0 + 1).segments()
    with pytest.raises(ValueError, match="side"):
        TcpSession().send("miner", b"a")
    with pytest.raises(ValueError, match="permutation"):
        TcpSession().send("client", b"abc", split=[1], reorder=[0, 0]).segments()


# --- UDP and DNS ----------------------------------------------------------------------------


def test_dns_lookup_answers_parse_back(tmp_path):
    pkts = dns_lookup(
        ("10.1.2.3", 53000),
        ("192.0.2.53", 53),
        "xmr.pool.example",
        a=["203.0.113.20"],
        aaaa=["2001:db8::20"],
    )
    write_pcap(tmp_path / "dns.pcap", pkts)
    _, frames = read_frames(tmp_path / "dns.pcap")
    msgs = [dpkt.dns.DNS(decode_ip(1, buf).data.data) for _, buf in frames]
    assert [m.qr for m in msgs] == [0, 1, 0, 1]
    assert {m.qd[0].name for m in msgs} == {"xmr.pool.example"}
    assert msgs[1].an[0].ip == bytes([203, 0, 113, 20])
    assert len(msgs[3].an[0].ip6) == 16


def test_dns_without_addresses_is_nxdomain():
    answer = dns_lookup(CLIENT_EP, ("192.0.2.53", 53), "nope.example")[1]
    assert answer[UDP].sport == 53
    assert dpkt.dns.DNS(bytes(answer[UDP].payload)).rcode == 3


def test_udp_exchange_directions():
    pkts = UdpExchange().send("client", b"ping").send("server", b"pong").packets()
    assert [(p[UDP].dport, bytes(p[UDP].payload)) for p in pkts] == [
        (53, b"ping"),
        (53000, b"pong"),
    ]
    assert float(pkts[1].time) > float(pkts[0].time)


# --- encapsulations -------------------------------------------------------------------------


def _inner_ok(frame) -> bool:
    return bytes(frame[TCP].payload) == BTC.steps[0][1] and frame[TCP].dport == 3333


WRAPS = {
    "vlan": (lambda p: vlan(p, 100), lambda f: f[Dot1Q].vlan == 100),
    "qinq": (
        lambda p: qinq(p, 200, 100),
        lambda f: f.type == 0x88A8 and f[Dot1AD].vlan == 200 and f[Dot1Q].vlan == 100,
    ),
    "mpls": (
        lambda p: mpls(p, [16, 17]),
        lambda f: (
            f.type == 0x8847
            and (f[MPLS].label, f[MPLS].s) == (16, 0)
            and (f[MPLS].payload.label, f[MPLS].payload.s) == (17, 1)
        ),
    ),
    "gre": (
        lambda p: gre(p, "192.0.2.1", "192.0.2.2"),
        lambda f: f[GRE].proto == 0x0800 and isinstance(f[GRE].payload, IP),
    ),
    "gre-teb": (
        lambda p: gre(p, "192.0.2.1", "192.0.2.2", bridge=True),
        lambda f: f[GRE].proto == 0x6558 and isinstance(f[GRE].payload, Ether),
    ),
    "erspan": (
        lambda p: erspan(p, "192.0.2.1", "192.0.2.2", session_id=9),
        lambda f: (
            f[GRE].proto == 0x88BE
            and f[GRE].seqnum_present == 1
            and f[ERSPAN_II].session_id == 9
            and isinstance(f[ERSPAN_II].payload, Ether)
        ),
    ),
    "vxlan": (
        lambda p: vxlan(p, "192.0.2.1", "192.0.2.2", vni=4242),
        lambda f: f[UDP].dport == 4789 and f[VXLAN].vni == 4242,
    ),
}


@pytest.mark.parametrize("name", WRAPS)
def test_encapsulations_parse_back(name):
    wrap, check = WRAPS[name]
    pkts = TcpSession().script(BTC.steps[:1]).packets()
    wrapped = wrap(pkts)
    assert [float(p.time) for p in wrapped] == [float(p.time) for p in pkts]
    frame = Ether(frame_bytes(wrapped[3]))
    assert check(frame)
    assert _inner_ok(frame)


def test_vxlan_source_port_is_stable_per_flow():
    pkts = vxlan(TcpSession().script(BTC.steps).packets(), "192.0.2.1", "192.0.2.2")
    assert len({p[UDP].sport for p in pkts}) == 1


def test_encapsulations_nest_over_ipv6():
    pkts = TcpSession(("2001:db8::3", 50000), ("2001:db8::7", 3333)).script(BTC.steps[:1])
    frame = Ether(frame_bytes(vlan(gre(pkts.packets(), "192.0.2.1", "192.0.2.2"), 5)[3]))
    assert frame[Dot1Q].vlan == 5 and frame[GRE].proto == 0x86DD
    assert isinstance(frame[GRE].payload, IPv6) and _inner_ok(frame)


# --- background traffic ---------------------------------------------------------------------


def test_client_hello_carries_the_sni():
    record = client_hello("www.example.org")
    assert record[0] == 0x16 and record[5] == 0x01  # handshake record, ClientHello
    assert int.from_bytes(record[3:5], "big") == len(record) - 5
    # server_name extension: type 0, then list length, name type 0, name length, name
    name = b"www.example.org"
    assert b"\x00\x00" + (len(name) + 5).to_bytes(2, "big") in record
    assert (b"\x00" + len(name).to_bytes(2, "big") + name) in record


def _payloads(pkts) -> bytes:
    return b"".join(bytes(p[TCP].payload) for p in pkts if p.haslayer(TCP))


def test_background_conversations_say_what_they_should():
    ep = ("10.1.2.3", 50010)
    assert _payloads(http_get(ep, ("192.0.2.80", 80), "www.example.com")).startswith(b"GET / ")
    rpc = _payloads(jsonrpc_exchange(ep))
    assert b'"method": "eth_blockNumber"' in rpc and b"HTTP/1.1 200 OK" in rpc
    broker = [json.loads(x) for x in _payloads(broker_exchange(ep)).splitlines()]
    assert {m.get("method") for m in broker} == {"subscribe", "message", "publish", None}
    assert b"urn:ietf:params:xml:ns:xmpp-tls" in _payloads(xmpp_session(ep))
    scan = syn_scan("203.0.113.99", "10.1.2.3", open_ports=[4444])
    assert sum(1 for p in scan if p[TCP].flags == "SA") == 1
    assert {p[TCP].dport for p in scan if p[TCP].flags == "S"} >= {3333, 4444, 14444}


# --- session scripts ------------------------------------------------------------------------

RULES = ROOT / "rules"


def _dialect_rules() -> dict[str, dict]:
    return {
        d["dialect"]: d for d in yaml.safe_load((RULES / "dialects.yaml").read_text())["dialects"]
    }


def _coin_for(text: str, key: str) -> str | None:
    for hint in yaml.safe_load((RULES / "coins.yaml").read_text())["coins"]:
        if key in hint and re.search(hint[key], text):
            return hint["coin"]
    return None


def _http_messages(data: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    first, *lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (x.split(":", 1) for x in lines)}
    assert int(headers["content-length"]) == len(body)
    return first, headers, body


def _client_calls(sc: Script) -> list[dict]:
    if sc.framing == "lines":
        return [m for side, m in sc.json_messages() if side == "client"]
    return [json.loads(_http_messages(d)[2]) for side, d in sc.steps if side == "client"]


def test_catalogue_covers_every_wire_dialect():
    assert {sc.expect.dialect for sc in MINING} == set(DIALECTS) - {"tls", "endpoint"}
    assert [sc.name for sc in NOT_MINING] == ["pool_daemon_gbt"]


@pytest.mark.parametrize(
    "sc", [s for s in SCRIPTS.values() if s.framing == "lines"], ids=lambda sc: sc.name
)
def test_line_scripts_are_one_json_object_per_line(sc):
    for _, data in sc.steps:
        assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert all(isinstance(m, dict) for _, m in sc.json_messages())


@pytest.mark.parametrize(
    "sc", [s for s in SCRIPTS.values() if s.framing == "http"], ids=lambda sc: sc.name
)
def test_http_scripts_are_well_formed(sc):
    for side, data in sc.steps:
        first, _, body = _http_messages(data)
        assert first.startswith("POST / HTTP/1.1" if side == "client" else "HTTP/1.1 200")
        json.loads(body)
    mining_headers = "x-mining-extensions" in _http_messages(sc.steps[0][1])[1]
    assert mining_headers == sc.expect.mining


@pytest.mark.parametrize("sc", [s for s in MINING if s.framing != "binary"], ids=lambda sc: sc.name)
def test_scripts_agree_with_the_dialect_rules(sc):
    rule, exp = _dialect_rules()[sc.expect.dialect], sc.expect
    calls = _client_calls(sc)
    assert {c["method"] for c in calls} <= set(rule["client_methods"]) | {"getwork"}
    shares = [
        c
        for c in calls
        if c["method"] in rule["share_methods"] or (c.get("params") and c["method"] == "getwork")
    ]
    assert len(shares) == exp.submits >= exp.accepted
    assert exp.login is not None and split_login(exp.login)[0] == exp.wallet
    assert exp.worker in (split_login(exp.login)[1], None) or exp.worker.encode() in sc.sent_by(
        "client"
    )
    by_wallet, by_agent = _coin_for(exp.wallet or "", "wallet"), _coin_for(exp.agent or "", "agent")
    assert (by_wallet or by_agent or rule.get("coin")) == exp.coin


def test_pool_notifications_are_server_methods():
    rules = _dialect_rules()
    for sc in MINING:
        if sc.framing != "lines":
            continue
        allowed = set(rules[sc.expect.dialect]["server_methods"])
        pushed = {
            m["method"]
            for side, m in sc.json_messages()
            if side == "server" and "method" in m and "result" not in m
        }
        assert pushed <= allowed and bool(pushed) == bool(allowed), sc.name


def test_stratum_v2_frames_are_consistent():
    sc = SCRIPTS["stratum_v2"]
    types = []
    for _, frame in sc.steps:
        ext, msg_type = int.from_bytes(frame[:2], "little"), frame[2]
        assert int.from_bytes(frame[3:6], "little") == len(frame) - 6
        types.append((bool(ext & 0x8000), msg_type))
    assert types[:4] == [(False, 0x00), (False, 0x01), (False, 0x10), (False, 0x11)]
    assert sc.steps[0][1][6] == 0  # SetupConnection.protocol: mining
    assert sc.expect.login.encode() in sc.steps[2][1]


# --- the bundled sample ---------------------------------------------------------------------


def _load_make_sample():
    spec = importlib.util.spec_from_file_location("make_sample", ROOT / "tools" / "make_sample.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_sample_regenerates_byte_for_byte(tmp_path):
    make_sample = _load_make_sample()
    capture, truth = make_sample.build(tmp_path)
    committed = ROOT / "samples"
    assert capture.read_bytes() == (committed / capture.name).read_bytes()
    assert truth.read_text() == (committed / truth.name).read_text()


def _ep(addr: bytes, port: int) -> str:
    if len(addr) == 16:
        return f"[{socket.inet_ntop(socket.AF_INET6, addr)}]:{port}"
    return f"{socket.inet_ntop(socket.AF_INET, addr)}:{port}"


def test_sample_truth_matches_the_capture():
    path = ROOT / "samples" / "minewatch-sample.pcapng"
    assert path.stat().st_size < 200_000
    truth = json.loads(path.with_name("minewatch-sample.truth.json").read_text())
    _, frames = read_frames(path)
    conversations: dict[frozenset[str], set[int | None]] = {}
    for _, buf in frames:
        eth = dpkt.ethernet.Ethernet(buf)
        tag = eth.vlan_tags[0].id if getattr(eth, "vlan_tags", None) else None
        ip, seg = eth.data, eth.data.data
        ends = frozenset({_ep(ip.src, seg.sport), _ep(ip.dst, seg.dport)})
        conversations.setdefault(ends, set()).add(tag)
    for flow in truth["mining_flows"]:
        assert flow["dialect"] in DIALECTS
        assert conversations[frozenset({flow["miner"], flow["pool"]})] == {flow["vlan"]}
    assert {f["dialect"] for f in truth["mining_flows"]} >= {
        "stratum-v1",
        "cryptonote",
        "ethproxy",
        "ethereum-stratum",
        "getwork",
    }
