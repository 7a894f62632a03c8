"""The daemon's YAML config file (`minewatch run --config FILE`) as frozen dataclasses.

    interfaces: [eth1, eth2]        workers: 2            bpf: "not port 22"
    home_net: [203.0.113.0/24]      rules: [/etc/minewatch/rules]   rules_replace: false
    ownership: [/etc/minewatch/registry.csv]
    web: {listen_address: "127.0.0.1:10090", config_file: web.yml}
    events: /var/log/minewatch/eve.json   report: /var/lib/minewatch/report.json
    state_dir: /var/lib/minewatch   user: minewatch
    windows: {suspect: 15m, flow_idle: 10m}   checkpoint_interval: 2s

Every key is optional; command-line flags override the file. Unknown keys and
bad values are errors naming the file and line (exit 2), found all at once.
Relative paths are relative to the config file's folder, as in the
exporter-toolkit web config, so a config and its files move together.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sensor.sinks.metrics_state import DEFAULT_WINDOW
from sensor.sinks.web import DEFAULT_LISTEN_ADDRESS, parse_listen_address
from sensor.sinks.webconfig import parse_duration
from sensor.yamlnodes import NodeError as _Bad

MAX_WORKERS = 64
IFNAMSIZ = 16  # Linux interface names are at most 15 bytes


class ConfigError(Exception):
    """Every problem of a config file, one `file:line: message` per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True, slots=True)
class WebSettings:
    listen_address: tuple[str, int] = parse_listen_address(DEFAULT_LISTEN_ADDRESS)
    config_file: Path | None = None


@dataclass(frozen=True, slots=True)
class Windows:
    suspect: float = DEFAULT_WINDOW  # seconds a miner counts in minewatch_suspect_ips
    flow_idle: float = 600.0  # seconds without packets before a flow ends


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    interfaces: tuple[str, ...] = ()
    workers: int = 1
    bpf: str | None = None
    prefilter: bool = False  # kernel prefilter extended at run time (capture/adaptive.py)
    home_net: tuple[str, ...] = ()
    rules: tuple[Path, ...] = ()
    rules_replace: bool = False
    ownership: tuple[str, ...] = ()
    web: WebSettings = field(default_factory=WebSettings)
    events: str | None = None  # a file name, or "-" for stdout
    report: Path | None = None
    state_dir: Path | None = None
    user: str | None = None
    windows: Windows = field(default_factory=Windows)
    checkpoint_interval: float = 2.0
    source: Path | None = None  # the file this came from


class _Reader:
    """Turns the composed YAML of one file into config values, naming lines in errors."""

    def __init__(self, path: Path) -> None:
        self.path, self.folder = path, path.parent
        self.problems: list[str] = []

    def problem(self, message: str, node: Node | None) -> None:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        self.problems.append(f"{self.path}{line}: {message}")

    def mapping(self, node: Node, where: str, parsers: dict[str, Any]) -> dict[str, Any]:
        """The keys of a mapping parsed by `parsers[key](node)`; bad ones noted, left out."""
        if not isinstance(node, MappingNode):
            self.problem(f"{where}expected a mapping", node)
            return {}
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _plain(key_node)
            if not isinstance(key, str) or key not in parsers:
                known = ", ".join(sorted(parsers))
                self.problem(f"{where}unknown key {key!r} (known: {known})", key_node)
            elif key in out:
                self.problem(f"{where}{key!r} given twice", key_node)
            else:
                try:
                    out[key] = parsers[key](self, value_node)
                except _Bad as exc:
                    self.problem(f"{where}{key}: {exc}", exc.node)
        return out

    def file(self, node: Node) -> Path:
        path = Path(_string(node)).expanduser()
        return path if path.is_absolute() else self.folder / path


def _plain(node: Node) -> Any:
    try:
        return SafeConstructor().construct_object(node, deep=True)
    except ConstructorError as exc:
        raise _Bad(f"unreadable value: {exc.problem}", node) from None


def _string(node: Node) -> str:
    value = _plain(node)
    if not isinstance(value, str) or not value.strip():
        raise _Bad(f"expected a non-empty string, not {value!r}", node)
    return value.strip()


