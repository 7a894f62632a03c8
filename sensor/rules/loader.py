"""Read rule directories into a RuleSet: bundled rules first, then the user's.

Every file is validated before anything is built, and all problems of all files
are raised together, so a broken rule set never half-loads (the daemon keeps its
old rules when a reload fails).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from sensor.rules import bundled_rules_dir
from sensor.rules.errors import RuleError, RuleProblem
from sensor.rules.model import (
    CoinHint,
    CoinHints,
    DialectRule,
    EfficiencyRule,
    PoolEndpoint,
    RuleSet,
)
from sensor.rules.schema import Entry, check_unique, validate_text

RULE_SUFFIXES = (".yaml", ".yml")
Problems = list[RuleProblem]


def load_rules(dirs: Sequence[Path] = (), replace: bool = False) -> RuleSet:
    """The bundled rules plus `dirs` (or only `dirs` when replace); raises RuleError."""
    ruleset, problems = collect(dirs, replace)
    if problems or ruleset is None:
        raise RuleError(problems)
    return ruleset


def collect(dirs: Sequence[Path], replace: bool = False) -> tuple[RuleSet | None, Problems]:
    """Validate and merge rule directories; the RuleSet is None when there are problems.

    A rule in a later directory replaces the rule with the same id from an earlier
    one, keeping its place (coin hints are tried in order).
    """
    roots = list(dirs) if replace else [bundled_rules_dir(), *dirs]
    merged: dict[str, Entry] = {}
    problems: list[RuleProblem] = []
    files: list[str] = []
    for root in roots:
        entries, found, root_problems = read_root(Path(root))
        problems.extend(root_problems)
        files.extend(found)
        for entry in entries:
            if "id" in entry.values:  # a missing id is already a problem
                merged[entry.id] = entry
    if problems:
        return None, problems
    return build(merged.values(), files), []


def rule_files(root: Path) -> list[Path]:
    """The rule files of a directory (recursively, in a stable order), or the file itself."""
    if root.is_file():
        return [root]
    found = (p for p in root.rglob("*") if p.suffix in RULE_SUFFIXES and p.is_file())
    return sorted(found, key=lambda p: p.relative_to(root).parts)


def read_root(root: Path) -> tuple[list[Entry], list[str], list[RuleProblem]]:
    """Validate every file under one rules directory (ids must be unique within it)."""
    if not root.exists():
        return [], [], [RuleProblem(str(root), 0, "no such file or directory")]
    paths = rule_files(root)
    if not paths:
        return [], [], [RuleProblem(str(root), 0, "no rule files (*.yaml, *.yml) found")]
    entries: list[Entry] = []
    problems: list[RuleProblem] = []
    for path in paths:
        file_entries, file_problems = read_file(path)
        entries.extend(file_entries)
        problems.extend(file_problems)
    problems.extend(check_unique(entries))
    problems.extend(_check_one_rule_per_dialect(entries))
    return entries, [str(p) for p in paths], problems


def read_file(path: Path) -> tuple[list[Entry], list[RuleProblem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [RuleProblem(str(path), 0, f"cannot read: {exc}")]
    return validate_text(text, str(path))


def _check_one_rule_per_dialect(entries: Iterable[Entry]) -> list[RuleProblem]:
    # The rule set holds one signature per dialect; two in one directory would
    # silently shadow each other, while a later directory overrides on purpose.
    first: dict[str, Entry] = {}
    problems = []
    for entry in entries:
        dialect = entry.values.get("dialect")
        if entry.section != "dialects" or dialect is None:
            continue
        other = first.setdefault(dialect, entry)
        if other is not entry:
            message = f"dialect {dialect!r} already has rule {other.values.get('id')!r}"
            problems.append(RuleProblem(entry.path, entry.line, f"{message} ({other.path})"))
    return problems


def build(entries: Iterable[Entry], files: Sequence[str] = ()) -> RuleSet:
    """Turn validated entries into the typed, frozen records of sensor.rules.model."""
    built: dict[str, list[Any]] = {name: [] for name in _BUILDERS}
    for entry in entries:
        built[entry.section].append(_BUILDERS[entry.section](entry.values))
    return RuleSet(
        dialects={rule.dialect: rule for rule in built["dialects"]},
        coins=CoinHints(tuple(built["coins"])),
        pools=tuple(built["pools"]),
        efficiency=tuple(built["efficiency"]),
        files=tuple(files),
    )


def _optional(values: dict[str, Any], *keys: str) -> dict[str, Any]:
    """Keyword arguments for the keys present, so absent ones keep the record's default."""
    return {key: values[key] for key in keys if key in values}


def _dialect(v: dict[str, Any]) -> DialectRule:
    return DialectRule(
        id=v["id"],
        dialect=v["dialect"],
        description=v["description"],
        client_methods=frozenset(v.get("client_methods", ())),
        server_methods=frozenset(v.get("server_methods", ())),
        share_methods=frozenset(v.get("share_methods", ())),
        login_methods=frozenset(v.get("login_methods", ())),
        **_optional(v, "confirm_on_result", "coin", "algorithm", "source"),
    )


def _pattern(v: dict[str, Any], key: str) -> re.Pattern[str] | None:
    return re.compile(v[key]) if key in v else None


def _coin(v: dict[str, Any]) -> CoinHint:
    return CoinHint(
        id=v["id"],
        coin=v["coin"],
        algorithm=v.get("algorithm"),
        wallet=_pattern(v, "wallet"),
        agent=_pattern(v, "agent"),
        host=_pattern(v, "host"),
        source=v["source"],
    )


def _pool(v: dict[str, Any]) -> PoolEndpoint:
    return PoolEndpoint(
        id=v["id"],
        pool=v.get("pool"),
        domains=tuple(d.lower().rstrip(".") for d in v.get("domains", ())),
        networks=tuple(ipaddress.ip_network(n) for n in v.get("networks", ())),
        ports=tuple(v.get("ports", ())),
        coin=v.get("coin"),
        source=v["source"],
        date=v.get("date"),
        **_optional(v, "kind"),
    )


def _efficiency(v: dict[str, Any]) -> EfficiencyRule:
    return EfficiencyRule(
        id=v["id"],
        algorithm=v["algorithm"],
        hardware=v["hardware"],
        joules_per_hash=v["joules_per_hash"],
        source=v["source"],
        date=v.get("date"),
    )


_BUILDERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "dialects": _dialect,
    "coins": _coin,
    "pools": _pool,
    "efficiency": _efficiency,
}
