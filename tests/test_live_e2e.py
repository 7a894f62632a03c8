"""`minewatch run` on a real interface gives what `minewatch replay` gives on the same captures.

The test makes a network namespace with a veth pair (tests/netns.py), starts
the daemon on one end and sends synthetic captures into the other with
tcpreplay (or, without it, a raw socket in this process) at a moderate rate:
several dialects, plain Ethernet and VLAN-tagged, with one worker and with two
sharing the load through a fanout group. Mid-capture a broken rule
file is put in the daemon's rule folder and SIGHUP sent: the reload must be
refused (metric and log line) and detection go on with the old rules. After
SIGTERM the events (dialect, src/dest, login/wallet/worker, shares, bytes and
packets each way) and the counters must equal replay's, apart from what only
timing decides. Then the daemon starts again on the same state directory and
its counters must have survived.

Root only (network namespaces); the namespace, its interfaces and every file
are removed afterwards, and no address is assigned to the veth ends, so no
traffic leaves.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dpkt
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import netns
from tests.factory import T0, TcpSession
from tests.sessions import MINING, NOT_MINING, SCRIPTS
from tests.test_pipeline import VARIANTS, build_capture

pytestmark = pytest.mark.skipif(netns.skip_reason() is not None, reason=str(netns.skip_reason()))

ROOT = Path(__file__).resolve().parents[1]
PORT = 10090  # loopback inside the test's own namespace
RATE_PPS = 2000
START_TIMEOUT = 30.0
MTU = 9000
# Only timing (capture time against the wall clock) or the source (a file or an
# interface) decides these.
TIMING = {"timestamp", "flow_id", "pcap_filename", "in_iface"}
FLOW_TIMING = {"start", "end", "age", "reason"}
MINING_TIMING = {"hashrate_hs", "hashrate_interval_hs", "power_w"}
# Counted when a flow is recognised by its protocol, so equal to replay's as soon as
# the packets are in (an endpoint match waits for the flow to end, as do pool bytes:
# those are compared after the stop).
DETECTION_COUNTERS = ("minewatch_mining_flows_total", "minewatch_detections_total")
BY_ENDPOINT = ('dialect="endpoint"', 'rule_id="test.e2e.pool"')
COUNTERS = (*DETECTION_COUNTERS, "minewatch_pool_bytes_total")
BROKEN_RULE = "pools:\n  - id: broken\n    prot: [\n"
# An extra rule the daemon starts with: only it makes the opaque flow sent after
# the refused reload a mining flow, so that flow shows the old rules stayed.
EXTRA_RULE = """\
pools:
  - id: test.e2e.pool
    description: the pool of the opaque flow sent after the refused reload
    networks: [203.0.113.77/32]
    ports: [443]
    source: tests/test_live_e2e.py
"""
OPAQUE_POOL = ("203.0.113.77", 443)


# --- captures --------------------------------------------------------------------------------


def _with_non_mining(names: tuple[str, ...]) -> list[Any]:
    """The named scripts, then every script that is not mining."""
    return [SCRIPTS[n] for n in names] + list(NOT_MINING)


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_captures(tmp_path_factory.mktemp("captures"))


def build_captures(folder: Path) -> tuple[Path, Path]:
    """Before the reload: four dialects on plain Ethernet with the non-mining scripts;
    after it: four others and an opaque flow to EXTRA_RULE's pool on VLAN 100. Each
    conversation has its own endpoints."""
    first, second = folder / "a.pcap", folder / "b.pcap"
    before = ("stratum_v1_btc", "ethproxy", "cryptonote_xmrig", "getwork_gbt")
    after = ("stratum_v1_zec", "ethereum_stratum", "grin", "stratum_v2")
    build_capture(first, _with_non_mining(before), VARIANTS["plain"])
    later = [SCRIPTS[n] for n in after]
    opaque = [("client", b"\x16\x03\x01" + bytes(120)), ("server", bytes(300))]
    pool = TcpSession(("10.1.60.2", 41500), OPAQUE_POOL, start=T0 + 0.5).script(opaque)
    extra = pool.packets()
    build_capture(second, later, VARIANTS["vlan"], extra, first=len(before) + len(NOT_MINING))
    assert {SCRIPTS[n] for n in before + after} <= set(MINING)
    return first, second


def frames_of(path: Path) -> list[bytes]:
    with path.open("rb") as fh:
        return [bytes(buf) for _ts, buf in dpkt.pcap.Reader(fh)]


# --- sending ---------------------------------------------------------------------------------


def send(ns: str, iface: str, capture: Path) -> None:
    """The capture's frames into `iface`, at RATE_PPS, with tcpreplay when installed."""
    if shutil.which("tcpreplay"):
        argv = ["tcpreplay", "-q", "--pps", str(RATE_PPS), "-i", iface, str(capture)]
        done = netns.exec_in(ns, argv)
        assert done.returncode == 0, done.stderr
        assert re.search(r"Failed packets:\s+0\b", done.stdout), done.stdout
        return
    send_frames(ns, iface, frames_of(capture))