def _list(node: Node, item: Callable[[Node], Any]) -> tuple[Any, ...]:
    """A list (or one value standing for a list of one), each item parsed by `item`."""
    if isinstance(node, SequenceNode):
        return tuple(item(child) for child in node.value)
    if isinstance(node, ScalarNode):
        return () if _plain(node) is None else (item(node),)
    raise _Bad("expected a list", node)


def _interface(node: Node) -> str:
    name = _string(node)
    if len(name.encode()) >= IFNAMSIZ or "/" in name or any(c.isspace() for c in name):
        raise _Bad(f"bad interface name {name!r}", node)
    return name


def _cidr(node: Node) -> str:
    text = _string(node)
    try:
        return str(ipaddress.ip_network(text, strict=True))
    except ValueError as exc:
        raise _Bad(f"not a network in CIDR form: {exc}", node) from None


def _workers(_r: _Reader, node: Node) -> int:
    value = _plain(node)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WORKERS:
        raise _Bad(f"expected a whole number from 1 to {MAX_WORKERS}, not {value!r}", node)
    return value


def _boolean(_r: _Reader, node: Node) -> bool:
    value = _plain(node)
    if not isinstance(value, bool):
        raise _Bad(f"expected true or false, not {value!r}", node)
    return value


def duration(node: Node) -> float:
    """A positive duration: seconds as a number, or a string such as "90s", "15m", "1h"."""
    value = _plain(node)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Bad(f"expected a duration such as 90s or 15m, not {value!r}", node)
    try:
        seconds = parse_duration(str(value))
    except ValueError as exc:
        raise _Bad(str(exc), node) from None
    if seconds <= 0:
        raise _Bad(f"must be more than 0, not {value!r}", node)
    return seconds


def _listen(node: Node) -> tuple[str, int]:
    try:
        return parse_listen_address(_string(node))
    except ValueError as exc:
        raise _Bad(str(exc), node) from None


def _events(reader: _Reader, node: Node) -> str:
    return "-" if _string(node) == "-" else str(reader.file(node))


def _web(reader: _Reader, node: Node) -> WebSettings:
    parsers = {
        "listen_address": lambda r, n: _listen(n),
        "config_file": _Reader.file,
    }
    return WebSettings(**reader.mapping(node, "web: ", parsers))


def _windows(reader: _Reader, node: Node) -> Windows:
    parsers = {"suspect": lambda r, n: duration(n), "flow_idle": lambda r, n: duration(n)}
    return Windows(**reader.mapping(node, "windows: ", parsers))


_TOP: dict[str, Callable[[_Reader, Node], Any]] = {
    "interfaces": lambda r, n: _list(n, _interface),
    "workers": _workers,
    "bpf": lambda r, n: _string(n),
    "prefilter": _boolean,
    "home_net": lambda r, n: _list(n, _cidr),
    "rules": lambda r, n: _list(n, r.file),
    "rules_replace": _boolean,
    "ownership": lambda r, n: tuple(str(p) for p in _list(n, r.file)),
    "web": _web,
    "events": _events,
    "report": _Reader.file,
    "state_dir": _Reader.file,
    "user": lambda r, n: _string(n),
    "windows": _windows,
    "checkpoint_interval": lambda r, n: duration(n),
}


def load_config(path: Path) -> DaemonConfig:
    """Read and check a config file; raises ConfigError with every problem found."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from exc
    try:
        root = yaml.compose(text)
    except yaml.MarkedYAMLError as exc:
        line = f":{exc.problem_mark.line + 1}" if exc.problem_mark else ""
        raise ConfigError([f"{path}{line}: invalid YAML: {exc.problem}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: invalid YAML: {exc}"]) from exc
    if root is None:
        return DaemonConfig(source=path)  # an empty file: every default
    reader = _Reader(path)
    values = reader.mapping(root, "", _TOP)
    if reader.problems:
        raise ConfigError(reader.problems)
    return DaemonConfig(**values, source=path)
