"""End to end: the small scenario, synthesised and replayed, reports its own ground truth."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from sensor.cli import main
from sensor.synth.build import synthesise
from sensor.synth.scenario import load_scenario
from tests.synth.replaying import synth_and_replay

SMALL = Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "small.yaml"


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, list[dict]]:
    return synth_and_replay(SMALL, tmp_path_factory.mktemp("synth"))


def _counts(rows: list[dict], key: str) -> dict[str, int]:
    return {row[key]: row["suspect_ips"] for row in rows}


def test_counts_equal_the_truth(replayed: tuple[dict, dict, list[dict]]) -> None:
    truth, report, _ = replayed
    assert {s["ip"] for s in report["suspects"]} == {m["ip"] for m in truth["miners"]}
    assert report["totals"]["suspect_ips"] == truth["totals"]["suspect_ips"] == 14
    for key in ("org_type", "region", "coin", "org"):
        assert _counts(report[f"by_{key}"], key) == _counts(truth[f"by_{key}"], key), key


def test_each_suspect_is_attributed_as_declared(replayed: tuple[dict, dict, list[dict]]) -> None:
    truth, report, _ = replayed
    suspects = {s["ip"]: s for s in report["suspects"]}
    for miner in truth["miners"]:
        got = suspects[miner["ip"]]
        assert (got["org"], got["org_type"], got["region"]) == (
            miner["org"],
            miner["org_type"],
            miner["region"],
        )
        assert got["coins"] == [miner["coin"]]
        assert got["dialects"] == [miner["dialect"]]


def test_hash_rates_within_ten_percent(replayed: tuple[dict, dict, list[dict]]) -> None:
    truth, report, _ = replayed
    suspects = {s["ip"]: s for s in report["suspects"]}
    checked = 0
    for miner in truth["miners"]:
        estimate = suspects[miner["ip"]]["hashrate_hs"]
        # The estimator sees exactly the shares written, over the flow's time.
        assert estimate == pytest.approx(miner["realised_hs"], rel=1e-6)
        if miner["shares"] >= 100:
            assert estimate == pytest.approx(miner["hashrate_hs"], rel=0.10), miner["ip"]
            checked += 1
    assert checked == 13  # one miner is declared below 100 shares on purpose


def test_true_rate_mostly_inside_the_interval(replayed: tuple[dict, dict, list[dict]]) -> None:
    truth, _, flows = replayed
    declared = {m["ip"]: m["hashrate_hs"] for m in truth["miners"]}
    inside = 0
    for event in flows:
        low, high = event["mining"]["hashrate_interval_hs"]
        inside += low <= declared[event["src_ip"]] <= high
    assert len(flows) == 14
    assert inside >= 11  # a 90% interval: about 1 in 10 may miss


def test_the_scenario_check_tool_agrees(
    replayed: tuple[dict, dict, list[dict]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth, report, _ = replayed
    tool = SMALL.parents[2] / "tools" / "check_scenario.py"
    spec = importlib.util.spec_from_file_location("check_scenario", tool)
    assert spec is not None and spec.loader is not None
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    (tmp_path / "r.json").write_text(json.dumps(report))
    (tmp_path / "t.json").write_text(json.dumps(truth))
    assert check.main([str(tmp_path / "r.json"), str(tmp_path / "t.json")]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and "14 of 14 equal the rate of their shares" in out
    report["by_region"][0]["suspect_ips"] += 1  # a count off by one fails the check
    (tmp_path / "r.json").write_text(json.dumps(report))
    assert check.main([str(tmp_path / "r.json"), str(tmp_path / "t.json")]) == 1
    assert "FAIL by_region counts" in capsys.readouterr().out


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    scenario = load_scenario(SMALL)
    first = synthesise(scenario, tmp_path / "a.pcap", seed=11)
    second = synthesise(scenario, tmp_path / "b.pcap", seed=11)
    other = synthesise(scenario, tmp_path / "c.pcap", seed=12)
    assert first.pcap.read_bytes() == second.pcap.read_bytes()
    assert first.truth.read_text() == second.truth.read_text()
    assert first.pcap.read_bytes() != other.pcap.read_bytes()


def test_bad_scenario_exits_2_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("pools: []\norganisations: []\nduraton: 5m\n")
    assert main(["synth", str(bad), "-o", str(tmp_path / "x.pcap")]) == 2
    assert f"{bad}:3: unknown key 'duraton'" in capsys.readouterr().err
