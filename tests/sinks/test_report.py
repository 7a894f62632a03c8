"""The JSON report: the contract's fields, totals that add up to the events, attribution.

Built from a replay of factory captures (the same records the events carry), and
from records handed straight to the builder where attribution is needed.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from sensor.attribute.home_net import HomeNet
from sensor.attribute.resolver import OwnershipResolver
from sensor.cli import main
from sensor.model import (
    Attribution,
    Estimate,
    Finding,
    FlowProgress,
    FlowRecord,
    MiningRecord,
    Side,
)
from sensor.sinks.report import ReportBuilder
from tests.factory import T0, TcpSession, merge, write_pcap
from tests.sessions import SCRIPTS

TOP = {"window", "totals", "by_coin", "by_org_type", "by_region", "by_org", "suspects", "pools"}
WINDOW = {"start", "end", "seconds"}
TOTALS = {
    "suspect_ips",
    "mining_flows",
    "pool_egress_bytes",
    "pool_ingress_bytes",
    "pool_egress_mbps",
    "hashrate_hs",
    "power_w",
    "energy_kwh_per_day",
}
SUSPECT = {
    "ip",
    "org",
    "org_type",
    "region",
    "coins",
    "dialects",
    "pools",
    "wallets",
    "first_seen",
    "last_seen",
    "pool_egress_bytes",
    "hashrate_hs",
    "power_w",
}
POOL = {"endpoint", "host", "coin", "clients"}
# Beyond the contract: whether a suspect is ours, where a pool's address is routed, and
# the hash power and power pointed at each pool.
SUSPECT_EXTRA = {"home"}
POOL_EXTRA = {"asn", "country", "hashrate_hs", "power_w"}
MINER_A, MINER_B, POOL_IP = "10.40.0.1", "10.40.0.2", "203.0.113.77"


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Miner A: two BTC flows to one pool (a reconnect) and an XMR flow; miner B: ETH.
    Ten minutes of capture, so that the Mbps figure is not a rounding artefact."""
    folder = tmp_path_factory.mktemp("report")
    btc, xmr, eth = (SCRIPTS[n] for n in ("stratum_v1_btc", "cryptonote_xmrig", "ethproxy"))
    sessions = [
        TcpSession((MINER_A, 40001), (POOL_IP, 3333), start=T0).script(btc.steps),
        TcpSession((MINER_A, 40002), (POOL_IP, 3333), start=T0 + 300).script(btc.steps),
        TcpSession((MINER_A, 40003), ("203.0.113.78", 3333), start=T0 + 10).script(xmr.steps),
        TcpSession((MINER_B, 40004), ("203.0.113.79", 8008), start=T0 + 600).script(eth.steps),
    ]
    write_pcap(folder / "miners.pcap", merge(*(s.packets() for s in sessions)))
    events, report = folder / "events.json", folder / "report.json"
    args = ["replay", str(folder / "miners.pcap"), "--events", str(events), "--report", str(report)]
    assert main([*args, "--no-prefilter"]) == 0
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    return json.loads(report.read_text()), lines


def test_report_has_exactly_the_contracts_fields(replayed):
    report, _ = replayed
    assert set(report) == TOP
    assert set(report["window"]) == WINDOW
    assert set(report["totals"]) == TOTALS
    suspects, pools = report["suspects"], report["pools"]
    assert suspects and all(set(row) == SUSPECT | SUSPECT_EXTRA for row in suspects)
    assert pools and all(set(row) == POOL | POOL_EXTRA for row in pools)


def test_totals_add_up_to_the_events(replayed):
    report, events = replayed
    flows = [e for e in events if e["event_type"] == "flow"]
    mining = [e for e in events if e["event_type"] == "mining"]
    totals = report["totals"]
    assert totals["mining_flows"] == len(mining) == 4
    assert totals["suspect_ips"] == 2
    assert totals["pool_egress_bytes"] == sum(e["flow"]["bytes_toserver"] for e in flows)
    assert totals["pool_ingress_bytes"] == sum(e["flow"]["bytes_toclient"] for e in flows)
    window = report["window"]
    start, end = (datetime.fromisoformat(window[k]).timestamp() for k in ("start", "end"))
    assert start == pytest.approx(T0)
    assert window["seconds"] == pytest.approx(end - start, abs=1e-6)
    assert 600 < window["seconds"] < 601
    mbps = totals["pool_egress_bytes"] * 8 / 1e6 / window["seconds"]
    assert totals["pool_egress_mbps"] == pytest.approx(mbps, abs=1e-6)
    assert totals["pool_egress_mbps"] > 0
    # estimates: the sum over suspects (tests/estimate checks the figures themselves)
    rates = [s["hashrate_hs"] for s in report["suspects"]]
    assert totals["hashrate_hs"] == pytest.approx(sum(rates))
    assert totals["energy_kwh_per_day"] == pytest.approx(totals["power_w"] * 24 / 1000)


