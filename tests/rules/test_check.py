"""`minewatch rules check`: the problem list and its printed form."""

from __future__ import annotations

from pathlib import Path

from sensor.rules.check import check, format_problems
from sensor.rules.errors import RuleError, RuleProblem


def test_bundled_rules_have_no_problems() -> None:
    assert check() == []
    assert format_problems([]) == "rules OK: no problems found"


def test_check_a_single_file(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("pools:\n  - {id: a, domains: [x.com], source: s, prot: 1}\n")
    assert [str(p) for p in check([path])] == [
        f"{path}:2: unknown key 'prot' (did you mean 'ports'?)"
    ]


def test_check_does_not_mix_in_the_bundled_rules(tmp_path: Path) -> None:
    # The bundled pools define minewatch.pool.nanopool; a user dir may reuse that id
    # (to override it), so checking the dir alone must not call it a duplicate.
    path = tmp_path / "x.yaml"
    path.write_text("pools:\n  - {id: minewatch.pool.nanopool, domains: [x.com], source: s}\n")
    assert check([tmp_path]) == []


def test_format_problems_sorts_and_counts() -> None:
    problems = [
        RuleProblem("rules/b.yaml", 7, "bad port 0 (expected 1-65535)"),
        RuleProblem("rules/a.yaml", 42, "unknown key 'prot'"),
        RuleProblem("rules/a.yaml", 3, "missing required key 'id'"),
    ]
    assert format_problems(problems).splitlines() == [
        "rules/a.yaml:3: missing required key 'id'",
        "rules/a.yaml:42: unknown key 'prot'",
        "rules/b.yaml:7: bad port 0 (expected 1-65535)",
        "3 problems in 2 files",
    ]


def test_problem_and_error_text() -> None:
    line = RuleProblem("rules/pools/x.yaml", 42, "unknown key 'prot'")
    whole = RuleProblem("rules", 0, "no rule files (*.yaml, *.yml) found")
    assert str(line) == "rules/pools/x.yaml:42: unknown key 'prot'"
    assert str(whole) == "rules: no rule files (*.yaml, *.yml) found"
    error = RuleError([line, whole])
    assert error.problems == [line, whole]
    assert str(error) == f"{line}\n{whole}"
