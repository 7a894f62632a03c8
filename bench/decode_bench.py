"""Micro-benchmark of the decode stage (not a test): decodes per second.

Run: python bench/decode_bench.py [seconds-per-case]
Frames are built with plain struct packing so the script needs nothing but
the package; pin it to one core (taskset -c 0) for steadier figures.
"""

from __future__ import annotations

import struct
import sys
import time

from sensor.decode import LINKTYPE_ETHERNET, Decoder
from sensor.model import Frame

_MAC_PAIR = bytes.fromhex("020000000001020000000002")
_PAYLOAD = b'{"id":1,"method":"mining.submit","params":["w","j","0","1","2"]}\n'


def _ipv4(proto: int, body: bytes) -> bytes:
    return (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(body),
            1,
            0,
            64,
            proto,
            0,
            bytes([10, 0, 0, 1]),
            bytes([192, 0, 2, 7]),
        )
        + body
    )


def _tcp(payload: bytes) -> bytes:
    return struct.pack("!HHIIBBHHH", 50000, 3333, 1000, 0, 5 << 4, 0x18, 65535, 0, 0) + payload


def _udp(dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", 40000, dport, 8 + len(payload), 0) + payload


def plain_frame() -> bytes:
    return _MAC_PAIR + b"\x08\x00" + _ipv4(6, _tcp(_PAYLOAD))


def vxlan_frame() -> bytes:
    vxlan = struct.pack("!BxxxI", 0x08, 42 << 8)
    return _MAC_PAIR + b"\x08\x00" + _ipv4(17, _udp(4789, vxlan + plain_frame()))


def rate(frame: Frame, seconds: float) -> float:
    decoder = Decoder()
    assert decoder.decode(frame) is not None, "benchmark frame must decode"
    decode = decoder.decode
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(10_000):
            decode(frame)
        count += 10_000
    return count / elapsed


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    for name, data in (("ethernet/ipv4/tcp", plain_frame()), ("vxlan", vxlan_frame())):
        per_s = rate(Frame(0.0, LINKTYPE_ETHERNET, data, len(data), "bench"), seconds)
        print(f"{name:20s} {per_s:12,.0f} decodes/s  {1e6 / per_s:6.2f} us/decode")


if __name__ == "__main__":
    main()
