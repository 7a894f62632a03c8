"""The report as one self-contained HTML page: inline CSS and SVG, no scripts, no network.

Regulators read it offline and forward it by mail, so nothing is fetched and
the plots are drawn here as plain SVG. Every number on the page sits in an
element with `data-field` (its JSON path in the report, e.g.
`totals.suspect_ips`) and `data-value` (the JSON value itself; empty for null),
so a test can check the page against the JSON. Numbers the JSON does not hold
say what they come from instead: `data-sum-of` lists the JSON paths they add
up, `data-series` marks the egress-over-time buckets. Unknown figures (null)
read "unknown", never 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

UNKNOWN = "unknown"
_SI = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.sub{color:#5b6475}.cards{display:flex;flex-wrap:wrap;gap:12px;margin-top:16px}
.card{border:1px solid #d6dae3;border-radius:6px;padding:10px 14px;min-width:150px}
.card .v{font-size:22px;font-weight:600}.card .k{color:#5b6475;font-size:12px}
table{border-collapse:collapse;margin:6px 0}
th,td{border:1px solid #d6dae3;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eef1f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
svg text{font:12px system-ui,sans-serif;fill:#1d2330}.plots{display:flex;flex-wrap:wrap;gap:24px}
"""


def fmt(value: Any, kind: str) -> str:
    """A number for reading: counts with separators, rates with SI prefixes."""
    if value is None:
        return UNKNOWN
    if kind == "count":
        return f"{int(value):,}"
    if kind == "share":
        return f"{value * 100:.1f} %"
    if kind == "bytes":
        return _si(float(value), "B")
    if kind == "mbps":
        return f"{value:,.3f} Mbps"
    if kind == "kwh":
        return f"{value:,.1f} kWh/day"
    if kind == "text":
        return str(value)
    return _si(float(value), {"hs": "H/s", "w": "W"}[kind])


def _si(value: float, unit: str) -> str:
    for scale, prefix in _SI:
        if abs(value) >= scale:
            return f"{value / scale:.4g} {prefix}{unit}"
    return f"{value:.4g} {unit}"


def data_value(value: Any) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def num(path: str, value: Any, kind: str, tag: str = "span") -> str:
    """A number (or null) with the JSON path it shows."""
    return (
        f'<{tag} data-field="{escape(path)}" data-value="{escape(data_value(value))}">'
        f"{escape(fmt(value, kind))}</{tag}>"
    )


def summed(paths: Sequence[str], value: float | None, kind: str) -> str:
    """A number the JSON lacks but holds the parts of: their sum, naming them."""
    return (
        f'<span data-sum-of="{escape(" ".join(paths))}" data-value="{escape(data_value(value))}">'
        f"{escape(fmt(value, kind))}</span>"
    )


# -- plots ---------------------------------------------------------------------------------
Bar = tuple[str, Any, str]  # label, value (None: unknown), JSON path


def bar_chart(title: str, bars: Sequence[Bar], kind: str, width: int = 560) -> str:
    """Horizontal bars, one per row; unknown values get no bar and say so."""
    row, label_w, value_w = 22, 170, 110
    span = width - label_w - value_w
    top = max((v for _, v, _ in bars if v is not None), default=0) or 1
    height = row * max(len(bars), 1) + 28
    parts = [f'<text x="0" y="14" font-weight="600">{escape(title)}</text>']
    for i, (label, value, path) in enumerate(bars):
        y = 24 + i * row
        w = 0.0 if value is None else max(span * value / top, 1.0)
        parts.append(f'<text x="0" y="{y + 14}">{escape(_clip(label))}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="#3b6fb6"/>'
        )
        parts.append(
            f'<text x="{label_w + w + 6:.1f}" y="{y + 14}" data-field="{escape(path)}" '
            f'data-value="{escape(data_value(value))}">{escape(fmt(value, kind))}</text>'
        )
    if not bars:
        parts.append('<text x="0" y="40">no data</text>')
    return _svg(width, height, title, parts)


