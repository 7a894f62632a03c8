"""The metric names a PromQL expression reads, and the names minewatch may be read by.

Enough PromQL to tell metric names from functions, keywords, labels and numbers
in our own rules and dashboard; not a parser. Alert rules and the dashboard may
only use the contract's names (docs/product.md, Metrics), the recording rules
they ship with, and Prometheus's own `up`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES_FILE = DEPLOY / "prometheus" / "minewatch.rules.yml"

CONTRACT = frozenset(
    {
        "minewatch_pool_bytes_total",
        "minewatch_suspect_ips",
        "minewatch_mining_flows_total",
        "minewatch_detections_total",
        "minewatch_estimated_hashrate_hashes_per_second",
        "minewatch_estimated_power_watts",
        "minewatch_estimated_energy_joules_total",
        "minewatch_packets_total",
        "minewatch_bytes_total",
        "minewatch_capture_kernel_drops_total",
        "minewatch_decode_errors_total",
        "minewatch_flows_active",
        "minewatch_flows_evicted_total",
        "minewatch_rules_loaded",
        "minewatch_rules_last_reload_timestamp_seconds",
        "minewatch_build_info",
        # issue 5: emitted by `minewatch run` after each rule reload
        "minewatch_rules_last_reload_success",
    }
)
PROMETHEUS_OWN = frozenset({"up"})
KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool"}
    | {"and", "or", "unless", "inf", "nan", "atan2"}
)

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_OFFSET = re.compile(r"\boffset\s+-?[\w$]+")
_VARIABLES = re.compile(r"\$\{?\w+\}?")
_NUMBERS = re.compile(r"(?<![\w:])\d[\w.]*(?:[eE][+-]\d+)?")
_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """Metric names read by `expr` (selectors only: not functions, labels or keywords)."""
    text = _STRINGS.sub('""', expr)
    for pattern in (_MATCHERS, _RANGES, _GROUPING, _OFFSET, _VARIABLES, _NUMBERS):
        text = pattern.sub(" ", text)
    names = set()
    for m in _NAME.finditer(text):
        called = text[m.end() :].lstrip().startswith("(")
        if not called and m.group() not in KEYWORDS:
            names.add(m.group())
    return names


def load_rules(path: Path = RULES_FILE) -> list[dict[str, Any]]:
    """Every rule of the rule file, recording and alerting, in file order."""
    groups = yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def allowed_names() -> set[str]:
    recorded = {rule["record"] for rule in load_rules() if "record" in rule}
    return set(CONTRACT | PROMETHEUS_OWN) | recorded
