"""deploy/prometheus: rules and scrape config check with promtool, unit tests pass, names hold.

The promtool tests run where Debian's `prometheus` package (or any promtool) is
installed, as in CI; the structural checks need only PyYAML.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.promql import (
    DEPLOY,
    RULES_FILE,
    allowed_names,
    load_rules,
    metric_names,
)

PROMETHEUS_DIR = DEPLOY / "prometheus"
UNIT_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
EXAMPLE_CONFIG = PROMETHEUS_DIR / "prometheus.example.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package `prometheus`)"
)
ALERTS = {
    "MinewatchNewMinerDetected": "minewatch_mining_flows_total",
    "MinewatchMinerAtPublicOrganisation": "minewatch_suspect_ips",
    "MinewatchPoolEgressHigh": "job:minewatch_pool_egress_mbps:rate5m",
    "MinewatchSensorDown": "up",
    "MinewatchSensorAbsent": "up",
    "MinewatchKernelDrops": "minewatch_capture_kernel_drops_total",
    "MinewatchRuleReloadFailed": "minewatch_rules_last_reload_success",
}
MAIN_RECORDING = "minewatch:pool_egress_mbps:rate5m"


def _promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def _alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in load_rules() if "alert" in rule}


def _unit_tests() -> list[dict[str, Any]]:
    return [
        test
        for path in UNIT_TESTS
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]
    ]


@needs_promtool
def test_promtool_check_rules_passes():
    done = _promtool("check", "rules", RULES_FILE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@needs_promtool
def test_promtool_unit_tests_pass():
    assert UNIT_TESTS, "no promtool unit tests in deploy/prometheus/tests"
    done = _promtool("test", "rules", *UNIT_TESTS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(UNIT_TESTS)


@needs_promtool
def test_promtool_check_config_accepts_the_example_scrape_config():
    done = _promtool("check", "config", EXAMPLE_CONFIG)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_the_issue_asks_for_exists_and_reads_what_it_should():
    alerts = _alerts()
    assert set(alerts) == set(ALERTS)
    for name, metric in ALERTS.items():
        assert metric in metric_names(alerts[name]["expr"]), name


def test_every_alert_has_a_severity_summary_and_description():
    for name, rule in _alerts().items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        annotations = rule["annotations"]
        assert annotations["summary"].strip(), name
        assert len(annotations["description"]) > len(annotations["summary"]), name


def test_rules_read_only_contract_recorded_and_prometheus_names():
    allowed = allowed_names()
    for rule in load_rules():
        names = metric_names(rule["expr"])
        assert names <= allowed, (rule.get("record") or rule.get("alert"), names - allowed)


def test_the_main_recording_rule_is_the_contracts_egress_rate():
    rules = {rule["record"]: rule["expr"] for rule in load_rules() if "record" in rule}
    expr = " ".join(rules[MAIN_RECORDING].split())
    assert 'rate(minewatch_pool_bytes_total{direction="egress"}[5m])' in expr
    assert expr.startswith("sum without (instance)")
    assert expr.endswith("* 8 / 1e6")


def test_unit_tests_fire_every_alert_and_evaluate_the_main_recording_rule():
    fired = {
        case["alertname"]
        for test in _unit_tests()
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert fired == set(ALERTS)
    evaluated = set().union(
        *(
            metric_names(case["expr"])
            for test in _unit_tests()
            for case in test.get("promql_expr_test", [])
        )
    )
    assert MAIN_RECORDING in evaluated


def test_example_scrape_config_loads_the_rules_and_scrapes_job_minewatch():
    config = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    assert "minewatch.rules.yml" in config["rule_files"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # The sensor-down alerts look for this job name.
    assert jobs["minewatch"]["static_configs"][0]["targets"]


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum without (instance) (rate(minewatch_pool_bytes_total{direction="egress"}[5m]))'
            " * 8 / 1e6",
            {"minewatch_pool_bytes_total"},
        ),
        (
            "job:x:rate5m > on () group_left () y offset 10m unless z",
            {"job:x:rate5m", "y", "z"},
        ),
        ('topk(5, sum by (org_type) (a{job=~"$job"}[$__rate_interval])) * 3.6e6', {"a"}),
        ('absent(up{job="minewatch"}) or vector(1) and bool_thing', {"up", "bool_thing"}),
    ],
)
def test_metric_names_finds_selectors_only(expr: str, names: set[str]):
    assert metric_names(expr) == names
