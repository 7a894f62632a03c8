"""Live capture on a veth pair inside a throw-away network namespace.

The capture sockets and a raw sending socket are created inside the namespace
(setns) and used from the test process; frames sent into one end of the pair
arrive at the other, where LiveSource reads them. Root only: skipped otherwise.
"""

from __future__ import annotations

import ctypes
import logging
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sensor.capture import libpcap
from sensor.capture.errors import CaptureError
from sensor.capture.live import CaptureStats, LiveSource
from sensor.capture.ring import RingSettings
from sensor.model import Frame
from tests import netns

pytestmark = pytest.mark.skipif(netns.skip_reason() is not None, reason=str(netns.skip_reason()))

FAST = RingSettings(block_size=1 << 16, block_count=8, retire_ms=5)
MACS = bytes.fromhex("020000000001") + bytes.fromhex("020000000002")
POOL = "198.51.100.7"
PR_CAPBSET_DROP, CAP_NET_RAW = 24, 13
ACCEPT_IPV4 = [(0x28, 0, 0, 12), (0x15, 0, 1, 0x0800), (0x06, 0, 0, 0xFFFF), (0x06, 0, 0, 0)]


# -- frames -------------------------------------------------------------------
def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    total = (total & 0xFFFF) + (total >> 16)
    return ~(total + (total >> 16)) & 0xFFFF


