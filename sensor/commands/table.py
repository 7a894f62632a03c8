"""Plain-text tables for commands that print rows (ownership lookup, screen)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

EMPTY = "-"


def cell(value: Any) -> str:
    """A value as table text: None and empty values show as "-" so columns stay aligned."""
    if value is None or value == "" or value == [] or value == {}:
        return EMPTY
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    text = [list(headers), *([cell(v) for v in row] for row in rows)]
    widths = [max(len(line[i]) for line in text) for i in range(len(headers))]
    out = []
    for line in text:
        padded = [value.ljust(width) for value, width in zip(line[:-1], widths, strict=False)]
        out.append("  ".join([*padded, line[-1]]).rstrip())
    return "\n".join(out)
