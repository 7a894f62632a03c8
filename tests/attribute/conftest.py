"""Fixtures: MaxMind's public test databases in ../shared/mmdb (skipped when absent)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

MMDB_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "mmdb"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} not present (MaxMind test data lives in ../shared/mmdb)")
    return path


@pytest.fixture(scope="session")
def test_data() -> Path:
    """MaxMind-DB test-data: real GeoIP2/GeoLite2 test databases and broken ones."""
    return _need(MMDB_DIR / "test-data")


@pytest.fixture(scope="session")
def bad_data() -> Path:
    return _need(MMDB_DIR / "bad-data")


@pytest.fixture(scope="session")
def source_data() -> Path:
    """The JSON the test databases were generated from: which IPs hold what."""
    return _need(MMDB_DIR / "source-data")


def load_source(source_data: Path, name: str) -> list[tuple[str, dict[str, Any]]]:
    """(network, record) pairs of one source-data JSON file, in file order."""
    entries = json.loads((source_data / name).read_text(encoding="utf-8"))
    return [(network, record) for entry in entries for network, record in entry.items()]
