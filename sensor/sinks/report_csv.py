"""The report as CSV tables, one file per list of the JSON report.

Spreadsheets are where regulators' figures end up, so each table is the JSON
list as it is: the same rows in the same order, one column per key (the
contract's keys first, then any others the rows carry), lists joined with ";",
null as an empty cell and numbers written as JSON writes them.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

# File name -> the report key whose list it holds.
TABLES = {
    "suspects.csv": "suspects",
    "by_org.csv": "by_org",
    "by_org_type.csv": "by_org_type",
    "by_region.csv": "by_region",
    "by_coin.csv": "by_coin",
    "pools.csv": "pools",
}
LIST_SEPARATOR = ";"


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """Every key of the rows, in the order they first appear."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return LIST_SEPARATOR.join(cell(v) for v in value)
    if isinstance(value, dict):
        return LIST_SEPARATOR.join(f"{k}={cell(v)}" for k, v in value.items())
    return str(value)  # repr of a float round-trips, as in the JSON


def write_table(rows: list[dict[str, Any]], path: Path) -> None:
    names = columns(rows)
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(names)
        for row in rows:
            writer.writerow([cell(row.get(name)) for name in names])


def totals_row(report: dict[str, Any]) -> dict[str, Any]:
    """The window and the totals as one row (window keys prefixed `window_`)."""
    window = {f"window_{k}": v for k, v in (report.get("window") or {}).items()}
    return {**window, **(report.get("totals") or {})}


def write_csv(report: dict[str, Any], folder: Path) -> list[Path]:
    """Write totals.csv and the report's tables into `folder` (created if needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_table([totals_row(report)], folder / "totals.csv")
    written = [folder / "totals.csv"]
    for name, key in TABLES.items():
        path = folder / name
        write_table(report.get(key) or [], path)
        written.append(path)
    return written
