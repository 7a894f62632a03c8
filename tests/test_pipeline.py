"""The pipeline end to end on synthetic captures.

Every session script is put on the wire with the traffic factory, under every
encapsulation, link type and file format a sensor meets and with the TCP tricks
of a mirror port, then read back through the pipeline into the EVE writer. Each
capture holds all scripts at once, one client per script: every mining script
must give exactly one mining event (src the miner, dest the pool) and one flow
event counting what the factory wrote; a non-mining script gives nothing.

The helpers here (`build_capture`, `replay_events`, `VARIANTS`) are shared by the
replay, CLI and sink tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dpkt
import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from sensor.capture.pcapfile import read_frames
from sensor.pipeline import Pipeline
from sensor.rules.loader import load_rules
from sensor.sinks.events import EveWriter
from tests.factory import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    T0,
    Endpoint,
    TcpSession,
    erspan,
    gre,
    merge,
    mpls,
    qinq,
    vlan,
    vxlan,
    write_pcap,
    write_pcapng,
)
from tests.sessions import BTC_WALLET, MINING, NOT_MINING, SCRIPTS, Script

RULES = load_rules()
Step = tuple[str, bytes]


# --- building captures ----------------------------------------------------------------------


@dataclass
class Planted:
    """One scripted conversation in a capture, and what the factory wrote of it."""

    script: Script
    client: Endpoint
    server: Endpoint
    pkts: list[int] = field(default_factory=lambda: [0, 0])  # to server, to client
    wire: list[int] = field(default_factory=lambda: [0, 0])  # frame bytes, likewise


def _same(pkts: list[Packet]) -> list[Packet]:
    return pkts


def _pool_first(pkts: list[Packet]) -> list[Packet]:
    """Put the pool's first segment first, as a mirror that delays one direction does."""
    first = next(i for i, p in enumerate(pkts) if p[TCP].sport == pkts[0][TCP].dport)
    moved = pkts[first].copy()
    moved.time = float(pkts[0].time) - 0.001
    return [moved, *pkts[:first], *pkts[first + 1 :]]


def _mid_line(sc: Script) -> list[Step]:
    """The capture starts inside a line (or a body) that each side was sending."""
    tails = {"lines": (b'00000"]}\n', b'"error":null}\n'), "http": (b'00"}', b'0"}')}
    if sc.framing not in tails:
        return list(sc.steps)
    client_tail, server_tail = tails[sc.framing]
    return [("client", client_tail), ("server", server_tail), *sc.steps]


@dataclass(frozen=True)
class Variant:
    """How the scripts are put on the wire and into a file."""

    wrap: Callable[[list[Packet]], list[Packet]] = _same  # encapsulation of the capture
    linktype: int = LINKTYPE_ETHERNET
    pcapng: bool = False
    v6: bool = False
    session: dict[str, Any] = field(default_factory=dict)  # TcpSession options
    send: dict[str, Any] = field(default_factory=dict)  # TcpSession.send options
    steps: Callable[[Script], list[Step]] = lambda sc: list(sc.steps)
    order: Callable[[list[Packet]], list[Packet]] = _same  # per conversation


TUNNEL_ENDS = ("192.0.2.1", "192.0.2.2")
MID_SESSION = {"handshake": False}
VARIANTS: dict[str, Variant] = {
    "plain": Variant(),
    "vlan": Variant(wrap=lambda p: vlan(p, 100)),
    "qinq": Variant(wrap=lambda p: qinq(p, 10, 20)),
    "mpls": Variant(wrap=lambda p: mpls(p, [16, 17])),
    "gre": Variant(wrap=lambda p: gre(p, *TUNNEL_ENDS)),
    "erspan-ii": Variant(wrap=lambda p: erspan(p, *TUNNEL_ENDS, session_id=7)),
    "vxlan": Variant(wrap=lambda p: vxlan(p, *TUNNEL_ENDS)),
    "ethernet-pcapng": Variant(pcapng=True),
    "sll-pcap": Variant(linktype=LINKTYPE_LINUX_SLL),
    "sll-pcapng": Variant(linktype=LINKTYPE_LINUX_SLL, pcapng=True),
    "sll2-pcap": Variant(linktype=LINKTYPE_LINUX_SLL2),
    "sll2-pcapng": Variant(linktype=LINKTYPE_LINUX_SLL2, pcapng=True),
    "raw-pcap": Variant(linktype=LINKTYPE_RAW),
    "raw-pcapng": Variant(linktype=LINKTYPE_RAW, pcapng=True),
    "null-pcap": Variant(linktype=LINKTYPE_NULL),
    "null-pcapng": Variant(linktype=LINKTYPE_NULL, pcapng=True),
    "ipv6": Variant(v6=True, pcapng=True),
    "ipv6-in-vxlan": Variant(v6=True, wrap=lambda p: vxlan(p, *TUNNEL_ENDS)),
    "acks": Variant(session={"acks": True}),
    "split-every-8-bytes": Variant(session={"mss": 8}),
    "reordered": Variant(session={"mss": 100}, send={"reorder": True}),
    "retransmitted": Variant(session={"mss": 100}, send={"retransmit": True}),
    "overlapping": Variant(session={"mss": 60}, send={"overlap": 9, "reorder": True}),
    "mid-session": Variant(session=MID_SESSION),
    "pool-first": Variant(session=MID_SESSION, order=_pool_first),
    "mid-line": Variant(session=MID_SESSION, steps=_mid_line),
}


