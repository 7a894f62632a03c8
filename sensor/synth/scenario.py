"""A synthesis scenario (`minewatch synth SCENARIO.yaml`) as frozen dataclasses.

    seed: 7                 duration: 10m            start: 1767225600   vlan: 100
    background: {flows: 200}
    share_timing: poisson   # or regular; a miner group may override it
    pools:
      - {name: btc-a, ip: 198.51.100.10, port: 3333, host: btc.pool.example,
         coin: btc, dialect: stratum-v1, difficulty: 65536,
         vardiff: {target: 10s, every: 2m}}   # optional: retarget each miner
    organisations:
      - name: Suzhou University
        org_type: education
        region: Suzhou
        prefix: 10.1.0.0/24
        vlan: 101            # optional, overrides the scenario's
        miners: [{count: 3, pool: btc-a, hashrate: 100 TH/s, share_timing: regular}]

`share_timing` and `vardiff` are explained in sensor/synth/timing.py.
Unknown keys and bad values are errors naming the file and line, found all at
once, as for the daemon config: a scenario is a test's input, and a typo that
silently changed the population would make its ground truth wrong.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sensor.attribute.vocabulary import ORG_TYPES
from sensor.config import duration as _duration_node
from sensor.yamlnodes import NodeError as _Bad

# Dialect -> coins whose hashes-per-share the estimator knows for that dialect.
DIALECT_COINS = {
    "stratum-v1": frozenset({"btc", "ltc"}),
    "ethereum-stratum": frozenset({"eth"}),
    "cryptonote": frozenset({"xmr"}),
}
# Dialects whose pools can retarget (set_difficulty / a job with a new target).
VARDIFF_DIALECTS = frozenset({"stratum-v1", "ethereum-stratum", "cryptonote"})
SHARE_TIMINGS = ("poisson", "regular")
_UNITS = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "p": 1e15, "e": 1e18}
DEFAULT_START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class ScenarioError(Exception):
    """Every problem of a scenario file, one `file:line: message` per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True, slots=True)
class Vardiff:
    """A pool's difficulty retargeting: aim at one share per `target` s, look every `every` s."""

    target: float
    every: float


@dataclass(frozen=True, slots=True)
class Pool:
    name: str
    ip: str
    port: int
    coin: str
    dialect: str
    difficulty: float  # every miner's starting difficulty (its only one without vardiff)
    host: str | None = None
    vardiff: Vardiff | None = None
    line: int = field(default=0, compare=False)  # where it was declared, for errors


@dataclass(frozen=True, slots=True)
class MinerGroup:
    pool: str
    count: int
    hashrate: float  # hashes per second of each miner
    share_timing: str | None = None  # None: the scenario's


@dataclass(frozen=True, slots=True)
class Organisation:
    name: str
    org_type: str
    region: str
    prefix: str
    miners: tuple[MinerGroup, ...] = ()
    vlan: int | None = None
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Scenario:
    pools: tuple[Pool, ...]
    organisations: tuple[Organisation, ...]
    duration: float = 600.0
    seed: int = 0
    start: float = DEFAULT_START
    vlan: int | None = None
    background_flows: int = 0
    share_timing: str = "poisson"
    source: Path | None = None

    def pool(self, name: str) -> Pool:
        return next(p for p in self.pools if p.name == name)


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[str] = []

    def problem(self, message: str, node: Node) -> None:
        self.at(node.start_mark.line + 1, message)

    def at(self, line: int, message: str) -> None:
        self.problems.append(f"{self.path}:{line}: {message}")

    def mapping(
        self, node: Node, where: str, parsers: dict[str, Any], need: tuple[str, ...]
    ) -> dict[str, Any] | None:
        """Parsed keys of a mapping (None if a required key is missing or bad)."""
        if not isinstance(node, MappingNode):
            self.problem(f"{where}expected a mapping", node)
            return None
        out: dict[str, Any] = {}
        bad = False
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            if key not in parsers:
                known = ", ".join(sorted(parsers))
                self.problem(f"{where}unknown key {key!r} (known: {known})", key_node)
                continue
            try:
                out[key] = parsers[key](self, value_node)
            except _Bad as exc:
                self.problem(f"{where}{key}: {exc}", exc.node)
                bad = True
        for key in need:
            if key not in out and not bad:
                self.problem(f"{where}missing key {key!r}", node)
                bad = True
        return None if bad else out

    def items(self, node: Node, where: str, item: Any) -> tuple[Any, ...]:
        if not isinstance(node, SequenceNode):
            raise _Bad("expected a list", node)
        parsed = (item(self, child, f"{where}[{n}]: ") for n, child in enumerate(node.value))
        return tuple(p for p in parsed if p is not None)


