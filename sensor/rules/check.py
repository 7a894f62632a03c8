"""`minewatch rules check [DIR]`: validate rule files and name file and line of each error."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sensor.rules import bundled_rules_dir
from sensor.rules.errors import RuleProblem
from sensor.rules.loader import collect


def check(dirs: Sequence[Path] = ()) -> list[RuleProblem]:
    """Every problem in the given rule directories (or files); the bundled rules when none.

    The directories are checked as `--rules DIR --replace` would load them: ids
    must be unique within each one, and a later one may override an earlier one.
    """
    roots = list(dirs) or [bundled_rules_dir()]
    _, problems = collect(roots, replace=True)
    return problems


def format_problems(problems: Sequence[RuleProblem]) -> str:
    """One `path:line: message` per line, sorted by file and line, then a count."""
    if not problems:
        return "rules OK: no problems found"
    ordered = sorted(problems, key=lambda p: (p.path, p.line))
    lines = [str(p) for p in ordered]
    files = len({p.path for p in problems})
    noun = "problem" if len(problems) == 1 else "problems"
    lines.append(f"{len(problems)} {noun} in {files} file{'s' if files != 1 else ''}")
    return "\n".join(lines)
