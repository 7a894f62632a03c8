"""The HTML report: every number on the page equals the JSON it was drawn from.

The page is parsed with html.parser; each element with `data-field` must hold
the value at that JSON path (and read "unknown" for null), `data-sum-of`
numbers must be the sum of the paths they name, and the egress buckets must
add up to the total egress.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from sensor.model import Attribution, Estimate, Finding, FlowRecord, MiningRecord, Side
from sensor.sinks.report import ReportBuilder
from sensor.sinks.report_events import EventLog, Span, egress_series
from sensor.sinks.report_html import UNKNOWN, fmt, render_html

T0 = 1_700_000_000.0
CAMPUS = Attribution("Campus <b>&</b>", "education", "Jiangsu/Nanjing")
BUREAU = Attribution("Bureau", "government", "Jiangsu/Suzhou")
# miner, pool, coin, org, hash rate (None: not estimated), power, start, seconds, egress
FLOWS = (
    ("10.1.0.2", "198.51.100.10", "btc", CAMPUS, 2.5e14, 3250.0, 0.0, 600.0, 90_000),
    ("10.1.0.3", "198.51.100.10", "btc", CAMPUS, 1.0e14, None, 60.0, 300.0, 40_000),
    ("10.2.0.2", "198.51.100.12", "xmr", BUREAU, 9000.0, 75.0, 30.0, 500.0, 120_000),
    ("10.9.0.9", "198.51.100.13", None, Attribution(), None, None, 100.0, 100.0, 5_000),
)


def _records(n: int, row: tuple[Any, ...]) -> tuple[MiningRecord, FlowRecord]:
    miner, pool, coin, org, rate, power, start, seconds, egress = row
    finding = Finding("stratum-v1", "confirmed", Side.ORIG, "mw-1", coin=coin, shares=10)
    rec = MiningRecord(
        n, T0 + start, "TCP", miner, 40000 + n, pool, 3333, f"{pool}:3333", None, finding, org
    )
    estimate = Estimate(hashrate_hs=rate, power_w=power, seconds=seconds)
    flow = FlowRecord(rec, 10, 10, egress, egress // 2, T0 + start, T0 + start + seconds, "c", "e")
    flow.estimate = estimate if rate is not None else Estimate(note="no shares seen")
    return rec, flow


def sample() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A report with known and unknown figures, and its egress series."""
    builder, log = ReportBuilder(), EventLog()
    for n, row in enumerate(FLOWS):
        rec, flow = _records(n, row)
        builder.mining(rec)
        builder.flow_end(flow)
        log.see(flow.start)
        log.see(flow.end)
        log.spans.append(Span(flow.start, flow.end, flow.bytes_toserver))
    return builder.build(log.start, log.end), egress_series(log, buckets=12)


class Numbers(HTMLParser):
    """Collects (attributes, text) of every element carrying data-field/-sum-of/-series."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[dict[str, str], str]] = []
        self._open: list[tuple[str, dict[str, str], list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open.append((tag, {k: v or "" for k, v in attrs}, []))

    def handle_data(self, data: str) -> None:
        for _, _, text in self._open:
            text.append(data)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            name, a, text = self._open.pop()
            if {"data-field", "data-sum-of", "data-series"} & set(a):
                self.found.append((a, "".join(text)))
            if name == tag:
                break


def collect(page: str) -> list[tuple[dict[str, str], str]]:
    parser = Numbers()
    parser.feed(page)
    parser.close()
    return parser.found


def at(report: dict[str, Any], path: str) -> Any:
    """The value at a JSON path like `suspects[2].hashrate_hs`."""
    value: Any = report
    for key, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        value = value[int(index)] if index else value[key]
    return value


def check_page(page: str, report: dict[str, Any]) -> dict[str, int]:
    """Assert every number on the page against the report; counts per kind of number."""
    seen = {"field": 0, "sum": 0, "series": 0}
    egress = 0.0
    for attrs, text in collect(page):
        if "data-field" in attrs:
            _check_value(at(report, attrs["data-field"]), attrs["data-value"], text)
            seen["field"] += 1
        elif "data-sum-of" in attrs:
            parts = [at(report, p) for p in attrs["data-sum-of"].split()]
            known = [v for v in parts if v is not None]
            _check_value(sum(known) if known else None, attrs["data-value"], text)
            seen["sum"] += 1
        elif attrs["data-series"] == "egress.bytes":
            egress += float(attrs["data-value"])
            seen["series"] += 1
    if seen["series"]:
        assert abs(egress - report["totals"]["pool_egress_bytes"]) < 0.01 * seen["series"]
    return seen


def _check_value(expected: Any, value: str, text: str) -> None:
    if expected is None:
        assert (value, text.strip()) == ("", UNKNOWN)
    elif isinstance(expected, str):
        assert value == expected and text.strip() == expected
    elif isinstance(expected, bool) or not isinstance(expected, int | float):
        raise AssertionError(f"not a number: {expected!r}")
    else:
        assert float(value) == expected, (value, expected)
        assert text.strip(), "a number with no text"


def test_every_number_on_the_page_equals_the_json():
    report, series = sample()
    seen = check_page(render_html(report, series), report)
    # headline (7) + window (3) + plots + orgs + suspects (3 each) + pools
    assert seen["field"] >= 7 + 3 + len(report["suspects"]) * 3 + len(report["pools"])
    assert seen["sum"] == 0  # organisations carry their own hash rate and power
    assert seen["series"] == 12


def test_headline_figures_and_unknowns():
    report, _ = sample()
    found = {a["data-field"]: t for a, t in collect(render_html(report)) if "data-field" in a}
    assert found["totals.suspect_ips"] == "4"
    assert found["totals.hashrate_hs"] == fmt(report["totals"]["hashrate_hs"], "hs")
    assert found["totals.energy_kwh_per_day"].endswith("kWh/day")
    unknown = report["suspects"][3]
    assert unknown["ip"] == "10.9.0.9" and unknown["hashrate_hs"] is None
    assert found["suspects[3].hashrate_hs"] == UNKNOWN


def test_all_null_estimates_read_unknown_not_zero():
    report, _ = sample()
    for key in ("hashrate_hs", "power_w", "energy_kwh_per_day"):
        report["totals"][key] = None
    found = {a["data-field"]: t for a, t in collect(render_html(report)) if "data-field" in a}
    assert {found[f"totals.{k}"] for k in ("hashrate_hs", "power_w", "energy_kwh_per_day")} == {
        UNKNOWN
    }


def test_without_a_series_egress_is_a_bar_per_coin():
    report, _ = sample()
    page = render_html(report)
    assert "data-series" not in page
    fields = {a["data-field"] for a, _ in collect(page) if "data-field" in a}
    assert {f"by_coin[{i}].pool_egress_bytes" for i in range(len(report["by_coin"]))} <= fields
    check_page(page, report)


def test_text_is_escaped_and_the_page_is_self_contained():
    report, series = sample()
    page = render_html(report, series)
    assert "Campus &lt;b&gt;&amp;&lt;/b&gt;" in page and "<b>&</b>" not in page
    assert "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    assert "https://" not in page and "<link" not in page


def test_format_of_numbers():
    assert fmt(1_234_567, "count") == "1,234,567"
    assert fmt(2.5e14, "hs") == "250 TH/s"
    assert fmt(3250.0, "w") == "3.25 kW"
    assert fmt(0.25, "share") == "25.0 %"
    assert fmt(None, "hs") == UNKNOWN
