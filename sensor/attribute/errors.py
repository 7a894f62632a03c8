"""Problems with ownership inputs (registries, mmdb files), named by file and line.

Every problem is found when the inputs are loaded, never while traffic is being
attributed: a sensor that starts has sources it can use for the whole run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OwnershipProblem:
    """One thing wrong with an input; `line` is 1-based, 0 when the whole file is meant."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        if self.line > 0:
            return f"{self.path}:{self.line}: {self.message}"
        return f"{self.path}: {self.message}"


class OwnershipError(Exception):
    """Raised with every problem found, so one run fixes them all."""

    def __init__(self, problems: Iterable[OwnershipProblem]) -> None:
        self.problems: list[OwnershipProblem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @property
    def paths(self) -> list[str]:
        """The files with problems, each once, in the order found."""
        return list(dict.fromkeys(p.path for p in self.problems))


class RegistryError(OwnershipError):
    """A registry file (CSV or YAML) that cannot be read or has bad lines."""


class MmdbError(OwnershipError):
    """An mmdb file that cannot be opened, is corrupt, or is of a type we cannot use."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__([OwnershipProblem(path, 0, message)])
        self.path = path
