"""`minewatch run --interface IFACE ...`: the live daemon.

The config file (if any) is read first and flags override it. Everything that
can be wrong with the inputs (config, rules, ownership, web config, user) is
checked before capture starts, so that a bad file exits 2 naming file and
line; then the state is restored, the sockets and the metrics port opened,
privileges dropped (`--user`), and `sensor.live` runs the job until SIGTERM.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import pwd
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from sensor.attribute.errors import OwnershipError
from sensor.attribute.home_net import HomeNet
from sensor.attribute.resolver import OwnershipResolver
from sensor.capture.adaptive import AdaptiveFilter
from sensor.capture.live import LiveSource
from sensor.commands.argtypes import listen_address, positive_duration
from sensor.commands.ownership import home_cidr
from sensor.config import ConfigError, DaemonConfig, load_config
from sensor.flows.table import FlowSettings
from sensor.live import Signals, WorkerPlan, run_single, run_workers
from sensor.model import Attribution, FlowProgress
from sensor.pipeline import Pipeline, PipelineSettings
from sensor.rules.errors import RuleError
from sensor.rules.loader import load_rules
from sensor.rules.model import RuleSet
from sensor.sinks import Sink
from sensor.sinks.events import EveWriter
from sensor.sinks.live_health import LiveHealth, counters_of, health_from, totals_from
from sensor.sinks.metrics import Exporter
from sensor.sinks.report import ReportBuilder
from sensor.sinks.state import StateSink, StateStore
from sensor.sinks.web import MetricsServer
from sensor.sinks.webconfig import load_web_config

log = logging.getLogger(__name__)

REPORT_EVERY = 30.0  # seconds between rewrites of --report while running


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="capture live on network interfaces (the daemon)")
    add = p.add_argument
    add("--interface", "-i", action="append", dest="interfaces", metavar="IFACE", help="repeatable")
    add("--config", type=Path, metavar="FILE", help="YAML config file; flags override it")
    add("--workers", type=_workers, metavar="N", help="processes sharing flows (default 1)")
    add("--bpf", metavar="EXPR", help="capture filter (tcpdump syntax)")
    add(
        "--prefilter",
        action=argparse.BooleanOptionalAction,
        help="let the kernel drop packets that cannot matter, widening the filter at run "
        "time to the flows that do (faster; a pool flow's first packets may be missed)",
    )
    add("--state-dir", type=Path, metavar="DIR", help="keep counters and suspects across restarts")
    add("--events", metavar="FILE", help="append EVE-style JSON Lines events ('-': stdout)")
    add("--report", type=Path, metavar="FILE", help="write the JSON report (every 30 s, on exit)")
    add("--rules", action="append", type=Path, metavar="DIR", help="extra rule folder")
    add("--rules-replace", action=argparse.BooleanOptionalAction, help="only the --rules folders")
    add("--ownership", action="append", metavar="FILE", help="registry or mmdb file (repeatable)")
    add("--home-net", action="append", type=home_cidr, metavar="CIDR", help="repeatable")
    add("--web.listen-address", dest="web_listen_address", type=listen_address, metavar="HOST:PORT")
    add("--web.config.file", dest="web_config_file", type=Path, metavar="FILE")
    add(
        "--metrics.suspect-window",
        dest="suspect_window",
        type=positive_duration,
        metavar="DURATION",
    )
    add("--user", metavar="NAME", help="drop privileges to NAME once the sockets are open")
    add("--flow-idle-timeout", type=positive_duration, metavar="SECONDS", help="default 10m")
    add("--checkpoint-interval", type=positive_duration, metavar="SECONDS", help="default 2s")
    p.set_defaults(run=run, log_default="info")


def _workers(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 64, not {text!r}")
    return int(text)


def _given(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _tuple(values: list[Any] | None) -> tuple[Any, ...] | None:
    return tuple(values) if values else None


def settings(args: argparse.Namespace) -> DaemonConfig:
    """The config file's settings with the flags given on the command line over them."""
    base = load_config(args.config) if args.config else DaemonConfig()
    web = replace(
        base.web,
        **_given(listen_address=args.web_listen_address, config_file=args.web_config_file),
    )
    windows = replace(
        base.windows, **_given(suspect=args.suspect_window, flow_idle=args.flow_idle_timeout)
    )
    flags = _given(
        interfaces=_tuple(args.interfaces),
        workers=args.workers,
        bpf=args.bpf,
        prefilter=args.prefilter,
        home_net=_tuple(args.home_net),
        rules=_tuple(args.rules),
        rules_replace=args.rules_replace,
        ownership=_tuple(args.ownership),
        events=args.events,
        report=args.report,
        state_dir=args.state_dir,
        user=args.user,
        checkpoint_interval=args.checkpoint_interval,
    )
    return replace(base, web=web, windows=windows, **flags)