def egress_chart(series: Sequence[dict[str, Any]], width: int = 560, height: int = 200) -> str:
    """Pool egress per time bucket as columns; each column carries its bucket's Mbps."""
    left, bottom = 70, 24
    plot_w, plot_h = width - left - 10, height - bottom - 24
    top = max((b["mbps"] for b in series), default=0) or 1
    step = plot_w / max(len(series), 1)
    parts = [
        '<text x="0" y="14" font-weight="600">Pool egress over time</text>',
        f'<text x="0" y="{24 + 10}" data-series="egress.max_mbps" data-value="{top!r}">'
        f"{escape(fmt(top, 'mbps'))}</text>",
        f'<text x="0" y="{height - 6}">{escape(_hhmm(series[0]["start"]))}</text>',
        f'<text x="{width - 10}" y="{height - 6}" text-anchor="end">'
        f"{escape(_hhmm(series[-1]['start'] + series[-1]['seconds']))}</text>",
        f'<line x1="{left}" y1="{24 + plot_h}" x2="{width - 10}" y2="{24 + plot_h}" '
        'stroke="#5b6475"/>',
    ]
    for i, b in enumerate(series):
        h = plot_h * b["mbps"] / top
        parts.append(
            f'<rect x="{left + i * step:.1f}" y="{24 + plot_h - h:.1f}" '
            f'width="{max(step - 1, 1):.1f}" height="{h:.1f}" fill="#3b6fb6" '
            f'data-series="egress.bytes" data-value="{b["bytes"]!r}">'
            f"<title>{escape(fmt(b['mbps'], 'mbps'))}</title></rect>"
        )
    return _svg(width, height, "Pool egress over time", parts)


