"""Estimates of open flows in the metrics state: gauges that follow long flows, and energy.

A live daemon hands the metrics state each open mining flow's estimate to date
with its progress records; these tests drive `MetricsState` directly with
mining, progress and flow-end records and read its view, as a scrape would.
"""

from __future__ import annotations

from sensor.model import (
    Attribution,
    Estimate,
    Finding,
    FlowProgress,
    FlowRecord,
    MiningRecord,
    Side,
)
from sensor.sinks.metrics_state import Estimates, FlowEstimate, MetricsState

T = 1_700_000_000.0
SHA = ("btc", "sha256d")


def mining(flow_id: int, miner: str = "10.0.0.1", ts: float = T) -> MiningRecord:
    finding = Finding(
        "stratum-v1", "confirmed", Side.ORIG, "rule.sv1", coin="btc", algorithm="sha256d"
    )
    return MiningRecord(
        flow_id, ts, "TCP", miner, 40000, "198.51.100.1", 3333, "198.51.100.1:3333", None,
        finding, Attribution(type="education"),
    )  # fmt: skip


def rate(hs: float, watts: float | None, seconds: float) -> Estimate:
    return Estimate(hashrate_hs=hs, power_w=watts, seconds=seconds)


def progress(rec: MiningRecord, at: float, estimate: Estimate | None) -> FlowProgress:
    return FlowProgress(
        rec.flow_id, at, rec.miner_ip, "btc", "education", 10, 10, "sha256d", estimate
    )


def ended(rec: MiningRecord, end: float, estimate: Estimate | None) -> FlowRecord:
    return FlowRecord(rec, 5, 5, 100, 100, rec.ts, end, "closed", "closed", estimate)


def gauges(state: MetricsState) -> tuple[dict, dict, dict]:
    view = state.view()
    return view.hashrate, view.power, view.energy


def test_an_open_flow_counts_with_its_latest_estimate_then_its_final_one() -> None:
    now = [T + 60]
    state = MetricsState(window=900, clock=lambda: now[0])
    rec = mining(1)
    state.mining(rec)
    assert gauges(state) == ({}, {}, {})  # confirmed, but no estimate yet
    state.progress(progress(rec, T + 60, rate(1e12, 30.0, 60)))
    assert gauges(state) == ({SHA: 1e12}, {"btc": 30.0}, {"btc": 1800.0})
    now[0] = T + 120
    state.progress(progress(rec, T + 120, rate(2e12, 60.0, 120)))  # replaces, not adds
    assert gauges(state) == ({SHA: 2e12}, {"btc": 60.0}, {"btc": 7200.0})
    state.progress(progress(rec, T + 122, None))  # no new estimate: the last one stays
    assert gauges(state)[0] == {SHA: 2e12}
    state.flow_end(ended(rec, T + 180, rate(1.5e12, 45.0, 180)))
    assert gauges(state) == ({SHA: 1.5e12}, {"btc": 45.0}, {"btc": 8100.0})


def test_an_open_flow_stays_in_the_gauges_past_the_window_while_it_is_open() -> None:
    now = [T + 10]
    state = MetricsState(window=900, clock=lambda: now[0])
    quiet, gone = mining(1), mining(2, "10.0.0.2")
    for rec in (quiet, gone):
        state.mining(rec)
        state.progress(progress(rec, T + 10, rate(1e12, None, 10)))
    state.flow_end(ended(gone, T + 20, rate(1e12, None, 20)))
    now[0] = T + 5000  # long after both were last estimated
    assert gauges(state)[0] == {SHA: 1e12}  # the open one only
    assert [e.hashrate_hs for e in state.estimates().flows] == [1e12]
    state.flow_end(ended(quiet, T + 5000, rate(3e11, None, 5000)))
    assert gauges(state)[0] == {SHA: 3e11}
    now[0] = T + 5901
    assert gauges(state)[0] == {SHA: 0.0}  # the label set stays, at 0
    assert state.estimates() == Estimates([], {SHA})


