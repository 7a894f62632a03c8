"""The rule-file schema, declared as data, and a validator that walks YAML nodes.

Validation works on `yaml.compose` nodes rather than loaded Python objects so that
every problem carries the line it is on. Each file is checked completely: the
validator collects problems and goes on, and the loader raises them all at once.
"""

from __future__ import annotations

import datetime
import difflib
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sensor.model import DIALECTS
from sensor.rules.errors import RuleProblem

# A value check returns a problem message, or None when the value is fine.
ValueCheck = Callable[[Any], str | None]

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*\Z")
_COIN = re.compile(r"[a-z0-9]{2,12}\Z")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
# What traffic to a pool endpoint means (PoolEndpoint.kind); the first is the default.
POOL_KINDS = ("pool", "browser")
# Host names as pool lists and SNI carry them: letters, digits, '-', '_' (seen in
# real pool hosts), at least two labels, no scheme, port, path or wildcard.
_HOST = re.compile(
    r"(?=.{1,253}\Z)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9-]{2,63}\Z", re.I
)


def _check_id(value: str) -> str | None:
    return None if _ID.match(value) else f"bad id {value!r} (letters, digits, '._:-')"


def _check_dialect(value: str) -> str | None:
    if value in DIALECTS:
        return None
    return f"unknown dialect {value!r} (expected one of {', '.join(DIALECTS)})"


def _check_regex(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"bad regular expression {value!r}: {exc}"
    return None


def _check_network(value: str) -> str | None:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        return f"bad network {value!r}: {exc}"
    return None


def _check_port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else f"bad port {value} (expected 1-65535)"


def _check_coin(value: str) -> str | None:
    return None if _COIN.match(value) else f"bad coin {value!r} (a lowercase ticker such as xmr)"


def _check_kind(value: str) -> str | None:
    if value in POOL_KINDS:
        return None
    return f"unknown kind {value!r} (expected one of {', '.join(POOL_KINDS)})"


def _check_host(value: str) -> str | None:
    return None if _HOST.match(value.rstrip(".")) else f"bad host name {value!r}"


def _check_date(value: str) -> str | None:
    if _DATE.match(value):
        try:
            datetime.date.fromisoformat(value)
            return None
        except ValueError:
            pass
    return f"bad date {value!r} (expected YYYY-MM-DD)"


def _check_positive(value: float) -> str | None:
    return None if value > 0 else f"must be greater than 0, not {value}"


@dataclass(frozen=True, slots=True)
class Field:
    """One key of a rule: the type of its value(s), whether required, an extra check."""

    kind: str  # "str", "int", "number", "bool" or "date"
    required: bool = False
    many: bool = False  # a YAML list of such values
    check: ValueCheck | None = None


@dataclass(frozen=True, slots=True)
class Section:
    """What the entries of one top-level key look like."""

    fields: dict[str, Field]
    one_of: tuple[str, ...] = ()  # at least one of these keys must be present


_COMMON = {
    "id": Field("str", required=True, check=_check_id),
    "description": Field("str"),
}
_METHODS = Field("str", many=True)

SCHEMA: dict[str, Section] = {
    "dialects": Section(
        {
            **_COMMON,
            "description": Field("str", required=True),
            "dialect": Field("str", required=True, check=_check_dialect),
            "client_methods": _METHODS,
            "server_methods": _METHODS,
            "share_methods": _METHODS,
            "login_methods": _METHODS,
            "confirm_on_result": Field("bool"),
            "coin": Field("str", check=_check_coin),
            "algorithm": Field("str"),
            "source": Field("str"),
        }
    ),
    "coins": Section(
        {
            **_COMMON,
            "coin": Field("str", required=True, check=_check_coin),
            "algorithm": Field("str"),
            "wallet": Field("str", check=_check_regex),
            "agent": Field("str", check=_check_regex),
            "host": Field("str", check=_check_regex),
            "source": Field("str", required=True),
        },
        one_of=("wallet", "agent", "host"),
    ),
    "pools": Section(
        {
            **_COMMON,
            "pool": Field("str"),
            "domains": Field("str", many=True, check=_check_host),
            "networks": Field("str", many=True, check=_check_network),
            "ports": Field("int", many=True, check=_check_port),
            "coin": Field("str", check=_check_coin),
            "kind": Field("str", check=_check_kind),
            "source": Field("str", required=True),
            "date": Field("date", check=_check_date),
        },
        one_of=("domains", "networks"),
    ),
    "efficiency": Section(
        {
            **_COMMON,
            "algorithm": Field("str", required=True),
            "hardware": Field("str", required=True),
            "joules_per_hash": Field("number", required=True, check=_check_positive),
            "source": Field("str", required=True),
            "date": Field("date", check=_check_date),
        }
    ),
}


@dataclass(slots=True)
class Entry:
    """One validated rule: plain Python values, and where it was written."""

    section: str
    path: str
    line: int
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.values["id"])


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


