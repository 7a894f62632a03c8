"""Writes a scenario's capture and, beside it, its ground truth and ownership registry.

FILE.pcap            the traffic
FILE.truth.json      every miner and the totals by org type, region, coin, organisation
FILE.registry.csv    the organisations' prefixes, for `minewatch replay --ownership`
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import orjson

from sensor.synth.frames import background_frames, miner_frames
from sensor.synth.population import plan, registry_csv, truth
from sensor.synth.scenario import Scenario
from sensor.synth.writer import PcapWriter, Record, merge


@dataclass(frozen=True, slots=True)
class Outputs:
    pcap: Path
    truth: Path
    registry: Path
    packets: int
    bytes: int
    miners: int
    shares: int


def sibling(pcap: Path, suffix: str) -> Path:
    """FILE.pcap -> FILE<suffix> (FILE.truth.json, FILE.registry.csv)."""
    stem = pcap.name[: -len(pcap.suffix)] if pcap.suffix else pcap.name
    return pcap.with_name(stem + suffix)


def synthesise(scenario: Scenario, pcap: Path, seed: int | None = None) -> Outputs:
    """Write the three files; `seed` (if given) replaces the scenario's."""
    if seed is not None:
        scenario = replace(scenario, seed=seed)
    miners = plan(scenario)
    streams: list[Iterator[Record]] = [miner_frames(m) for m in miners]
    streams += _background(scenario)
    with pcap.open("wb") as fh:
        writer = PcapWriter(fh)
        writer.write(merge(streams))
    facts = truth(scenario, miners)
    truth_path, registry_path = sibling(pcap, ".truth.json"), sibling(pcap, ".registry.csv")
    truth_path.write_bytes(orjson.dumps(facts, option=orjson.OPT_INDENT_2) + b"\n")
    registry_path.write_text(registry_csv(scenario), encoding="utf-8")
    return Outputs(
        pcap,
        truth_path,
        registry_path,
        writer.packets,
        writer.bytes,
        len(miners),
        facts["totals"]["shares"],
    )


def _background(scenario: Scenario) -> list[Iterator[Record]]:
    """Ordinary conversations of hosts in the organisations, spread over the duration."""
    orgs = scenario.organisations
    start_us, span_us = round(scenario.start * 1e6), round(scenario.duration * 1e6)
    streams = []
    for n in range(scenario.background_flows if orgs else 0):
        rng = random.Random(f"{scenario.seed}/background/{n}")
        org = orgs[rng.randrange(len(orgs))]
        net = ipaddress.IPv4Network(org.prefix)
        client = str(net[1 + rng.randrange(max(1, net.num_addresses - 2))])
        vlan = org.vlan if org.vlan is not None else scenario.vlan
        begin = start_us + rng.randrange(span_us)
        streams.append(background_frames(n, client, begin, rng, vlan))
    return streams
