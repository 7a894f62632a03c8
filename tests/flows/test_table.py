"""The flow table: who opened a flow, per-side counts, TCP ends, timeouts and eviction.

Packets are the decoder's output for frames the traffic factory builds, so
flags, sequence numbers and wire lengths are those of real captures.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scapy.packet import Packet as ScapyPacket

from sensor.decode import Decoder
from sensor.flows.flow import Flow, flow_id, flow_key
from sensor.flows.table import FlowSettings, FlowTable
from sensor.model import TCP, UDP, Frame, Packet, Side
from tests.factory import CLIENT, SERVER, T0, TcpSession, UdpExchange, frame_bytes
from tests.sessions import SCRIPTS

MINER, POOL = ("10.1.2.3", 50000), ("198.51.100.7", 3333)


def decoded(pkts: Iterable[ScapyPacket]) -> list[Packet]:
    decoder, out = Decoder(), []
    for p in pkts:
        data = frame_bytes(p)
        pkt = decoder.decode(Frame(float(p.time), 1, data, len(data) + 4, "t.pcap"))
        assert pkt is not None
        out.append(pkt)
    return out


class Ended(list[tuple[Flow, str]]):
    """The table's `on_end` hook: records every ended flow with its reason."""

    def __call__(self, flow: Flow, reason: str) -> None:
        self.append((flow, reason))

    @property
    def reasons(self) -> list[str]:
        return [reason for _, reason in self]


def table(**settings: Any) -> tuple[FlowTable, Ended]:
    ended = Ended()
    return FlowTable(FlowSettings(**settings), ended), ended


def feed(flows: FlowTable, pkts: Iterable[Packet]) -> list[Flow]:
    return [flows.get(p) for p in pkts]


def session(**options: Any) -> TcpSession:
    s = TcpSession(MINER, POOL, **options)
    return s.script(SCRIPTS["stratum_v1_btc"].steps[:4])


def datagram(src: tuple[str, int], dst: tuple[str, int], ts: float) -> Packet:
    (p,) = decoded(UdpExchange(src, dst, start=ts).send(CLIENT, b"ping").packets())
    return p


# --- direction and counts ----------------------------------------------------------------


def test_syn_sender_is_the_originator_and_sides_are_counted() -> None:
    s = session(acks=True)
    pkts = decoded(s.packets())
    flows, ended = table()
    seen = feed(flows, pkts)
    flow = seen[0]
    assert all(f is flow for f in seen) and len(flows) == 1 and flows.created == 1
    assert flow.orig == MINER and flow.resp == POOL
    by_side = {
        side: [p for p in pkts if (p.src, p.sport) == end]
        for side, end in ((Side.ORIG, MINER), (Side.RESP, POOL))
    }
    for side, mine in by_side.items():
        assert flow.pkts[side] == len(mine)
        assert flow.bytes[side] == sum(p.wire_len for p in mine)
    assert flow.start == pkts[0].ts and flow.last == pkts[-1].ts
    assert flow.key == flow_key(pkts[0]) and flow.id == flow_id(flow.key, pkts[0].ts)
    assert flow.side_of(pkts[0]) is Side.ORIG and flow.side_of(pkts[1]) is Side.RESP
    assert ended == []


def test_syn_ack_receiver_is_the_originator_when_the_syn_was_missed() -> None:
    pkts = decoded(session().packets(skip=1))  # capture starts at the SYN-ACK
    assert (pkts[0].src, pkts[0].sport) == POOL
    flows, _ = table()
    flow = feed(flows, pkts)[0]
    assert flow.orig == MINER and flow.resp == POOL


def test_first_sender_is_the_originator_mid_session() -> None:
    s = TcpSession(MINER, POOL, handshake=False, close=None)
    s.send(SERVER, b'{"id":null,"method":"mining.notify","params":[]}\n')
    s.send(CLIENT, b'{"id":4,"method":"mining.submit","params":[]}\n')
    flows, _ = table()
    flow = feed(flows, decoded(s.packets()))[0]
    assert flow.orig == POOL and flow.resp == MINER  # the capture cannot know better
    assert flow.state == "established"


def test_udp_flows_have_no_tcp_state() -> None:
    flows, _ = table()
    first = flows.get(datagram(MINER, ("192.0.2.53", 53), T0))
    answer = Packet(T0 + 0.01, "192.0.2.53", MINER[0], 53, MINER[1], UDP, b"pong", 46)
    assert flows.get(answer) is first
    assert first.orig == MINER and first.pkts == [1, 1] and first.state == "new"
    assert first.proto_name == "UDP" and not first.is_tcp


# --- TCP ends ----------------------------------------------------------------------------


def test_fin_from_both_sides_closes_and_ends_after_the_closed_timeout() -> None:
    pkts = decoded(session().packets())  # ends FIN/ACK, FIN/ACK, ACK
    flows, ended = table(closed_timeout=10.0)
    flow = feed(flows, pkts)[0]
    assert flow.state == "closed" and flow.fins == 3
    flows.expire(pkts[-1].ts + 9.0)
    assert ended == []
    flows.expire(pkts[-1].ts + 10.5)
    assert ended == [(flow, "closed")]
    assert len(flows) == 0 and sum(flows.evicted.values()) == 0  # a normal end, not an eviction


