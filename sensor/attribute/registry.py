"""Local ownership registries: CSV and YAML files mapping prefixes to organisations.

A CSV registry has a header row with at least `network,org,org_type,region`;
`asn` and `country` are understood when present and every other column is kept
as an identifier (registration number, contact, ...). A YAML registry is a list
of mappings with the same keys. Every bad line is reported as `file:line:
message`, all of them at once, and nothing of a bad file is used.
"""

from __future__ import annotations

import csv
import io
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sensor.attribute.errors import OwnershipProblem, RegistryError
from sensor.attribute.prefixes import IPNetwork, PrefixIndex, normalize_network
from sensor.attribute.vocabulary import ORG_TYPES, normalize_org_type
from sensor.model import Attribution

__all__ = [
    "REGISTRY_SUFFIXES",
    "REQUIRED_COLUMNS",
    "PrefixIndex",
    "RegistryRecord",
    "index_records",
    "load_registry",
    "read_registry",
]

REGISTRY_SUFFIXES = (".csv", ".yaml", ".yml")
REQUIRED_COLUMNS = ("network", "org", "org_type", "region")
KNOWN_COLUMNS = (*REQUIRED_COLUMNS, "asn", "country")
MAX_PROBLEMS = 100  # per file: a wholly wrong file (wrong delimiter) is one fix, not 10^6 lines

Problems = list[OwnershipProblem]


@dataclass(frozen=True, slots=True)
class RegistryRecord:
    """One registry line: a prefix and who owns it, with where it was written."""

    network: IPNetwork
    org: str | None
    org_type: str
    region: str | None
    asn: int | None = None
    country: str | None = None
    identifiers: tuple[tuple[str, str], ...] = ()
    path: str = ""
    line: int = 0

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def source(self) -> str:
        return f"registry:{Path(self.path).name}"

    def attribution(self, source: str | None = None) -> Attribution:
        return Attribution(
            name=self.org,
            type=self.org_type,
            region=self.region,
            asn=self.asn,
            source=source or self.source,
            country=self.country,
            network=str(self.network),
            identifiers=self.identifiers,
        )


def load_registry(path: str | Path) -> list[RegistryRecord]:
    """All records of one registry file; raises RegistryError naming every bad line."""
    records, problems = read_registry(path)
    if problems:
        raise RegistryError(problems)
    return records


def read_registry(path: str | Path) -> tuple[list[RegistryRecord], Problems]:
    """Records and problems of one registry file (records are only whole when no problems)."""
    name = str(path)
    suffix = Path(path).suffix.lower()
    if suffix not in REGISTRY_SUFFIXES:
        return [], [OwnershipProblem(name, 0, "not a registry file (expected .csv, .yaml, .yml)")]
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return [], [OwnershipProblem(name, 0, f"cannot read: {exc.strerror or exc}")]
    try:
        text = data.decode("utf-8-sig")  # Excel writes a BOM
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return [], [OwnershipProblem(name, line, "not UTF-8 text (save the file as UTF-8)")]
    if suffix == ".csv":
        return _read_csv(name, text)
    return _read_yaml(name, text)


def index_records(records: Iterable[RegistryRecord]) -> PrefixIndex[RegistryRecord]:
    """Longest-prefix index of records; for a prefix listed twice the first record stays."""
    index: PrefixIndex[RegistryRecord] = PrefixIndex()
    for record in records:
        index.add(record.network, record)
    return index


def _read_csv(path: str, text: str) -> tuple[list[RegistryRecord], Problems]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return [], [OwnershipProblem(path, 0, f"empty; expected a header row with {_required()}")]
    columns = [c.strip().lower() for c in header]
    problems = _header_problems(path, columns)
    if problems:
        return [], problems
    records: list[RegistryRecord] = []
    for row in reader:
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        line = reader.line_num
        if len(row) > len(columns):
            message = f"{len(row)} fields but the header has {len(columns)}"
            _note(problems, OwnershipProblem(path, line, message))
        else:
            _add(records, problems, dict(zip(columns, row, strict=False)), path, line)
        if len(problems) > MAX_PROBLEMS:
            break
    return records, problems


