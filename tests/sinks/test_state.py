"""The daemon's state file: suspects, pools, counters and estimates survive a restart.

Records go straight into a report and a state sink, a checkpoint writes them,
and a fresh report, metrics state and health restored from the file must say
what the first ones said; the daemon's own outputs (sensor.commands.run) do
the same end to end. Also: interim flow progress in the metrics state, the
health the live collector reads, a version-1 file migrated in place, and a
broken file moved aside.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from sensor.commands.run import Inputs, Outputs, Ownership
from sensor.config import DaemonConfig
from sensor.model import (
    Attribution,
    Estimate,
    Finding,
    FlowProgress,
    FlowRecord,
    MiningRecord,
    NodeRecord,
    Side,
)
from sensor.sinks.live_health import LiveHealth, combine, counters_of, health_from, totals_from
from sensor.sinks.metrics_collector import Health
from sensor.sinks.metrics_state import Estimates, FlowEstimate, MetricsState, Totals
from sensor.sinks.report import ReportBuilder
from sensor.sinks.state import (
    FILE_NAME,
    SCHEMA_VERSION,
    EstimateChanges,
    StateSink,
    StateStore,
)

T = 1_700_000_000.0
CAMPUS = Attribution(name="Campus", type="education", region="Jiangsu/Nanjing")


def mining(flow_id: int, miner: str, ts: float, coin: str | None = "btc") -> MiningRecord:
    finding = Finding(
        "stratum-v1", "confirmed", Side.ORIG, "rule.sv1", coin=coin, wallet=f"w-{miner}"
    )
    return MiningRecord(
        flow_id, ts, "TCP", miner, 40000, "198.51.100.1", 3333, "pool.example:3333",
        "pool.example", finding, CAMPUS if miner.startswith("10.") else Attribution(),
    )  # fmt: skip


def ended(
    rec: MiningRecord,
    end: float,
    egress: int,
    ingress: int,
    shares: int = 0,
    estimate: Estimate | None = None,
) -> FlowRecord:
    rec.finding.shares = shares
    return FlowRecord(rec, 10, 10, egress, ingress, rec.ts, end, "closed", "closed", estimate)


def rate(hs: float, watts: float | None, seconds: float) -> Estimate:
    return Estimate(hashrate_hs=hs, low_hs=hs / 2, high_hs=hs * 2, power_w=watts, seconds=seconds)


def progress(rec: MiningRecord, at: float, egress: int, estimate: Estimate) -> FlowProgress:
    return FlowProgress(
        rec.flow_id, at, rec.miner_ip, "btc", "education", egress, 0, None, estimate,
        f"{rec.pool_ip}:{rec.pool_port}",
    )  # fmt: skip


def feed(sinks: list, records: list) -> None:
    for rec in records:
        for sink in sinks:
            if isinstance(rec, MiningRecord):
                sink.mining(rec)
            elif isinstance(rec, FlowRecord):
                sink.flow_end(rec)
            else:
                sink.node(rec)


def traffic() -> list:
    a, b = mining(1, "10.0.0.1", T), mining(2, "192.0.2.9", T + 5, coin=None)
    c = mining(4, "10.0.0.1", T + 30)  # concurrent with a: the rates add up
    return [
        a,
        b,
        c,
        ended(a, T + 60, 1000, 2000, shares=3, estimate=rate(1.1e12, 33.3, 60)),
        NodeRecord(3, T + 7, "TCP", "192.0.2.1", 1, "192.0.2.2", 8333, "bitcoin"),
        ended(b, T + 90, 50, 70, shares=1, estimate=rate(7.7e3, None, 85)),
        ended(c, T + 95, 10, 20, shares=0, estimate=Estimate(seconds=65, note="no shares seen")),
    ]


@pytest.fixture
def store(tmp_path: Path):
    s = StateStore(tmp_path / "state")
    yield s
    s.close()


def test_a_restored_report_says_what_the_first_one_said(tmp_path: Path, store: StateStore) -> None:
    report = ReportBuilder()
    sink = StateSink(store, report)
    sink.started = T - 10
    feed([report, sink], traffic())
    sink.checkpoint({"mining_flows": {("stratum-v1", "btc"): 2, ("stratum-v1", "unknown"): 1}})
    store.close()

    again = ReportBuilder()
    restored = StateSink(StateStore(tmp_path / "state"), again)
    saved = restored.restore()
    first = report.build(T - 10, T + 100)
    assert again.build(T - 10, T + 100) == first
    assert first["totals"]["hashrate_hs"] == 1.1e12 + 7.7e3  # the rates are in it
    assert first["totals"]["power_w"] == 33.3
    assert again.suspects["10.0.0.1"].rates == report.suspects["10.0.0.1"].rates
    assert list(again.suspects["192.0.2.9"].rates) == [None]  # an unknown coin has rates too
    assert (restored.started, restored.shares) == (T - 10, {"10.0.0.1": 3, "192.0.2.9": 1})
    assert saved.saved_at is not None and saved.saved_at >= T
    assert again.mining_flows == 3 and again.dialect_flows == {"stratum-v1": 3}
    restored.store.close()


def test_a_checkpoint_writes_only_what_changed(store: StateStore) -> None:
    report = ReportBuilder()
    sink = StateSink(store, report)
    feed([report, sink], traffic())
    sink.checkpoint({})
    # A row the daemon did not touch since is not written again.
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE suspects SET flows = 99 WHERE ip = '192.0.2.9'")
    later = mining(4, "10.0.0.1", T + 200)
    feed([report, sink], [later, ended(later, T + 260, 10, 10, shares=2)])
    sink.checkpoint({"packets": {(): 7}})
    saved = store.load()
    flows = {s.ip: (s.flows, s.egress, shares) for s, shares in saved.suspects}
    assert flows == {"10.0.0.1": (3, 1020, 5), "192.0.2.9": (99, 50, 1)}
    assert saved.counters == {"packets": {(): 7.0}}  # counters are replaced whole


def test_counters_survive_with_their_labels(store: StateStore) -> None:
    metrics = MetricsState()
    feed([metrics], traffic())
    health = Health(
        packets=500, bytes=90_000, kernel_drops=3, decode_errors={"truncated": 2},
        flows_active=4, flows_evicted={"idle_timeout": 6}, detector_errors={"grin": 1},
        sink_errors={"EveWriter": 1}, input_errors=0,
    )  # fmt: skip
    counters = counters_of(metrics.totals(), health)
    StateSink(store, ReportBuilder()).checkpoint(counters)
    loaded = store.load().counters
    assert loaded == counters
    assert loaded["estimated_energy_joules"] == {("btc",): 33.3 * 60}
    assert totals_from(loaded) == metrics.totals()
    base = health_from(loaded)
    assert (base.packets, base.bytes, base.kernel_drops) == (500, 90_000, 3)
    assert (base.decode_errors, base.flows_evicted) == ({"truncated": 2}, {"idle_timeout": 6})
    assert base.flows_active == 0  # a gauge: not restored


def test_restored_metrics_go_on_from_the_checkpoint() -> None:
    before = MetricsState(window=900, clock=lambda: T + 300)
    feed([before], traffic())
    after = MetricsState(window=900, clock=lambda: T + 300)
    after.restore(before.totals())
    after.restore_estimates(before.estimates())
    after.restore_miner("10.0.0.1", "education", "Jiangsu/Nanjing", ["btc"], T + 95)
    after.restore_miner("192.0.2.9", None, None, [], T + 90)
    view, old = after.view(), before.view()
    assert (view.pool_bytes, view.mining_flows) == (old.pool_bytes, old.mining_flows)
    assert (view.hashrate, view.power, view.energy) == (old.hashrate, old.power, old.energy)
    assert view.hashrate == {("btc", "unknown"): 1.1e12, ("unknown", "unknown"): 7.7e3}
    assert view.suspects == old.suspects
    assert view.suspects == {
        ("btc", "education", "Jiangsu/Nanjing"): 1,
        ("unknown", "unknown", "unknown"): 1,
    }
    rec = mining(9, "10.0.0.1", T + 301)
    feed([after], [rec, ended(rec, T + 302, 5, 5)])
    assert after.view().pool_bytes[("egress", "btc", "education")] == 1015


def test_progress_counts_bytes_of_open_flows_once() -> None:
    state = MetricsState()
    rec = mining(1, "10.0.0.1", T)
    state.mining(rec)
    for egress, ingress in ((100, 300), (50, 0)):
        state.progress(FlowProgress(1, T + 5, "10.0.0.1", "btc", "education", egress, ingress))
    assert state.view().pool_bytes == {
        ("egress", "btc", "education"): 150,
        ("ingress", "btc", "education"): 300,
    }
    state.flow_end(ended(rec, T + 60, 400, 500))  # totals: only the rest is added
    assert state.totals().pool_bytes == {
        ("egress", "btc", "education"): 400,
        ("ingress", "btc", "education"): 500,
    }


def test_live_health_sums_the_base_and_every_worker() -> None:
    health = LiveHealth(rules_loaded=700)
    health.base = Health(packets=1000, decode_errors={"truncated": 1})
    health.update(0, Health(packets=10, flows_active=2, decode_errors={"truncated": 2}))
    health.update(1, Health(packets=5, flows_active=3, kernel_drops=4, sink_errors={"X": 1}))
    total = health()
    assert (total.packets, total.flows_active, total.kernel_drops) == (1015, 5, 4)
    assert (total.decode_errors, total.sink_errors) == ({"truncated": 3}, {"X": 1})
    assert (total.rules_loaded, total.rules_reload_success) == (700, True)
    loaded_at = total.rules_reload_ts
    health.refused()
    assert health().rules_reload_success is False
    assert health().rules_reload_ts == loaded_at  # the rules in use are still those
    health.reloaded(701)
    health.update(1, Health(rules_reload_success=False))  # a worker could not reload
    assert (health().rules_loaded, health().rules_reload_success) == (701, False)
    assert combine([]) == Health(decode_errors={}, flows_evicted={}, detector_errors={})


def test_a_broken_state_file_is_moved_aside(tmp_path: Path, caplog) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    (folder / FILE_NAME).write_bytes(b"this is not a database" * 100)
    store = StateStore(folder)
    try:
        assert store.load().suspects == []
        store.save({"packets": {(): 1}}, [], [], None)
    finally:
        store.close()
    aside = [p.name for p in folder.iterdir() if ".broken-" in p.name]
    assert len(aside) == 1
    assert "unusable state file" in caplog.text


def test_a_newer_schema_is_not_read_as_ours(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    with sqlite3.connect(folder / FILE_NAME) as db:
        db.execute("PRAGMA user_version = 99")
    store = StateStore(folder)
    store.close()
    assert any(".broken-" in p.name for p in folder.iterdir())
    assert Totals() == totals_from({})


def estimate(seq: int, hs: float, key: tuple[str, str] = ("btc", "sha256d")) -> FlowEstimate:
    return FlowEstimate(seq, T + seq, key, hs, None)


def stored_estimates(store: StateStore) -> dict[int, float]:
    with closing(sqlite3.connect(store.path)) as db:
        return dict(db.execute("SELECT seq, hashrate_hs FROM estimates"))


def test_a_checkpoint_writes_only_the_estimates_that_changed(store: StateStore) -> None:
    store.save({}, [], [], None, EstimateChanges([estimate(9, 1.0)]))  # an older process's
    sink = StateSink(store, ReportBuilder())
    one, two = estimate(1, 1e12), estimate(2, 2e12)
    sink.checkpoint({}, Estimates([one, two], {("btc", "sha256d")}))
    assert stored_estimates(store) == {1: 1e12, 2: 2e12}  # the first one replaces the table
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE estimates SET hashrate_hs = -1 WHERE seq = 1")
    sink.checkpoint({}, Estimates([one, estimate(2, 3e12), estimate(3, 4e3, ("xmr", "rx"))]))
    assert stored_estimates(store) == {1: -1, 2: 3e12, 3: 4e3}  # 1 unchanged: not written
    sink.checkpoint({})  # estimates not given: the file's stay
    sink.checkpoint({}, Estimates([estimate(3, 4e3, ("xmr", "rx"))]))
    assert stored_estimates(store) == {3: 4e3}
    assert store.load().estimates.keys == {("btc", "sha256d")}  # label sets are only added


def test_restored_gauges_sum_in_the_order_they_did(store: StateStore) -> None:
    before = MetricsState(window=900, clock=lambda: T + 100)
    # 1e16 + 1 + 1 is 1e16 in floats, 1 + 1 + 1e16 is 1e16 + 2: the order shows.
    for flow_id, hs in ((3, 1e16), (1, 1.0), (2, 1.0)):
        rec = mining(flow_id, f"10.0.0.{flow_id}", T)
        before.mining(rec)
        before.progress(progress(rec, T + 10, 0, rate(hs, None, 10)))
    before.progress(progress(mining(3, "10.0.0.3", T), T + 20, 0, rate(1e16, None, 20)))
    StateSink(store, ReportBuilder()).checkpoint({}, before.estimates())
    after = MetricsState(window=900, clock=lambda: T + 100)
    after.restore_estimates(store.load().estimates)
    assert after.view().hashrate == before.view().hashrate == {("btc", "unknown"): 1e16}


def exported(outputs: Outputs) -> dict[tuple, float]:
    """Every sample the daemon's registry has, but the load time of its rules."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in outputs.exporter.registry.collect()
        for s in family.samples
        if s.name != "minewatch_rules_last_reload_timestamp_seconds"
    }


