"""`minewatch rules check [DIR...]`: validate rule files, naming file and line."""

from __future__ import annotations

import argparse
from pathlib import Path

from sensor.rules.check import check, format_problems


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("rules", help="work with rule files")
    actions = parser.add_subparsers(dest="rules_command", required=True)
    check_parser = actions.add_parser("check", help="validate rule files (default: bundled rules)")
    check_parser.add_argument("dirs", nargs="*", type=Path, metavar="DIR")
    check_parser.set_defaults(run=run_check)


def run_check(args: argparse.Namespace) -> int:
    problems = check(args.dirs)
    print(format_problems(problems))
    return 2 if problems else 0
