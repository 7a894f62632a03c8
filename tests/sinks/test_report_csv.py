"""The CSV tables: the JSON report's lists, row for row and number for number."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from sensor.sinks.report_csv import TABLES, cell, columns, totals_row, write_csv
from tests.sinks.test_report_html import sample


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _same(value: Any, text: str) -> bool:
    if value is None:
        return text == ""
    if isinstance(value, bool):
        return text == str(value).lower()
    if isinstance(value, int):
        return int(text) == value
    if isinstance(value, float):
        return float(text) == value
    if isinstance(value, list):
        return text.split(";") == [str(v) for v in value] if value else text == ""
    if isinstance(value, dict):
        return text == cell(value)
    return bool(text == value)


def test_every_table_equals_its_json_list(tmp_path):
    report, _ = sample()
    written = write_csv(report, tmp_path / "tables")
    assert {p.name for p in written} == {"totals.csv", *TABLES}
    for name, key in TABLES.items():
        rows = _read(tmp_path / "tables" / name)
        assert len(rows) == len(report[key]), name
        for row, expected in zip(rows, report[key], strict=True):
            assert list(row) == list(expected), name  # same columns, same order
            for column, value in expected.items():
                assert _same(value, row[column]), (name, column, value, row[column])


def test_totals_table_carries_window_and_totals_including_nulls(tmp_path):
    report, _ = sample()
    report["totals"]["power_w"] = None
    write_csv(report, tmp_path)
    (row,) = _read(tmp_path / "totals.csv")
    assert row["window_start"] == report["window"]["start"]
    assert int(row["suspect_ips"]) == report["totals"]["suspect_ips"] == 4
    assert float(row["hashrate_hs"]) == report["totals"]["hashrate_hs"]
    assert row["power_w"] == ""
    assert list(row) == list(totals_row(report))


def test_an_empty_list_writes_an_empty_table(tmp_path):
    write_csv({"window": {}, "totals": {}}, tmp_path)
    assert (tmp_path / "suspects.csv").read_text(encoding="utf-8").strip() == ""
    assert columns([{"a": 1}, {"b": 2, "a": 3}]) == ["a", "b"]


def test_cells():
    assert cell(["btc", "xmr"]) == "btc;xmr"
    assert cell(None) == "" and cell(True) == "true" and cell(0.1) == "0.1"