def send_frames(ns: str, iface: str, frames: list[bytes]) -> None:
    with netns.entered(ns):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    with sock:
        sock.bind((iface, 0))
        for data in frames:
            sock.send(data)
            time.sleep(1 / RATE_PPS)


# --- the daemon ------------------------------------------------------------------------------

Samples = dict[str, float]


def parse_metrics(text: str) -> Samples:
    """`name{label="v",...}` -> value, labels sorted, for every sample."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def select(samples: Samples, *names: str) -> Samples:
    return {k: v for k, v in samples.items() if k.split("{")[0] in names}


def value(samples: Samples, name: str) -> float:
    return samples.get(name + "{}", 0.0)


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


class Daemon:
    """`minewatch run` inside the namespace, its stderr in a file, metrics on loopback."""

    def __init__(self, ns: str, argv: list[str], log: Path) -> None:
        self.ns, self.log = ns, log
        command = [sys.executable, "-m", "sensor", "--log-level", "info", "run", *argv]
        with log.open("ab") as err:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, *command],
                stdout=subprocess.DEVNULL,
                stderr=err,
                cwd=ROOT,
            )

    def scrape(self) -> Samples | None:
        """The current metrics, or None while the endpoint is not up."""
        try:
            url = f"http://127.0.0.1:{PORT}/metrics"
            with netns.entered(self.ns), urllib.request.urlopen(url, timeout=2) as response:
                return parse_metrics(response.read().decode())
        except OSError:
            assert self.proc.poll() is None, f"daemon exited: {self.tail()}"
            return None

    def metrics(self) -> Samples:
        samples = self.scrape()
        assert samples is not None
        return samples

    def wait_packets(self, count: float, timeout: float = 30.0) -> Samples:
        """Metrics once minewatch_packets_total has reached `count`."""
        latest: list[Samples] = [{}]

        def reached() -> bool:
            latest[0] = self.scrape() or {}
            return value(latest[0], "minewatch_packets_total") >= count

        try:
            wait_until(reached, timeout, f"{count:.0f} packets")
        except pytest.fail.Exception:
            counted = value(latest[0], "minewatch_packets_total")
            pytest.fail(f"{counted:.0f} of {count:.0f} packets counted; log:\n{self.tail()}")
        return latest[0]

    def tail(self) -> str:
        return self.log.read_text()[-3000:]

    def stop(self, timeout: float = 60.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"daemon did not stop on SIGTERM: {self.tail()}")


@dataclass
class Link:
    """A namespace with a veth pair, and the daemons started on it (killed at teardown
    if a failed test left them running: a process keeps a deleted namespace alive)."""

    ns: str
    capture_end: str
    send_end: str
    daemons: list[Daemon] = field(default_factory=list)

    def start(self, argv: list[str], log: Path) -> Daemon:
        """The daemon, once its metrics endpoint answers: it serves only after every
        worker's capture socket is open, so from then on no packet sent is missed."""
        daemon = Daemon(self.ns, ["--interface", self.capture_end, *argv], log)
        self.daemons.append(daemon)
        wait_until(lambda: daemon.scrape() is not None, START_TIMEOUT, "the metrics endpoint")
        return daemon

    def send(self, capture: Path) -> None:
        send(self.ns, self.send_end, capture)


