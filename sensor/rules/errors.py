"""Problems found in rule files, reported all at once with file and line."""

from __future__ import annotations

from sensor.errors import InputProblem, InputProblems


class RuleProblem(InputProblem):
    """One thing wrong with a rule file."""

    __slots__ = ()


class RuleError(InputProblems):
    """Raised by the loader with every problem it found, so one run fixes them all."""
