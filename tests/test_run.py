"""`minewatch run`: the live daemon.

First the parts that need no privileges: flags over the config file, the
pipeline's interim progress and reload, journal-friendly logs. Then the daemon
itself as a subprocess inside a throw-away network namespace, watching one end
of a veth pair whose other end lives in a second namespace, where the test
sends crafted mining sessions with a raw socket; events are read from the
daemon's file and metrics scraped from its endpoint on the namespace's
loopback. Everything is removed afterwards and no traffic leaves the
namespaces. Root only (skipped otherwise); each daemon runs for a few seconds.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sensor import logs
from sensor.attribute.resolver import OwnershipResolver
from sensor.capture import libpcap
from sensor.cli import build_parser
from sensor.commands.run import settings
from sensor.model import FlowRecord, Frame, MiningRecord, NodeRecord
from sensor.pipeline import Pipeline
from sensor.rules.loader import load_rules
from sensor.sinks.metrics_state import MetricsState
from tests import netns
from tests.factory import TcpSession, ether, frame_bytes
from tests.sessions import MINING, SCRIPTS, Script

ROOT = Path(__file__).resolve().parents[1]
RULES = load_rules()
BTC = SCRIPTS["stratum_v1_btc"]
EXTRA_POOL = """\
pools:
- id: test.pool.{n}
  description: a pool endpoint the test invents
  networks: [198.51.100.{n}/32]
  ports: [4444]
  coin: xmr
  source: tests/test_run.py
