"""`minewatch synth SCENARIO.yaml -o FILE.pcap [--seed N]`: a capture with known ground truth."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sensor.synth.build import synthesise
from sensor.synth.scenario import ScenarioError, load_scenario


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="write a capture of a declared mining population, with its ground truth",
    )
    p.add_argument("scenario", type=Path, metavar="SCENARIO", help="scenario YAML file")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        metavar="FILE",
        help="pcap to write; FILE.truth.json and FILE.registry.csv are written beside it",
    )
    p.add_argument("--seed", type=int, help="random seed (default: the scenario's, else 0)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(f"minewatch: invalid scenario:\n{exc}", file=sys.stderr)
        return 2
    began = time.monotonic()
    out = synthesise(scenario, args.output, args.seed)
    print(
        f"{out.pcap}: {out.packets} packets, {out.bytes} bytes, {out.miners} miners, "
        f"{out.shares} shares in {time.monotonic() - began:.1f}s; "
        f"truth {out.truth}, registry {out.registry}",
        file=sys.stderr,
    )
    return 0
