"""`minewatch replay PATH...`: detect mining in capture files."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from sensor.attribute import Attributor
from sensor.attribute.resolver import OwnershipResolver
from sensor.capture.progress import Progress
from sensor.commands.ownership import (
    add_home_net_option,
    add_ownership_option,
    home_net,
    open_resolver,
)
from sensor.flows.table import FlowSettings
from sensor.pipeline import Endpoints, Pipeline, PipelineSettings
from sensor.replay import Replay
from sensor.rules.loader import load_rules
from sensor.rules.model import RuleSet
from sensor.sinks import Sink
from sensor.sinks.events import EveWriter
from sensor.sinks.report import ReportBuilder
from sensor.sinks.summary import summary_text


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="detect mining in pcap/pcapng files or folders")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument(
        "--rules",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="extra rule folder (repeatable); adds to the bundled rules",
    )
    p.add_argument(
        "--rules-replace",
        action="store_true",
        help="use only the --rules folders, not the bundled rules",
    )
    p.add_argument(
        "--events", metavar="FILE", help="write EVE-style JSON Lines events ('-': stdout)"
    )
    p.add_argument("--report", type=Path, metavar="FILE", help="write the JSON report")
    add_ownership_option(p)
    add_home_net_option(p)
    p.add_argument(
        "--no-prefilter",
        action="store_true",
        help="read every packet in Python (no libpcap BPF passes)",
    )
    p.add_argument(
        "--stream-depth",
        type=int,
        default=64,
        metavar="KIB",
        help="bytes reassembled per direction before a flow is recognised",
    )
    p.add_argument("--max-flows", type=int, default=200_000, help="flow table size")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress line on stderr (default: when stderr is a terminal)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    rules = load_rules(args.rules, replace=args.rules_replace)
    # Before any capture is read: a bad ownership file stops the run (exit 2) up front.
    resolver = open_resolver(args.ownership)
    try:
        return _replay(args, rules, resolver)
    finally:
        if resolver is not None:
            resolver.close()


def _replay(args: argparse.Namespace, rules: RuleSet, resolver: OwnershipResolver | None) -> int:
    settings = PipelineSettings(
        flows=FlowSettings(max_flows=args.max_flows, stream_depth=args.stream_depth * 1024)
    )
    report = ReportBuilder(resolver, home_net(args.home_net, resolver))
    sinks: list[Sink] = [report]
    if args.events:
        sinks.append(EveWriter(args.events))
    started = time.monotonic()
    factory = _factory(rules, sinks, resolver)
    replay = Replay(args.paths, factory, settings, not args.no_prefilter, Progress(args.progress))
    outcome = replay.run()
    stats = outcome.pipeline.stats
    if args.report:
        report.write(args.report, stats.first_ts, stats.last_ts)
    if args.events != "-":
        print(summary_text(outcome, report, time.monotonic() - started, resolver is not None))
    return 2 if outcome.errors.messages else 0


def _factory(
    rules: RuleSet, sinks: list[Sink], attributor: Attributor | None
) -> Callable[[PipelineSettings, bool, Callable[[Endpoints], bool] | None], Pipeline]:
    def build(
        settings: PipelineSettings, with_sinks: bool, admit: Callable[[Endpoints], bool] | None
    ) -> Pipeline:
        if not with_sinks:  # the scan pass: its records go nowhere, so no owners to look up
            return Pipeline(rules, (), settings, admit=admit)
        return Pipeline(rules, sinks, settings, attributor=attributor, admit=admit)

    return build