def test_a_restarted_daemon_reports_and_exports_what_it_did(tmp_path: Path) -> None:
    config = DaemonConfig(state_dir=tmp_path / "state")
    now = time.time()  # the daemon's suspect window runs on the wall clock
    first = Outputs(config, Inputs(), 0, Ownership(None))
    first.restore()
    a, b = mining(1, "10.0.0.1", now - 300), mining(2, "10.0.0.2", now - 200)
    feed(first.sinks, [a, b, ended(a, now - 100, 900, 90, 40, rate(2.5e12, 75.5, 200))])
    first.progress([progress(b, now - 10, 500, rate(9e11, 27.1, 190))])  # open: its rate to date
    first.checkpoint()  # the last checkpoint before a kill -9
    report = first.report.build(first.started, now)
    metrics = exported(first)
    first.close()

    second = Outputs(config, Inputs(), 0, Ownership(None))
    second.restore()
    assert second.report.build(second.started, now) == report
    assert exported(second) == metrics
    energy = ("minewatch_estimated_energy_joules_total", (("coin", "btc"),))
    hashrate = (
        "minewatch_estimated_hashrate_hashes_per_second",
        (("algorithm", "unknown"), ("coin", "btc")),
    )
    assert metrics[energy] == 75.5 * 200 + 27.1 * 190
    assert metrics[hashrate] == 2.5e12 + 9e11  # the open flow counts with its rate to date
    # The report counts the open flow with its rate to date too, before and after.
    assert report["totals"]["hashrate_hs"] == 2.5e12 + 9e11
    # The new process's flow 1 is not the old one: both count, and energy goes on.
    c = mining(1, "10.0.0.3", now - 5)
    feed(second.sinks, [c])
    second.progress([progress(c, now, 10, rate(1e12, 10.0, 5))])
    assert exported(second)[energy] == metrics[energy] + 50.0
    second.close()


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value REAL);
CREATE TABLE counters (
    name TEXT NOT NULL, labels TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (name, labels));