def tcp4(src: str, sport: int, dst: str, dport: int, payload: bytes = b"") -> bytes:
    """An IPv4/TCP packet (PSH|ACK); the kernel only hashes and filters it."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 1, 1, 5 << 4, 0x18, 65535, 0, 0) + payload
    addrs = socket.inet_aton(src) + socket.inet_aton(dst)
    head = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0) + addrs
    return head[:10] + struct.pack("!H", _checksum(head)) + head[12:] + tcp


def ether(packet: bytes, *tags: tuple[int, int], ethertype: int = 0x0800) -> bytes:
    """An Ethernet frame, with (tpid, tci) tags outermost first, padded to 60 bytes."""
    tagged = b"".join(struct.pack("!HH", tpid, tci) for tpid, tci in tags)
    frame = MACS + tagged + struct.pack("!H", ethertype) + packet
    return frame.ljust(60, b"\0")


def stratum(n: int, size: int = 0) -> bytes:
    line = b'{"id":%d,"method":"mining.submit","params":[]}\n' % n
    return ether(tcp4("192.0.2.10", 40000 + n, POOL, 3333, line.ljust(size, b" ")))


def web(n: int) -> bytes:
    return ether(tcp4("192.0.2.10", 41000 + n, "198.51.100.80", 80, b"GET / HTTP/1.1\r\n"))


# -- fixtures and helpers -----------------------------------------------------
@dataclass
class Link:
    ns: str
    iface: str  # the end captured on
    peer: str  # the end frames are sent into
    sender: socket.socket  # bound to `peer`


@pytest.fixture
def link() -> Iterator[Link]:
    with netns.veth_pair() as (ns, capture_end, send_end):
        with netns.entered(ns):
            sender = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        with sender:
            sender.bind((send_end, 0))
            yield Link(ns, capture_end, send_end, sender)


def opened(ns: str, source: LiveSource) -> LiveSource:
    with netns.entered(ns):
        source.open()
    return source


def collect(source: LiveSource, count: int, timeout: float = 3.0) -> list[Frame]:
    """The first `count` frames, or what came within `timeout` seconds."""
    stop = threading.Event()
    timer = threading.Timer(timeout, stop.set)
    timer.start()
    got: list[Frame] = []
    try:
        for frame in source.frames(stop):
            got.append(frame)
            if len(got) == count:
                break
    finally:
        timer.cancel()
    return got


def settled(sources: list[LiveSource], total: int, timeout: float = 3.0) -> list[CaptureStats]:
    """Kernel counters once `total` packets have reached the sockets together."""
    deadline = time.monotonic() + timeout
    while True:
        stats = [s.stats() for s in sources]
        if sum(s.received for s in stats) >= total or time.monotonic() > deadline:
            return stats
        time.sleep(0.01)


# -- frames arrive as sent ------------------------------------------------------
ON_THE_WIRE = [
    stratum(1),
    ether(tcp4("192.0.2.11", 40001, POOL, 3333, b"x" * 1400)),
    stratum(2)[:12] + struct.pack("!HH", 0x8100, 0x6064) + stratum(2)[12:],  # PCP 3, VID 100
    ether(tcp4("192.0.2.12", 40002, POOL, 3333), (0x88A8, 0x000A), (0x8100, 0x0014)),  # QinQ
    ether(b"\x00\x01\x08\x00\x06\x04\x00\x01" + bytes(20), ethertype=0x0806),  # ARP
]


@pytest.mark.parametrize("ring", [FAST, False], ids=["ring", "recvmsg"])
def test_frames_arrive_byte_identical_with_vlan_tags_and_kernel_timestamps(
    link: Link, ring: RingSettings | bool
) -> None:
    ns, iface, sender = link.ns, link.iface, link.sender
    with opened(ns, LiveSource([iface], ring=ring)) as source:
        assert source.modes == {iface: "ring" if ring else "recvmsg"}
        before = time.time()
        for data in ON_THE_WIRE:
            sender.send(data)
        got = collect(source, len(ON_THE_WIRE))
        after = time.time()
    assert [f.data for f in got] == ON_THE_WIRE
    assert [f.wire_len for f in got] == [len(d) for d in ON_THE_WIRE]
    assert {(f.source, f.linktype) for f in got} == {(iface, 1)}
    stamps = [f.ts for f in got]
    assert stamps == sorted(stamps)
    assert before - 0.001 <= stamps[0] and stamps[-1] <= after


def test_snaplen_truncates_but_keeps_the_wire_length(link: Link) -> None:
    ns, iface, sender = link.ns, link.iface, link.sender
    tagged = stratum(3, 600)[:12] + struct.pack("!HH", 0x8100, 7) + stratum(3, 600)[12:]
    with opened(ns, LiveSource([iface], ring=FAST, snaplen=128)) as source:
        sender.send(stratum(3, 600))
        sender.send(tagged)
        got = collect(source, 2)
    assert [f.data for f in got] == [stratum(3, 600)[:128], tagged[:128]]
    assert [f.wire_len for f in got] == [len(stratum(3, 600)), len(tagged)]


def test_replayed_capture_arrives_intact(tmp_path: Path, link: Link) -> None:
    """tcpreplay, run inside the namespace, is how the end-to-end tests feed captures."""
    if shutil.which("tcpreplay") is None:
        pytest.skip("tcpreplay is not installed")
    ns, iface = link.ns, link.iface
    frames = [stratum(n, 100 + 50 * n) for n in range(20)]
    pcap = tmp_path / "in.pcap"
    records = b"".join(struct.pack("=IIII", 1, n, len(f), len(f)) + f for n, f in enumerate(frames))
    pcap.write_bytes(struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + records)
    with opened(ns, LiveSource([iface], ring=FAST)) as source:
        done = netns.exec_in(ns, ["tcpreplay", "-q", "-i", link.peer, str(pcap)])
        assert done.returncode == 0, done.stderr
        got = collect(source, len(frames))
    assert [f.data for f in got] == frames


# -- filters, statistics, promiscuity ------------------------------------------
@pytest.mark.parametrize("ring", [FAST, False], ids=["ring", "recvmsg"])
def test_bpf_instructions_let_only_matching_frames_through(
    link: Link, ring: RingSettings | bool
) -> None:
    ns, iface, sender = link.ns, link.iface, link.sender
    arp = ON_THE_WIRE[-1]
    with opened(ns, LiveSource([iface], bpf=ACCEPT_IPV4, ring=ring)) as source:
        for data in (arp, stratum(1), arp, web(1), arp, stratum(2)):
            sender.send(data)
        # In-order delivery: once the last frame is in, nothing else is pending.
        got = collect(source, 3)
        assert source.stats() == CaptureStats(received=3, dropped=0, freeze_q=0)
    assert [f.data for f in got] == [stratum(1), web(1), stratum(2)]


@pytest.mark.skipif(libpcap.load() is None, reason="libpcap is not installed")
def test_bpf_expression_is_compiled_for_the_interface(link: Link) -> None:
    ns, iface, sender = link.ns, link.iface, link.sender
    with opened(ns, LiveSource([iface], bpf="tcp port 3333", ring=FAST)) as source:
        for n in range(4):
            sender.send(web(n))
            sender.send(stratum(n))
        got = collect(source, 4)
    assert [f.data for f in got] == [stratum(n) for n in range(4)]


def test_stats_accumulate_across_kernel_resets(link: Link) -> None:
    ns, iface, sender = link.ns, link.iface, link.sender
    with opened(ns, LiveSource([iface], ring=FAST)) as source:
        for n in range(5):
            sender.send(stratum(n))
        assert len(collect(source, 5)) == 5
        assert source.stats() == CaptureStats(received=5)
        for n in range(3):
            sender.send(stratum(n))
        assert len(collect(source, 3)) == 3
        assert source.stats() == CaptureStats(received=8)
    assert source.stats() == CaptureStats(received=8)  # kept after close


def test_a_full_ring_counts_drops_and_freezes(link: Link) -> None:
    ns, iface, sender = link.ns, link.iface, link.sender
    tiny = RingSettings(block_size=4096, block_count=2, retire_ms=1000)
    with opened(ns, LiveSource([iface], ring=tiny)) as source:
        for n in range(100):
            sender.send(stratum(n, 1000))  # three fit a block; nobody reads yet
        (stats,) = settled([source], 100)
        got = collect(source, 100, timeout=0.3)
    assert stats.received == 100
    assert stats.dropped == 100 - len(got) > 90
    assert stats.freeze_q >= 1
    assert [f.data for f in got] == [stratum(n, 1000) for n in range(len(got))]


def _promiscuity(ns: str, iface: str) -> int:
    shown = subprocess.run(["ip", "-n", ns, "-d", "link", "show", iface], capture_output=True)
    return int(shown.stdout.split(b"promiscuity ")[1].split()[0])


def test_promiscuous_mode_lasts_as_long_as_the_socket(link: Link) -> None:
    ns, iface = link.ns, link.iface
    source = opened(ns, LiveSource([iface]))
    assert _promiscuity(ns, iface) == 1
    source.close()
    assert _promiscuity(ns, iface) == 0
    with opened(ns, LiveSource([iface], promiscuous=False)):
        assert _promiscuity(ns, iface) == 0


# -- several sockets, several interfaces ---------------------------------------
def _flow(n: int) -> list[bytes]:
    """Four packets of one TCP flow, both directions."""
    miner, port = f"192.0.2.{n + 1}", 40000 + n
    up = [ether(tcp4(miner, port, POOL, 3333, b"%d" % i)) for i in range(2)]
    down = [ether(tcp4(POOL, 3333, miner, port, b"%d" % i)) for i in range(2)]
    return [up[0], down[0], up[1], down[1]]


def test_fanout_splits_the_load_but_never_a_flow(link: Link) -> None:
    ns, iface, sender = link.ns, link.iface, link.sender
    flows = {n: _flow(n) for n in range(32)}
    workers = [opened(ns, LiveSource([iface], fanout_group=4242, ring=FAST)) for _ in range(2)]
    try:
        for n in range(4):
            for packets in flows.values():
                sender.send(packets[n])
        stats = settled(workers, 128)
        seen = [collect(w, s.received) for w, s in zip(workers, stats, strict=True)]
    finally:
        for worker in workers:
            worker.close()
    owner = {data: index for index, frames in enumerate(seen) for data in (f.data for f in frames)}
    assert sorted(owner) == sorted(p for packets in flows.values() for p in packets)
    assert sum(len(frames) for frames in seen) == 128  # each packet went to one worker
    assert all(len({owner[p] for p in packets}) == 1 for packets in flows.values())
    assert all(len(frames) >= 8 for frames in seen)  # 32 flows: both get some


def test_several_interfaces_are_read_together(link: Link) -> None:
    ns, iface, sender = link.ns, link.iface, link.sender
    netns.add_veth(ns, "mw2", "mw3")
    with netns.entered(ns):
        other = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    with other, opened(ns, LiveSource([iface, "mw2"], ring=FAST, fanout_group=77)) as source:
        other.bind(("mw3", 0))
        sender.send(stratum(1))
        other.send(stratum(2))
        got = collect(source, 2)
        assert set(source.modes) == {iface, "mw2"}
    assert sorted((f.source, f.data) for f in got) == [(iface, stratum(1)), ("mw2", stratum(2))]


# -- errors and cleanup -------------------------------------------------------------
def test_missing_interface_is_named(link: Link) -> None:
    ns, iface = link.ns, link.iface
    source = LiveSource([iface, "nosuch0"])
    with pytest.raises(CaptureError, match="no such interface") as caught:
        opened(ns, source)
    assert caught.value.source == "nosuch0"
    assert source.modes == {}  # the interface that did open was closed again


def test_an_oversized_filter_is_refused_for_the_interface(link: Link) -> None:
    too_long = [(0x80, 0, 0, 0)] * 4096 + [(0x06, 0, 0, 0xFFFF)]
    source = LiveSource([link.iface], bpf=too_long)
    with pytest.raises(CaptureError, match="at most 4096") as caught:
        opened(link.ns, source)
    assert caught.value.source == link.iface
    assert source.modes == {}


def _without_net_raw() -> None:
    """In the child before exec: drop CAP_NET_RAW from the bounding set, so
    that even root runs the command without it."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_unprivileged_capture_says_what_it_needs() -> None:
    code = (
        "from sensor.capture.live import LiveSource\n"
        "from sensor.capture.errors import CaptureError\n"
        "try:\n    LiveSource(['lo']).open()\n"
        "except CaptureError as e:\n    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], preexec_fn=_without_net_raw,
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.stdout.strip() == "lo: permission denied: live capture needs root or CAP_NET_RAW"


def test_ring_set_up_failure_falls_back_to_recvmsg(
    link: Link, caplog: pytest.LogCaptureFixture
) -> None:
    ns, iface, sender = link.ns, link.iface, link.sender
    caplog.set_level(logging.INFO, "sensor.capture.live")
    with opened(ns, LiveSource([iface], ring=RingSettings(block_size=1000))) as source:
        assert source.modes == {iface: "recvmsg"}
        sender.send(stratum(1))
        assert [f.data for f in collect(source, 1)] == [stratum(1)]
    assert "ring unavailable" in caplog.text and "recvmsg" in caplog.text


def test_closing_the_source_ends_its_frames_without_losing_copied_ones(link: Link) -> None:
    ns, iface, sender = link.ns, link.iface, link.sender
    source = opened(ns, LiveSource([iface], ring=FAST))
    for n in range(3):
        sender.send(stratum(n))
    frames = source.frames()
    assert next(frames).data == stratum(0)
    source.close()
    # Frames already copied out of the ring are still handed over, then it ends.
    rest = [f.data for f in frames]
    assert rest == [stratum(n) for n in range(1, 1 + len(rest))]


def test_capture_across_two_namespaces_and_their_removal() -> None:
    with netns.linked_namespaces() as (sensor_ns, iface, net_ns, peer):
        with netns.entered(net_ns):
            sender = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        with sender, opened(sensor_ns, LiveSource([iface], ring=FAST)) as source:
            sender.bind((peer, 0))
            sender.send(stratum(9))
            assert [f.data for f in collect(source, 1)] == [stratum(9)]
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for ns in (sensor_ns, net_ns):
        assert not netns.exists(ns)
        assert ns not in listed
