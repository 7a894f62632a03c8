"""Problems found in rule files, reported all at once with file and line."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RuleProblem:
    """One thing wrong with a rule file; `line` is 1-based, 0 when the whole file is meant."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        if self.line > 0:
            return f"{self.path}:{self.line}: {self.message}"
        return f"{self.path}: {self.message}"


class RuleError(Exception):
    """Raised by the loader with every problem it found, so one run fixes them all."""

    def __init__(self, problems: Iterable[RuleProblem]) -> None:
        self.problems: list[RuleProblem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