# -- what a reload swaps ---------------------------------------------------------------------------
class Ownership:
    """The ownership sources in use, swapped whole on reload: one object for the pipeline
    (an Attributor), the report (pool info) and the home net (registry prefixes)."""

    def __init__(self, resolver: OwnershipResolver | None) -> None:
        self.resolver = resolver

    def lookup(self, ip: str) -> Attribution:
        return self.resolver.lookup(ip) if self.resolver is not None else Attribution()

    def pool_info(self, ip: str) -> tuple[int | None, str | None]:
        return self.resolver.pool_info(ip) if self.resolver is not None else (None, None)

    def covers(self, ip: str) -> bool:
        return self.resolver is not None and self.resolver.covers(ip)

    def swap(self, resolver: OwnershipResolver | None) -> None:
        old, self.resolver = self.resolver, resolver
        if old is not None:
            old.close()


@dataclass(frozen=True, slots=True)
class Inputs:
    """What SIGHUP reads again: the rule folders and the ownership files."""

    rules: tuple[Path, ...] = ()
    rules_replace: bool = False
    ownership: tuple[str, ...] = ()

    def load(self) -> tuple[RuleSet, OwnershipResolver | None]:
        """Raises RuleError or OwnershipError naming every bad file."""
        rules = load_rules(self.rules, replace=self.rules_replace)
        return rules, OwnershipResolver(self.ownership) if self.ownership else None

    def reload(self, level: int = logging.INFO) -> tuple[RuleSet, OwnershipResolver | None] | None:
        """The new rules and ownership, or None (logged) when any file is invalid.

        Success is logged at `level`: workers reload after the parent, which says it once.
        """
        try:
            loaded = self.load()
        except (RuleError, OwnershipError) as exc:
            log.error("reload refused, the old rules and ownership stay in use: %s", exc)
            return None
        count = len(self.ownership)
        log.log(level, "reloaded: %d rules, %d ownership file(s)", len(loaded[0]), count)
        return loaded


# -- the parent's sinks ---------------------------------------------------------------------------
class Outputs:
    """The parent's side: report, events, metrics and state, with their timed writes."""

    def __init__(self, config: DaemonConfig, inputs: Inputs, rules: int, ownership: Ownership):
        self.config, self.inputs, self.ownership = config, inputs, ownership
        self.health = LiveHealth(rules)
        self.report = ReportBuilder(ownership, HomeNet(config.home_net, registry=ownership))
        self.exporter = Exporter(config.windows.suspect, 0, self.health, clock=time.time)
        self.events = EveWriter(config.events, live=True) if config.events else None
        self.state = None
        if config.state_dir is not None:
            self.state = StateSink(StateStore(config.state_dir), self.report)
        found = (self.report, self.events, self.exporter.state, self.state)
        self.sinks: list[Sink] = [sink for sink in found if sink is not None]
        self.started = time.time()
        self._next_checkpoint = self._next_report = 0.0

    def restore(self) -> None:
        if self.state is None:
            return
        saved = self.state.restore()
        metrics = self.exporter.state
        metrics.restore(totals_from(saved.counters))
        metrics.restore_estimates(saved.estimates)
        self.health.base = health_from(saved.counters)
        for suspect, _shares in saved.suspects:
            metrics.restore_miner(
                suspect.ip, suspect.org_type, suspect.region, suspect.coins, suspect.last_seen
            )
        self.started = self.state.started = saved.started or self.started
        if saved.saved_at is not None:
            count = len(saved.suspects)
            log.info("state restored from %s: %d suspects", self.state.store.path, count)

    def reload(self) -> RuleSet | None:
        loaded = self.inputs.reload()
        if loaded is None:
            self.health.refused()
            return None
        self.ownership.swap(loaded[1])
        self.health.reloaded(len(loaded[0]))
        return loaded[0]

    def progress(self, records: list[FlowProgress]) -> None:
        for rec in records:
            self.exporter.state.progress(rec)
            self.report.progress(rec)
            if self.state is not None:
                self.state.progress(rec)

    def tick(self) -> None:
        if self.events is not None:
            self.events.flush()
        now = time.monotonic()
        if now >= self._next_checkpoint:
            self._next_checkpoint = now + self.config.checkpoint_interval
            self.checkpoint()
        if now >= self._next_report:
            self._next_report = now + REPORT_EVERY
            self.write_report()

    def checkpoint(self) -> None:
        if self.state is None:
            return
        try:
            metrics = self.exporter.state
            counters = counters_of(metrics.totals(), self.health())
            self.state.checkpoint(counters, metrics.estimates())
        except (sqlite3.Error, OSError):
            log.exception("state checkpoint failed; trying again at the next one")

    def write_report(self) -> None:
        path = self.config.report
        if path is None:
            return
        report = self.report.build(self.started, time.time())
        data = orjson.dumps(report, option=orjson.OPT_INDENT_2)
        part = path.with_name(f".{path.name}.part")
        try:
            part.write_bytes(data + b"\n")
            part.replace(path)  # readers never see half a report
        except OSError as exc:
            log.error("cannot write the report %s: %s", path, exc)

    def finish(self) -> None:
        """After the sinks closed: the final report and checkpoint."""
        self.write_report()
        self.checkpoint()

    def close(self) -> None:
        if self.events is not None:
            self.events.close()
        if self.state is not None:
            self.state.store.close()
        self.ownership.swap(None)


