"""`minewatch replay PATH...`: detect mining in capture files."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sensor.attribute import Attributor
from sensor.attribute.resolver import OwnershipResolver
from sensor.capture.progress import Progress
from sensor.commands.argtypes import duration, listen_address
from sensor.commands.ownership import (
    add_home_net_option,
    add_ownership_option,
    home_net,
    open_resolver,
)
from sensor.config import load_config
from sensor.flows.table import FlowSettings
from sensor.pipeline import Endpoints, Pipeline, PipelineSettings
from sensor.replay import Replay
from sensor.rules.loader import load_rules
from sensor.rules.model import RuleSet
from sensor.sinks import Sink
from sensor.sinks.events import EveWriter
from sensor.sinks.metrics import DEFAULT_WINDOW, Exporter, ReplayHealth
from sensor.sinks.report import ReportBuilder
from sensor.sinks.summary import summary_text
from sensor.sinks.web import DEFAULT_LISTEN_ADDRESS, MetricsServer, parse_listen_address
from sensor.sinks.webconfig import WebConfig, load_web_config


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
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="the daemon's YAML config: its rules, ownership, home_net, events and report "
        "settings apply where no flag is given",
    )
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
    _add_metrics_options(p)
    p.set_defaults(run=run)


def _add_metrics_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--metrics-file",
        type=Path,
        metavar="FILE",
        help="write the final metrics in Prometheus text format (atomically; for "
        "node_exporter's textfile collector name it *.prom)",
    )
    _add_web_options(p)
    p.add_argument(
        "--metrics.top-ips",
        dest="metrics_top_ips",
        type=_count,
        default=0,
        metavar="N",
        help="also export pool egress of the N busiest miner IPs (IP label; default 0: off)",
    )
    p.add_argument(
        "--metrics.suspect-window",
        dest="metrics_suspect_window",
        type=duration,
        default=DEFAULT_WINDOW,
        metavar="DURATION",
        help="how recently a miner must have been seen to count in minewatch_suspect_ips, "
        "in capture time (default 15m)",
    )


def _add_web_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--web.listen-address",
        dest="web_listen_address",
        nargs="?",
        const=parse_listen_address(DEFAULT_LISTEN_ADDRESS),
        type=listen_address,
        metavar="HOST:PORT",
        help=f"serve live metrics at /metrics while replaying (alone: {DEFAULT_LISTEN_ADDRESS})",
    )
    p.add_argument(
        "--web.config.file",
        dest="web_config_file",
        type=Path,
        metavar="FILE",
        help="exporter-toolkit web config: TLS and basic auth for the metrics endpoint",
    )
    p.add_argument(
        "--linger",
        type=duration,
        default=0.0,
        metavar="SECONDS",
        help="keep serving metrics this long after the replay ends, then exit",
    )


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number (0 or more), not {text!r}")
    return int(text)


def _apply_config(args: argparse.Namespace) -> None:
    """Settings from `--config` where the command line gave none (flags win)."""
    config = load_config(args.config)
    args.rules = args.rules or list(config.rules)
    args.rules_replace = args.rules_replace or config.rules_replace
    args.ownership = args.ownership or list(config.ownership)
    args.home_net = args.home_net or list(config.home_net)
    args.events = args.events or config.events
    args.report = args.report or config.report


def run(args: argparse.Namespace) -> int:
    if args.config is not None:
        _apply_config(args)
    if args.linger and args.web_listen_address is None:
        print("minewatch: --linger needs --web.listen-address", file=sys.stderr)
        return 2
    rules = load_rules(args.rules, replace=args.rules_replace)
    health = ReplayHealth(len(rules), time.time())
    # Before any capture is read: a bad web config or ownership file stops the run (exit 2).
    web_config = load_web_config(args.web_config_file) if args.web_config_file else None
    resolver = open_resolver(args.ownership)
    try:
        exporter = _exporter(args, health)
        server = _serve(args, exporter, web_config)
        try:
            code = _replay(args, rules, resolver, exporter, health)
            if server is not None and args.linger:
                _linger(args.linger)
            return code
        finally:
            if server is not None:
                server.stop()
    finally:
        if resolver is not None:
            resolver.close()


def _exporter(args: argparse.Namespace, health: ReplayHealth) -> Exporter | None:
    if args.metrics_file is None and args.web_listen_address is None:
        return None  # no metrics asked for: no metrics sink
    return Exporter(args.metrics_suspect_window, args.metrics_top_ips, health)


def _serve(
    args: argparse.Namespace, exporter: Exporter | None, config: WebConfig | None
) -> MetricsServer | None:
    if exporter is None or args.web_listen_address is None:
        return None
    server = MetricsServer(exporter.registry, args.web_listen_address, config).start()
    # On stderr: stdout may be the event stream. With port 0 this says which port.
    print(f"minewatch: serving metrics at {server.url}metrics", file=sys.stderr, flush=True)
    return server


def _linger(seconds: float) -> None:
    sys.stdout.flush()  # the summary (or events) now, not after the wait
    print(f"minewatch: replay done; serving metrics for {seconds:g} s more", file=sys.stderr)
    time.sleep(seconds)


def _replay(
    args: argparse.Namespace,
    rules: RuleSet,
    resolver: OwnershipResolver | None,
    exporter: Exporter | None,
    health: ReplayHealth,
) -> int:
    settings = PipelineSettings(
        flows=FlowSettings(max_flows=args.max_flows, stream_depth=args.stream_depth * 1024)
    )
    report = ReportBuilder(resolver, home_net(args.home_net, resolver))
    sinks: list[Sink] = [report]
    if args.events:
        sinks.append(EveWriter(args.events))
    if exporter is not None:
        sinks.append(exporter.state)
    started = time.monotonic()
    factory = _factory(rules, sinks, resolver, health.track)
    replay = Replay(args.paths, factory, settings, not args.no_prefilter, Progress(args.progress))
    health.errors = replay.errors
    outcome = replay.run()
    health.finished(outcome)
    stats = outcome.pipeline.stats
    if args.report:
        report.write(args.report, stats.first_ts, stats.last_ts)
    if exporter is not None and args.metrics_file:
        exporter.write(args.metrics_file)
    if args.events != "-":
        print(summary_text(outcome, report, time.monotonic() - started, resolver is not None))
    return 2 if outcome.errors.messages else 0


def _factory(
    rules: RuleSet,
    sinks: list[Sink],
    attributor: Attributor | None,
    track: Callable[[Pipeline, bool], Pipeline],
) -> Callable[[PipelineSettings, bool, Callable[[Endpoints], bool] | None], Pipeline]:
    def build(
        settings: PipelineSettings, with_sinks: bool, admit: Callable[[Endpoints], bool] | None
    ) -> Pipeline:
        if not with_sinks:  # the scan pass: its records go nowhere, so no owners to look up
            return track(Pipeline(rules, (), settings, admit=admit), False)
        return track(Pipeline(rules, sinks, settings, attributor=attributor, admit=admit), True)

    return build
