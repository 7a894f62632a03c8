"""The metrics state sink and collector, on records handed straight in, read from a fresh registry.

Replays of real captures through the CLI are in tests/test_metrics_replay.py;
these tests pin the semantics: which labels, which window, what a scrape
shows while flows are still open, the top-N cap, the health snapshot.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from sensor import __version__
from sensor.capture.replay import InputErrors
from sensor.model import Attribution, Finding, FlowRecord, MiningRecord, NodeRecord, Side
from sensor.pipeline import Pipeline
from sensor.replay import ReplayOutcome
from sensor.rules.model import RuleSet
from sensor.sinks.metrics import Exporter, Health, MetricsState, ReplayHealth
from sensor.sinks.metrics_collector import Collector

T = 1_700_000_000.0
CAMPUS = Attribution(name="Campus", type="education", region="Jiangsu/Nanjing")
BUREAU = Attribution(name="Bureau", type="government", region=None)


def mining(
    flow_id: int,
    miner: str,
    ts: float,
    coin: str | None = "btc",
    org: Attribution | None = None,
    dialect: str = "stratum-v1",
) -> MiningRecord:
    finding = Finding(dialect, "confirmed", Side.ORIG, f"rule.{dialect}", coin=coin)
    return MiningRecord(
        flow_id=flow_id,
        ts=ts,
        proto="TCP",
        miner_ip=miner,
        miner_port=40000,
        pool_ip="198.51.100.1",
        pool_port=3333,
        pool="198.51.100.1:3333",
        pool_host=None,
        finding=finding,
        org=org or Attribution(),
    )


def ended(rec: MiningRecord, end: float, egress: int, ingress: int = 0) -> FlowRecord:
    return FlowRecord(rec, 10, 10, egress, ingress, rec.ts, end, "closed", "closed")


def registry_for(state: MetricsState, health: Health | None = None) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(Collector(state, (lambda: health) if health else None))
    return registry


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def samples(registry: CollectorRegistry, family: str) -> dict[tuple, float]:
    for metric in registry.collect():
        if metric.name == family:
            return {tuple(sorted(s.labels.items())): s.value for s in metric.samples}
    raise AssertionError(f"no family {family}")


def test_pool_bytes_by_direction_coin_and_org_type():
    state = MetricsState()
    a = mining(1, "10.0.0.1", T, "btc", CAMPUS)
    b = mining(2, "10.0.0.2", T + 1, "btc", CAMPUS)
    c = mining(3, "10.0.0.3", T + 2, None, BUREAU)
    d = mining(4, "10.0.0.4", T + 3, "xmr")
    for rec in (a, b, c, d):
        state.mining(rec)
    state.flow_end(ended(a, T + 10, 1000, 200))
    state.flow_end(ended(b, T + 11, 500, 50))
    state.flow_end(ended(c, T + 12, 70, 7))
    state.flow_end(ended(d, T + 13, 3, 0))
    reg = registry_for(state)
    name = "minewatch_pool_bytes_total"
    assert value(reg, name, direction="egress", coin="btc", org_type="education") == 1500
    assert value(reg, name, direction="ingress", coin="btc", org_type="education") == 250
    assert value(reg, name, direction="egress", coin="unknown", org_type="government") == 70
    assert value(reg, name, direction="egress", coin="xmr", org_type="unknown") == 3
    assert value(reg, name, direction="ingress", coin="xmr", org_type="unknown") == 0
    assert len(samples(reg, "minewatch_pool_bytes")) == 6  # 3 (coin, org_type) x 2 directions


def test_flows_and_detections_are_counted_when_a_flow_is_reported():
    state = MetricsState()
    state.mining(mining(1, "10.0.0.1", T, "btc"))
    state.mining(mining(2, "10.0.0.1", T, "btc"))
    state.mining(mining(3, "10.0.0.2", T, "eth", dialect="ethproxy"))
    state.mining(mining(4, "10.0.0.3", T, None, dialect="stratum-v2"))
    state.node(NodeRecord(9, T, "TCP", "10.0.0.9", 1, "192.0.2.1", 8333, "bitcoin"))
    reg = registry_for(state)
    flows = "minewatch_mining_flows_total"
    assert value(reg, flows, dialect="stratum-v1", coin="btc") == 2
    assert value(reg, flows, dialect="ethproxy", coin="eth") == 1
    assert value(reg, flows, dialect="stratum-v2", coin="unknown") == 1
    assert value(reg, "minewatch_detections_total", rule_id="rule.stratum-v1") == 2
    assert value(reg, "minewatch_crypto_node_flows_total", protocol="bitcoin") == 1
    # no flow has ended: no bytes yet
    assert samples(reg, "minewatch_pool_bytes") == {}


def test_suspects_are_miners_seen_within_the_window_of_the_newest_record():
    state = MetricsState(window=900)
    old = mining(1, "10.0.0.1", T, "btc", CAMPUS)
    edge = mining(2, "10.0.0.2", T + 100, "btc", CAMPUS)
    new = mining(3, "10.0.0.3", T + 990, "btc", CAMPUS)
    for rec in (old, edge, new):
        state.mining(rec)
    state.flow_end(ended(old, T + 50, 1))
    state.flow_end(ended(edge, T + 100, 1))  # exactly 900 s before the newest: still in
    state.flow_end(ended(new, T + 1000, 1))
    reg = registry_for(state)
    suspects = "minewatch_suspect_ips"
    assert value(reg, suspects, coin="btc", org_type="education", region="Jiangsu/Nanjing") == 2


def test_a_combination_once_seen_stays_at_zero():
    state = MetricsState(window=60)
    a = mining(1, "10.0.0.1", T, "xmr", BUREAU)
    b = mining(2, "10.0.0.2", T + 500, "btc")
    for rec in (a, b):
        state.mining(rec)
        state.flow_end(ended(rec, rec.ts + 1, 1))
    reg = registry_for(state)
    assert samples(reg, "minewatch_suspect_ips") == {
        (("coin", "xmr"), ("org_type", "government"), ("region", "unknown")): 0,
        (("coin", "btc"), ("org_type", "unknown"), ("region", "unknown")): 1,
    }


def test_an_open_mining_flow_keeps_its_miner_a_suspect():
    state = MetricsState(window=900)
    long_lived = mining(1, "10.0.0.1", T, "eth")
    state.mining(long_lived)  # confirmed at T, still open
    later = mining(2, "10.0.0.2", T + 5000, "eth")
    state.mining(later)
    state.flow_end(ended(later, T + 5001, 1))
    reg = registry_for(state)
    labels = {"coin": "eth", "org_type": "unknown", "region": "unknown"}
    assert value(reg, "minewatch_suspect_ips", **labels) == 2
    state.flow_end(ended(long_lived, T + 10, 1))  # it ended long ago after all
    assert value(reg, "minewatch_suspect_ips", **labels) == 1


def test_one_miner_counts_once_per_coin_with_its_newest_attribution():
    state = MetricsState()
    for n, coin in enumerate(("btc", "btc", "xmr")):
        rec = mining(n, "10.0.0.1", T + n, coin, BUREAU if n < 2 else CAMPUS)
        state.mining(rec)
        state.flow_end(ended(rec, T + n + 1, 1))
    reg = registry_for(state)
    assert samples(reg, "minewatch_suspect_ips") == {
        (("coin", "btc"), ("org_type", "government"), ("region", "unknown")): 0,
        (("coin", "btc"), ("org_type", "education"), ("region", "Jiangsu/Nanjing")): 1,
        (("coin", "xmr"), ("org_type", "education"), ("region", "Jiangsu/Nanjing")): 1,
    }


def test_a_clock_replaces_capture_time():
    now = [T + 100]
    state = MetricsState(window=900, clock=lambda: now[0])
    rec = mining(1, "10.0.0.1", T, "btc")
    state.mining(rec)
    state.flow_end(ended(rec, T + 1, 1))
    reg = registry_for(state)
    labels = {"coin": "btc", "org_type": "unknown", "region": "unknown"}
    assert value(reg, "minewatch_suspect_ips", **labels) == 1
    now[0] = T + 1000
    assert value(reg, "minewatch_suspect_ips", **labels) == 0


def test_no_records_no_suspects():
    reg = registry_for(MetricsState())
    assert samples(reg, "minewatch_suspect_ips") == {}


def test_top_n_miners_by_egress_and_how_many_were_left_out():
    state = MetricsState(top_ips=2)
    recs = [
        (mining(1, "10.0.0.1", T, "btc", CAMPUS), 100),
        (mining(2, "10.0.0.1", T, "xmr", CAMPUS), 900),
        (mining(3, "10.0.0.2", T, "eth"), 500),
        (mining(4, "10.0.0.3", T, "eth", BUREAU), 10),
    ]
    for rec, egress in recs:
        state.mining(rec)
        state.flow_end(ended(rec, T + 1, egress, 99_999))  # ingress does not rank
    state.mining(mining(5, "10.0.0.4", T, "eth"))  # no flow ended: no egress, not ranked
    reg = registry_for(state)
    assert samples(reg, "minewatch_top_miner_pool_bytes") == {
        (("coin", "btc"), ("ip", "10.0.0.1"), ("org_type", "education")): 100,
        (("coin", "xmr"), ("ip", "10.0.0.1"), ("org_type", "education")): 900,
        (("coin", "eth"), ("ip", "10.0.0.2"), ("org_type", "unknown")): 500,
    }
    assert value(reg, "minewatch_top_miner_omitted_ips") == 1


def test_without_top_n_there_are_no_ip_labels_at_all():
    state = MetricsState()
    rec = mining(1, "10.0.0.1", T)
    state.mining(rec)
    state.flow_end(ended(rec, T + 1, 5))
    text = generate_latest(registry_for(state)).decode()
    assert "10.0.0.1" not in text and "top_miner" not in text


def test_estimate_families_are_present_without_samples():
    families = {
        f.name: f
        for f in text_string_to_metric_families(
            generate_latest(registry_for(MetricsState())).decode()
        )
    }
    for name, kind in (
        ("minewatch_estimated_hashrate_hashes_per_second", "gauge"),
        ("minewatch_estimated_power_watts", "gauge"),
        ("minewatch_estimated_energy_joules", "counter"),
    ):
        assert families[name].type == kind
        assert families[name].samples == []
        assert "Estimated" in families[name].documentation


def test_health_comes_from_the_snapshot():
    health = Health(
        packets=1234,
        bytes=99_000,
        decode_errors={"truncated_ip": 3},
        flows_active=7,
        flows_evicted={"table_full": 2},
        detector_errors={"grin": 1},
        input_errors=1,
        rules_loaded=42,
        rules_reload_ts=T,
    )
    reg = registry_for(MetricsState(), health)
    refused = registry_for(MetricsState(), Health(rules_reload_success=False))
    assert value(refused, "minewatch_rules_last_reload_success") == 0
    assert value(reg, "minewatch_packets_total") == 1234
    assert value(reg, "minewatch_bytes_total") == 99_000
    assert value(reg, "minewatch_capture_kernel_drops_total") == 0
    assert value(reg, "minewatch_decode_errors_total", reason="truncated_ip") == 3
    assert value(reg, "minewatch_flows_active") == 7
    assert value(reg, "minewatch_flows_evicted_total", reason="table_full") == 2
    assert value(reg, "minewatch_flows_evicted_total", reason="idle_timeout") == 0
    assert value(reg, "minewatch_detector_errors_total", detector="grin") == 1
    assert value(reg, "minewatch_input_errors_total") == 1
    assert value(reg, "minewatch_rules_loaded") == 42
    assert value(reg, "minewatch_rules_last_reload_timestamp_seconds") == T
    assert value(reg, "minewatch_rules_last_reload_success") == 1
    info = samples(reg, "minewatch_build_info")
    ((labels, one),) = info.items()
    assert dict(labels)["version"] == __version__ and one == 1


def test_the_registry_knows_the_names_so_name_filters_work():
    reg = registry_for(MetricsState(), Health(packets=5))
    restricted = reg.restricted_registry(["minewatch_packets_total", "minewatch_flows_active"])
    names = sorted(s.name for m in restricted.collect() for s in m.samples)
    assert names == ["minewatch_flows_active", "minewatch_packets_total"]
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        reg.register(Collector(MetricsState()))  # one exporter per registry


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="window"):
        MetricsState(window=0)
    with pytest.raises(ValueError, match="top_ips"):
        MetricsState(top_ips=-1)


def test_scrapes_while_records_arrive_see_consistent_state():
    state = MetricsState(top_ips=5)
    reg = registry_for(state)
    errors: list[BaseException] = []

    def feed() -> None:
        for n in range(1000):
            rec = mining(n, f"10.{n % 7}.{n % 251}.1", T + n, ("btc", "eth", "xmr")[n % 3])
            state.mining(rec)
            state.flow_end(ended(rec, T + n + 1, 10))

    feeder = threading.Thread(target=feed)
    feeder.start()
    while feeder.is_alive():
        try:
            generate_latest(reg)
        except BaseException as exc:  # pragma: no cover - the assertion says what
            errors.append(exc)
    feeder.join()
    assert errors == []
    total = sum(samples(reg, "minewatch_pool_bytes").values())
    assert total == 1000 * 10


def test_exporter_writes_the_exposition_atomically(tmp_path: Path):
    exporter = Exporter(health=lambda: Health(packets=3))
    target = tmp_path / "minewatch.prom"
    target.write_text("old\n")
    exporter.write(target)
    text = target.read_text()
    assert "minewatch_packets_total 3.0" in text
    assert text.encode() == exporter.text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["minewatch.prom"]  # no temp left


def test_replay_health_is_monotonic_across_passes_then_final():
    health = ReplayHealth(rules_loaded=10, rules_loaded_at=T)
    assert health().packets == 0
    scan, full = Pipeline(RuleSet()), Pipeline(RuleSet())
    health.track(scan, full=False)
    scan.stats.packets, scan.stats.bytes = 500, 50_000
    scan.flows.evicted["idle_timeout"] += 3  # the scan pass's flows end by filter artefact
    health.track(full)
    full.stats.packets, full.stats.bytes = 20, 2_000  # pass 2 reads only the chosen flows
    full.decoder.errors["truncated_ip"] += 2
    running = health()
    assert (running.packets, running.bytes) == (500, 50_000)
    assert running.decode_errors == {"truncated_ip": 2}
    assert running.flows_evicted == {}
    errors = InputErrors()
    health.errors = errors
    errors.messages.append("broken.pcap: truncated")
    outcome = ReplayOutcome([], errors, full, packets=800, bytes=80_000)
    health.finished(outcome)
    full.decoder.errors["truncated_ip"] += 5  # after the end: not seen any more
    final = health()
    assert (final.packets, final.bytes, final.input_errors) == (800, 80_000, 1)
    assert final.decode_errors == {"truncated_ip": 2}
    assert (final.rules_loaded, final.rules_reload_ts, final.kernel_drops) == (10, T, 0)
