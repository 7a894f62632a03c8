"""End to end: replayed miners with known hash rates get estimates that contain them.

Each synthetic miner submits shares as a Poisson process at true_hs / hashes_per_share
for a known time, so the truth is known and the estimate has sampling error only.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sensor.cli import main
from sensor.estimate.power import bundled_table
from tests.factory import T0, TcpSession, merge, write_pcap
from tests.sessions.base import BTC_WALLET, XMR_WALLET, filler, line, ok

BTC_IP, XMR_IP, POOL_IP = "10.60.0.1", "10.60.0.2", "203.0.113.90"
BTC_HS, BTC_DIFF = 400e12, 65536.0  # a few S19s: 400 TH/s, difficulty 65536 = 2^48 hashes
XMR_HS, XMR_DIFF = 20e3, 10000.0  # a CPU farm: 20 kH/s, target b88d0600 = difficulty 10000
SECONDS = 240.0  # of share submission, after a one-second login
RPC = {"jsonrpc": "2.0"}


def share_times(rng: random.Random, per_second: float) -> list[float | None]:
    """Capture times of a Poisson process; None (send right after the last packet) for
    the rare share that comes within 0.1 s of the previous one, whose answer and
    acknowledgement are still on the wire."""
    times: list[float | None] = []
    t, prev = rng.expovariate(per_second), -1.0
    while t < SECONDS:
        times.append(T0 + 1 + t if t - prev >= 0.1 else None)
        t, prev = t + rng.expovariate(per_second), t
    return times


def btc_session(rng: random.Random) -> TcpSession:
    login = f"{BTC_WALLET}.rig01"
    session = TcpSession((BTC_IP, 40001), (POOL_IP, 3333), start=T0)
    subscribed = [[["mining.notify", "1"]], "08000002", 4]
    session.send("client", line({"id": 1, "method": "mining.subscribe", "params": ["cgminer"]}))
    session.send("server", line({"id": 1, "result": subscribed, "error": None}))
    session.send("client", line({"id": 2, "method": "mining.authorize", "params": [login, "x"]}))
    session.send("server", line(ok(2)))
    difficulty = {"id": None, "method": "mining.set_difficulty", "params": [BTC_DIFF]}
    session.send("server", line(difficulty), at=T0 + 0.5)
    for n, t in enumerate(share_times(rng, BTC_HS / (BTC_DIFF * 2**32)), start=3):
        params = [login, "1f4e", f"{n:08x}", "6553f100", filler(f"btc/{n}", 4)]
        submit = {"id": n, "method": "mining.submit", "params": params}
        session.send("client", line(submit), at=t)
        session.send("server", line(ok(n)))
    # the pool's last word ends the observed time at the end of the simulated time
    session.send("server", line(difficulty), at=T0 + 1 + SECONDS)
    return session


def xmr_session(rng: random.Random) -> TcpSession:
    session = TcpSession((XMR_IP, 40002), (POOL_IP, 3334), start=T0)
    job = {"blob": filler("xmr/blob", 76), "job_id": "1", "target": "b88d0600", "algo": "rx/0"}
    login = {"login": XMR_WALLET, "pass": "x", "agent": "XMRig/6.21.0"}
    session.send("client", line({"id": 1, **RPC, "method": "login", "params": login}))
    answer = {"id": "s1", "job": job, "status": "OK"}
    session.send("server", line({"id": 1, **RPC, "error": None, "result": answer}), at=T0 + 0.5)
    for n, t in enumerate(share_times(rng, XMR_HS / XMR_DIFF), start=2):
        params = {"id": "s1", "job_id": "1", "nonce": f"{n:08x}", "result": filler(f"x{n}", 32)}
        submit = {"id": n, **RPC, "method": "submit", "params": params}
        session.send("client", line(submit), at=t)
        status = {"id": n, **RPC, "error": None, "result": {"status": "OK"}}
        session.send("server", line(status))
    session.send("server", line({**RPC, "method": "job", "params": job}), at=T0 + 1 + SECONDS)
    return session


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("estimate")
    rng = random.Random(2026)
    pcap = folder / "miners.pcap"
    write_pcap(pcap, merge(btc_session(rng).packets(), xmr_session(rng).packets()))
    out = {k: folder / f"{k}.out" for k in ("events", "report", "metrics")}
    args = ["replay", str(pcap), "--no-prefilter", "--events", str(out["events"])]
    args += ["--report", str(out["report"]), "--metrics-file", str(out["metrics"])]
    assert main(args) == 0
    events = [json.loads(x) for x in out["events"].read_text().splitlines()]
    metrics = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(out["metrics"].read_text())
        for s in family.samples
    }
    flows = {e["src_ip"]: e for e in events if e["event_type"] == "flow"}
    return {"flows": flows, "report": json.loads(out["report"].read_text()), "metrics": metrics}


@pytest.mark.parametrize(("ip", "true_hs"), [(BTC_IP, BTC_HS), (XMR_IP, XMR_HS)])
def test_flow_estimates_contain_the_true_rate(replayed, ip, true_hs):
    mining = replayed["flows"][ip]["mining"]
    assert mining["shares_accepted"] >= 100  # enough for the 10% promise of issue 6
    low, high = mining["hashrate_interval_hs"]
    assert low <= true_hs <= high
    assert mining["hashrate_hs"] == pytest.approx(true_hs, rel=0.10)
    assert mining["reported_hashrate_hs"] is None  # these miners report nothing themselves
    assert mining["estimate_note"] is None


@pytest.mark.parametrize(("ip", "algorithm"), [(BTC_IP, "sha256d"), (XMR_IP, "randomx")])
def test_flow_power_follows_the_table(replayed, ip, algorithm):
    mining = replayed["flows"][ip]["mining"]
    assert mining["algorithm"] == algorithm
    rule = bundled_table().rule(algorithm)
    assert rule is not None
    assert mining["power_w"] == pytest.approx(mining["hashrate_hs"] * rule.joules_per_hash)


def test_report_rolls_the_flows_up(replayed):
    report, flows = replayed["report"], replayed["flows"]
    suspects = {row["ip"]: row for row in report["suspects"]}
    for ip, flow in flows.items():
        assert suspects[ip]["hashrate_hs"] == pytest.approx(flow["mining"]["hashrate_hs"])
        assert suspects[ip]["power_w"] == pytest.approx(flow["mining"]["power_w"])
    coins = {row["coin"]: row for row in report["by_coin"]}
    assert coins["btc"]["hashrate_hs"] == pytest.approx(flows[BTC_IP]["mining"]["hashrate_hs"])
    assert coins["xmr"]["power_w"] == pytest.approx(flows[XMR_IP]["mining"]["power_w"])
    totals = report["totals"]
    power = sum(f["mining"]["power_w"] for f in flows.values())
    assert totals["power_w"] == pytest.approx(power)
    assert totals["energy_kwh_per_day"] == pytest.approx(power * 24 / 1000)
    assert totals["hashrate_hs"] == pytest.approx(
        sum(f["mining"]["hashrate_hs"] for f in flows.values())
    )


def test_metrics_show_the_estimates(replayed):
    metrics, flows = replayed["metrics"], replayed["flows"]
    btc, xmr = flows[BTC_IP]["mining"], flows[XMR_IP]["mining"]
    rate = "minewatch_estimated_hashrate_hashes_per_second"
    assert metrics[(rate, (("algorithm", "sha256d"), ("coin", "btc")))] == pytest.approx(
        btc["hashrate_hs"]
    )
    assert metrics[("minewatch_estimated_power_watts", (("coin", "xmr"),))] == pytest.approx(
        xmr["power_w"]
    )
    # energy: power integrated over the flow's capture time
    joules = metrics[("minewatch_estimated_energy_joules_total", (("coin", "btc"),))]
    assert flows[BTC_IP]["flow"]["age"] == 241  # a second of login, 240 of shares
    assert 241 * btc["power_w"] < joules < 242 * btc["power_w"]