def endpoints(index: int, port: int, v6: bool = False) -> tuple[Endpoint, Endpoint]:
    if v6:
        client, server = f"2001:db8:10::{index + 2:x}", f"2001:db8:ff::{index + 10:x}"
    else:
        client, server = f"10.1.{index}.2", f"198.51.100.{index + 10}"
    return (client, 40000 + index), (server, port)


def conversation(
    client: Endpoint, server: Endpoint, steps: Iterable[Step], start: float, variant: Variant
) -> list[Packet]:
    session = TcpSession(client, server, start=start, **variant.session)
    for side, data in steps:
        session.send(side, data, **variant.send)
    return variant.order(session.packets())


def build_capture(
    path: Path,
    scripts: Iterable[Script],
    variant: Variant,
    extra: Iterable[Packet] = (),
    first: int = 0,
) -> list[Planted]:
    """Write the scripts (one client each, a second apart) and `extra` packets to `path`;
    `first` numbers the endpoints, so that captures replayed together do not share flows."""
    planted, lists = [], [list(extra)]
    for index, sc in enumerate(scripts, start=first):
        client, server = endpoints(index, sc.port, variant.v6)
        planted.append(Planted(sc, client, server))
        steps = variant.steps(sc)
        lists.append(conversation(client, server, steps, T0 + index - first, variant))
    packets = merge(*lists)
    writer = write_pcapng if variant.pcapng else write_pcap
    writer(path, variant.wrap(packets), variant.linktype)
    _count_written(path, packets, planted)
    return planted


def _count_written(path: Path, packets: list[Packet], planted: list[Planted]) -> None:
    """Packets and frame bytes of each conversation as the file holds them (read by dpkt)."""
    by_port = {p.client[1]: p for p in planted}
    with path.open("rb") as fh:
        reader = dpkt.pcapng.Reader(fh) if path.suffix == ".pcapng" else dpkt.pcap.Reader(fh)
        sizes = [len(buf) for _, buf in reader]
    assert len(sizes) == len(packets)
    for pkt, size in zip(packets, sizes, strict=True):
        if TCP not in pkt:
            continue
        to_server = pkt[TCP].sport in by_port
        conv = by_port.get(pkt[TCP].sport if to_server else pkt[TCP].dport)
        if conv is not None:
            side = 0 if to_server else 1
            conv.pkts[side] += 1
            conv.wire[side] += size


def replay_events(path: Path, events: Path) -> tuple[list[dict[str, Any]], Pipeline]:
    """Every frame of `path` through a pipeline into an EVE file; the parsed events."""
    pipeline = Pipeline(RULES, [EveWriter(events)])
    for frame in read_frames(path):
        pipeline.feed(frame)
    pipeline.finish()
    return [json.loads(line) for line in events.read_text().splitlines()], pipeline


def events_of(events: list[dict[str, Any]], kind: str, client: Endpoint) -> list[dict[str, Any]]:
    """Events of one type that involve `client` on either side."""
    return [
        e
        for e in events
        if e["event_type"] == kind
        and client in ((e["src_ip"], e["src_port"]), (e["dest_ip"], e["dest_port"]))
    ]


