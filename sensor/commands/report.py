"""`minewatch report EVENTS... -o FILE`: the report from event logs, as JSON, HTML or CSV.

The events already name each miner's owner, so ownership files here serve
what the events lack: pools' ASN and country, and which suspects are in the
home network (registry prefixes count as home, as in replay).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from sensor.commands.ownership import (
    add_home_net_option,
    add_ownership_option,
    home_net,
    open_resolver,
)
from sensor.sinks.report import ReportBuilder
from sensor.sinks.report_csv import write_csv
from sensor.sinks.report_events import EventLogError, egress_series, feed
from sensor.sinks.report_html import render_html

FORMATS = ("json", "html", "csv")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="build the report (JSON, HTML or CSV) from event logs")
    p.add_argument("events", nargs="+", type=Path, metavar="EVENTS", help="EVE JSON Lines files")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="output file (.json, .html) or folder (ending in '/': CSV tables)",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="default: from the output name (.html/.htm: html, '/' or a folder: csv, else json)",
    )
    add_ownership_option(p)
    add_home_net_option(p)
    p.set_defaults(run=run)


def output_format(output: str, given: str | None) -> str:
    """The format asked for, else the one the output name implies."""
    if given:
        return given
    path = Path(output)
    if output.endswith(("/", "\\")) or path.is_dir():
        return "csv"
    if path.suffix.lower() in (".html", ".htm"):
        return "html"
    return "csv" if path.suffix.lower() == ".csv" else "json"


def run(args: argparse.Namespace) -> int:
    resolver = open_resolver(args.ownership)
    try:
        builder = ReportBuilder(resolver, home_net(args.home_net, resolver))
        try:
            log = feed(args.events, builder)
        except EventLogError as exc:
            print(f"minewatch: {exc}", file=sys.stderr)
            return 2
        report = builder.build(log.start, log.end)
    finally:
        if resolver is not None:
            resolver.close()
    write(report, egress_series(log), Path(args.output), output_format(args.output, args.format))
    return 0


def write(report: dict[str, Any], series: list[dict[str, Any]], output: Path, fmt: str) -> None:
    if fmt == "csv":
        write_csv(report, output)
    elif fmt == "html":
        output.write_text(render_html(report, series), encoding="utf-8")
    else:
        output.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
