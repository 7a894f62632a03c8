"""The pcap writer's output reads back with dpkt, in time order."""

from __future__ import annotations

import io

import dpkt

from sensor.synth.writer import PcapWriter, merge


def test_merge_and_write_read_back() -> None:
    a = iter([(1_000_000, b"a" * 60), (3_000_500, b"c" * 60)])
    b = iter([(2_000_000, b"b" * 70)])
    buf = io.BytesIO()
    writer = PcapWriter(buf)
    writer.write(merge([a, b]))
    assert (writer.packets, writer.bytes) == (3, 24 + 3 * 16 + 190)
    records = list(dpkt.pcap.Reader(io.BytesIO(buf.getvalue())))
    assert [(round(ts, 6), data[:1]) for ts, data in records] == [
        (1.0, b"a"),
        (2.0, b"b"),
        (3.0005, b"c"),
    ]