def _hhmm(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _clip(label: str, size: int = 24) -> str:
    return label if len(label) <= size else label[: size - 1] + "…"


def _svg(width: int, height: int, title: str, parts: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        + "".join(parts)
        + "</svg>"
    )


# -- page sections -------------------------------------------------------------------------
HEADLINE = (
    ("totals.suspect_ips", "suspect IPs", "count"),
    ("totals.mining_flows", "mining flows", "count"),
    ("totals.pool_egress_mbps", "pool egress", "mbps"),
    ("totals.pool_egress_bytes", "pool egress bytes", "bytes"),
    ("totals.hashrate_hs", "hash rate", "hs"),
    ("totals.power_w", "power", "w"),
    ("totals.energy_kwh_per_day", "energy", "kwh"),
)


def headline(report: dict[str, Any]) -> str:
    totals = report.get("totals") or {}
    cards = [
        f'<div class="card"><div class="v">{num(path, totals.get(path[7:]), kind)}</div>'
        f'<div class="k">{escape(label)}</div></div>'
        for path, label, kind in HEADLINE
    ]
    return f'<div class="cards">{"".join(cards)}</div>'


# (title, rows grouped by, figure, kind) of each bar chart after the egress one.
BAR_CHARTS = (
    ("Miners by organisation type", "org_type", "suspect_ips", "count"),
    ("Miners by region", "region", "suspect_ips", "count"),
    ("Hash rate by coin", "coin", "hashrate_hs", "hs"),
    ("Power by coin", "coin", "power_w", "w"),
    ("Hash rate by organisation type", "org_type", "hashrate_hs", "hs"),
    ("Hash rate by region", "region", "hashrate_hs", "hs"),
)


def plots(report: dict[str, Any], series: Sequence[dict[str, Any]] | None) -> str:
    coins = report.get("by_coin") or []
    egress = (
        egress_chart(series)
        if series
        else bar_chart("Pool egress by coin", _bars(coins, "coin", "pool_egress_bytes"), "bytes")
    )
    charts = [egress] + [
        bar_chart(title, _bars(report.get(_SECTIONS[label]) or [], label, key), kind)
        for title, label, key, kind in BAR_CHARTS
    ]
    return f'<div class="plots">{"".join(charts)}</div>'


_SECTIONS = {"coin": "by_coin", "org_type": "by_org_type", "region": "by_region"}


def _bars(rows: list[dict[str, Any]], label: str, key: str) -> list[Bar]:
    """One bar per row of the `by_<label>` list, pointing at its `key`."""
    section = _SECTIONS[label]
    return [
        (r.get(label) or UNKNOWN, r.get(key), f"{section}[{i}].{key}") for i, r in enumerate(rows)
    ]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Cells are HTML already (escaped text or numbers from `num`)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(rows_cells(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def rows_cells(cells: Sequence[str]) -> list[str]:
    return [f'<td class="n">{c}</td>' if "data-value" in c else f"<td>{c}</td>" for c in cells]


def text(value: Any) -> str:
    if value is None:
        return UNKNOWN
    if isinstance(value, list):
        return escape(", ".join(str(v) for v in value)) or "-"
    return escape(str(value))


def org_table(report: dict[str, Any]) -> str:
    by_ip = {s["ip"]: (i, s) for i, s in enumerate(report.get("suspects") or [])}
    rows = []
    for i, org in enumerate(report.get("by_org") or []):
        p = f"by_org[{i}]"
        rows.append(
            [
                text(org.get("org")),
                text(org.get("org_type")),
                text(org.get("region")),
                num(f"{p}.suspect_ips", org.get("suspect_ips"), "count"),
                text(org.get("coins")),
                _org_figure(org, p, by_ip, "hashrate_hs", "hs"),
                _org_figure(org, p, by_ip, "power_w", "w"),
                num(f"{p}.energy_kwh_per_day", org.get("energy_kwh_per_day"), "kwh"),
            ]
        )
    headers = ("organisation", "type", "region", "IPs", "coins", "hash rate", "power", "energy")
    return table(headers, rows)


def _org_figure(
    org: dict[str, Any], path: str, by_ip: dict[str, tuple[int, Any]], key: str, kind: str
) -> str:
    """The organisation's own figure when the JSON has one, else its miners' sum (reports
    written before organisations carried their own figures)."""
    if key in org:
        return num(f"{path}.{key}", org[key], kind)
    members = [by_ip[ip] for ip in org.get("ips") or () if ip in by_ip]
    known = [s[key] for _, s in members if s.get(key) is not None]
    paths = [f"suspects[{i}].{key}" for i, _ in members]
    return summed(paths, sum(known) if known else None, kind)


def suspects_table(report: dict[str, Any]) -> str:
    rows = []
    for i, s in enumerate(report.get("suspects") or []):
        p = f"suspects[{i}]"
        rows.append(
            [
                text(s.get("ip")),
                text(s.get("org")),
                text(s.get("org_type")),
                text(s.get("region")),
                text(s.get("coins")),
                text(s.get("dialects")),
                text(s.get("pools")),
                num(f"{p}.pool_egress_bytes", s.get("pool_egress_bytes"), "bytes"),
                num(f"{p}.hashrate_hs", s.get("hashrate_hs"), "hs"),
                num(f"{p}.power_w", s.get("power_w"), "w"),
                text(s.get("first_seen")),
                text(s.get("last_seen")),
            ]
        )
    headers = ("IP", "organisation", "type", "region", "coins", "dialects", "pools")
    more = ("egress", "hash rate", "power", "first seen", "last seen")
    return table(headers + more, rows)


def pools_table(report: dict[str, Any]) -> str:
    rows = [
        [
            text(p.get("endpoint")),
            text(p.get("host")),
            text(p.get("coin")),
            num(f"pools[{i}].clients", p.get("clients"), "count"),
            num(f"pools[{i}].hashrate_hs", p.get("hashrate_hs"), "hs"),
            num(f"pools[{i}].power_w", p.get("power_w"), "w"),
        ]
        for i, p in enumerate(report.get("pools") or [])
    ]
    return table(("endpoint", "host", "coin", "clients", "hash rate", "power"), rows)


def render_html(
    report: dict[str, Any],
    series: Sequence[dict[str, Any]] | None = None,
    title: str = "minewatch mining report",
) -> str:
    """The page for `report` (ReportBuilder.build()); `series` from report_events.egress_series."""
    window = report.get("window") or {}
    sub = (
        f"Observed {num('window.start', window.get('start'), 'text')} to "
        f"{num('window.end', window.get('end'), 'text')} "
        f"({num('window.seconds', window.get('seconds'), 'text')} s). Hash rate from accepted "
        "shares &times; difficulty; power from the efficiency table; unknown where not estimated."
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f'<h1>{escape(title)}</h1><p class="sub">{sub}</p>'
        f"{headline(report)}<h2>Plots</h2>{plots(report, series)}"
        f"<h2>Organisations</h2>{org_table(report)}"
        f"<h2>Suspects</h2>{suspects_table(report)}"
        f"<h2>Pools</h2>{pools_table(report)}</body></html>\n"
    )
