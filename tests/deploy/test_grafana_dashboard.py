"""deploy/grafana/minewatch.json: importable, on the DS_PROMETHEUS input, contract names only."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.deploy.promql import DEPLOY, allowed_names, metric_names

DASHBOARD = DEPLOY / "grafana" / "minewatch.json"
DS_UID = "${DS_PROMETHEUS}"
BUILTIN_ANNOTATIONS = "-- Grafana --"
GRID_WIDTH = 24


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included, rows themselves excluded."""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def _exprs(dashboard: dict[str, Any]) -> dict[str, list[str]]:
    return {p["title"]: [t["expr"] for t in p["targets"]] for p in _panels(dashboard)}


def test_datasource_is_an_import_input(dashboard):
    inputs = {i["name"]: i for i in dashboard["__inputs"]}
    assert inputs["DS_PROMETHEUS"]["type"] == "datasource"
    assert inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"
    required = {(r["type"], r["id"]) for r in dashboard["__requires"]}
    assert ("datasource", "prometheus") in required
    assert {("panel", p["type"]) for p in _panels(dashboard)} <= required
    # Import assigns its own id; a fixed uid keeps links stable across imports.
    assert dashboard["id"] is None
    assert dashboard["uid"]


def test_every_panel_and_query_uses_the_input_datasource(dashboard):
    for panel in _panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": DS_UID}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DS_UID, panel["title"]
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"]["uid"] == DS_UID, variable["name"]
    # Nothing points at a datasource of the Grafana it was exported from.
    assert set(_datasource_uids(dashboard)) == {DS_UID, BUILTIN_ANNOTATIONS}


def _datasource_uids(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource" and isinstance(value, dict):
                yield value["uid"]
            else:
                yield from _datasource_uids(value)
    elif isinstance(node, list):
        for item in node:
            yield from _datasource_uids(item)


def test_expressions_use_only_contract_and_recorded_names(dashboard):
    allowed = allowed_names()
    for title, exprs in _exprs(dashboard).items():
        for expr in exprs:
            names = metric_names(expr)
            assert names, (title, expr)
            assert names <= allowed, (title, names - allowed)


def test_variables_query_contract_names(dashboard):
    allowed = allowed_names()
    for variable in dashboard["templating"]["list"]:
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["query"]["query"])
        assert m, variable["name"]
        assert metric_names(m.group(1)) <= allowed, variable["name"]


@pytest.mark.parametrize(
    ("topic", "needs"),
    [
        ("pool egress Mbps", {"minewatch:pool_egress_mbps:rate5m"}),
        ("suspect IPs by organisation type", {"job_org_type:minewatch_suspect_ips:sum"}),
        ("suspect IPs by region", {"job_region:minewatch_suspect_ips:sum"}),
        ("hash rate by coin", {"job_coin:minewatch_estimated_hashrate_hashes_per_second:sum"}),
        ("power by coin", {"job_coin:minewatch_estimated_power_watts:sum"}),
        (
            "sensor health",
            {
                "minewatch_packets_total",
                "minewatch_decode_errors_total",
                "minewatch_capture_kernel_drops_total",
                "minewatch_flows_active",
                "minewatch_flows_evicted_total",
            },
        ),
    ],
)
def test_dashboard_shows(dashboard, topic: str, needs: set[str]):
    shown = set().union(*(metric_names(e) for exprs in _exprs(dashboard).values() for e in exprs))
    assert needs <= shown, topic


def test_organisation_tables_group_by_org_type(dashboard):
    tables = [p for p in _panels(dashboard) if p["type"] == "table" and "rganisation" in p["title"]]
    assert tables
    for table in tables:
        assert all("org_type" in t["expr"] for t in table["targets"]), table["title"]
        assert all(t.get("instant") and t["format"] == "table" for t in table["targets"])


def test_panels_have_unique_ids_and_do_not_overlap(dashboard):
    ids = [p["id"] for p in dashboard["panels"]] + [p["id"] for p in _panels(dashboard)]
    assert len(set(ids)) == len(dashboard["panels"])  # nested panels are among the top level
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= GRID_WIDTH, panel["title"]
        mine = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not mine & cells, panel["title"]
        cells |= mine
