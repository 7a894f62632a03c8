"""Scenario files: values parsed, every mistake reported with its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sensor.synth.scenario import ScenarioError, Vardiff, hashrate, load_scenario

GOOD = """\
seed: 3
duration: 2m
vlan: 100
background: {flows: 5}
pools:
  - {name: p, ip: 198.51.100.1, port: 3333, host: btc.pool.example, coin: btc,
     dialect: stratum-v1, difficulty: 1024}
organisations:
  - name: A
    org_type: education
    region: Suzhou
    prefix: 10.0.0.0/30
    vlan: 7
    miners: [{count: 2, pool: p, hashrate: 14 TH/s}]
"""


def _load(tmp_path: Path, text: str):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path, load_scenario(path)


def _problems(tmp_path: Path, text: str) -> tuple[Path, list[str]]:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    return path, err.value.problems


def test_good_scenario(tmp_path: Path) -> None:
    path, s = _load(tmp_path, GOOD)
    assert (s.seed, s.duration, s.vlan, s.background_flows, s.source) == (3, 120.0, 100, 5, path)
    assert s.pools[0].host == "btc.pool.example" and s.pools[0].difficulty == 1024.0
    org = s.organisations[0]
    assert (org.prefix, org.vlan, org.line) == ("10.0.0.0/30", 7, 9)
    assert org.miners[0].count == 2 and org.miners[0].hashrate == 14e12


@pytest.mark.parametrize(
    ("text", "rate"),
    [("14 TH/s", 14e12), ("2.5 kH/s", 2500.0), ("900", 900.0), ("1.5e9", 1.5e9), ("3 GH", 3e9)],
)
def test_hashrate_units(text: str, rate: float) -> None:
    assert hashrate(None, yaml.compose(text)) == pytest.approx(rate)


def test_every_problem_named_with_its_line(tmp_path: Path) -> None:
    text = GOOD.replace("port: 3333", "port: 70000").replace("org_type: education", "org_type: x")
    text = text.replace("vlan: 100", "vlan: 100\nspeed: 3")
    path, problems = _problems(tmp_path, text)
    assert problems == [
        f"{path}:4: unknown key 'speed' (known: background, duration, organisations, pools,"
        " seed, share_timing, start, vlan)",
        f"{path}:7: pools[0]: port: expected a whole number from 1 to 65535",
        f"{path}:11: organisations[0]: org_type: expected one of cellular, education,"
        " enterprise, government, hosting, military, other, residential, unknown, not 'x'",
    ]


def test_cross_references_checked(tmp_path: Path) -> None:
    text = GOOD.replace("pool: p,", "pool: q,").replace("10.0.0.0/30", "10.0.0.0/31")
    text = text.replace("198.51.100.1", "10.0.0.1")
    path, problems = _problems(tmp_path, text)
    assert f"{path}:9: organisation 'A': unknown pool 'q'" in problems
    assert f"{path}:9: organisation 'A': 2 miners do not fit in 10.0.0.0/31" in problems
    assert f"{path}:6: pool 'p': 10.0.0.1 is inside an organisation's prefix" in problems


def test_coin_must_suit_dialect_and_keys_are_required(tmp_path: Path) -> None:
    text = GOOD.replace("coin: btc", "coin: eth").replace("    region: Suzhou\n", "")
    path, problems = _problems(tmp_path, text)
    assert f"{path}:6: pools[0]: coin 'eth' not made for stratum-v1 (btc, ltc)" in problems
    assert f"{path}:9: organisations[0]: missing key 'region'" in problems


def test_bad_yaml_and_empty_file(tmp_path: Path) -> None:
    path, problems = _problems(tmp_path, "pools: [\n")
    assert problems[0].startswith(f"{path}:2: not valid YAML")
    path, problems = _problems(tmp_path, "")
    assert problems == [f"{path}:1: empty scenario"]


VARDIFF = """\
share_timing: regular
pools:
  - {name: p, ip: 198.51.100.1, port: 3333, coin: btc, dialect: stratum-v1, difficulty: 1024,
     vardiff: {target: 10s, every: 2m}}
  - {name: x, ip: 198.51.100.2, port: 5555, coin: xmr, dialect: cryptonote, difficulty: 9,
     vardiff: {target: 5, every: 90}}
  - {name: f, ip: 198.51.100.3, port: 3333, coin: ltc, dialect: stratum-v1, difficulty: 8}
organisations:
  - name: A
    org_type: education
    region: Suzhou
    prefix: 10.0.0.0/24
    miners:
      - {count: 2, pool: p, hashrate: 14 TH/s, share_timing: poisson}
      - {pool: x, hashrate: 2 kH/s}
"""


def test_vardiff_and_share_timing(tmp_path: Path) -> None:
    _, s = _load(tmp_path, VARDIFF)
    assert s.share_timing == "regular"
    assert s.pools[0].vardiff == Vardiff(target=10.0, every=120.0)
    assert s.pools[1].vardiff == Vardiff(target=5.0, every=90.0)
    assert s.pools[2].vardiff is None
    groups = s.organisations[0].miners
    assert [g.share_timing for g in groups] == ["poisson", None]  # None: the scenario's


def test_share_timing_defaults_to_poisson(tmp_path: Path) -> None:
    _, s = _load(tmp_path, GOOD)
    assert s.share_timing == "poisson" and s.organisations[0].miners[0].share_timing is None


def test_vardiff_and_share_timing_problems_named_with_their_line(tmp_path: Path) -> None:
    text = VARDIFF.replace("share_timing: regular", "share_timing: steady")
    text = text.replace("target: 10s, every: 2m", "target: 10s, evry: 2m")
    text = text.replace("target: 5, every: 90", "target: 5m, every: 90")
    text = text.replace("share_timing: poisson}", "share_timing: bursty}")
    path, problems = _problems(tmp_path, text)
    assert problems == [
        f"{path}:1: share_timing: expected one of poisson, regular, not 'steady'",
        f"{path}:4: pools[0]: vardiff: unknown key 'evry' (known: every, target)",
        f"{path}:4: pools[0]: vardiff: missing key 'every'",
        f"{path}:6: pools[1]: vardiff: every (90s) is shorter than target",
        f"{path}:14: organisations[0]: miners[0]: share_timing: expected one of poisson,"
        " regular, not 'bursty'",
    ]


def test_vardiff_durations_must_be_durations(tmp_path: Path) -> None:
    text = VARDIFF.replace("target: 10s, every: 2m", "target: soon, every: [2]")
    path, problems = _problems(tmp_path, text)
    assert problems == [
        f"{path}:4: pools[0]: vardiff: target: expected a duration such as 600 or 10m",
        f"{path}:4: pools[0]: vardiff: every: expected a single value",
    ]