"""
needs_netns = pytest.mark.skipif(netns.skip_reason() is not None, reason=str(netns.skip_reason()))


def miner(n: int) -> str:
    return f"10.9.{n // 250}.{n % 250 + 1}"


def session(n: int, script: Script = BTC, pool: str = "198.51.100.7", **kw) -> TcpSession:
    """Miner `n` running `script` against `pool`."""
    kw.setdefault("mss", 1400)  # the veth's MTU is 1500
    s = TcpSession((miner(n), 40000 + n), (pool, script.port), **kw)
    return s.script(script.steps)


def opaque(n: int, pool: str) -> TcpSession:
    """A conversation in no readable protocol, to port 4444 of `pool`."""
    s = TcpSession((miner(n), 40000 + n), (pool, 4444), close=None)
    return s.send("client", bytes(range(256)) * 2).send("server", bytes(range(255, -1, -1)))


def frames_of(s: TcpSession) -> list[bytes]:
    return [frame_bytes(p) for p in ether(s.packets())]


class Records:
    """A sink that keeps what it is given."""

    def __init__(self) -> None:
        self.mined: list[MiningRecord] = []
        self.ended: list[FlowRecord] = []

    def mining(self, rec: MiningRecord) -> None:
        self.mined.append(rec)

    def flow_end(self, rec: FlowRecord) -> None:
        self.ended.append(rec)

    def node(self, rec: NodeRecord) -> None:
        pass

    def close(self) -> None:
        pass


# -- no privileges needed --------------------------------------------------------------------------
def test_flags_override_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "minewatch.yml"
    config.write_text(
        "interfaces: [eth1, eth2]\nworkers: 2\nrules: [r]\n"
        "web: {listen_address: ':10095'}\nwindows: {suspect: 1h, flow_idle: 5m}\n"
    )
    args = build_parser().parse_args(
        [
            "run",
            "--config",
            str(config),
            "-i",
            "mon0",
            "--flow-idle-timeout",
            "30s",
            "--events",
            "-",
        ]
    )
    got = settings(args)
    assert (got.interfaces, got.workers, got.events) == (("mon0",), 2, "-")
    assert got.rules == (tmp_path / "r",)
    assert got.web.listen_address == ("", 10095)
    assert (got.windows.suspect, got.windows.flow_idle) == (3600.0, 30.0)
    plain = settings(build_parser().parse_args(["run", "-i", "eth0", "--rules-replace"]))
    assert (plain.interfaces, plain.rules_replace, plain.checkpoint_interval) == (
        ("eth0",),
        True,
        2.0,
    )


def _feed(pipeline: Pipeline, frames: list[bytes], start: float) -> None:
    for i, data in enumerate(frames):
        pipeline.feed(Frame(start + i * 0.01, 1, data, len(data), "mw0"))


def test_progress_carries_the_bytes_of_open_mining_flows() -> None:
    state, records = MetricsState(), Records()
    pipeline = Pipeline(RULES, [state, records])
    frames = frames_of(session(1, close=None))
    _feed(pipeline, frames[:-4], 1000.0)
    first = pipeline.progress(1001.0)
    assert [(p.miner_ip, p.coin) for p in first] == [("10.9.0.2", "btc")]
    assert pipeline.progress(1002.0) == []  # nothing new
    _feed(pipeline, frames[-4:], 1003.0)
    second = pipeline.progress(1004.0)
    for p in second:
        state.progress(p)
    for p in first:
        state.progress(p)
    pipeline.finish(reason="shutdown")
    (ended,) = records.ended
    assert ended.reason == "shutdown"
    assert sum(p.egress for p in first + second) == ended.bytes_toserver > 0
    assert sum(p.ingress for p in first + second) == ended.bytes_toclient > 0
    assert state.totals().pool_bytes == {
        ("egress", "btc", "unknown"): ended.bytes_toserver,
        ("ingress", "btc", "unknown"): ended.bytes_toclient,
    }


def test_reload_applies_to_new_flows_and_keeps_open_ones(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "extra.yaml").write_text(EXTRA_POOL.format(n=201))
    registry = tmp_path / "owners.csv"
    registry.write_text("network,org,org_type,region\n10.9.0.0/16,Campus,education,Nanjing\n")
    records = Records()
    pipeline = Pipeline(RULES, [records])
    errors = pipeline.ctx.detector_errors
    # Ended (idle) before the reload, by the old rules: nothing.
    _feed(pipeline, frames_of(opaque(2, "198.51.100.201")), 0.0)
    open_flow = frames_of(session(1))
    _feed(pipeline, open_flow[:5], 1000.0)  # the handshake and the subscribe
    resolver = OwnershipResolver([registry])
    pipeline.reload(load_rules([tmp_path / "rules"]), resolver)
    _feed(pipeline, open_flow[5:], 1002.0)
    _feed(pipeline, frames_of(opaque(3, "198.51.100.201")), 1003.0)
    pipeline.finish()
    resolver.close()
    found = {r.mining.miner_ip: r.mining for r in records.ended}
    assert set(found) == {"10.9.0.2", "10.9.0.4"}
    assert found["10.9.0.2"].finding.dialect == "stratum-v1"  # began before, ended after
    assert (found["10.9.0.4"].finding.dialect, found["10.9.0.4"].finding.coin) == (
        "endpoint",
        "xmr",
    )
    assert found["10.9.0.4"].org.name == "Campus"
    assert pipeline.ctx.detector_errors is errors  # the _total series go on


def test_logs_are_one_line_per_record_and_journal_aware(tmp_path: Path, monkeypatch) -> None:
    assert [logs.priority(level) for level in (50, 40, 30, 20, 10, 5)] == [2, 3, 4, 6, 7, 7]
    log = logging.getLogger("sensor.test")
    for journal in (False, True):
        path = tmp_path / f"stderr-{journal}"
        with path.open("w") as stream:
            stat = os.fstat(stream.fileno())
            monkeypatch.setenv("JOURNAL_STREAM", f"{stat.st_dev}:{stat.st_ino + (not journal)}")
            handler = logs.setup("info", stream)
            try:
                log.info("reloaded")
                log.error("reload refused:\nrules/a.yaml:3: bad\nrules/b.yaml:9: worse")
                log.debug("not shown")
            finally:
                logging.getLogger().removeHandler(handler)
        lines = path.read_text().splitlines()
        if journal:
            assert lines == [
                "<6>reloaded",
                "<3>reload refused: | rules/a.yaml:3: bad | rules/b.yaml:9: worse",
            ]
        else:
            assert lines[0] == "minewatch: INFO: reloaded"
            assert lines[1].startswith("minewatch: ERROR: reload refused: | rules/a.yaml:3")
            assert len(lines) == 2


# -- the daemon in network namespaces --------------------------------------------------------------
@dataclass
class Daemon:
    """`minewatch run` on the sensor namespace's end of the veth pair."""

    ns: str
    iface: str
    folder: Path
    args: list[str]
    proc: subprocess.Popen | None = None
    runs: int = 0
    log: Path = field(init=False)

    def start(self, *extra: str) -> Daemon:
        self.runs += 1
        self.log = self.folder / f"daemon-{self.runs}.log"
        argv = [sys.executable, "-m", "sensor", "run", "-i", self.iface, *self.args, *extra]
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, *argv],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        self.wait_for(lambda: "capturing on" in self.log.read_text(), what="start")
        return self

    def wait_for(self, ready: Callable[[], bool], timeout: float = 8.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"daemon exited ({self.proc.returncode}):\n{self.log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}; log:\n{self.log.read_text()}")
            time.sleep(0.05)

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        with netns.entered(self.ns):  # the daemon listens on the namespace's loopback
            body = urllib.request.urlopen("http://127.0.0.1:10090/metrics", timeout=3).read()
        families = text_string_to_metric_families(body.decode())
        return [(s.name, s.labels, s.value) for family in families for s in family.samples]

    def total(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` that have these labels."""
        return sum(
            value
            for sample, have, value in self.samples()
            if sample == name and labels.items() <= have.items()
        )

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=15)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@dataclass
class Net:
    daemon: Daemon
    sender: socket.socket
    events: Path

    def send(self, *sessions: TcpSession) -> int:
        """Every frame of the sessions, one session after the other; the frame count."""
        frames = [f for s in sessions for f in frames_of(s)]
        for data in frames:
            self.sender.send(data)
        return len(frames)

    def read_events(self) -> list[dict]:
        """The complete lines so far (the daemon may be half-way through writing one)."""
        if not self.events.exists():
            return []
        return [json.loads(line) for line in self.events.read_text().split("\n")[:-1]]

    def of_type(self, kind: str) -> list[dict]:
        return [e for e in self.read_events() if e["event_type"] == kind]


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Callable[..., Net]]:
    """net(*args) -> a daemon (not started) with those options, and a way to send to it."""
    made: list[Daemon] = []
    with netns.linked_namespaces() as (sensor_ns, iface, traffic_ns, peer):
        subprocess.run(["ip", "-n", sensor_ns, "link", "set", "lo", "up"], check=True)
        with netns.entered(traffic_ns):
            sender = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        sender.bind((peer, 0))

        def build(*args: str) -> Net:
            events = tmp_path / "events.json"
            daemon = Daemon(sensor_ns, iface, tmp_path, ["--events", str(events), *args])
            made.append(daemon)
            return Net(daemon, sender, events)

        try:
            yield build
        finally:
            for daemon in made:
                daemon.kill()
            sender.close()


def client_bytes(s: TcpSession) -> int:
    return sum(
        len(f) for f, seg in zip(frames_of(s), s.segments(), strict=True) if seg.side == "client"
    )


@needs_netns
def test_every_dialect_live_with_pool_bytes_before_the_flows_end(net, tmp_path: Path) -> None:
    n = net("--report", str(tmp_path / "report.json"))
    daemon = n.daemon.start()
    sessions = {
        miner(i): session(i, sc, f"198.51.100.{i + 10}", close=None) for i, sc in enumerate(MINING)
    }
    sent = n.send(*sessions.values())
    daemon.wait_for(lambda: len(n.of_type("mining")) == len(MINING), what="mining events")
    # The flows are still open: their bytes reach the counter through interim progress.
    egress = sum(client_bytes(s) for s in sessions.values())
    pool_egress = "minewatch_pool_bytes_total"
    daemon.wait_for(lambda: daemon.total(pool_egress, direction="egress") == egress, what="bytes")
    assert daemon.total("minewatch_packets_total") == sent
    assert daemon.total("minewatch_flows_active") == len(MINING)
    assert daemon.total("minewatch_mining_flows_total") == len(MINING)
    assert n.of_type("flow") == []
    assert daemon.stop() == 0
    flows = n.of_type("flow")
    assert {e["src_ip"] for e in flows} == set(sessions)
    assert all(e["flow"]["reason"] == "shutdown" for e in flows)
    for event in flows:  # the final events carry totals, not what progress added
        assert event["flow"]["bytes_toserver"] == client_bytes(sessions[event["src_ip"]])
        assert event["in_iface"] == daemon.iface
    mining = {e["src_ip"]: e["mining"] for e in n.of_type("mining")}
    assert {ip: m["dialect"] for ip, m in mining.items()} == {
        miner(i): sc.expect.dialect for i, sc in enumerate(MINING)
    }
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["totals"]["mining_flows"] == len(MINING)
    assert report["totals"]["pool_egress_bytes"] == egress
    assert "minewatch: INFO: capture stopped:" in daemon.log.read_text()


@needs_netns
def test_idle_flows_end_on_the_wall_clock_without_packets(net) -> None:
    bpf = ["--bpf", "tcp port 3333"] if libpcap.load() is not None else []
    n = net("--flow-idle-timeout", "1", *bpf)
    daemon = n.daemon.start()
    wanted = n.send(session(1, close=None))
    n.send(opaque(2, "198.51.100.201"))  # not port 3333: the filter drops it, if there is one
    daemon.wait_for(lambda: len(n.of_type("flow")) == 1, timeout=5, what="the idle flow's end")
    (flow,) = n.of_type("flow")
    assert flow["flow"]["reason"] == "idle_timeout"
    assert daemon.total("minewatch_flows_evicted_total", reason="idle_timeout") == 1 + (not bpf)
    assert daemon.total("minewatch_flows_active") == 0
    if bpf:
        assert daemon.total("minewatch_packets_total") == wanted
    assert daemon.stop() == 0
    assert len(n.of_type("flow")) == 1  # nothing left to end at shutdown


@needs_netns
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_missing_interface_fails_naming_it(net, workers: str) -> None:
    daemon = net("--workers", workers).daemon
    daemon.iface = "nosuch0"
    with pytest.raises(pytest.fail.Exception, match="daemon exited"):
        daemon.start()
    assert daemon.proc is not None and daemon.proc.returncode == 1
    assert "nosuch0: no such interface" in daemon.log.read_text()


def _reload(daemon: Daemon, success: int) -> None:
    before = daemon.log.read_text().count("reload")
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_for(lambda: daemon.log.read_text().count("reload") > before, what="reload")
    daemon.wait_for(
        lambda: daemon.total("minewatch_rules_last_reload_success") == success, what="metric"
    )


@needs_netns
def test_sighup_keeps_the_old_rules_when_the_new_ones_are_broken(net, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "extra.yaml").write_text(EXTRA_POOL.format(n=201))
    n = net("--rules", str(rules), "--flow-idle-timeout", "1")
    daemon = n.daemon.start()
    loaded = daemon.total("minewatch_rules_loaded")
    loaded_at = daemon.total("minewatch_rules_last_reload_timestamp_seconds")

    (rules / "extra.yaml").write_text("pools:\n- id: test.pool.x\n  networks: [nonsense]\n")
    _reload(daemon, success=0)
    assert f"{rules / 'extra.yaml'}:3:" in daemon.log.read_text()  # the log names file and line
    assert "ERROR: reload refused" in daemon.log.read_text()
    assert daemon.total("minewatch_rules_loaded") == loaded
    assert daemon.total("minewatch_rules_last_reload_timestamp_seconds") == loaded_at
    n.send(session(1), opaque(2, "198.51.100.201"))  # the old rules still detect
    daemon.wait_for(lambda: len(n.of_type("flow")) == 2, timeout=5, what="flow events")
    assert {e["mining"]["dialect"] for e in n.of_type("flow")} == {"stratum-v1", "endpoint"}

    (rules / "extra.yaml").write_text(EXTRA_POOL.format(n=201) + EXTRA_POOL.format(n=202)[7:])
    _reload(daemon, success=1)
    assert daemon.total("minewatch_rules_loaded") == loaded + 1
    assert daemon.total("minewatch_rules_last_reload_timestamp_seconds") > loaded_at
    n.send(opaque(3, "198.51.100.202"))  # an endpoint only the new rules know
    daemon.wait_for(lambda: len(n.of_type("flow")) == 3, timeout=5, what="the new rule's event")
    assert n.of_type("flow")[-1]["mining"]["rule_id"] == "test.pool.202"
    assert daemon.stop() == 0


@needs_netns
def test_kill_9_then_restart_restores_the_counters(net, tmp_path: Path) -> None:
    config, report = tmp_path / "minewatch.yml", tmp_path / "report.json"
    config.write_text("state_dir: state\ncheckpoint_interval: 300ms\nreport: report.json\n")
    n = net("--config", str(config))
    daemon = n.daemon.start()
    sent = n.send(*(session(i, close=None) for i in range(3)))
    daemon.wait_for(lambda: daemon.total("minewatch_packets_total") == sent, what="packets")
    daemon.wait_for(lambda: daemon.total("minewatch_pool_bytes_total") > 0, what="progress")
    before = {
        name: daemon.total(name)
        for name in ("minewatch_mining_flows_total", "minewatch_pool_bytes_total")
    }
    time.sleep(0.8)  # more than two checkpoint intervals
    daemon.kill()

    daemon.start()  # the same state directory
    for name, value in before.items():
        assert daemon.total(name) == value
    assert before["minewatch_mining_flows_total"] == 3
    assert daemon.total("minewatch_packets_total") == sent
    assert daemon.total("minewatch_suspect_ips", coin="btc") == 3  # seen within the window
    n.send(session(9, close=None))
    daemon.wait_for(lambda: daemon.total("minewatch_mining_flows_total") == 4, what="a new flow")
    assert daemon.stop() == 0
    suspects = json.loads(report.read_text())["suspects"]
    assert sorted(s["ip"] for s in suspects) == sorted(miner(i) for i in (0, 1, 2, 9))


def _uid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


@pytest.fixture
def shared_rules() -> Iterator[Path]:
    """A rule folder the unprivileged user can read (pytest's own temporary folders are
    root's alone): workers reload as that user."""
    folder = Path(tempfile.mkdtemp(prefix="minewatch-rules-"))
    try:
        folder.chmod(0o755)
        (folder / "extra.yaml").write_text(EXTRA_POOL.format(n=201))
        (folder / "extra.yaml").chmod(0o644)
        yield folder
    finally:
        shutil.rmtree(folder)


@needs_netns
def test_two_workers_split_the_flows_and_the_parent_adds_them_up(
    net, tmp_path: Path, shared_rules: Path
) -> None:
    state = tmp_path / "state"
    n = net(
        "--workers",
        "2",
        "--user",
        "nobody",
        "--state-dir",
        str(state),
        "--rules",
        str(shared_rules),
    )
    daemon = n.daemon.start()
    assert daemon.proc is not None
    children = Path(f"/proc/{daemon.proc.pid}/task/{daemon.proc.pid}/children").read_text().split()
    assert len(children) == 2
    assert {_uid(int(pid)) for pid in [daemon.proc.pid, *children]} == {65534}
    assert state.stat().st_uid == 65534  # handed to the user before privileges went
    sent = n.send(*(session(i, close=None) for i in range(16)))
    daemon.wait_for(lambda: daemon.total("minewatch_packets_total") == sent, what="packets")
    daemon.wait_for(lambda: daemon.total("minewatch_mining_flows_total") == 16, what="flows")
    assert daemon.total("minewatch_flows_active") == 16

    loaded = daemon.total("minewatch_rules_loaded")
    (shared_rules / "extra.yaml").write_text(
        EXTRA_POOL.format(n=201) + EXTRA_POOL.format(n=202)[7:]
    )
    _reload(daemon, success=1)
    assert daemon.total("minewatch_rules_loaded") == loaded + 1
    time.sleep(1.5)  # each worker reloads on its next tick (every second)
    sent += n.send(opaque(20, "198.51.100.202"))
    daemon.wait_for(lambda: daemon.total("minewatch_packets_total") == sent, what="packets")
    assert daemon.stop(signal.SIGINT) == 0

    mining, flows = n.of_type("mining"), n.of_type("flow")
    assert sorted(e["src_ip"] for e in mining) == sorted(miner(i) for i in (*range(16), 20))
    assert sorted(e["flow_id"] for e in flows) == sorted(e["flow_id"] for e in mining)
    assert {e["flow"]["reason"] for e in flows} == {"shutdown"}
    assert [e["mining"]["rule_id"] for e in flows if e["src_ip"] == miner(20)] == ["test.pool.202"]
    log = daemon.log.read_text()
    assert log.count("INFO: reloaded") == 1  # said once, by the parent
    counts = [int(log.split(f"worker {i} stopped: ")[1].split()[0]) for i in range(2)]
    assert sum(counts) == sent and min(counts) > 0  # both workers had flows