def test_retransmitted_fin_of_one_side_does_not_close() -> None:
    pkts = decoded(session(close=None).packets())
    fin = decoded(TcpSession(MINER, POOL, handshake=False, start=pkts[-1].ts + 1).packets())[0]
    assert fin.tcp_flags & 0x01 and (fin.src, fin.sport) == MINER
    flows, ended = table(idle_timeout=60.0, closed_timeout=10.0)
    flow = feed(flows, [*pkts, fin, fin, fin])[0]
    assert flow.state == "closing" and flow.fins == 1
    flows.expire(fin.ts + 30)
    assert ended == []
    flows.expire(fin.ts + 61)
    assert ended == [(flow, "idle_timeout")]
    assert flows.evicted["idle_timeout"] == 1


def test_rst_closes() -> None:
    pkts = decoded(session(close="rst").packets())
    flows, ended = table(closed_timeout=5.0)
    flow = feed(flows, pkts)[0]
    assert flow.state == "closed"
    flows.expire(pkts[-1].ts + 6)
    assert ended.reasons == ["closed"]


def test_new_syn_on_a_closed_flow_starts_a_new_flow() -> None:
    first = decoded(session().packets())
    again = decoded(session(start=first[-1].ts + 1).packets())
    flows, ended = table()
    old = feed(flows, first)[0]
    new = feed(flows, again)[0]
    assert new is not old and new.id != old.id
    assert ended == [(old, "closed")]
    assert flows.created == 2 and len(flows) == 1


# --- timeouts and eviction ---------------------------------------------------------------


def test_idle_flows_end_least_recently_seen_first() -> None:
    flows, ended = table(idle_timeout=30.0)
    a = flows.get(datagram(("10.0.0.1", 1000), POOL, T0))
    b = flows.get(datagram(("10.0.0.2", 1000), POOL, T0 + 5))
    flows.get(datagram(("10.0.0.1", 1000), POOL, T0 + 10))  # a is seen again
    c = flows.get(datagram(("10.0.0.3", 1000), POOL, T0 + 36))  # sweeps: b idle since T0+5
    assert ended == [(b, "idle_timeout")]
    assert len(flows) == 2
    flows.expire(T0 + 40.5)
    assert ended == [(b, "idle_timeout"), (a, "idle_timeout")]
    assert flows.evicted == {"idle_timeout": 2}
    assert c.pkts[Side.ORIG] == 1


def test_sweeps_run_at_most_once_a_second_of_capture_time() -> None:
    flows, ended = table(idle_timeout=1.0)
    flows.get(datagram(("10.0.0.1", 1000), POOL, T0))
    flows.get(datagram(("10.0.0.2", 1000), POOL, T0 + 0.9))  # no sweep yet
    assert ended == []
    flows.get(datagram(("10.0.0.3", 1000), POOL, T0 + 1.2))  # sweep: the first flow is idle
    assert ended.reasons == ["idle_timeout"] and len(flows) == 2


def test_active_timeout_cuts_long_flows() -> None:
    flows, ended = table(active_timeout=60.0)
    tick = [datagram(MINER, POOL, T0 + 20 * n) for n in range(5)]  # 0, 20, 40, 60, 80 s
    seen = feed(flows, tick)
    assert seen[0] is seen[2] and seen[3] is not seen[2]
    assert ended == [(seen[0], "active_timeout")]
    assert seen[3].start == T0 + 60 and seen[3] is seen[4]
    assert flows.evicted == {"active_timeout": 1} and flows.created == 2


def test_no_active_timeout_by_default() -> None:
    flows, ended = table(idle_timeout=1e9)
    seen = feed(flows, [datagram(MINER, POOL, T0 + 3600 * n) for n in range(4)])
    assert len({id(f) for f in seen}) == 1 and ended == []


def test_full_table_evicts_the_least_recently_seen_flow() -> None:
    flows, ended = table(max_flows=2)
    a = flows.get(datagram(("10.0.0.1", 1000), POOL, T0))
    b = flows.get(datagram(("10.0.0.2", 1000), POOL, T0 + 0.1))
    flows.get(datagram(("10.0.0.1", 1000), POOL, T0 + 0.2))
    c = flows.get(datagram(("10.0.0.3", 1000), POOL, T0 + 0.3))
    assert ended == [(b, "table_full")]
    assert flows.evicted == {"table_full": 1}
    assert len(flows) == 2 and flows.created == 3
    flows.flush()
    assert ended == [(b, "table_full"), (a, "end_of_input"), (c, "end_of_input")]


def test_flush_ends_every_flow_without_counting_evictions() -> None:
    flows, ended = table()
    closed = feed(flows, decoded(session().packets()))[0]
    open_ = flows.get(datagram(MINER, ("192.0.2.53", 53), T0 + 1))
    flows.flush("shutdown")
    assert ended == [(closed, "shutdown"), (open_, "shutdown")]
    assert len(flows) == 0 and sum(flows.evicted.values()) == 0
    flows.expire(T0 + 1e6)  # the closing queue was emptied too
    assert len(ended) == 2


def test_flow_keys_are_the_same_both_ways() -> None:
    out = Packet(T0, "10.1.2.3", "198.51.100.7", 50000, 3333, TCP, b"", 60)
    back = Packet(T0, "198.51.100.7", "10.1.2.3", 3333, 50000, TCP, b"", 60)
    assert flow_key(out) == flow_key(back) == (TCP, "10.1.2.3", 50000, "198.51.100.7", 3333)
    ids = {flow_id(flow_key(out), T0 + n) for n in range(100)}
    assert len(ids) == 100 and all(0 <= i < 1 << 51 for i in ids)
