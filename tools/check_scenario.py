"""Compare a replay's report (and flow events) with the ground truth `minewatch synth` wrote.

    python tools/check_scenario.py REPORT.json TRUTH.json [EVENTS.json]

Prints, and exits 1 unless they hold: counts equal the truth exactly (suspect
IPs, by organisation type, region, coin and organisation); total hash rate and
power within 10% of the declared population's (truth power = declared rate x
the bundled efficiency figure of the coin's algorithm). Per miner it reports,
without failing on them (Poisson noise is the miners', not the sensor's): how
many estimates equal the rate their shares stand for (`realised_hs`), how many
are within 10% of the declared rate (split by share count), and, with the
events, how often the 90% interval contains the declared rate.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sensor.estimate.power import bundled_table

# The algorithm of each coin the synthesiser writes (sensor/synth/scenario.py DIALECT_COINS).
ALGORITHMS = {"btc": "sha256d", "ltc": "scrypt", "eth": "ethash", "xmr": "randomx"}


def _counts(rows: list[dict[str, Any]], key: str) -> dict[Any, int]:
    return {row[key]: row["suspect_ips"] for row in rows}


def count_checks(report: dict[str, Any], truth: dict[str, Any]) -> list[tuple[str, bool]]:
    checks = [("suspect_ips", report["totals"]["suspect_ips"] == truth["totals"]["suspect_ips"])]
    for key in ("org_type", "region", "coin", "org"):
        same = _counts(report[f"by_{key}"], key) == _counts(truth[f"by_{key}"], key)
        checks.append((f"by_{key} counts", same))
    return checks


def truth_power(truth: dict[str, Any]) -> float:
    table = bundled_table()
    total = 0.0
    for miner in truth["miners"]:
        watts, _ = table.watts(miner["hashrate_hs"], ALGORITHMS[miner["coin"]])
        total += watts or 0.0
    return total


def per_miner(report: dict[str, Any], truth: dict[str, Any]) -> dict[str, int]:
    estimates = {s["ip"]: s["hashrate_hs"] or 0.0 for s in report["suspects"]}
    out = {"miners": 0, "equal_realised": 0, "many": 0, "many_within": 0, "few": 0}
    for m in truth["miners"]:
        got = estimates.get(m["ip"], 0.0)
        out["miners"] += 1
        out["equal_realised"] += abs(got - m["realised_hs"]) <= 1e-6 * m["realised_hs"]
        group = "many" if m["shares"] >= 100 else "few"
        out[group] += 1
        if group == "many":
            out["many_within"] += abs(got - m["hashrate_hs"]) <= 0.10 * m["hashrate_hs"]
    return out


def coverage(events: Path, truth: dict[str, Any]) -> tuple[int, int]:
    declared = {m["ip"]: m["hashrate_hs"] for m in truth["miners"]}
    inside = total = 0
    with events.open() as fh:
        for line in fh:
            event = json.loads(line)
            if event.get("event_type") != "flow" or event["src_ip"] not in declared:
                continue
            interval = event["mining"].get("hashrate_interval_hs")
            if interval:
                total += 1
                inside += interval[0] <= declared[event["src_ip"]] <= interval[1]
    return inside, total


def main(argv: list[str]) -> int:
    report = json.loads(Path(argv[0]).read_text())
    truth = json.loads(Path(argv[1]).read_text())
    checks = count_checks(report, truth)
    totals = report["totals"]
    rate_dev = totals["hashrate_hs"] / truth["totals"]["hashrate_hs"] - 1
    power_dev = totals["power_w"] / truth_power(truth) - 1
    checks += [("hash rate within 10%", abs(rate_dev) <= 0.10)]
    checks += [("power within 10%", abs(power_dev) <= 0.10)]
    for name, ok in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    print(f"hash rate {totals['hashrate_hs']:.6g} H/s vs {truth['totals']['hashrate_hs']:.6g}"
          f" ({rate_dev:+.2%}); power {totals['power_w']:.6g} W vs {truth_power(truth):.6g}"
          f" ({power_dev:+.2%}); energy {totals['energy_kwh_per_day']:.6g} kWh/day")  # fmt: skip
    m = per_miner(report, truth)
    print(f"per miner: {m['equal_realised']} of {m['miners']} equal the rate of their shares;"
          f" {m['many_within']} of {m['many']} with >= 100 shares within 10% of declared;"
          f" {m['few']} with fewer shares")  # fmt: skip
    if len(argv) > 2:
        inside, total = coverage(Path(argv[2]), truth)
        print(f"90% intervals containing the declared rate: {inside} of {total} flows")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
