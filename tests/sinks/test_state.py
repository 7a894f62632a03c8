"""The daemon's state file: suspects, pools and counters survive a restart.

Records go straight into a report and a state sink, a checkpoint writes them,
and a fresh report, metrics state and health restored from the file must say
what the first ones said. Also: interim flow progress in the metrics state,
the health the live collector reads, and a broken file moved aside.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sensor.model import (
    Attribution,
    Finding,
    FlowProgress,
    FlowRecord,
    MiningRecord,
    NodeRecord,
    Side,
)
from sensor.sinks.metrics_collector import Health
from sensor.sinks.metrics_state import MetricsState, Totals
from sensor.sinks.report import ReportBuilder
from sensor.sinks.state import (
    FILE_NAME,
    LiveHealth,
    StateSink,
    StateStore,
    combine,
    counters_of,
    health_from,
    totals_from,
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


def ended(rec: MiningRecord, end: float, egress: int, ingress: int, shares: int = 0) -> FlowRecord:
    rec.finding.shares = shares
    return FlowRecord(rec, 10, 10, egress, ingress, rec.ts, end, "closed", "closed")


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
    return [
        a,
        b,
        ended(a, T + 60, 1000, 2000, shares=3),
        NodeRecord(3, T + 7, "TCP", "192.0.2.1", 1, "192.0.2.2", 8333, "bitcoin"),
        ended(b, T + 90, 50, 70, shares=1),
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
    sink.checkpoint({"mining_flows": {("stratum-v1", "btc"): 1, ("stratum-v1", "unknown"): 1}})
    store.close()

    again = ReportBuilder()
    restored = StateSink(StateStore(tmp_path / "state"), again)
    saved = restored.restore()
    assert again.build(T - 10, T + 100) == report.build(T - 10, T + 100)
    assert (restored.started, restored.shares) == (T - 10, {"10.0.0.1": 3, "192.0.2.9": 1})
    assert saved.saved_at is not None and saved.saved_at >= T
    assert again.mining_flows == 2 and again.dialect_flows == {"stratum-v1": 2}
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
    assert flows == {"10.0.0.1": (2, 1010, 5), "192.0.2.9": (99, 50, 1)}
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
    after.restore_miner("10.0.0.1", "education", "Jiangsu/Nanjing", ["btc"], T + 60)
    after.restore_miner("192.0.2.9", None, None, [], T + 90)
    view, old = after.view(), before.view()
    assert (view.pool_bytes, view.mining_flows) == (old.pool_bytes, old.mining_flows)
    assert view.suspects == old.suspects
    assert view.suspects == {
        ("btc", "education", "Jiangsu/Nanjing"): 1,
        ("unknown", "unknown", "unknown"): 1,
    }
    rec = mining(9, "10.0.0.1", T + 301)
    feed([after], [rec, ended(rec, T + 302, 5, 5)])
    assert after.view().pool_bytes[("egress", "btc", "education")] == 1005


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
