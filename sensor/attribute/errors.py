"""Problems with ownership inputs (registries, mmdb files), named by file and line.

Every problem is found when the inputs are loaded, never while traffic is being
attributed: a sensor that starts has sources it can use for the whole run.
"""

from __future__ import annotations

from sensor.errors import InputProblem, InputProblems


class OwnershipProblem(InputProblem):
    """One thing wrong with a registry or mmdb file."""

    __slots__ = ()


class OwnershipError(InputProblems):
    """Raised with every problem found, so one run fixes them all."""


class RegistryError(OwnershipError):
    """A registry file (CSV or YAML) that cannot be read or has bad lines."""


class MmdbError(OwnershipError):
    """An mmdb file that cannot be opened, is corrupt, or is of a type we cannot use."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__([OwnershipProblem(path, 0, message)])
        self.path = path