# -- start-up --------------------------------------------------------------------------------------
def privileges(user: str | None, state_dir: Path | None) -> Callable[[], None]:
    """A function that becomes `user` (giving it the state directory first), or does nothing."""
    if user is None:
        return lambda: None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ConfigError([f"user: no such user {user!r}"]) from None

    def drop() -> None:
        if os.geteuid() == entry.pw_uid:
            return
        if state_dir is not None:
            for path in (state_dir, *state_dir.iterdir()):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        os.setgroups(os.getgrouplist(user, entry.pw_gid))
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
        log.info("running as %s (uid %d)", user, entry.pw_uid)

    return drop


def _adaptive(config: DaemonConfig) -> AdaptiveFilter | None:
    """The live prefilter (`--prefilter`): candidates plus the addresses that matter."""
    return AdaptiveFilter() if config.prefilter else None


def _factory(rules: RuleSet, config: DaemonConfig) -> Callable[[list[Sink], Any], Pipeline]:
    settings = PipelineSettings(flows=FlowSettings(idle_timeout=config.windows.flow_idle))

    def build(sinks: list[Sink], attributor: Any) -> Pipeline:
        return Pipeline(rules, sinks, settings, attributor=attributor)

    return build


def run(args: argparse.Namespace) -> int:
    config = settings(args)
    if not config.interfaces:
        print("minewatch: no interface: give --interface or `interfaces:`", file=sys.stderr)
        return 2
    if config.prefilter and config.bpf:
        print("minewatch: --prefilter and --bpf cannot be combined", file=sys.stderr)
        return 2
    drop = privileges(config.user, config.state_dir)
    inputs = Inputs(config.rules, config.rules_replace, config.ownership)
    rules, resolver = inputs.load()
    web_config = load_web_config(config.web.config_file) if config.web.config_file else None
    outputs = Outputs(config, inputs, len(rules), Ownership(resolver))
    try:
        outputs.restore()
        server = MetricsServer(outputs.exporter.registry, config.web.listen_address, web_config)
        try:
            return _capture(config, _factory(rules, config), outputs, server, drop)
        finally:
            server.stop()
    finally:
        outputs.close()


def _capture(
    config: DaemonConfig,
    factory: Callable[[list[Sink], Any], Pipeline],
    outputs: Outputs,
    server: MetricsServer,
    drop: Callable[[], None],
) -> int:
    signals = Signals()
    signals.install()

    def started() -> None:
        server.start()
        log.info("serving metrics at %smetrics", server.url)
        drop()
        log.info("capturing on %s with %d worker(s)", ", ".join(config.interfaces), config.workers)

    if config.workers == 1:
        source = LiveSource(config.interfaces, bpf=config.bpf, adaptive=_adaptive(config))
        source.open()
        started()
        return run_single(source, factory, outputs, signals)
    # One fanout group per daemon (and interface): a group is tied to one device.
    group = os.getpid() % (0x10000 - len(config.interfaces))
    plan = WorkerPlan(
        lambda: LiveSource(
            config.interfaces, bpf=config.bpf, fanout_group=group, adaptive=_adaptive(config)
        ),
        factory,
        outputs.ownership,
        functools.partial(outputs.inputs.reload, logging.DEBUG),
        drop,
    )
    return run_workers(plan, config.workers, outputs, signals, started)
