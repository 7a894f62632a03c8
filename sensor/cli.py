"""The `minewatch` command: parses arguments, runs a subcommand, maps errors to exit codes.

The only place that exits. Exit codes: 0 success, 1 runtime failure,
2 bad usage or bad input (after every readable input was processed).
"""

from __future__ import annotations

import argparse
import sys

from sensor import __version__, logs
from sensor.attribute.errors import OwnershipError
from sensor.capture.errors import CaptureError
from sensor.commands import ownership, replay, report, rules, run, screen, synth
from sensor.config import ConfigError
from sensor.rules.errors import RuleError
from sensor.sinks.webconfig import WebConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minewatch", description="Find cryptocurrency mining in network traffic."
    )
    parser.add_argument("--version", action="version", version=f"minewatch {__version__}")
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="default: info for run (the daemon), warning otherwise",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    replay.add_parser(sub)
    run.add_parser(sub)
    rules.add_parser(sub)
    ownership.add_parser(sub)
    screen.add_parser(sub)
    report.add_parser(sub)
    synth.add_parser(sub)
    return parser


# Bad input files: each named with its file (and line), exit 2 before any work.
INPUT_ERRORS = (ConfigError, RuleError, OwnershipError, WebConfigError)


def _input_error(exc: Exception) -> str:
    if isinstance(exc, WebConfigError):
        return f"invalid web config: {exc}"
    if isinstance(exc, ConfigError):
        return f"invalid config:\n{exc}"
    if isinstance(exc, RuleError):
        return f"invalid rules:\n{exc}"
    return f"invalid ownership files:\n{exc}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup(args.log_level or getattr(args, "log_default", "warning"))
    try:
        return int(args.run(args))
    except INPUT_ERRORS as exc:
        print(f"minewatch: {_input_error(exc)}", file=sys.stderr)
        return 2
    except CaptureError as exc:
        print(f"minewatch: cannot capture: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:
        print(f"minewatch: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
