"""Synthesise a scenario and replay it: the ground truth, the report and the flow events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sensor.cli import main
from sensor.synth.build import sibling


def synth_and_replay(scenario: Path, out: Path) -> tuple[dict, dict, list[dict[str, Any]]]:
    pcap = out / f"{scenario.stem}.pcap"
    assert main(["synth", str(scenario), "-o", str(pcap)]) == 0
    report, events = out / "report.json", out / "events.json"
    registry = sibling(pcap, ".registry.csv")
    args = ["replay", str(pcap), "--ownership", str(registry)]
    assert main([*args, "--report", str(report), "--events", str(events)]) == 0
    truth = json.loads(sibling(pcap, ".truth.json").read_text())
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    flows = [e for e in lines if e["event_type"] == "flow"]
    return truth, json.loads(report.read_text()), flows
