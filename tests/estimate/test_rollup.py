"""How flow estimates roll up: per miner over the span its flows cover, and per window."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sensor.model import (
    Attribution,
    Confidence,
    Estimate,
    Finding,
    FlowRecord,
    MiningRecord,
    Side,
)
from sensor.sinks.events import estimate_fields, estimate_from_fields
from sensor.sinks.metrics_collector import Collector
from sensor.sinks.metrics_state import MetricsState
from sensor.sinks.report import ReportBuilder

T0 = 1_700_000_000.0
RATE = "minewatch_estimated_hashrate_hashes_per_second"
BTC_RATE = (RATE, (("algorithm", "sha256d"), ("coin", "btc")))


def flow(
    flow_id: int,
    ip: str,
    start: float,
    end: float,
    hs: float | None,
    watts: float | None,
    coin: str = "btc",
    algorithm: str = "sha256d",
) -> FlowRecord:
    f = Finding("stratum-v1", Confidence.CONFIRMED, Side.ORIG, "t", coin=coin, algorithm=algorithm)
    m = MiningRecord(
        flow_id,
        start,
        "TCP",
        ip,
        40000 + flow_id,
        "203.0.113.1",
        3333,
        "p:3333",
        None,
        f,
        Attribution(),
    )
    e = Estimate(hs, hs and hs * 0.9, hs and hs * 1.1, watts, end - start)
    return FlowRecord(m, 1, 1, 100, 100, start, end, "closed", "closed", estimate=e)


def report(*flows: FlowRecord) -> dict:
    builder = ReportBuilder()
    for rec in flows:
        builder.mining(rec.mining)
        builder.flow_end(rec)
    return builder.build(T0, T0 + 600)


def test_a_reconnecting_miner_is_not_counted_twice():
    # the same rig, 100 TH/s, over two flows one after the other
    r = report(
        flow(1, "10.0.0.1", T0, T0 + 300, 100e12, 3000.0),
        flow(2, "10.0.0.1", T0 + 300, T0 + 600, 100e12, 3000.0),
    )
    (suspect,) = r["suspects"]
    assert suspect["hashrate_hs"] == pytest.approx(100e12)
    assert suspect["power_w"] == pytest.approx(3000.0)
    assert r["totals"]["energy_kwh_per_day"] == pytest.approx(72.0)


def test_concurrent_flows_of_a_miner_add_up():
    # two rigs behind one NAT address, mining at the same time
    r = report(
        flow(1, "10.0.0.1", T0, T0 + 600, 100e12, 3000.0),
        flow(2, "10.0.0.1", T0, T0 + 600, 50e12, 1500.0),
    )
    assert r["suspects"][0]["hashrate_hs"] == pytest.approx(150e12)
    assert r["totals"]["power_w"] == pytest.approx(4500.0)


def test_totals_and_coins_sum_what_is_known():
    r = report(
        flow(1, "10.0.0.1", T0, T0 + 600, 100e12, 3000.0),
        flow(2, "10.0.0.2", T0, T0 + 600, 20e3, None, "xmr", "unknown-algo"),
        flow(3, "10.0.0.3", T0, T0 + 600, None, None, "grin", "cuckatoo"),
    )
    coins = {row["coin"]: row for row in r["by_coin"]}
    assert (coins["btc"]["hashrate_hs"], coins["btc"]["power_w"]) == (100e12, 3000.0)
    assert (coins["xmr"]["hashrate_hs"], coins["xmr"]["power_w"]) == (20e3, None)
    assert (coins["grin"]["hashrate_hs"], coins["grin"]["power_w"]) == (None, None)
    assert r["totals"]["hashrate_hs"] == pytest.approx(100e12 + 20e3)
    assert r["totals"]["power_w"] == pytest.approx(3000.0)  # xmr's power unknown: not guessed


def test_event_fields_say_why_a_figure_is_missing():
    assert estimate_fields(Estimate(10.0, 8.0, 12.0, 5.0, 60.0)) == {
        "hashrate_hs": 10.0,
        "hashrate_interval_hs": [8.0, 12.0],
        "power_w": 5.0,
        "estimate_note": None,
    }
    missing = estimate_fields(Estimate(note="no shares seen"))
    assert missing["hashrate_hs"] is None and missing["hashrate_interval_hs"] is None
    assert missing["estimate_note"] == "no shares seen"
    assert estimate_fields(None)["estimate_note"] == "not estimated"


def test_event_fields_give_the_estimate_back():
    # `minewatch report EVENTS` rebuilds flow records from events: the same rollup follows
    for e in (Estimate(10.0, 8.0, 12.0, 5.0, 60.0), Estimate(seconds=60.0, note="no shares seen")):
        assert estimate_from_fields(estimate_fields(e), 60.0) == e
    assert estimate_from_fields({"shares": 3}, 60.0) is None  # an event from before estimates


def scrape(state: MetricsState) -> dict[tuple[str, tuple], float]:
    registry = CollectorRegistry()
    registry.register(Collector(state))
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if "estimated" in s.name
    }


def test_gauges_hold_the_window_and_energy_keeps_counting():
    state = MetricsState(window=900.0)
    old = flow(1, "10.0.0.1", T0, T0 + 100, 100e12, 3000.0)
    state.mining(old.mining)
    state.flow_end(old)
    rate = BTC_RATE
    power = ("minewatch_estimated_power_watts", (("coin", "btc"),))
    energy = ("minewatch_estimated_energy_joules_total", (("coin", "btc"),))
    assert scrape(state)[rate] == 100e12
    assert scrape(state)[energy] == pytest.approx(3000.0 * 100)
    later = flow(2, "10.0.0.2", T0 + 1000, T0 + 1200, 50e12, 1500.0)
    state.mining(later.mining)
    state.flow_end(later)
    metrics = scrape(state)
    # the first flow ended more than the window ago: out of the gauges, not the counter
    assert (metrics[rate], metrics[power]) == (50e12, 1500.0)
    assert metrics[energy] == pytest.approx(3000.0 * 100 + 1500.0 * 200)


def test_estimate_series_stay_at_zero_once_seen():
    state = MetricsState(window=60.0)
    for rec in (
        flow(1, "10.0.0.1", T0, T0 + 10, 1e12, 30.0),
        flow(2, "10.0.0.2", T0 + 500, T0 + 510, None, None, "xmr", "randomx"),
    ):
        state.mining(rec.mining)
        state.flow_end(rec)
    metrics = scrape(state)
    assert metrics[BTC_RATE] == 0.0
    assert metrics[("minewatch_estimated_power_watts", (("coin", "btc"),))] == 0.0
    assert not any(dict(labels).get("coin") == "xmr" for _, labels in metrics)  # no estimate