@pytest.fixture
def link() -> Iterator[Link]:
    """Loopback up for the metrics endpoint, MTU raised on both veth ends."""
    with netns.veth_pair() as (ns, capture_end, send_end):
        netns.exec_in(ns, ["ip", "link", "set", "lo", "up"], check=True)
        for end in (capture_end, send_end):
            # The factory writes whole messages as one segment (as a capture with
            # offloads shows them): frames above 1514 bytes.
            netns.exec_in(ns, ["ip", "link", "set", end, "mtu", str(MTU)], check=True)
        made = Link(ns, capture_end, send_end)
        try:
            yield made
        finally:
            for daemon in made.daemons:
                if daemon.proc.poll() is None:
                    daemon.proc.kill()
                    daemon.proc.wait()


def wait_equal(daemon: Daemon, expected: Samples, timeout: float = 15.0) -> None:
    """Wait until the daemon's samples of the `expected` series equal `expected`."""
    got: Samples = {}

    def equal() -> bool:
        samples = daemon.metrics()
        got.update({k: samples.get(k, 0.0) for k in expected})
        return got == expected

    try:
        wait_until(equal, timeout, "the counters")
    except pytest.fail.Exception:
        assert got == expected  # shows the difference


# --- comparing -------------------------------------------------------------------------------


def read_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def comparable(event: dict[str, Any]) -> dict[str, Any]:
    """The event without what only timing or the source decides (see TIMING)."""
    out = {k: v for k, v in event.items() if k not in TIMING}
    if "flow" in out:
        out["flow"] = {k: v for k, v in out["flow"].items() if k not in FLOW_TIMING}
    if "mining" in out:
        out["mining"] = {k: v for k, v in out["mining"].items() if k not in MINING_TIMING}
    return out