def test_suspects_and_pools(replayed):
    report, events = replayed
    a, b = report["suspects"]
    assert (a["ip"], b["ip"]) == (MINER_A, MINER_B)
    assert a["coins"] == ["btc", "xmr"] and b["coins"] == ["eth"]
    assert a["dialects"] == ["cryptonote", "stratum-v1"] and b["dialects"] == ["ethproxy"]
    assert a["pools"] == [f"{POOL_IP}:3333", "203.0.113.78:3333"]
    assert a["wallets"] == sorted(
        {SCRIPTS["stratum_v1_btc"].expect.wallet, SCRIPTS["cryptonote_xmrig"].expect.wallet}
    )
    egress_a = sum(
        e["flow"]["bytes_toserver"]
        for e in events
        if e["event_type"] == "flow" and e["src_ip"] == MINER_A
    )
    assert a["pool_egress_bytes"] == egress_a
    assert datetime.fromisoformat(a["first_seen"]).timestamp() == pytest.approx(T0)
    assert datetime.fromisoformat(a["first_seen"]) < datetime.fromisoformat(a["last_seen"])
    for row in (a, b):  # no --ownership: attribution unknown
        assert (row["org"], row["org_type"], row["region"]) == (None, None, None)
        assert row["home"] is True  # 10.40.0.0/16 is private: home by default
        assert row["hashrate_hs"] > 0 and row["power_w"] > 0  # btc/xmr, eth: all in the table
    pools = {row["endpoint"]: row for row in report["pools"]}
    btc_pool = pools[f"{POOL_IP}:3333"]
    assert btc_pool == {
        "endpoint": f"{POOL_IP}:3333",
        "host": None,
        "coin": "btc",
        "clients": 1,  # one miner, two flows
        "hashrate_hs": btc_pool["hashrate_hs"],
        "power_w": btc_pool["power_w"],
        "asn": None,  # no ownership sources
        "country": None,
    }
    # The BTC pool is miner A's only BTC pool: it gets all of A's BTC work.
    btc = {row["coin"]: row for row in report["by_coin"]}["btc"]
    assert btc_pool["hashrate_hs"] == pytest.approx(btc["hashrate_hs"]) and btc_pool["power_w"]
    assert sum(p["hashrate_hs"] for p in pools.values()) == pytest.approx(
        report["totals"]["hashrate_hs"]
    )
    assert pools["203.0.113.79:8008"]["coin"] == "eth"


def test_breakdowns_without_attribution(replayed):
    report, _ = replayed
    assert report["by_org"] == []  # nobody is attributed
    rate, power = report["totals"]["hashrate_hs"], report["totals"]["power_w"]
    assert report["by_org_type"] == [
        {
            "org_type": "unknown",
            "suspect_ips": 2,
            "share": 1.0,
            "hashrate_hs": rate,
            "power_w": power,
        }
    ]
    assert report["by_region"] == [
        {"region": None, "suspect_ips": 2, "hashrate_hs": rate, "power_w": power}
    ]
    coins = {row["coin"]: row for row in report["by_coin"]}
    assert set(coins) == {"btc", "xmr", "eth"}
    assert coins["eth"]["suspect_ips"] == 1 and coins["btc"]["suspect_ips"] == 1
    assert coins["eth"]["hashrate_hs"] > 0 and coins["eth"]["power_w"] > 0


def _records(ip: str, port: int, coin: str, org: Attribution) -> tuple[MiningRecord, FlowRecord]:
    finding = Finding("stratum-v1", "confirmed", Side.ORIG, "minewatch.dialect.stratum-v1")
    finding.coin = coin
    mining = MiningRecord(
        1,
        T0,
        "TCP",
        ip,
        port,
        "203.0.113.1",
        3333,
        "pool.example:3333",
        "pool.example",
        finding,
        org,
    )
    return mining, FlowRecord(mining, 10, 10, 4000, 2000, T0, T0 + 100, "closed", "closed")


