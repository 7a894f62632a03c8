"""A real Prometheus scrapes a sensor replaying a capture and evaluates deploy/prometheus rules.

Debian's `prometheus` package provides the server (CI installs it). The sensor
replays a synthetic capture with known content and lingers, serving its final
metrics; Prometheus scrapes it every second, evaluates the recording and alert
rules every second, and the test reads the results through the HTTP API. Both
processes listen on 127.0.0.1 only and are stopped whatever happens.

It takes about 8 s, most of it Prometheus's own: service discovery hands new
targets to the scrape loop at most every 5 s, so the first scrape comes late.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.promql import RULES_FILE
from tests.factory import T0, TcpSession, frame_bytes, http_get, l3, merge, write_pcap
from tests.sessions import SCRIPTS

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="the prometheus server binary is not installed (Debian package `prometheus`)",
)
REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "deploy" / "grafana" / "minewatch.json"
WAIT_SECONDS = 30.0

REGISTRY = """network,org,org_type,region
10.1.0.0/16,Nanjing Campus,education,Jiangsu/Nanjing
10.2.0.0/16,Suzhou Bureau,government,Jiangsu/Suzhou
"""
# miner -> (script, pool); 192.0.2.50 is in no registry, so its labels are "unknown".
MINERS = {
    "10.1.0.2": ("stratum_v1_btc", "198.51.100.10"),
    "10.1.0.3": ("cryptonote_xmrig", "198.51.100.11"),
    "10.2.0.5": ("stratum_v1_btc", "198.51.100.10"),
    "192.0.2.50": ("cryptonote_xmrig", "198.51.100.12"),
}
ORG_TYPE = {"10.1.0.2": "education", "10.1.0.3": "education", "10.2.0.5": "government"}
SUSPECTS_BY_ORG_TYPE = {"education": 2, "government": 1, "unknown": 1}
EGRESS_KEYS = {
    ("btc", "education"),
    ("xmr", "education"),
    ("btc", "government"),
    ("xmr", "unknown"),
}
Key = tuple[str, str, str]  # direction, coin, org_type


def _miner_packets() -> tuple[list[Any], Counter[Key]]:
    """The miners' sessions and the frame bytes each direction carries, per coin and org type."""
    sessions, expected = [], Counter[Key]()
    for n, (miner, (name, pool)) in enumerate(MINERS.items()):
        sc = SCRIPTS[name]
        packets = (
            TcpSession((miner, 40000 + n), (pool, sc.port), start=T0 + n).script(sc.steps).packets()
        )
        org_type = ORG_TYPE.get(miner, "unknown")
        for pkt in packets:
            direction = "egress" if l3(pkt).src == miner else "ingress"
            expected[(direction, str(sc.expect.coin), org_type)] += len(frame_bytes(pkt))
        sessions.append(packets)
    return sessions, expected


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Counter[Key]]:
    folder = tmp_path_factory.mktemp("prometheus-capture")
    sessions, expected = _miner_packets()
    # Web browsing from a campus host: traffic, but no pool bytes.
    web = http_get(("10.1.0.9", 51000), ("203.0.113.80", 80), "www.example.org", start=T0 + 1)
    write_pcap(folder / "miners.pcap", merge(*sessions, web))
    (folder / "owners.csv").write_text(REGISTRY, encoding="utf-8")
    return folder / "miners.pcap", folder / "owners.csv", expected


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _prometheus_config(folder: Path, sensor: str) -> Path:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES_FILE)],
        "scrape_configs": [{"job_name": "minewatch", "static_configs": [{"targets": [sensor]}]}],
    }
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


