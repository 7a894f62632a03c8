"""Power from the efficiency table: the bundled figures, defaults, and unknown algorithms."""

from __future__ import annotations

import pytest

from sensor.estimate import estimate_flow
from sensor.estimate.power import EfficiencyTable, bundled_table
from sensor.model import Confidence, Estimate, Finding, Side
from sensor.rules.loader import load_rules
from sensor.rules.model import EfficiencyRule

# The classes issue 6 asks for, each with a figure in rules/efficiency.yaml.
ALGORITHMS = (
    "sha256d",
    "scrypt",
    "ethash",
    "etchash",
    "randomx",
    "equihash",
    "kawpow",
    "kheavyhash",
    "autolykos2",
)


def rule(rule_id: str, algorithm: str, jph: float) -> EfficiencyRule:
    return EfficiencyRule(rule_id, algorithm, "asic", jph, "test")


def test_bundled_figures_are_sourced_dated_and_plausible():
    rules = load_rules().efficiency
    assert {r.algorithm for r in rules} >= set(ALGORITHMS)
    for r in rules:
        assert r.source and r.date and r.hardware
        assert 0 < r.joules_per_hash < 1  # no machine spends a joule per hash
    assert len(bundled_table()) == len({r.algorithm for r in rules})


def test_sha256_default_is_the_s19_pro_and_the_m21s_is_listed():
    table = bundled_table()
    s19 = table.rule("sha256d")
    assert s19 is not None and "s19-pro" in s19.id
    assert s19.joules_per_hash * 1e12 == pytest.approx(29.5)  # J/TH
    m21s = next(r for r in load_rules().efficiency if "m21s" in r.id)
    assert m21s.joules_per_hash * 1e12 == pytest.approx(60.0)  # product.md: 60 W/TH


def test_power_follows_the_table():
    table = bundled_table()
    # a 56 TH/s rig at the default 29.5 J/TH draws 1652 W
    assert table.watts(56e12, "sha256d") == (pytest.approx(1652.0), None)
    for algorithm in ALGORITHMS:
        r = table.rule(algorithm)
        assert r is not None
        assert table.watts(1e6, algorithm) == (pytest.approx(1e6 * r.joules_per_hash), None)


def test_the_first_figure_of_an_algorithm_is_its_default():
    table = EfficiencyTable([rule("a", "x", 2.0), rule("b", "x", 5.0), rule("c", "y", 1.0)])
    assert len(table) == 2
    assert table.watts(10.0, "x") == (20.0, None)


@pytest.mark.parametrize("algorithm", [None, "cuckatoo", "blake2s"])
def test_unknown_algorithm_gets_no_power_and_a_reason(algorithm):
    watts, note = bundled_table().watts(1e9, algorithm)
    assert watts is None and note is not None
    assert ("unknown" in note) if algorithm is None else (algorithm in note)


def test_flow_estimate_carries_power_or_says_why_not():
    table = bundled_table()
    btc = Finding("stratum-v1", Confidence.CONFIRMED, Side.ORIG, "t", algorithm="sha256d")
    btc.difficulty, btc.shares, btc.shares_accepted = 65536.0, 100, 100
    e = estimate_flow(btc, 1000.0, 1600.0, table)
    assert e.hashrate_hs == pytest.approx(100 * 65536 * 2**32 / 600)
    assert e.power_w == pytest.approx(e.hashrate_hs * 2.95e-11)
    assert e.note is None
    # an algorithm the table lacks: the rate stands, the power is null with the reason
    btc.algorithm, btc.dialect, btc.difficulty = "kadena-blake2s", "cryptonote", 5e9
    e = estimate_flow(btc, 1000.0, 1600.0, table)
    assert e.hashrate_hs is not None and e.power_w is None
    assert e.note is not None and "kadena-blake2s" in e.note


def test_no_rate_no_power():
    e = EfficiencyTable([rule("a", "x", 2.0)]).apply(Estimate(note="no shares seen"), _f("x"))
    assert (e.hashrate_hs, e.power_w, e.note) == (None, None, "no shares seen")


def _f(algorithm: str) -> Finding:
    return Finding("stratum-v1", Confidence.CONFIRMED, Side.ORIG, "t", algorithm=algorithm)
