"""The schema validator: every problem with its line, all problems of a file at once."""

from __future__ import annotations

import textwrap

import pytest

from sensor.rules.schema import SCHEMA, check_unique, validate_text

GOOD_POOL = """\
pools:
  - id: t.pool
    pool: Example
    domains: [pool.example.com]
    networks: [192.0.2.0/24, 2001:db8::/32, 198.51.100.7]
    ports: [3333, 4444]
    coin: xmr
    source: test
    date: 2026-11-21
"""


def validate(text: str) -> tuple[list, list]:
    return validate_text(textwrap.dedent(text), "t.yaml")


def test_good_pool_entry_converts_values() -> None:
    entries, problems = validate(GOOD_POOL)
    assert problems == []
    (entry,) = entries
    assert (entry.section, entry.line, entry.id) == ("pools", 2, "t.pool")
    assert entry.values["ports"] == [3333, 4444]
    # An unquoted date is a YAML timestamp; the validator hands on the ISO text.
    assert entry.values["date"] == "2026-11-21"


# The start of a pool rule (lines 1-2) and two of its usual keys, one line each.
P, D, S = "pools:\n  - id: a\n", "    domains: [x.com]\n", "    source: s\n"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (P + "    prot: 1\n" + D + S, 3, "unknown key 'prot' (did you mean 'ports'?)"),
        ("pools:\n  - domains: [x.com]\n" + S, 2, "missing required key 'id'"),
        ("coins:\n  - id: a\n    coin: xmr\n    wallet: '([a-z'\n" + S, 4, "regular"),
        (P + "    networks: [10.0.0.300/8]\n" + S, 3, "bad network"),
        (P + "    networks: [10.0.0.1/8]\n" + S, 3, "host bits"),
        (P + D + "    ports: [70000]\n" + S, 4, "bad port 70000"),
        (P + D + "    ports: [http]\n" + S, 4, "must be an integer"),
        (P + "    domains: ['*.x.com']\n" + S, 3, "bad host name"),
        (P + D, 2, "missing required key 'source' in rule 'a'"),
        (P + S, 2, "needs at least one of domains, networks"),
        (P + "    domains: x.com\n" + S, 3, "must be a list"),
        ("pools:\n  - id: a b\n" + D + S, 2, "bad id"),
        (P + D + S + "    date: 21.11.2026\n", 5, "bad date"),
        (P + D + S + "    date: 2026-02-30\n", 5, "bad date"),
        (P + D + "    coin: XMR\n" + S, 4, "bad coin"),
        (P + D + "    kind: miner\n" + S, 4, "'kind': unknown kind 'miner' (expected"),
        (P + D + "    kind: [browser]\n" + S, 4, "'kind' must be a string"),
        (P + "    id: b\n" + D + S, 3, "duplicate key 'id'"),
        ("pools:\n  - just a string\n", 2, "must be a mapping"),
        ("pools: {id: a}\n", 1, "must be a list"),
        ("dialects:\n  - id: a\n    dialect: stratum\n    description: d\n", 3, "dialect"),
        ("coins:\n  - id: a\n    coin: xmr\n" + S, 2, "wallet, agent, host"),
        ("efficiency:\n  - {id: e, algorithm: x, hardware: h, joules_per_hash: 0, source: s}\n",
         2, "greater than 0"),
        ("pool:\n  - id: a\n", 1, "unknown top-level key 'pool' (did you mean 'pools'?)"),
        ("- id: a\n", 1, "expected a mapping"),
        (P + "    domains: [x.com\n", 4, "YAML syntax error"),
        (P + "   domains: [x.com]\n", 3, "YAML syntax error"),
    ],
)  # fmt: skip
def test_each_problem_names_its_line(text: str, line: int, message: str) -> None:
    _, problems = validate_text(text, "rules/t.yaml")
    assert len(problems) == 1, problems
    assert problems[0].path == "rules/t.yaml"
    assert problems[0].line == line
    assert message in problems[0].message


@pytest.mark.parametrize("kind", ["pool", "browser"])
def test_pool_kind_is_optional_and_kept(kind: str) -> None:
    entries, problems = validate(P + D + f"    kind: {kind}\n" + S)
    assert problems == []
    assert entries[0].values["kind"] == kind
    (default,), _ = validate(P + D + S)
    assert "kind" not in default.values


def test_all_problems_of_a_file_are_reported() -> None:
    text = """\
    pools:
      - id: a
        prot: 1
        domains: [x.com]
        ports: [0]
        source: s
      - id: b
        networks: [nonsense]
        source: s
    """
    _, problems = validate(text)
    assert [p.line for p in problems] == [3, 5, 8]


def test_optional_null_is_absent_and_empty_section_is_fine() -> None:
    entries, problems = validate(
        "coins:\npools:\n  - {id: a, domains: [x.com], coin: ~, source: s}\n"
    )
    assert problems == []
    assert "coin" not in entries[0].values


def test_empty_file_holds_no_rules() -> None:
    assert validate("# nothing yet\n") == ([], [])


def test_number_without_dot_is_accepted() -> None:
    # PyYAML reads 6e-11 as a string (YAML 1.1); efficiency figures are written that way.
    text = (
        "efficiency:\n  - {id: e, algorithm: a, hardware: h, joules_per_hash: 6e-11, source: s}\n"
    )
    entries, problems = validate(text)
    assert problems == []
    assert entries[0].values["joules_per_hash"] == pytest.approx(6e-11)


def test_check_unique_points_at_both_definitions() -> None:
    first, _ = validate_text("pools:\n  - {id: a, domains: [x.com], source: s}\n", "one.yaml")
    second, _ = validate_text("\ncoins:\n  - {id: a, coin: xmr, host: x, source: s}\n", "two.yaml")
    (problem,) = check_unique(first + second)
    assert str(problem) == "two.yaml:3: duplicate id 'a' (first defined at one.yaml:2)"


def test_every_section_requires_an_id() -> None:
    assert all(section.fields["id"].required for section in SCHEMA.values())
