"""The short human summary `minewatch replay` prints on stdout."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from sensor.sinks.report import ReportBuilder

if TYPE_CHECKING:
    from sensor.replay import ReplayOutcome


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def summary_text(
    outcome: ReplayOutcome, report: ReportBuilder, seconds: float, attributed: bool = False
) -> str:
    """`attributed`: ownership sources were given, so owners are worth a line."""
    data = report.build(outcome.pipeline.stats.first_ts, outcome.pipeline.stats.last_ts)
    totals = data["totals"]
    rate = outcome.packets / seconds if seconds > 0 else 0.0
    lines = [
        f"minewatch replay: {len(outcome.files)} file(s), {outcome.packets:,} packets "
        f"({_size(outcome.bytes)}) in {seconds:.2f} s ({rate:,.0f} packets/s, {outcome.mode})",
        f"mining flows: {totals['mining_flows']} from {totals['suspect_ips']} miner IP(s) to "
        f"{len(data['pools'])} pool endpoint(s); pool egress {_size(totals['pool_egress_bytes'])}",
    ]
    dialects = report.dialect_flows
    if dialects:
        lines.append("flows by dialect: " + _top(dialects, 12))
    if attributed and data["suspects"]:
        lines.append(_by_org_type(data))
    lines.extend(_suspect_line(row, attributed) for row in data["suspects"][:20])
    if len(data["suspects"]) > 20:
        lines.append(f"  ... and {len(data['suspects']) - 20} more (see --report)")
    if report.node_flows:
        lines.append(f"cryptocurrency node flows (not mining): {report.node_flows}")
    health = outcome.pipeline.health()
    errors = sum(health["decode_errors"].values())
    if errors:
        lines.append(f"decode errors: {errors} ({_top(health['decode_errors'])})")
        by_file = outcome.pipeline.decoder.errors_by_source
        lines.extend(
            f"  {n} undecodable frame(s) in {source}" for source, n in by_file.most_common(5)
        )
    for message in outcome.errors.messages:
        lines.append(f"input error: {message}")
    return "\n".join(lines)


def _suspect_line(row: dict[str, Any], attributed: bool) -> str:
    coins = ",".join(row["coins"]) or "?"
    pools = ", ".join(row["pools"][:3])
    if len(row["pools"]) > 3:
        pools += f" and {len(row['pools']) - 3} more"
    line = f"  {row['ip']:<40} {coins:<8} -> {pools}"
    if attributed and (row["org"] or row["org_type"]):
        line += f"  [{row['org'] or '?'}, {row['org_type'] or 'unknown'}]"
    return line


def _by_org_type(data: dict[str, Any]) -> str:
    """Miner IPs by organisation type, largest first, and how many organisations."""
    types = ", ".join(f"{row['org_type']} {row['suspect_ips']}" for row in data["by_org_type"])
    orgs = len(data["by_org"])
    return f"miner IPs by org type: {types} (at {orgs} organisation{'' if orgs == 1 else 's'})"


def _top(counter: Counter[str], most: int = 4) -> str:
    return ", ".join(f"{k} {v}" for k, v in counter.most_common(most))