class Stack:
    """The running sensor and Prometheus, and a way to ask Prometheus."""

    def __init__(self, url: str, logs: list[Path]) -> None:
        self.url, self.logs = url, logs

    def query(self, expr: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{query}", timeout=5) as resp:
            body = json.load(resp)
        assert body["status"] == "success", (expr, body)
        return list(body["data"]["result"])

    def by(self, expr: str, *labels: str) -> dict[tuple[str, ...], float]:
        """An instant vector as {label values: value}."""
        return {
            tuple(row["metric"].get(label, "") for label in labels): float(row["value"][1])
            for row in self.query(expr)
        }

    def wait_for(self, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            try:
                if ready():
                    return
            except OSError:
                pass  # Prometheus not listening yet
            time.sleep(0.25)
        tails = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in self.logs)
        pytest.fail(f"gave up after {WAIT_SECONDS:.0f} s waiting for {what}\n{tails}")


@pytest.fixture(scope="module")
def stack(capture, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    assert PROMETHEUS is not None
    folder = tmp_path_factory.mktemp("prometheus")
    pcap, owners, _ = capture
    sensor_address = f"127.0.0.1:{_free_port()}"
    prometheus_address = f"127.0.0.1:{_free_port()}"
    sensor_args = [sys.executable, "-m", "sensor", "replay", str(pcap), "--ownership", str(owners)]
    sensor_args += ["--web.listen-address", sensor_address, "--linger", "60"]
    prometheus_args = [PROMETHEUS, "--config.file", str(_prometheus_config(folder, sensor_address))]
    prometheus_args += ["--storage.tsdb.path", str(folder / "data")]
    prometheus_args += ["--web.listen-address", prometheus_address]
    logs = [folder / "sensor.log", folder / "prometheus.log"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(_start(sensor_args, logs[0]))
        procs.append(_start(prometheus_args, logs[1]))
        yield Stack(f"http://{prometheus_address}", logs)
    finally:
        for proc in procs:
            _stop(proc)


@pytest.fixture(scope="module")
def scraped(stack: Stack) -> Stack:
    """The stack once Prometheus has scraped the finished replay and evaluated the rules on it.

    Pool bytes are counted when flows end, which in a replay is its end; the
    recording rule needs two scrapes of them, the public-organisation alert one
    evaluation after the first.
    """
    stack.wait_for(
        lambda: (
            len(stack.query("minewatch:pool_egress_mbps:rate5m")) == len(EGRESS_KEYS)
            and bool(stack.query('ALERTS{alertname="MinewatchMinerAtPublicOrganisation"}'))
        ),
        "the recording rule and the public-organisation alert",
    )
    return stack


def test_prometheus_scrapes_the_sensor(scraped: Stack):
    assert scraped.by('up{job="minewatch"}') == {(): 1.0}


def test_suspect_ips_count_every_miner_once(scraped: Stack):
    assert scraped.by("sum(minewatch_suspect_ips)") == {(): float(len(MINERS))}
    by_type = scraped.by("job_org_type:minewatch_suspect_ips:sum", "org_type")
    assert by_type == {(t,): float(n) for t, n in SUSPECTS_BY_ORG_TYPE.items()}


def test_pool_bytes_are_the_miners_frames(scraped: Stack, capture):
    _, _, expected = capture
    got = scraped.by("minewatch_pool_bytes_total", "direction", "coin", "org_type")
    assert got == {key: float(count) for key, count in expected.items()}


def test_recording_rule_drops_instance_and_keeps_coin_and_org_type(scraped: Stack, capture):
    _, _, expected = capture
    assert {(coin, org_type) for d, coin, org_type in expected if d == "egress"} == EGRESS_KEYS
    rows = scraped.query("minewatch:pool_egress_mbps:rate5m")
    assert {(row["metric"]["coin"], row["metric"]["org_type"]) for row in rows} == EGRESS_KEYS
    for row in rows:
        assert "instance" not in row["metric"] and row["metric"]["job"] == "minewatch"
        # The counters stopped when the replay ended: the 5m rate is small, never negative.
        assert float(row["value"][1]) >= 0


def test_alerts_fire_for_public_organisations_and_new_miners(scraped: Stack):
    public = scraped.by(
        'ALERTS{alertname="MinewatchMinerAtPublicOrganisation",alertstate="firing"}',
        "org_type",
        "coin",
        "region",
    )
    assert set(public) == {
        ("education", "btc", "Jiangsu/Nanjing"),
        ("education", "xmr", "Jiangsu/Nanjing"),
        ("government", "btc", "Jiangsu/Suzhou"),
    }
    # A fresh Prometheus has no history: every flow counter is new.
    scraped.wait_for(
        lambda: bool(scraped.query('ALERTS{alertname="MinewatchNewMinerDetected"}')),
        "the new-miner alert",
    )
    new = scraped.by('ALERTS{alertname="MinewatchNewMinerDetected"}', "dialect", "coin")
    assert set(new) == {("stratum-v1", "btc"), ("cryptonote", "xmr")}


def test_every_dashboard_query_evaluates(scraped: Stack):
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    substitutions = {"$__rate_interval": "1m", "$job": "minewatch", "$instance": ".*"}
    for panel in panels:
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in substitutions.items():
                expr = expr.replace(variable, value)
            scraped.query(expr)  # asserts status "success": it parses and evaluates
    egress = scraped.query('sum(job:minewatch_pool_egress_mbps:rate5m{job=~"minewatch"})')
    assert len(egress) == 1
