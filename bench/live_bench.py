"""Frames per second the live reader (TPACKET_V3 ring -> Frame) sustains (not a test).

Run as root: python bench/live_bench.py [--frames N] [--small] [--rates 100000,200000]
A veth pair is made in a throw-away namespace; tcpreplay (or, without it, a
raw socket in this process) sends a synthetic mix into one end and LiveSource
reads the other with no further work. Three figures:

- drain: the ring is filled while nobody reads, then read flat out; the
  reader's own speed, with the sender not competing for a core;
- flood: `tcpreplay --topspeed` while reading; what is read, and kernel drops;
- sweep (`--rates`): `tcpreplay --pps R` per rate; the highest rate with no drops.

The mix is about 340 bytes a frame on average (60% 66-byte ACKs, 25% 300, 15%
1514), like docs/performance.md's reference; `--small` sends 64-byte frames only.
"""

from __future__ import annotations

import argparse
import random
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sensor.capture.live import LiveSource
from sensor.capture.ring import RingSettings
from tests import netns

MACS = bytes.fromhex("020000000001020000000002")


def _frame(rng: random.Random, size: int) -> bytes:
    body = bytes(max(0, size - 54))
    sport, dport = rng.randrange(1024, 65535), rng.choice((443, 80, 3333, 4444))
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 1, 1, 0x50, 0x10, 65535, 0, 0)
    src = struct.pack("!I", 0xC0000200 | rng.randrange(256))  # 192.0.2.0/24
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(body), 1, 0, 64, 6, 0, src, bytes(4))
    return (MACS + b"\x08\x00" + ip + tcp + body).ljust(60, b"\0")


def mix(count: int, small: bool, seed: int = 5) -> list[bytes]:
    rng = random.Random(seed)
    sizes = [64] if small else [66] * 12 + [300] * 5 + [1514] * 3
    return [_frame(rng, rng.choice(sizes)) for _ in range(count)]


def write_pcap(path: Path, frames: list[bytes]) -> None:
    with path.open("wb") as fh:
        fh.write(struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for n, data in enumerate(frames):
            fh.write(struct.pack("=IIII", n // 1_000_000, n % 1_000_000, len(data), len(data)))
            fh.write(data)


class Bench:
    def __init__(self, ns: str, iface: str, peer: str, pcap: Path, frames: list[bytes]) -> None:
        self.ns, self.iface, self.peer, self.pcap, self.frames = ns, iface, peer, pcap, frames
        self.tcpreplay = shutil.which("tcpreplay") is not None

    def source(self) -> LiveSource:
        source = LiveSource([self.iface], ring=RingSettings(block_count=128))
        with netns.entered(self.ns):
            source.open()
        return source

    def send(self, *options: str) -> float:
        """Send the capture once; the sender's wall time."""
        start = time.perf_counter()
        if self.tcpreplay:
            argv = ["tcpreplay", "-q", *options, "-i", self.peer, str(self.pcap)]
            netns.exec_in(self.ns, argv, check=True)
        else:
            with netns.entered(self.ns):
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            with sock:
                sock.bind((self.peer, 0))
                for data in self.frames:
                    sock.send(data)
        return time.perf_counter() - start

    def drain(self) -> None:
        with self.source() as source:
            sent_in = self.send("--topspeed")
            time.sleep(0.3)  # let the last block retire
            queued = source.stats()
            start = time.perf_counter()
            read = _read(source, queued.received - queued.dropped, idle=0.3)
            elapsed = time.perf_counter() - start
        print(
            f"drain: {read} frames read in {elapsed:.3f} s = {read / elapsed:,.0f} frames/s "
            f"(sender {len(self.frames) / sent_in:,.0f} pps; kernel: {queued})"
        )

    def flood(self, *options: str) -> tuple[int, int, float]:
        """(read, dropped, sender pps) with the reader running during the send."""
        with self.source() as source:
            counted: list[int] = []
            reader = threading.Thread(target=lambda: counted.append(_read(source, None, 0.5)))
            reader.start()
            sent_in = self.send(*options)
            reader.join()
            stats = source.stats()
        return counted[0], stats.dropped, len(self.frames) / sent_in


def _read(source: LiveSource, count: int | None, idle: float) -> int:
    """Frames read until `count` or until none came for `idle` seconds."""
    stop, read, last = threading.Event(), 0, time.monotonic()

    def watchdog() -> None:
        while not stop.wait(0.05):
            if time.monotonic() - last > idle:
                stop.set()

    threading.Thread(target=watchdog, daemon=True).start()
    for _frame in source.frames(stop):
        read += 1
        if read % 4096 == 0:
            last = time.monotonic()
        if read == count:
            break
    stop.set()
    return read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--small", action="store_true", help="64-byte frames only")
    parser.add_argument("--rates", default="", help="comma-separated pps for the sweep")
    args = parser.parse_args()
    if reason := netns.skip_reason():
        sys.exit(f"live_bench: {reason}")
    frames = mix(args.frames, args.small)
    mean = sum(map(len, frames)) / len(frames)
    print(f"{len(frames)} frames, mean {mean:.0f} bytes; sender: ", end="")
    with tempfile.TemporaryDirectory() as tmp, netns.veth_pair() as (ns, iface, peer):
        pcap = Path(tmp) / "mix.pcap"
        write_pcap(pcap, frames)
        bench = Bench(ns, iface, peer, pcap, frames)
        print("tcpreplay" if bench.tcpreplay else "raw socket (no tcpreplay)")
        bench.drain()
        read, dropped, pps = bench.flood("--topspeed")
        print(f"flood: sender {pps:,.0f} pps, read {read}, kernel drops {dropped}")
        for rate in filter(None, args.rates.split(",")):
            read, dropped, pps = bench.flood("--pps", rate)
            print(f"--pps {rate}: sender {pps:,.0f} pps, read {read}, kernel drops {dropped}")


if __name__ == "__main__":
    main()