def test_breakdowns_follow_the_attribution():
    uni = Attribution("Example University", "education", "Nanjing", 64500, "registry")
    gov = Attribution("City Bureau", "government", "Suzhou", 64501, "registry")
    builder = ReportBuilder()
    for n, (org, coin) in enumerate([(uni, "eth"), (uni, "btc"), (gov, "eth")]):
        mining, flow = _records(f"10.50.0.{n + 1}", 40000 + n, coin, org)
        flow.estimate = Estimate(hashrate_hs=(n + 1) * 1e12, power_w=(n + 1) * 100.0, seconds=100)
        builder.mining(mining)
        builder.flow_end(flow)
    report = builder.build(T0, T0 + 100)
    approx = pytest.approx
    assert report["by_org_type"] == [
        {
            "org_type": "education",
            "suspect_ips": 2,
            "share": approx(2 / 3, abs=1e-6),
            "hashrate_hs": approx(3e12),
            "power_w": approx(300.0),
        },
        {
            "org_type": "government",
            "suspect_ips": 1,
            "share": approx(1 / 3, abs=1e-6),
            "hashrate_hs": approx(3e12),
            "power_w": approx(300.0),
        },
    ]
    assert report["by_region"] == [
        {"region": "Nanjing", "suspect_ips": 2, "hashrate_hs": approx(3e12), "power_w": 300.0},
        {"region": "Suzhou", "suspect_ips": 1, "hashrate_hs": approx(3e12), "power_w": 300.0},
    ]
    first = report["by_org"][0]
    assert (first["org"], first["org_type"], first["suspect_ips"]) == (
        "Example University",
        "education",
        2,
    )
    assert first["ips"] == ["10.50.0.1", "10.50.0.2"] and first["coins"] == ["btc", "eth"]
    # The regulator's project list: scale, hash power, power and energy per organisation.
    assert (first["hashrate_hs"], first["power_w"]) == (approx(3e12), approx(300.0))
    assert first["energy_kwh_per_day"] == approx(300.0 * 24 / 1000)
    assert report["totals"]["pool_egress_mbps"] == approx(3 * 4000 * 8 / 1e6 / 100)
    assert report["pools"] == [
        {
            "endpoint": "203.0.113.1:3333",
            "host": "pool.example",
            "coin": None,  # two coins seen at one pool: no single coin
            "clients": 3,
            "hashrate_hs": approx(6e12),
            "power_w": approx(600.0),
            "asn": None,
            "country": None,
        }
    ]


def test_open_flows_count_with_their_estimate_to_date_until_they_end():
    builder = ReportBuilder()
    mining, flow = _records("10.50.0.9", 40009, "btc", Attribution())
    builder.mining(mining)
    assert builder.build(T0, T0 + 60)["totals"]["hashrate_hs"] is None  # nothing known yet
    for at, rate in ((T0 + 30, 1e12), (T0 + 60, 2e12)):
        so_far = Estimate(hashrate_hs=rate, power_w=50.0, seconds=at - T0)
        progress = FlowProgress(1, at, mining.miner_ip, "btc", None, 10, 10, "sha256d", so_far)
        progress.pool_endpoint = "203.0.113.1:3333"
        builder.progress(progress)
    report = builder.build(T0, T0 + 60)
    assert report["totals"]["hashrate_hs"] == pytest.approx(2e12)  # the latest one only
    assert report["pools"][0]["hashrate_hs"] == pytest.approx(2e12)
    assert report["suspects"][0]["power_w"] == pytest.approx(50.0)
    assert builder.suspects[mining.miner_ip].rates == {}  # building changed nothing
    flow.estimate = Estimate(hashrate_hs=1.5e12, power_w=40.0, seconds=100)
    builder.flow_end(flow)
    late = FlowProgress(1, T0 + 101, mining.miner_ip, "btc", None, 0, 0, "sha256d", so_far)
    builder.progress(late)  # after its end: ignored
    report = builder.build(T0, T0 + 100)
    assert report["totals"]["hashrate_hs"] == pytest.approx(1.5e12)
    assert report["totals"]["power_w"] == pytest.approx(40.0)


def test_empty_report_keeps_its_shape(tmp_path: Path):
    builder = ReportBuilder()
    builder.write(tmp_path / "r.json", None, None)
    report = json.loads((tmp_path / "r.json").read_text())
    assert set(report) == TOP and set(report["totals"]) == TOTALS
    assert report["window"] == {"start": None, "end": None, "seconds": 0.0}
    assert report["totals"]["mining_flows"] == 0 and report["totals"]["pool_egress_mbps"] == 0.0
    assert report["suspects"] == [] and report["pools"] == [] and report["by_org_type"] == []


def test_pools_get_asn_and_country_and_suspects_home_from_ownership(tmp_path: Path):
    registry = tmp_path / "owners.csv"
    registry.write_text(
        "network,org,org_type,region,asn,country\n"
        "203.0.113.0/28,Pool Hosting,hosting,,64510,NL\n"
        "198.51.100.0/24,Example University,education,Nanjing,,CN\n",
        encoding="utf-8",
    )
    resolver = OwnershipResolver([registry])
    uni = resolver.lookup("198.51.100.7")
    builder = ReportBuilder(resolver, HomeNet(["192.0.2.0/24"], registry=resolver))
    for n, ip in enumerate(["198.51.100.7", "192.0.2.1", "8.8.8.8"]):
        mining, flow = _records(ip, 40000 + n, "btc", uni if n == 0 else Attribution())
        builder.mining(mining)
        builder.flow_end(flow)
    report = builder.build(T0, T0 + 100)
    assert {row["ip"]: row["home"] for row in report["suspects"]} == {
        "198.51.100.7": True,  # a registry prefix
        "192.0.2.1": True,  # --home-net
        "8.8.8.8": False,
    }
    (pool,) = report["pools"]
    assert (pool["endpoint"], pool["asn"], pool["country"]) == ("203.0.113.1:3333", 64510, "NL")
    assert report["by_org"][0]["org"] == "Example University"
    assert report["by_region"][0] == {
        "region": None,
        "suspect_ips": 2,
        "hashrate_hs": None,  # no flow had an estimate
        "power_w": None,
    }
