"""Time-ordered frames of one miner's pool connection, or of one background conversation.

Each function is a generator: frames are made when the pcap merge asks for
them, so memory holds one pending frame per conversation, not the capture.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator

from sensor.synth.population import Job, Miner
from sensor.synth.sessions import Script, hexdata, script
from sensor.synth.timing import RTT_US
from sensor.synth.wire import TcpConversation, udp
from sensor.synth.writer import Record

RESOLVER = ("192.0.2.53", 53)
_BG_SERVERS = 0xC6120000  # 198.18.0.0/15, the benchmarking range: no pool lives there


class _Clock:
    """Monotonic time within one conversation: a frame never precedes the one before."""

    __slots__ = ("now",)

    def __init__(self, now: int) -> None:
        self.now = now

    def at(self, t: int) -> int:
        self.now = max(t, self.now + 1)
        return self.now


def miner_frames(miner: Miner) -> Iterator[Record]:
    """DNS lookup of the pool (if named), TCP handshake, login, jobs and shares, close."""
    pool, vlan = miner.pool, miner.vlan
    port = 20000 + int(hexdata(miner.label + "/port", 2), 16) % 40000
    clock = _Clock(miner.start_us - 100_000)
    if pool.host:
        yield from dns_lookup((miner.ip, port + 1), pool.host, pool.ip, clock, vlan)
    tcp = TcpConversation((miner.ip, port), (pool.ip, pool.port), vlan, miner.start_us & 0xFFFFFF)
    t = miner.start_us
    for frame in tcp.handshake():
        yield clock.at(t), frame
        t += RTT_US // 2
    talk = script(pool, miner.label)
    for from_client, payload in talk.handshake():
        for frame in tcp.send(from_client, payload):
            yield clock.at(t), frame
        t += RTT_US // 2
    jobs, k = miner.jobs, 1  # job 0 came with the handshake
    for n, (submit_at, named) in enumerate(zip(miner.shares, miner.named, strict=True)):
        while k < len(jobs) and jobs[k].at_us <= submit_at:
            yield from _job(tcp, talk, clock, k, jobs[k])
            k += 1
        yield clock.at(submit_at), tcp.send(True, talk.submit(n, named))[0]
        yield clock.at(submit_at + RTT_US), tcp.send(False, talk.accept(n))[0]
    for rest in range(k, len(jobs)):
        yield from _job(tcp, talk, clock, rest, jobs[rest])
    fin, fin_ack, last = tcp.close()
    yield clock.at(miner.end_us - RTT_US), fin
    yield clock.at(miner.end_us - RTT_US // 2), fin_ack
    yield clock.at(miner.end_us), last


def _job(tcp: TcpConversation, talk: Script, clock: _Clock, n: int, job: Job) -> Iterator[Record]:
    """A new job; at a retarget, the new difficulty first (or the new target in the job)."""
    messages = talk.retarget(n, job.difficulty) if job.retarget else [talk.job(n)]
    for message in messages:
        for frame in tcp.send(False, message):
            yield clock.at(job.at_us), frame


def dns_query(qid: int, name: str) -> bytes:
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + b"\x00\x01\x00\x01"


def dns_answer(qid: int, name: str, address: str) -> bytes:
    query = dns_query(qid, name)
    rdata = bytes(int(x) for x in address.split("."))
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + rdata
    return struct.pack("!HH", qid, 0x8180) + query[4:6] + b"\x00\x01" + query[8:] + answer


def dns_lookup(
    client: tuple[str, int], name: str, address: str, clock: _Clock, vlan: int | None
) -> Iterator[Record]:
    qid = int(hexdata(f"{client}/{name}", 2), 16)
    t = clock.now
    yield clock.at(t), udp(client, RESOLVER, dns_query(qid, name), vlan, qid)
    yield clock.at(t + 2_000), udp(RESOLVER, client, dns_answer(qid, name, address), vlan, qid)


def _server(rng: random.Random) -> str:
    n = _BG_SERVERS + rng.randrange(1, 1 << 17)
    return ".".join(str(b) for b in n.to_bytes(4, "big"))


def background_frames(
    n: int, client_ip: str, start_us: int, rng: random.Random, vlan: int | None
) -> Iterator[Record]:
    """One ordinary conversation: a DNS lookup, a web download or a burst of UDP."""
    clock = _Clock(start_us)
    port = rng.randrange(32768, 61000)
    kind = n % 3
    if kind == 0:
        name = f"www{rng.randrange(10_000)}.example.com"
        yield from dns_lookup((client_ip, port), name, _server(rng), clock, vlan)
    elif kind == 1:
        yield from _web(client_ip, port, _server(rng), rng, clock, vlan)
    else:
        server = (_server(rng), 443)
        for i in range(rng.randrange(4, 24)):
            payload = hexdata(f"bg/{n}/udp/{i}", rng.randrange(20, 600)).encode()
            src, dst = ((client_ip, port), server) if i % 3 == 0 else (server, (client_ip, port))
            yield (
                clock.at(clock.now + rng.randrange(1_000, 30_000)),
                udp(src, dst, payload, vlan, i),
            )


def _web(
    client_ip: str, port: int, server: str, rng: random.Random, clock: _Clock, vlan: int | None
) -> Iterator[Record]:
    tcp = TcpConversation((client_ip, port), (server, 80), vlan, rng.randrange(1 << 32))
    step = 15_000
    for frame in tcp.handshake():
        yield clock.at(clock.now + step), frame
    request = (
        b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0\r\n\r\n"
    )
    yield clock.at(clock.now + step), tcp.send(True, request)[0]
    body = hexdata(f"bg/{port}/{server}", rng.randrange(200, 8_000)).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(body)
    for i, frame in enumerate(tcp.send(False, head + body)):
        yield clock.at(clock.now + 500), frame
        if i % 2:
            yield clock.at(clock.now + 500), tcp.ack(True)
    for frame in tcp.close():
        yield clock.at(clock.now + step), frame