def _scalar(node: Node) -> Any:
    if not isinstance(node, ScalarNode):
        raise _Bad("expected a single value", node)
    return yaml.safe_load(node.value) if node.style is None else node.value


def _string(_r: _Reader, node: Node) -> str:
    value = _scalar(node)
    if not isinstance(value, str | int | float) or isinstance(value, bool) or value == "":
        raise _Bad("expected a non-empty string", node)
    return str(value)


def _int(low: int, high: int) -> Any:
    def parse(_r: _Reader, node: Node) -> int:
        value = _scalar(node)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _Bad(f"expected a whole number from {low} to {high}", node)
        return value

    return parse


def _positive(_r: _Reader, node: Node) -> float:
    value = _scalar(node)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise _Bad("expected a number above 0", node)
    return float(value)


def hashrate(_r: _Reader | None, node: Node) -> float:
    """A hash rate: a number of H/s, or a string such as '14 TH/s' or '2.5 kH/s'."""
    value = _scalar(node)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    text = str(value).strip().lower().removesuffix("/s").removesuffix("h").strip()
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "")
    try:
        rate = float(number) * _UNITS[unit]
    except ValueError:
        raise _Bad(f"expected a hash rate such as '14 TH/s', not {value!r}", node) from None
    if not rate > 0:
        raise _Bad("expected a hash rate above 0", node)
    return rate


def _ip(_r: _Reader, node: Node) -> str:
    try:
        return str(ipaddress.IPv4Address(_string(_r, node)))
    except ValueError:
        raise _Bad("expected an IPv4 address", node) from None


def _prefix(_r: _Reader, node: Node) -> str:
    try:
        return str(ipaddress.IPv4Network(_string(_r, node)))
    except ValueError:
        raise _Bad("expected an IPv4 prefix such as 10.1.0.0/24", node) from None


def _choice(options: Any) -> Any:
    def parse(r: _Reader, node: Node) -> str:
        value = _string(r, node)
        if value not in options:
            raise _Bad(f"expected one of {', '.join(sorted(options))}, not {value!r}", node)
        return value

    return parse


def _seconds(_r: _Reader, node: Node) -> float:
    value = _scalar(node)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    try:
        seconds = _duration_node(node)
    except _Bad:
        raise _Bad("expected a duration such as 600 or 10m", node) from None
    if not seconds > 0:
        raise _Bad("expected a duration above 0", node)
    return seconds


def _vardiff(r: _Reader, node: Node, where: str) -> Vardiff | None:
    parsers = {"target": _seconds, "every": _seconds}
    got = r.mapping(node, where, parsers, ("target", "every"))
    if got is None:
        return None
    if got["every"] < got["target"]:
        # Fewer than one share expected per period: every retarget would be a guess.
        r.problem(f"{where}every ({got['every']:g}s) is shorter than target", node)
        return None
    return Vardiff(**got)


