"""rules stage: YAML rule files (dialects, coin hints, pool endpoints, efficiency) as data."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent  # the `sensor` package


def bundled_rules_dir() -> Path:
    """The rules shipped with minewatch.

    A wheel carries them inside the package (`sensor/_bundled_rules`, see
    pyproject.toml); a source checkout or editable install keeps them in the
    repository's top-level `rules/`, next to the `sensor` package.
    """
    bundled = _PACKAGE / "_bundled_rules"
    if bundled.is_dir():
        return bundled
    return _PACKAGE.parent / "rules"