_INVALID = object()  # marks a value that failed validation (None is a valid "absent")


class _Walker:
    """Validates the node tree of one file, collecting entries and problems."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[RuleProblem] = []
        self.entries: list[Entry] = []
        # A fresh constructor per file: it caches every node it has built.
        self._constructor = yaml.constructor.SafeConstructor()

    def problem(self, node: Node | None, message: str) -> None:
        self.problems.append(RuleProblem(self.path, _line(node) if node else 0, message))

    def root(self, node: Node | None) -> None:
        if node is None:  # an empty file holds no rules, which is fine
            return
        if not isinstance(node, MappingNode):
            self.problem(node, f"expected a mapping with the keys {', '.join(SCHEMA)}")
            return
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            if key not in SCHEMA:
                hint = _suggest(str(key), SCHEMA)
                self.problem(key_node, f"unknown top-level key {key!r}{hint}")
            elif key in seen:
                self.problem(key_node, f"duplicate top-level key {key!r}")
            else:
                seen.add(key)
                self.section(key, value_node)

    def section(self, name: str, node: Node) -> None:
        if isinstance(node, ScalarNode) and node.tag.endswith(":null"):
            return  # `pools:` with nothing under it yet
        if not isinstance(node, SequenceNode):
            self.problem(node, f"'{name}' must be a list of rules")
            return
        for item in node.value:
            self.entry(name, SCHEMA[name], item)

    def entry(self, name: str, section: Section, node: Node) -> None:
        if not isinstance(node, MappingNode):
            self.problem(node, f"each entry of '{name}' must be a mapping")
            return
        entry = Entry(name, self.path, _line(node))
        present: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, ScalarNode) else "<not a string>"
            spec = section.fields.get(key)
            if spec is None:
                self.problem(key_node, f"unknown key {key!r}{_suggest(key, section.fields)}")
            elif key in present:
                self.problem(key_node, f"duplicate key {key!r}")
            else:
                present.add(key)
                value = self.value(key, spec, value_node)
                if value is not _INVALID and value is not None:
                    entry.values[key] = value
        self.finish(entry, section, node, present)

    def finish(self, entry: Entry, section: Section, node: Node, present: set[str]) -> None:
        where = f" in rule {entry.values['id']!r}" if "id" in entry.values else ""
        for key, spec in section.fields.items():
            if spec.required and key not in present:
                self.problem(node, f"missing required key {key!r}{where}")
        if section.one_of and not present.intersection(section.one_of):
            keys = ", ".join(section.one_of)
            self.problem(node, f"needs at least one of {keys}{where}")
        self.entries.append(entry)

    def value(self, key: str, spec: Field, node: Node) -> Any:
        if not spec.required and isinstance(node, ScalarNode) and node.tag.endswith(":null"):
            return None
        if not spec.many:
            return self.scalar(key, spec, node)
        if not isinstance(node, SequenceNode):
            self.problem(node, f"'{key}' must be a list")
            return _INVALID
        items = [self.scalar(key, spec, item) for item in node.value]
        return _INVALID if _INVALID in items else items

    def scalar(self, key: str, spec: Field, node: Node) -> Any:
        if not isinstance(node, ScalarNode):
            self.problem(node, f"'{key}' must be {_KIND_NAMES[spec.kind]}, not a list or mapping")
            return _INVALID
        try:
            value = _coerce(spec.kind, self._constructor.construct_object(node))
        except ValueError:  # e.g. 2026-13-01 looks like a timestamp but is none
            value = _coerce(spec.kind, node.value)
        except yaml.YAMLError as exc:  # e.g. an unknown !tag
            self.problem(node, f"'{key}': {exc}")
            return _INVALID
        if value is _INVALID:
            self.problem(node, f"'{key}' must be {_KIND_NAMES[spec.kind]}, not {node.value!r}")
            return _INVALID
        message = spec.check(value) if spec.check else None
        if message:
            self.problem(node, f"'{key}': {message}")
            return _INVALID
        return value


_KIND_NAMES = {
    "str": "a string",
    "int": "an integer",
    "number": "a number",
    "bool": "true or false",
    "date": "a date (YYYY-MM-DD)",
}


def _coerce(kind: str, value: Any) -> Any:
    """The value as the field's kind, or _INVALID; YAML's implicit typing needs some help."""
    if kind == "str":
        return value if isinstance(value, str) else _INVALID
    if kind == "bool":
        return value if isinstance(value, bool) else _INVALID
    if kind == "int":
        return value if isinstance(value, int) and not isinstance(value, bool) else _INVALID
    if kind == "date":
        # An unquoted 2026-11-21 is a YAML timestamp; quoted it is a string.
        if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
            return value.isoformat()
        return value if isinstance(value, str) else _INVALID
    if kind == "number":
        if isinstance(value, bool):
            return _INVALID
        if isinstance(value, int | float):
            return float(value)
        # PyYAML follows YAML 1.1, where 6e-11 (no dot) is a string, not a float.
        try:
            return float(value) if isinstance(value, str) else _INVALID
        except ValueError:
            return _INVALID
    raise ValueError(f"unknown field kind {kind!r}")


def validate_text(text: str, path: str) -> tuple[list[Entry], list[RuleProblem]]:
    """Validate one rule file's text; `path` only names it in problems."""
    walker = _Walker(path)
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        return [], [_syntax_problem(exc, path)]
    except yaml.YAMLError as exc:
        return [], [RuleProblem(path, 0, f"YAML error: {exc}")]
    walker.root(root)
    return walker.entries, walker.problems


def _syntax_problem(exc: yaml.MarkedYAMLError, path: str) -> RuleProblem:
    mark = exc.problem_mark or exc.context_mark
    message = f"YAML syntax error: {exc.problem or exc.context}"
    # An unclosed bracket is only noticed at the end of the file; the context
    # says where the construct began, which is where the fix goes.
    if exc.problem and exc.context and exc.context_mark:
        message += f" ({exc.context} started at line {exc.context_mark.line + 1})"
    return RuleProblem(path, mark.line + 1 if mark else 0, message)


def check_unique(entries: Iterable[Entry]) -> list[RuleProblem]:
    """Ids must be unique across all files of one rules directory (and all sections)."""
    first: dict[str, Entry] = {}
    problems = []
    for entry in entries:
        if "id" not in entry.values:
            continue
        other = first.setdefault(entry.id, entry)
        if other is not entry:
            where = f"{other.path}:{other.line}"
            message = f"duplicate id {entry.id!r} (first defined at {where})"
            problems.append(RuleProblem(entry.path, entry.line, message))
    return problems


# The C loader is several times faster on the large imported pool lists.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