def _pool(r: _Reader, node: Node, where: str) -> Pool | None:
    parsers = {
        "name": _string,
        "ip": _ip,
        "port": _int(1, 65535),
        "host": _string,
        "coin": _string,
        "dialect": _choice(DIALECT_COINS),
        "difficulty": _positive,
        "vardiff": lambda r, n: _vardiff(r, n, f"{where}vardiff: "),
    }
    got = r.mapping(node, where, parsers, ("name", "ip", "port", "coin", "dialect", "difficulty"))
    if got is None:
        return None
    if got["coin"] not in DIALECT_COINS[got["dialect"]]:
        coins = ", ".join(sorted(DIALECT_COINS[got["dialect"]]))
        r.problem(f"{where}coin {got['coin']!r} not made for {got['dialect']} ({coins})", node)
        return None
    if got.get("vardiff") and got["dialect"] not in VARDIFF_DIALECTS:
        r.problem(f"{where}vardiff: {got['dialect']} has no way to retarget", node)
        return None
    return Pool(**got, line=node.start_mark.line + 1)


def _group(r: _Reader, node: Node, where: str) -> MinerGroup | None:
    parsers = {
        "pool": _string,
        "count": _int(1, 1_000_000),
        "hashrate": hashrate,
        "share_timing": _choice(SHARE_TIMINGS),
    }
    got = r.mapping(node, where, parsers, ("pool", "hashrate"))
    return None if got is None else MinerGroup(**{"count": 1, **got})


def _organisation(r: _Reader, node: Node, where: str) -> Organisation | None:
    parsers = {
        "name": _string,
        "org_type": _choice(ORG_TYPES),
        "region": _string,
        "prefix": _prefix,
        "vlan": _int(1, 4094),
        "miners": lambda r, n: r.items(n, f"{where}miners", _group),
    }
    got = r.mapping(node, where, parsers, ("name", "org_type", "region", "prefix"))
    return None if got is None else Organisation(**got, line=node.start_mark.line + 1)


def _background(r: _Reader, node: Node) -> int:
    got = r.mapping(node, "background: ", {"flows": _int(0, 10_000_000)}, ())
    return 0 if got is None else got.get("flows", 0)


_TOP = {
    "seed": _int(0, 2**63 - 1),
    "duration": _seconds,
    "start": _positive,
    "vlan": _int(1, 4094),
    "background": _background,
    "share_timing": _choice(SHARE_TIMINGS),
    "pools": lambda r, n: r.items(n, "pools", _pool),
    "organisations": lambda r, n: r.items(n, "organisations", _organisation),
}


def load_scenario(path: Path) -> Scenario:
    """The scenario in `path`; ScenarioError lists every problem with its line."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ScenarioError([f"{path}{line}: not valid YAML: {exc}"]) from None
    reader = _Reader(path)
    if root is None:
        raise ScenarioError([f"{path}:1: empty scenario"])
    got = reader.mapping(root, "", _TOP, ("pools", "organisations"))
    if got is not None:
        background = got.pop("background", 0)
        scenario = Scenario(**got, background_flows=background, source=path)
        _cross_check(reader, scenario)
    if reader.problems:
        raise ScenarioError(reader.problems)
    return scenario


def _cross_check(r: _Reader, scenario: Scenario) -> None:
    """What single values cannot show: names that must match, addresses that must fit."""
    names: list[str] = []
    for pool in scenario.pools:
        if pool.name in names:
            r.at(pool.line, f"pool name {pool.name!r} given twice")
        names.append(pool.name)
    prefixes: list[ipaddress.IPv4Network] = []
    for org in scenario.organisations:
        net = ipaddress.IPv4Network(org.prefix)
        for other in prefixes:
            if net.overlaps(other):
                r.at(org.line, f"organisation {org.name!r}: prefix {net} overlaps {other}")
        prefixes.append(net)
        miners = 0
        for group in org.miners:
            miners += group.count
            if group.pool not in names:
                r.at(org.line, f"organisation {org.name!r}: unknown pool {group.pool!r}")
        if miners > net.num_addresses - 2:
            r.at(org.line, f"organisation {org.name!r}: {miners} miners do not fit in {net}")
    for pool in scenario.pools:
        address = ipaddress.IPv4Address(pool.ip)
        if any(address in net for net in prefixes):
            r.at(pool.line, f"pool {pool.name!r}: {address} is inside an organisation's prefix")
