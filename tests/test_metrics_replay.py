"""`minewatch replay --metrics-file / --web.listen-address / --linger`: metrics of a known capture.

One synthetic capture, five miners and a web page: two BTC miners on a campus
(education), one XMR and one BTC miner at a bureau (government) and an ETH
miner nobody owns. The bureau's BTC miner stops mining 1000 s before the
others, so it falls out of the 15-minute suspect window (capture time). The
expected byte counts are summed from the factory's own frames, not from what
minewatch says.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from scapy.layers.inet import IP

from sensor.cli import main
from tests.factory import T0, TcpSession, frame_bytes, http_get, merge, write_pcap
from tests.sessions import SCRIPTS

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = """network,org,org_type,region
10.1.0.0/16,Nanjing Campus,education,Jiangsu/Nanjing
10.2.0.0/16,Suzhou Bureau,government,Jiangsu/Suzhou
"""
# miner: (script, pool, start, coin, org_type)
MINERS = {
    "10.1.0.2": ("stratum_v1_btc", "198.51.100.10", T0 + 1000, "btc", "education"),
    "10.1.0.3": ("stratum_v1_btc", "198.51.100.10", T0 + 1001, "btc", "education"),
    "10.2.0.2": ("cryptonote_xmrig", "198.51.100.17", T0 + 1002, "xmr", "government"),
    "192.0.2.50": ("ethproxy", "198.51.100.16", T0 + 1003, "eth", "unknown"),
    "10.2.0.9": ("stratum_v1_btc", "198.51.100.10", T0, "btc", "government"),  # long gone
}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("metrics")
    streams, expected, miner_egress = [], {}, {}
    for n, (miner, (script, pool, start, coin, org_type)) in enumerate(MINERS.items()):
        sc = SCRIPTS[script]
        session = TcpSession((miner, 41000 + n), (pool, sc.port), start=start)
        packets = session.script(sc.steps).packets()
        streams.append(packets)
        for pkt in packets:
            size, direction = len(frame_bytes(pkt)), "egress" if pkt[IP].src == miner else "ingress"
            key = (direction, coin, org_type)
            expected[key] = expected.get(key, 0) + size
            if direction == "egress":
                miner_egress[miner] = miner_egress.get(miner, 0) + size
    streams.append(http_get(("10.1.0.2", 50000), ("93.184.216.34", 80), "example.com", start=T0))
    everything = merge(*streams)
    count = write_pcap(folder / "miners.pcap", everything)
    (folder / "owners.csv").write_text(REGISTRY, encoding="utf-8")
    return {
        "pcap": folder / "miners.pcap",
        "owners": folder / "owners.csv",
        "bytes": expected,
        "miner_egress": miner_egress,
        "packets": count,
        "frame_bytes": sum(len(frame_bytes(p)) for p in everything),
    }


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def get(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def replay(capture: dict[str, Any], out: Path, *extra: str) -> tuple[Samples, dict[str, Any]]:
    metrics, report = out / "minewatch.prom", out / "report.json"
    args = ["replay", str(capture["pcap"]), "--ownership", str(capture["owners"])]
    args += ["--metrics-file", str(metrics), "--report", str(report), *extra]
    assert main(args) == 0
    return parse(metrics.read_text()), json.loads(report.read_text())


@pytest.fixture(scope="module", params=["two-pass", "python"])
def replayed(request, capture, tmp_path_factory) -> tuple[Samples, dict[str, Any]]:
    extra = ["--no-prefilter"] if request.param == "python" else []
    return replay(capture, tmp_path_factory.mktemp(request.param), *extra)


def test_pool_bytes_per_coin_and_org_type_are_exact(replayed, capture):
    samples, report = replayed
    for (direction, coin, org_type), count in capture["bytes"].items():
        labels = {"direction": direction, "coin": coin, "org_type": org_type}
        assert get(samples, "minewatch_pool_bytes_total", **labels) == count, labels
    pool = [k for k in samples if k[0] == "minewatch_pool_bytes_total"]
    assert len(pool) == len(capture["bytes"]) == 8  # nothing else, no web page
    egress = sum(v for (d, _, _), v in capture["bytes"].items() if d == "egress")
    assert report["totals"]["pool_egress_bytes"] == egress  # the report agrees


def test_suspects_are_the_miners_of_the_last_15_minutes(replayed):
    samples, _ = replayed
    expected = {
        ("btc", "education", "Jiangsu/Nanjing"): 2,
        ("xmr", "government", "Jiangsu/Suzhou"): 1,
        ("eth", "unknown", "unknown"): 1,
        ("btc", "government", "Jiangsu/Suzhou"): 0,  # seen 1000 s before the end
    }
    found = {
        tuple(dict(labels)[k] for k in ("coin", "org_type", "region")): value
        for (name, labels), value in samples.items()
        if name == "minewatch_suspect_ips"
    }
    assert found == expected


def test_flows_by_dialect_and_rule(replayed):
    samples, _ = replayed
    flows = {
        (dict(labels)["dialect"], dict(labels)["coin"]): value
        for (name, labels), value in samples.items()
        if name == "minewatch_mining_flows_total"
    }
    assert flows == {("stratum-v1", "btc"): 3, ("cryptonote", "xmr"): 1, ("ethproxy", "eth"): 1}
    detections = [v for (name, _), v in samples.items() if name == "minewatch_detections_total"]
    assert sum(detections) == 5


def test_health_totals_count_every_packet_of_the_file(replayed, capture):
    samples, _ = replayed
    assert get(samples, "minewatch_packets_total") == capture["packets"]
    assert get(samples, "minewatch_bytes_total") == capture["frame_bytes"]
    assert get(samples, "minewatch_capture_kernel_drops_total") == 0
    assert get(samples, "minewatch_flows_active") == 0  # the replay ended every flow
    assert get(samples, "minewatch_input_errors_total") == 0
    assert get(samples, "minewatch_rules_loaded") > 100
    loaded = get(samples, "minewatch_rules_last_reload_timestamp_seconds")
    assert loaded is not None and time.time() - 600 < loaded <= time.time()


def test_both_replay_modes_write_the_same_metrics(capture, tmp_path):
    runs = []
    for name, extra in (("two-pass", []), ("python", ["--no-prefilter"])):
        (tmp_path / name).mkdir()
        samples, _ = replay(capture, tmp_path / name, *extra)
        samples.pop(("minewatch_rules_last_reload_timestamp_seconds", frozenset()))
        runs.append(samples)
    assert runs[0] == runs[1]


def test_window_and_top_ips_options(capture, tmp_path):
    samples, _ = replay(
        capture, tmp_path, "--metrics.suspect-window", "20m", "--metrics.top-ips", "2"
    )
    labels = {"coin": "btc", "org_type": "government", "region": "Jiangsu/Suzhou"}
    assert get(samples, "minewatch_suspect_ips", **labels) == 1  # 1000 s ago is within 20 min
    top = {
        dict(labels)["ip"]: value
        for (name, labels), value in samples.items()
        if name == "minewatch_top_miner_pool_bytes_total"
    }
    egress = capture["miner_egress"]
    busiest = sorted(egress, key=lambda ip: (egress[ip], ip), reverse=True)[:2]
    assert top == {ip: egress[ip] for ip in busiest}
    assert get(samples, "minewatch_top_miner_omitted_ips") == len(MINERS) - 2


def test_the_metrics_file_replaces_an_old_one_atomically(capture, tmp_path):
    target = tmp_path / "minewatch.prom"
    target.write_text("stale\n")
    replay(capture, tmp_path)
    assert "minewatch_mining_flows_total" in target.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["minewatch.prom", "report.json"]


def test_a_bad_web_config_stops_the_run_naming_the_file(capture, tmp_path, capsys):
    config = tmp_path / "web.yml"
    config.write_text("basic_auth_users:\n  alice: plaintext\n")
    metrics = tmp_path / "m.prom"
    args = ["replay", str(capture["pcap"]), "--metrics-file", str(metrics)]
    code = main([*args, "--web.listen-address", "127.0.0.1:0", "--web.config.file", str(config)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"invalid web config: {config}:2: basic_auth_users: alice: not a bcrypt hash" in err
    assert not metrics.exists()  # nothing was replayed
    missing = tmp_path / "nowhere.yml"
    assert main([*args, "--web.config.file", str(missing)]) == 2
    assert f"{missing}: cannot read" in capsys.readouterr().err


def test_bad_metrics_options_are_usage_errors(capture, capsys):
    assert main(["replay", str(capture["pcap"]), "--linger", "5"]) == 2
    assert "--linger needs --web.listen-address" in capsys.readouterr().err
    for bad in (["--web.listen-address", "nowhere"], ["--metrics.top-ips", "-1"]):
        with pytest.raises(SystemExit) as caught:
            main(["replay", str(capture["pcap"]), *bad])
        assert caught.value.code == 2
    assert "bad listen address 'nowhere'" in capsys.readouterr().err


def test_linger_serves_then_exits(capture, capsys):
    started = time.monotonic()
    args = ["replay", str(capture["pcap"]), "--web.listen-address", "127.0.0.1:0"]
    assert main([*args, "--linger", "0.3"]) == 0
    assert time.monotonic() - started >= 0.3
    err = capsys.readouterr().err
    url = err.split("serving metrics at ", 1)[1].split()[0]
    host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
    with pytest.raises(OSError):  # stopped: nothing listens any more
        socket.create_connection((host, int(port)), timeout=1).close()


def _scrape(url: str) -> Samples:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        return parse(response.read().decode())


def test_live_scrapes_during_a_replay_and_its_linger(capture):
    """A real process: serves while replaying, keeps serving, and stops cleanly on Ctrl-C."""
    args = [sys.executable, "-m", "sensor", "replay", str(capture["pcap"])]
    args += ["--ownership", str(capture["owners"]), "--web.listen-address", "127.0.0.1:0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [*args, "--linger", "60"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        line = proc.stderr.readline() if proc.stderr else ""
        assert "serving metrics at http://127.0.0.1:" in line, line
        url = line.split("serving metrics at ", 1)[1].strip()
        samples = _scrape(url)  # at once: the server is up before the replay starts
        deadline = time.monotonic() + 20
        while not _finished(samples, capture) and time.monotonic() < deadline:
            time.sleep(0.05)
            samples = _scrape(url)
        assert _finished(samples, capture)  # the replay is over; the process lingers
        egress = {"direction": "egress", "coin": "xmr", "org_type": "government"}
        assert (
            get(samples, "minewatch_pool_bytes_total", **egress)
            == capture["bytes"][("egress", "xmr", "government")]
        )
        labels = {"coin": "btc", "org_type": "education", "region": "Jiangsu/Nanjing"}
        assert get(samples, "minewatch_suspect_ips", **labels) == 2
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _finished(samples: Samples, capture: dict[str, Any]) -> bool:
    """Every flow reported and ended, and the packet total final (from the count at the end)."""

    def total(family: str) -> float:
        return sum(v for (name, _), v in samples.items() if name == family)

    return (
        total("minewatch_mining_flows_total") == 5
        and total("minewatch_pool_bytes_total") == sum(capture["bytes"].values())
        and get(samples, "minewatch_packets_total") == capture["packets"]
    )