def by_flow(events: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    keyed = {}
    for e in events:
        key = (e["event_type"], e["src_ip"], e["src_port"], e["dest_ip"], e["dest_port"])
        assert key not in keyed, f"two {key[0]} events for one flow"
        keyed[key] = comparable(e)
    return keyed


def differences(got: dict[str, Any], want: dict[str, Any], where: str = "") -> list[str]:
    """Field paths where two events differ, with both values."""
    out = []
    for key in sorted(set(got) | set(want)):
        a, b = got.get(key, "<missing>"), want.get(key, "<missing>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{where}{key}.")
        elif a != b:
            out.append(f"{where}{key}: live {a!r}, replay {b!r}")
    return out


def assert_same_events(live: list[dict[str, Any]], replayed: list[dict[str, Any]]) -> None:
    got, want = by_flow(live), by_flow(replayed)
    assert sorted(got) == sorted(want)
    problems = [f"{key}: {d}" for key in want for d in differences(got[key], want[key])]
    assert not problems, "\n".join(problems)


def replay(
    captures: tuple[Path, Path], rules: Path, folder: Path
) -> tuple[list[dict[str, Any]], Samples]:
    events, metrics = folder / "replay.json", folder / "replay.prom"
    argv = [sys.executable, "-m", "sensor", "replay", *map(str, captures), "--rules", str(rules)]
    argv += ["--events", str(events), "--metrics-file", str(metrics), "--no-progress"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return read_events(events), parse_metrics(metrics.read_text())


# --- the test --------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_live_capture_equals_replay_survives_bad_reload_and_restart(
    link, captures, tmp_path, workers
):
    first, second = captures
    state, rules = tmp_path / "state", tmp_path / "rules"
    rules.mkdir()
    (rules / "extra.yaml").write_text(EXTRA_RULE)
    expected, replayed = replay(captures, rules, tmp_path)
    mining = [e["mining"]["rule_id"] for e in expected if e["event_type"] == "mining"]
    assert len(mining) == 9 and "test.e2e.pool" in mining
    events, log = tmp_path / "live.json", tmp_path / "daemon.log"
    argv = ["--state-dir", str(state), "--events", str(events), "--rules", str(rules)]
    argv += ["--web.listen-address", f"127.0.0.1:{PORT}", "--checkpoint-interval", "1"]
    argv += ["--workers", str(workers)]

    daemon = link.start(argv, log)
    link.send(first)
    daemon.wait_packets(len(frames_of(first)))
    assert value(daemon.metrics(), "minewatch_rules_last_reload_success") == 1

    # A broken rule file and SIGHUP: refused, the old rules stay and detection goes on.
    (rules / "broken.yaml").write_text(BROKEN_RULE)
    daemon.proc.send_signal(signal.SIGHUP)
    wait_until(
        lambda: value(daemon.metrics(), "minewatch_rules_last_reload_success") == 0,
        15,
        "the refused reload",
    )
    assert "reload refused" in log.read_text()
    link.send(second)
    live = daemon.wait_packets(len(frames_of(first)) + len(frames_of(second)))
    for name in ("minewatch_packets_total", "minewatch_bytes_total"):
        assert value(live, name) == value(replayed, name), name
    assert value(live, "minewatch_capture_kernel_drops_total") == 0
    detected = select(replayed, *DETECTION_COUNTERS)
    wait_equal(daemon, {k: v for k, v in detected.items() if not any(e in k for e in BY_ENDPOINT)})
    assert daemon.stop() == 0

    got = read_events(events)
    # Closed flows end on the wall clock live, at the end of the files in replay.
    assert {e["flow"]["reason"] for e in got if e["event_type"] == "flow"} <= {"closed", "shutdown"}
    assert_same_events(got, expected)
    assert {e["in_iface"] for e in got} == {link.capture_end}

    # Restart on the same state: the counters are back, and equal replay's.
    (rules / "broken.yaml").unlink()
    argv[argv.index(str(events))] = str(tmp_path / "live-again.json")
    again = link.start(argv, log)
    try:
        restored = again.metrics()
    finally:
        assert again.stop() == 0
    assert select(restored, *COUNTERS) == select(replayed, *COUNTERS)
    assert value(restored, "minewatch_packets_total") == value(live, "minewatch_packets_total")
    assert (state / "state.sqlite3").stat().st_size > 0


def test_prefilter_finds_the_same_mining_flows_with_fewer_packets_in_python(
    link, captures, tmp_path
):
    """--prefilter: the kernel drops what cannot matter and widens the filter at run
    time; every mining flow is still found with the same dialect, ends and identity,
    and its byte totals can only come out short (its first packets may be missed)."""
    first, _ = captures
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "extra.yaml").write_text(EXTRA_RULE)
    expected, _ = replay((first,), rules, tmp_path)
    want = {k: v for k, v in by_flow(expected).items() if k[0] == "mining"}
    assert want
    events, log = tmp_path / "live.json", tmp_path / "daemon.log"
    argv = ["--events", str(events), "--rules", str(rules), "--prefilter"]
    argv += ["--web.listen-address", f"127.0.0.1:{PORT}"]
    daemon = link.start(argv, log)
    link.send(first)
    wait_until(
        lambda: sum(select(daemon.metrics(), "minewatch_mining_flows_total").values()) >= len(want),
        20,
        "the mining flows",
    )
    seen = value(daemon.metrics(), "minewatch_packets_total")
    assert daemon.stop() == 0
    assert seen < len(frames_of(first))  # the kernel dropped what could not matter
    got = read_events(events)
    mining = {k: v for k, v in by_flow(got).items() if k[0] == "mining"}
    assert sorted(mining) == sorted(want)
    for key, event in mining.items():
        for field_name in ("dialect", "coin", "login", "wallet", "worker", "agent"):
            assert event["mining"][field_name] == want[key]["mining"][field_name], (key, field_name)
    flows = {k: v for k, v in by_flow(got).items() if k[0] == "flow"}
    full = {k: v for k, v in by_flow(expected).items() if k[0] == "flow"}
    for key, event in flows.items():
        assert event["flow"]["bytes_toserver"] <= full[key]["flow"]["bytes_toserver"]