@dataclass
class Replayed:
    planted: dict[str, Planted]
    events: list[dict[str, Any]]
    pipeline: Pipeline


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Replayed]:
    """The capture of a variant (all scripts), built and replayed once per module."""
    done: dict[str, Replayed] = {}

    def get(name: str) -> Replayed:
        if name not in done:
            folder = tmp_path_factory.mktemp(name)
            variant = VARIANTS[name]
            path = folder / ("capture.pcapng" if variant.pcapng else "capture.pcap")
            planted = build_capture(path, [*MINING, *NOT_MINING], variant)
            events, pipeline = replay_events(path, folder / "events.json")
            done[name] = Replayed({p.script.name: p for p in planted}, events, pipeline)
        return done[name]

    return get


# --- what the scripts must give ---------------------------------------------------------------


def _known_miss(variant: str, sc: Script) -> pytest.MarkDecorator | None:
    """Variants a script cannot be expected to survive (none at present)."""
    return None


def _cases() -> list[Any]:
    cases = []
    for variant in VARIANTS:
        for sc in MINING:
            mark = _known_miss(variant, sc)
            marks = [mark] if mark else []
            cases.append(pytest.param(variant, sc.name, marks=marks, id=f"{variant}-{sc.name}"))
    return cases


@pytest.mark.parametrize("variant,name", _cases())
def test_mining_session_gives_one_mining_event_miner_to_pool(replayed, variant, name):
    run = replayed(variant)
    conv = run.planted[name]
    found = events_of(run.events, "mining", conv.client)
    assert len(found) == 1, f"{len(found)} mining events for {name}"
    event = found[0]
    assert (event["src_ip"], event["src_port"]) == conv.client  # src is the miner
    assert (event["dest_ip"], event["dest_port"]) == conv.server  # dest is the pool
    assert event["proto"] == "TCP"
    assert event["mining"]["dialect"] == conv.script.expect.dialect
    assert event["mining"]["confidence"] == "confirmed"  # every script's pool answers


@pytest.mark.parametrize("variant,name", _cases())
def test_flow_event_counts_what_the_factory_wrote(replayed, variant, name):
    run = replayed(variant)
    conv = run.planted[name]
    (mining,) = events_of(run.events, "mining", conv.client)
    (flow_event,) = events_of(run.events, "flow", conv.client)
    assert flow_event["flow_id"] == mining["flow_id"]
    assert (flow_event["src_ip"], flow_event["dest_ip"]) == (conv.client[0], conv.server[0])
    flow = flow_event["flow"]
    assert (flow["pkts_toserver"], flow["pkts_toclient"]) == tuple(conv.pkts)
    assert (flow["bytes_toserver"], flow["bytes_toclient"]) == tuple(conv.wire)
    assert flow["state"] == "closed"  # FIN both ways
    assert flow["reason"] in ("closed", "end_of_input")  # timed out, or still waiting
    assert flow_event["mining"]["dialect"] == mining["mining"]["dialect"]
    assert flow_event["mining"]["pool"] == mining["mining"]["pool"]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_non_mining_scripts_give_no_event(replayed, variant):
    run = replayed(variant)
    for sc in NOT_MINING:
        conv = run.planted[sc.name]
        for kind in ("mining", "flow", "crypto_node"):
            assert events_of(run.events, kind, conv.client) == [], (sc.name, kind)
    miners = {p.client for p in run.planted.values() if p.script.expect.mining}
    for event in run.events:  # nothing beyond the mining scripts' own events
        assert (event["src_ip"], event["src_port"]) in miners, event
    assert sum(run.pipeline.decoder.errors.values()) == 0


# Where the event rightly differs from the script's `Expect` (which states what the
# detector alone concludes): the records stage completes and filters some fields.
EVENT_FIELDS: dict[str, dict[str, Any]] = {
    "getwork_legacy": {"coin": "btc", "wallet": None},  # Host: btc.pool.example; account name
    "stratum_v2": {"wallet": None, "agent": "Bitmain S19 braiins-os-2023-06"},  # SetupConnection
}
IDENTITY_GAPS: dict[tuple[str, str], str] = {}
IDENTITY = ("coin", "login", "wallet", "worker", "agent")


def _identity_cases() -> list[Any]:
    cases = []
    for sc in MINING:
        for key in IDENTITY:
            reason = IDENTITY_GAPS.get((sc.name, key))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            cases.append(pytest.param(sc.name, key, marks=marks, id=f"{sc.name}-{key}"))
    return cases


@pytest.mark.parametrize("name,key", _identity_cases())
def test_mining_and_flow_events_name_the_miner(replayed, name, key):
    run = replayed("plain")
    conv = run.planted[name]
    want = EVENT_FIELDS.get(name, {}).get(key, getattr(conv.script.expect, key))
    for kind in ("mining", "flow"):
        (event,) = events_of(run.events, kind, conv.client)
        assert event["mining"][key] == want, kind


