"""Load benchmark of `minewatch run` (not a test): the highest rate with no kernel drops.

Run as root:
    python bench/load_bench.py [--capture bench/out/load.pcap] [--size-mb 100]
                               [--rates 75000,100000,...] [--workers 1,2]
                               [--seconds 10] [--no-topspeed] [--json FILE]

A veth pair is made in a throw-away namespace (tests/netns.py). The daemon
runs on one end (`--workers N`, metrics on loopback inside the namespace); on
the other, tcpreplay sends mixed traffic with pool flows inside (a capture made
by make_big_capture.py, built on first use) at `--pps R` for each rate in
turn, then `--topspeed`. Each step sends R x `--seconds` packets, looping the
capture as needed, so that it outlasts what the capture ring can buffer
(64 MiB: about a second at 200,000 packets/s). Per step: the sender's
achieved rate (tcpreplay's own figure), what the daemon counted
(`minewatch_packets_total`), kernel drops (`minewatch_capture_kernel_drops_total`,
from AF_PACKET statistics), the CPU the daemon used (workers included) and its
backlog: how long after the sender's end it took to read everything. The
sweep for a worker count stops at the first rate with drops. The summary
gives, per worker count, the highest rate with no drops, and the highest with
no drops and a backlog of at most two health ticks: what the daemon sustains,
rather than what the ring carried through a ten-second step.

Everything runs on the same machine: the sender competes with the daemon for
cores, so the figures are a floor for a sensor whose traffic comes from a NIC.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import netns  # noqa: E402

PORT = 10091
MTU = 9000  # the reference captures hold a few frames above 1514 bytes (offloads)
CLK_TCK = os.sysconf("SC_CLK_TCK")
SETTLE_TIMEOUT = 120.0
POLL = 0.5  # seconds between scrapes while settling (the daemon's health tick is 1 s)
TOPSPEED_PPS = 400_000  # about what tcpreplay reaches here: sizes the --topspeed step
KEEPING_UP_S = 2.0  # a backlog this short is the health tick, not the ring filling up


@dataclass(slots=True)
class Step:
    workers: int
    asked: str  # "--pps R" or "--topspeed"
    sent: int
    failed: int
    sender_pps: float
    sender_mbps: float
    seconds: float
    delivered: int
    drops: int
    cpu_percent: float  # of one core while sending, daemon and its workers
    cpu_us_per_packet: float  # daemon CPU over the step per packet delivered
    lag_seconds: float  # from the sender's end until the daemon had read everything


# --- the daemon ------------------------------------------------------------------------------


def metric(text: str, name: str) -> float:
    m = re.search(rf"^{name}(?:{{}})? (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and, recursively, of its live children."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return own + sum(cpu_seconds(int(child)) for child in children)


class Daemon:
    def __init__(
        self, ns: str, iface: str, workers: int, state: Path, log: Path, extra: list[str]
    ) -> None:
        self.ns, self.log = ns, log
        argv = [sys.executable, "-m", "sensor", "--log-level", "info", "run", *extra]
        argv += ["--interface", iface, "--workers", str(workers), "--state-dir", str(state)]
        argv += ["--web.listen-address", f"127.0.0.1:{PORT}"]
        with log.open("ab") as err:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, *argv], stderr=err, stdout=subprocess.DEVNULL, cwd=ROOT
            )

    def scrape(self) -> str | None:
        if self.proc.poll() is not None:
            sys.exit(f"load_bench: the daemon exited:\n{self.log.read_text()[-3000:]}")
        try:
            url = f"http://127.0.0.1:{PORT}/metrics"
            with netns.entered(self.ns), urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            return None

    def counts(self) -> tuple[int, int]:
        """(packets delivered, kernel drops) as the daemon last reported them."""
        text = self.scrape() or ""
        packets = metric(text, "minewatch_packets_total")
        return int(packets), int(metric(text, "minewatch_capture_kernel_drops_total"))

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.scrape() is None:
            if time.monotonic() > deadline:
                sys.exit("load_bench: the daemon's metrics endpoint never answered")
            time.sleep(0.2)
        time.sleep(2.0)  # workers open their sockets before the parent serves; margin

    def settle(self, before: tuple[int, int], sent: int) -> tuple[tuple[int, int], float]:
        """Counts once every sent packet is delivered or dropped (or they stop moving),
        and how long that took: the backlog the daemon had when the sender ended."""
        started = time.monotonic()
        deadline, last, still = started + SETTLE_TIMEOUT, (-1, -1), 0
        while time.monotonic() < deadline:
            now = self.counts()
            if (now[0] - before[0]) + (now[1] - before[1]) >= sent:
                return now, time.monotonic() - started
            still = still + 1 if now == last else 0
            if still >= 4:  # two health ticks without change: the rest is lost
                break
            last = now
            time.sleep(POLL)
        return self.counts(), time.monotonic() - started

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --- the sender --------------------------------------------------------------------------------


def tcpreplay(ns: str, iface: str, capture: Path, options: list[str]) -> dict[str, float]:
    argv = ["tcpreplay", *options, "-i", iface, str(capture)]
    done = netns.exec_in(ns, argv, timeout=600)
    if done.returncode != 0:
        sys.exit(f"load_bench: tcpreplay failed: {done.stderr.strip()}")
    out = done.stdout

    def grab(pattern: str) -> float:
        m = re.search(pattern, out)
        return float(m.group(1)) if m else 0.0

    return {
        "sent": grab(r"Successful packets:\s+(\d+)"),
        "failed": grab(r"Failed packets:\s+(\d+)"),
        "pps": grab(r"Rated: .*?, ([\d.]+) pps"),
        "mbps": grab(r"Rated: .*?, ([\d.]+) Mbps"),
        "seconds": grab(r"sent in ([\d.]+) seconds"),
    }


def step(
    daemon: Daemon, ns: str, peer: str, capture: Path, workers: int, options: list[str]
) -> Step:
    before = daemon.counts()
    cpu0 = cpu_seconds(daemon.proc.pid)
    sender = tcpreplay(ns, peer, capture, options)
    cpu_sending = cpu_seconds(daemon.proc.pid) - cpu0
    after, lag = daemon.settle(before, int(sender["sent"]))
    busy = cpu_seconds(daemon.proc.pid) - cpu0
    delivered = after[0] - before[0]
    return Step(
        workers=workers,
        asked=" ".join(options[1:3]) if options[1] == "--pps" else options[1],
        sent=int(sender["sent"]),
        failed=int(sender["failed"]),
        sender_pps=sender["pps"],
        sender_mbps=sender["mbps"],
        seconds=sender["seconds"],
        delivered=delivered,
        drops=after[1] - before[1],
        cpu_percent=100 * cpu_sending / max(sender["seconds"], 1e-9),
        cpu_us_per_packet=1e6 * busy / max(delivered, 1),
        lag_seconds=lag,
    )


def show(s: Step) -> None:
    print(
        f"workers {s.workers}  {s.asked:<14} sender {s.sender_pps:>9,.0f} pps "
        f"{s.sender_mbps:>7,.0f} Mbit/s  sent {s.sent:>8,}  delivered {s.delivered:>8,}  "
        f"kernel drops {s.drops:>7,}  daemon CPU {s.cpu_percent:4.0f}% "
        f"({s.cpu_us_per_packet:.1f} µs/packet)  backlog {s.lag_seconds:4.1f} s",
        flush=True,
    )


# --- the sweep ---------------------------------------------------------------------------------


def sweep(args: argparse.Namespace, capture: Path, packets: int, workers: int) -> list[Step]:
    steps: list[Step] = []
    with tempfile.TemporaryDirectory() as tmp, netns.veth_pair() as (ns, iface, peer):
        netns.exec_in(ns, ["ip", "link", "set", "lo", "up"], check=True)
        for end in (iface, peer):
            netns.exec_in(ns, ["ip", "link", "set", end, "mtu", str(MTU)], check=True)
        extra = ["--prefilter"] if args.prefilter else []
        daemon = Daemon(ns, iface, workers, Path(tmp) / "state", Path(tmp) / "daemon.log", extra)
        try:
            daemon.wait_ready()
            for rate in args.rates:
                options = ["-q", "--pps", str(rate), *amount(rate * args.seconds, packets)]
                steps.append(step(daemon, ns, peer, capture, workers, options))
                show(steps[-1])
                if steps[-1].drops:
                    break
            if args.topspeed:
                options = ["-q", "--topspeed", *amount(TOPSPEED_PPS * args.seconds, packets)]
                steps.append(step(daemon, ns, peer, capture, workers, options))
                show(steps[-1])
        finally:
            daemon.stop()
    return steps


def amount(count: int, packets: int) -> list[str]:
    """tcpreplay options sending `count` packets: the capture looped as often as needed
    (a step must outlast what the ring buffers, or any rate looks fine for a while)."""
    return [f"--loop={-(-count // packets)}", f"--limit={count}"]


def best(steps: list[Step], keeping_up: bool) -> dict[str, object] | None:
    """The fastest step (by the sender's achieved rate) without drops; `keeping_up`: and
    read within a health tick or two of the sender's end (not carried by the ring)."""
    clean = [s for s in steps if s.drops == 0 and s.sent]
    if keeping_up:
        clean = [s for s in clean if s.lag_seconds <= KEEPING_UP_S]
    top = max(clean, key=lambda s: s.sender_pps, default=None)
    if top is None:
        return None
    return {
        "pps": round(top.sender_pps),
        "mbps": round(top.sender_mbps),
        "daemon_cpu_percent": round(top.cpu_percent),
        "cpu_us_per_packet": round(top.cpu_us_per_packet, 1),
        "backlog_s": round(top.lag_seconds, 1),
    }


def summary(steps: list[Step]) -> dict[int, dict[str, object]]:
    """Per worker count: the highest zero-drop rate, and the highest the daemon kept up with."""
    out: dict[int, dict[str, object]] = {}
    for workers in sorted({s.workers for s in steps}):
        mine = [s for s in steps if s.workers == workers]
        out[workers] = {"zero_drops": best(mine, False), "keeping_up": best(mine, True)}
    return out


def ensure_capture(args: argparse.Namespace) -> tuple[Path, int]:
    capture = args.capture
    truth = capture.with_name(capture.name + ".truth.json")
    if not truth.exists():
        build = [sys.executable, str(ROOT / "bench" / "make_big_capture.py")]
        build += ["--size-mb", str(args.size_mb), "--out", str(capture)]
        subprocess.run(build, check=True)
    return capture, int(json.loads(truth.read_text())["packets"])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--capture", type=Path, default=ROOT / "bench" / "out" / "load.pcap")
    p.add_argument("--size-mb", type=float, default=100, help="when the capture is built")
    p.add_argument("--rates", default="75000,100000,110000,125000,150000,200000,300000")
    p.add_argument("--workers", default="1,2")
    p.add_argument("--seconds", type=int, default=10, help="sending time per rate")
    p.add_argument("--no-topspeed", dest="topspeed", action="store_false")
    p.add_argument("--json", type=Path, help="write every step and the summary here")
    p.add_argument(
        "--prefilter", action="store_true", help="run the daemon with its kernel prefilter"
    )
    args = p.parse_args(argv)
    args.rates = [int(r) for r in args.rates.split(",") if r]
    args.workers = [int(w) for w in args.workers.split(",") if w]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if reason := netns.skip_reason():
        sys.exit(f"load_bench: {reason}")
    if shutil.which("tcpreplay") is None:
        sys.exit("load_bench: needs tcpreplay (apt-get install tcpreplay)")
    capture, packets = ensure_capture(args)
    print(f"{capture}: {packets:,} packets; {os.cpu_count()} CPUs on this machine", flush=True)
    steps = [s for workers in args.workers for s in sweep(args, capture, packets, workers)]
    result = summary(steps)
    for workers, figures in result.items():
        print(f"workers {workers}: {json.dumps(figures)}")
    if args.json:
        doc = {"steps": [asdict(s) for s in steps], "summary": result}
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