def _header_problems(path: str, columns: list[str]) -> Problems:
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    problems = []
    if missing:
        found = ",".join(columns)
        message = f"header lacks {', '.join(missing)} (found {found!r}; need {_required()})"
        problems.append(OwnershipProblem(path, 1, message))
    if repeated:
        problems.append(OwnershipProblem(path, 1, f"repeated column {', '.join(repeated)}"))
    if "" in columns:
        problems.append(OwnershipProblem(path, 1, "a column has no name"))
    return problems


def _read_yaml(path: str, text: str) -> tuple[list[RegistryRecord], Problems]:
    try:
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            if root is None:
                return [], []  # an empty file: a registry with no lines yet
            data = loader.construct_document(root)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(exc, "problem", None) or str(exc)
        return [], [OwnershipProblem(path, line, f"not valid YAML: {problem}")]
    if not isinstance(data, list):
        line = root.start_mark.line + 1
        return [], [OwnershipProblem(path, line, f"expected a list of mappings with {_required()}")]
    records: list[RegistryRecord] = []
    problems: Problems = []
    for node, item in zip(root.value, data, strict=True):
        line = node.start_mark.line + 1
        if not isinstance(item, dict) or not all(isinstance(k, str) for k in item):
            _note(problems, OwnershipProblem(path, line, "expected a mapping of names to values"))
            continue
        _add(records, problems, {k.strip().lower(): v for k, v in item.items()}, path, line)
        if len(problems) > MAX_PROBLEMS:
            break
    return records, problems


def _add(
    records: list[RegistryRecord],
    problems: Problems,
    fields: Mapping[str, Any],
    path: str,
    line: int,
) -> None:
    try:
        records.append(_record(fields, path, line))
    except ValueError as exc:
        _note(problems, OwnershipProblem(path, line, str(exc)))


def _note(problems: Problems, problem: OwnershipProblem) -> None:
    problems.append(problem)
    if len(problems) > MAX_PROBLEMS:
        problems.append(OwnershipProblem(problem.path, 0, "too many problems; stopped reading"))


def _record(fields: Mapping[str, Any], path: str, line: int) -> RegistryRecord:
    """One record from a row or mapping; ValueError says what is wrong with it."""
    text = {key: _text(key, value) for key, value in fields.items()}
    org_type = normalize_org_type(text.get("org_type"))
    if org_type is None:
        raise ValueError(
            f"unknown org_type {text.get('org_type')!r} (expected one of {', '.join(ORG_TYPES)})"
        )
    extras = tuple((k, v) for k, v in text.items() if k not in KNOWN_COLUMNS and v)
    return RegistryRecord(
        network=_network(text.get("network", "")),
        org=text.get("org") or None,
        org_type=org_type,
        region=text.get("region") or None,
        asn=_asn(text.get("asn", "")),
        country=_country(text.get("country", "")),
        identifiers=extras,
        path=path,
        line=line,
    )


def _text(key: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        raise ValueError(f"{key}: expected text or a number, not a {type(value).__name__}")
    return str(value).strip()


def _network(text: str) -> IPNetwork:
    if not text:
        raise ValueError("network is empty")
    try:
        return normalize_network(ipaddress.ip_network(text, strict=True))
    except ValueError as exc:
        raise ValueError(f"bad network {text!r}: {exc}") from None


def _asn(text: str) -> int | None:
    if not text:
        return None
    digits = text[2:] if text[:2].upper() == "AS" else text
    if not digits.isdigit() or not 0 < int(digits) < 2**32:
        raise ValueError(f"bad asn {text!r} (expected a number such as 4134 or AS4134)")
    return int(digits)


def _country(text: str) -> str | None:
    if not text:
        return None
    if len(text) != 2 or not text.isascii() or not text.isalpha():
        raise ValueError(f"bad country {text!r} (expected a two-letter ISO code such as CN)")
    return text.upper()


def _required() -> str:
    return ",".join(REQUIRED_COLUMNS)
