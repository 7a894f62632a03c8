"""Problems with input files (rules, ownership data, configuration), named by file and line.

Inputs are checked when they are loaded, and every problem is reported at
once, so one run of the user fixes them all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InputProblem:
    """One thing wrong with an input; `line` is 1-based, 0 when the whole file is meant."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        if self.line > 0:
            return f"{self.path}:{self.line}: {self.message}"
        return f"{self.path}: {self.message}"


class InputProblems(Exception):
    """Raised with every problem found in a set of inputs."""

    def __init__(self, problems: Iterable[InputProblem]) -> None:
        self.problems: list[InputProblem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @property
    def paths(self) -> list[str]:
        """The files with problems, each once, in the order found."""
        return list(dict.fromkeys(p.path for p in self.problems))
