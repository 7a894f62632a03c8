"""argparse `type=` converters shared by the subcommands: errors become usage errors."""

from __future__ import annotations

import argparse

from sensor.sinks.web import parse_listen_address
from sensor.sinks.webconfig import parse_duration


def listen_address(text: str) -> tuple[str, int]:
    """HOST:PORT, [v6]:PORT or :PORT."""
    try:
        return parse_listen_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def duration(text: str) -> float:
    """Seconds, or a Prometheus-style duration such as 15m or 1h30m."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def positive_duration(text: str) -> float:
    seconds = duration(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text!r}")
    return seconds
