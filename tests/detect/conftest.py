"""Fixtures for detector tests: the bundled dialect signatures and coin hints."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from sensor.rules.model import CoinHint, CoinHints, DialectRule

RULES = Path(__file__).resolve().parents[2] / "rules"


def _rule(entry: dict) -> DialectRule:
    return DialectRule(
        id=entry["id"],
        dialect=entry["dialect"],
        description=entry["description"],
        client_methods=frozenset(entry.get("client_methods", [])),
        server_methods=frozenset(entry.get("server_methods", [])),
        share_methods=frozenset(entry.get("share_methods", [])),
        login_methods=frozenset(entry.get("login_methods", [])),
        coin=entry.get("coin"),
        algorithm=entry.get("algorithm"),
    )


def _hint(entry: dict) -> CoinHint:
    def pattern(key: str) -> re.Pattern[str] | None:
        return re.compile(entry[key]) if key in entry else None

    return CoinHint(
        id=entry["id"],
        coin=entry["coin"],
        algorithm=entry.get("algorithm"),
        wallet=pattern("wallet"),
        agent=pattern("agent"),
        host=pattern("host"),
    )


@pytest.fixture(scope="session")
def dialect_rules() -> dict[str, DialectRule]:
    data = yaml.safe_load((RULES / "dialects.yaml").read_text())
    return {e["dialect"]: _rule(e) for e in data["dialects"]}


@pytest.fixture(scope="session")
def coins() -> CoinHints:
    data = yaml.safe_load((RULES / "coins.yaml").read_text())
    return CoinHints(tuple(_hint(e) for e in data["coins"]))