def test_energy_adds_what_each_flow_did_not_add_yet_and_never_goes_down() -> None:
    state = MetricsState()
    rising, falling = mining(1), mining(2, "10.0.0.2")
    for rec in (rising, falling):
        state.mining(rec)
    state.progress(progress(rising, T + 10, rate(1e12, 100.0, 10)))  # 1000 J so far
    state.progress(progress(falling, T + 10, rate(1e12, 100.0, 10)))  # 1000 J so far
    assert state.view().energy == {"btc": 2000.0}
    state.progress(progress(falling, T + 20, rate(1e11, 10.0, 20)))  # 200 J to date: below
    assert state.view().energy == {"btc": 2000.0}
    state.progress(progress(rising, T + 20, rate(1e12, 100.0, 20)))  # 2000 J: 1000 more
    assert state.view().energy == {"btc": 3000.0}
    state.flow_end(ended(falling, T + 40, rate(1e11, 10.0, 40)))  # 400 J: still below 1000
    state.flow_end(ended(rising, T + 30, rate(1e12, 100.0, 30)))  # 3000 J: 1000 more
    # The falling flow is over-counted by 600 J (1000 added, 400 in the end), never under.
    assert state.view().energy == {"btc": 4000.0}
    assert state.totals().energy == {"btc": 4000.0}


def test_flows_without_progress_add_power_times_seconds_as_in_replay() -> None:
    state = MetricsState()
    figures = [(1e12, 33.3, 61.7), (2.5e12, 0.1, 17.0), (7e11, None, 99.0), (4e12, 12.5, 0.0)]
    expected = 0.0
    for n, (hs, watts, seconds) in enumerate(figures, start=1):
        rec = mining(n, f"10.0.0.{n}")
        state.mining(rec)
        state.flow_end(ended(rec, T + seconds, rate(hs, watts, seconds)))
        expected += watts * seconds if watts is not None else 0.0
    view = state.view()
    assert view.energy == {"btc": expected}  # the same float, summed in the same order
    assert view.hashrate == {SHA: 1e12 + 2.5e12 + 7e11 + 4e12}


def test_a_late_or_unannounced_progress_record_brings_back_no_flow() -> None:
    state = MetricsState()
    rec = mining(1)
    state.mining(rec)
    state.flow_end(ended(rec, T + 30, None))  # ended with no estimate at all
    state.progress(progress(rec, T + 31, rate(1e12, 10.0, 31)))  # after its end
    state.progress(progress(mining(7), T + 31, rate(1e12, 10.0, 31)))  # never reported
    assert gauges(state) == ({}, {}, {})
    assert state.view().pool_bytes[("egress", "btc", "education")] == 100 + 20  # bytes count


def test_an_ending_flow_without_an_estimate_leaves_the_gauges() -> None:
    state = MetricsState()
    rec = mining(1)
    state.mining(rec)
    state.progress(progress(rec, T + 10, rate(1e12, 10.0, 10)))
    state.flow_end(ended(rec, T + 20, Estimate(seconds=20, note="no shares seen")))
    assert gauges(state) == ({SHA: 0.0}, {"btc": 0.0}, {"btc": 100.0})


def test_restored_estimates_count_beside_the_new_process_flows_of_the_same_ids() -> None:
    now = [T + 100]
    before = MetricsState(window=900, clock=lambda: now[0])
    for n in (1, 2):
        rec = mining(n, f"10.0.0.{n}")
        before.mining(rec)
        before.progress(progress(rec, T + 100, rate(n * 1e12, n * 10.0, 100)))
    saved = before.estimates()
    after = MetricsState(window=900, clock=lambda: now[0])
    after.restore_estimates(saved)
    after.restore(before.totals())
    assert gauges(after) == gauges(before)
    again = mining(1, "10.0.0.9")  # flow ids count from 1 again in the new process
    after.mining(again)
    after.progress(progress(again, T + 110, rate(5e12, 50.0, 10)))
    assert gauges(after)[0] == {SHA: 1e12 + 2e12 + 5e12}
    assert gauges(after)[2] == {"btc": 1000.0 + 2000.0 + 500.0}
    now[0] = T + 1001  # the restored ones ended when last estimated: the window passes them
    assert gauges(after)[:2] == ({SHA: 5e12}, {"btc": 50.0})


def test_restored_label_sets_stay_at_zero() -> None:
    state = MetricsState(window=900, clock=lambda: T)
    state.restore_estimates(
        Estimates([FlowEstimate(7, T - 10, ("xmr", "randomx"), 5000.0, None)], {("ltc", "scrypt")})
    )
    hashrate, power, _energy = gauges(state)
    assert hashrate == {("xmr", "randomx"): 5000.0, ("ltc", "scrypt"): 0.0}
    assert power == {"xmr": 0.0, "ltc": 0.0}