CREATE TABLE suspects (
    ip TEXT PRIMARY KEY, org TEXT, org_type TEXT, region TEXT, coins TEXT, dialects TEXT,
    pools TEXT, wallets TEXT, first_seen REAL, last_seen REAL, flows INTEGER,
    egress INTEGER, ingress INTEGER, shares INTEGER);
CREATE TABLE pools (endpoint TEXT PRIMARY KEY, host TEXT, ip TEXT, coins TEXT, clients TEXT);
PRAGMA user_version = 1;
"""


def test_a_version_1_file_is_migrated_in_place(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    with closing(sqlite3.connect(folder / FILE_NAME)) as db:
        db.executescript(V1_SCHEMA)
        db.execute(
            "INSERT INTO suspects VALUES ('10.0.0.1', 'Campus', 'education', 'Jiangsu/Nanjing',"
            " '[\"btc\"]', '[\"stratum-v1\"]', '[\"pool.example:3333\"]', '[]', ?, ?,"
            " 2, 1000, 2000, 7)",
            (T, T + 60),
        )
        db.execute("INSERT INTO pools VALUES ('198.51.100.1:3333', 'pool.example',"
                   " '198.51.100.1', '[\"btc\"]', '[\"10.0.0.1\"]')")  # fmt: skip
        db.execute("INSERT INTO counters VALUES ('packets', '[]', 70)")
        db.execute("INSERT INTO meta VALUES ('started', ?)", (T - 10,))
        db.commit()

    report = ReportBuilder()
    sink = StateSink(StateStore(folder), report)
    saved = sink.restore()
    assert [p.name for p in folder.iterdir() if ".broken-" in p.name] == []
    assert (saved.counters, saved.started, saved.estimates) == (
        {"packets": {(): 70}},
        T - 10,
        Estimates(),
    )
    ((suspect, shares),) = saved.suspects
    assert (suspect.ip, suspect.flows, suspect.egress, shares, suspect.rates) == (
        "10.0.0.1", 2, 1000, 7, {}
    )  # fmt: skip
    assert report.build(T - 10, T + 100)["totals"]["hashrate_hs"] is None  # no work known
    later = mining(5, "10.0.0.1", T + 200)
    feed([report, sink], [later, ended(later, T + 260, 10, 10, 1, rate(1e12, 30.0, 60))])
    sink.checkpoint({}, Estimates([estimate(1, 1e12)]))
    sink.store.close()

    with closing(sqlite3.connect(folder / FILE_NAME)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    store = StateStore(folder)
    again = store.load()
    store.close()
    ((suspect, shares),) = again.suspects
    assert (suspect.flows, shares) == (3, 8)
    assert suspect.rates == report.suspects["10.0.0.1"].rates
    assert suspect.hashrate_hs() == 1e12
    assert len(again.estimates.flows) == 1
