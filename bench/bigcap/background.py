"""Background flows from the templates: distinct endpoints, spread over a time span.

Flow j gets client 100.64.0.0/10-style CGNAT addresses (an ISP's subscribers)
and a server in 198.18.0.0/15 (the range RFC 2544 reserves for benchmarks),
so background can never be confused with the real captures' hosts. Client
address and port are a bijection of j, so every flow is distinct. Flows start
evenly over the span; each is stretched in time by a factor from a short
cycle so that short and long-lived flows overlap in the flow tables.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass

from bigcap.pcapio import Record
from bigcap.templates import SCHEDULE, VARIANTS, Template

_CLIENTS = 1 << 18  # subscribers: 100.64.0.0 - 100.67.255.255
_CLIENT_BASE = (100 << 24) | (64 << 16)
_SERVERS = 1 << 13  # 198.18.0.0/19
_SERVER_BASE = (198 << 24) | (18 << 16)
_RESOLVERS = 4  # 198.19.255.1 - .4
_RESOLVER_BASE = (198 << 24) | (19 << 16) | (255 << 8) | 1
_PORTS = 28232  # ephemeral ports 32768 - 60999
_STRETCH = (1, 3, 1, 10, 1, 30, 2, 100)
_BATCH = 1024  # flows generated, then sorted, at a time
_U32 = struct.Struct(">I")
_PORTS_FMT = struct.Struct(">HH")


@dataclass(slots=True)
class Plan:
    """Which flows, when: flow j starts at start_us + j * span_us // flows."""

    flows: int
    start_us: int
    span_us: int


def cycle_bytes(templates: dict[str, list[Template]]) -> tuple[int, int, int]:
    """(flows, packets, pcap bytes incl. record headers) of one full cycle of the mix."""
    flows = packets = size = 0
    for v in range(VARIANTS):
        for kind in SCHEDULE:
            tpl = templates[kind][v]
            flows += 1
            packets += len(tpl.packets)
            size += tpl.frame_bytes + 16 * len(tpl.packets)
    return flows, packets, size


def template_of(templates: dict[str, list[Template]], j: int) -> Template:
    kind = SCHEDULE[j % len(SCHEDULE)]
    return templates[kind][(j // len(SCHEDULE)) % VARIANTS]


def endpoints(j: int, tpl: Template) -> tuple[bytes, bytes]:
    """The 12 flow bytes of flow j, client-to-server and server-to-client."""
    client = _U32.pack(_CLIENT_BASE + j % _CLIENTS)
    cport = 32768 + (j // _CLIENTS * 7919) % _PORTS  # 7919 is prime: distinct per round
    if tpl.server_port == 53:
        server = _U32.pack(_RESOLVER_BASE + j % _RESOLVERS)
    else:
        server = _U32.pack(_SERVER_BASE + ((j * 2654435761) >> 7) % _SERVERS)
    sport = tpl.server_port
    return client + server + _PORTS_FMT.pack(cport, sport), server + client + _PORTS_FMT.pack(
        sport, cport
    )


def flow_records(tpl: Template, j: int, start_us: int) -> list[tuple[int, int, bytes, int]]:
    """(time, order, frame, wire length) of every packet of flow j."""
    up, down = endpoints(j, tpl)
    stretch = _STRETCH[j % len(_STRETCH)]
    out = []
    for n, (rel, c2s, head, tail) in enumerate(tpl.packets):
        frame = head + (up if c2s else down) + tail
        out.append((start_us + rel * stretch, (j << 12) | n, frame, len(frame)))
    return out


def stream(templates: dict[str, list[Template]], plan: Plan) -> Iterator[Record]:
    """Every background packet in time order (flows overlap, so batches are sorted)."""
    pending: list[tuple[int, int, bytes, int]] = []
    for first in range(0, plan.flows, _BATCH):
        last = min(first + _BATCH, plan.flows)
        for j in range(first, last):
            start = plan.start_us + j * plan.span_us // plan.flows
            pending += flow_records(template_of(templates, j), j, start)
        pending.sort()
        horizon = plan.start_us + last * plan.span_us // plan.flows
        cut = bisect_left(pending, horizon, key=_time) if last < plan.flows else len(pending)
        for ts, _, frame, wire_len in pending[:cut]:
            yield ts, frame, wire_len
        del pending[:cut]


def _time(record: tuple[int, int, bytes, int]) -> int:
    return record[0]