SHARE_CASES = [sc.name for sc in MINING]


@pytest.mark.parametrize("name", SHARE_CASES)
def test_flow_event_carries_shares_and_difficulty(replayed, name):
    run = replayed("plain")
    conv = run.planted[name]
    expect = conv.script.expect
    (event,) = events_of(run.events, "flow", conv.client)
    final = event["mining"]
    assert (final["shares"], final["shares_accepted"]) == (expect.submits, expect.accepted)
    assert final["shares_rejected"] == expect.submits - expect.accepted
    if expect.difficulty is not None:
        assert final["difficulty"] == pytest.approx(expect.difficulty, rel=1e-5)
    if expect.reported_hashrate_hs is not None:
        assert final["reported_hashrate_hs"] == pytest.approx(expect.reported_hashrate_hs)
    (mining,) = events_of(run.events, "mining", conv.client)
    assert "shares" not in mining["mining"]  # counts belong to the flow event


def test_pool_named_by_the_protocol(replayed):
    run = replayed("plain")
    pools = {
        name: events_of(run.events, "mining", conv.client)[0]["mining"]["pool"]
        for name, conv in run.planted.items()
        if conv.script.expect.mining
    }
    assert pools["stratum_v1_zec"] == "zec.pool.example:6666"  # subscribe's host param
    assert pools["getwork_gbt"] == "btc.pool.example:9332"  # HTTP Host
    assert pools["stratum_v2"] == "v2.pool.example:3336"  # SetupConnection endpoint
    btc = run.planted["stratum_v1_btc"].server
    assert pools["stratum_v1_btc"] == f"{btc[0]}:{btc[1]}"  # nothing names it


def test_capture_that_lost_the_miners_first_message(tmp_path):
    """Mid-session and the subscribe missed: the pool's answer is the first packet seen."""
    sc = SCRIPTS["stratum_v1_btc"]
    client, server = endpoints(0, sc.port)
    session = TcpSession(client, server, start=T0, handshake=False).script(sc.steps)
    packets = session.packets(skip=1)
    assert packets[0][TCP].sport == server[1]
    write_pcap(tmp_path / "late.pcap", packets)
    events, _ = replay_events(tmp_path / "late.pcap", tmp_path / "events.json")
    (mining,) = events_of(events, "mining", client)
    assert (mining["src_ip"], mining["src_port"]) == client
    assert (mining["dest_ip"], mining["dest_port"]) == server
    assert mining["mining"]["dialect"] == "stratum-v1"
    assert mining["mining"]["wallet"] == BTC_WALLET  # authorize came after the cut


def garbage_frames(at: float) -> list[Packet]:
    """Frames a broken NIC or a cut capture gives: each one fails to decode."""
    mac = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
    frames = [
        Ether(**mac, type=0x0800) / Raw(b"\x45\x00\xff\xff" + b"\xa5" * 12),  # cut IPv4 header
        Ether(**mac, type=0x0800) / Raw(b"\x4f" + bytes(40)),  # IHL 60 > what is there
        Ether(**mac, type=0x86DD) / Raw(b"\x60\x00" + b"\x5a" * 20),  # cut IPv6 header
        Ether(**mac, type=0x8100) / Raw(b"\x00"),  # cut VLAN tag
        Ether(**mac, type=0x0800) / IP(src="10.1.0.9", dst="10.1.0.8", proto=6) / Raw(b"\x01"),
    ]
    for n, frame in enumerate(frames):
        frame.time = at + n * 0.001
    return frames


def test_malformed_frames_are_counted_and_the_run_goes_on(tmp_path):
    path = tmp_path / "garbage.pcap"
    garbage = garbage_frames(T0 + 0.0305)  # in the middle of the first conversation
    planted = build_capture(path, [SCRIPTS["stratum_v1_btc"]], VARIANTS["plain"], garbage)
    events, pipeline = replay_events(path, tmp_path / "events.json")
    errors = pipeline.health()["decode_errors"]
    assert sum(errors.values()) == len(garbage)
    assert pipeline.stats.packets == sum(planted[0].pkts) + len(garbage)
    (mining,) = events_of(events, "mining", planted[0].client)
    assert mining["mining"]["dialect"] == "stratum-v1"
    (flow,) = events_of(events, "flow", planted[0].client)
    assert flow["mining"]["shares"] == 2
