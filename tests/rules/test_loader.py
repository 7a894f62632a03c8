"""Loading rule directories: bundled rules, --rules add/replace, overrides, all errors at once."""

from __future__ import annotations

import ipaddress
import textwrap
from pathlib import Path

import pytest

import sensor.rules
from sensor.model import DIALECTS
from sensor.rules import bundled_rules_dir
from sensor.rules.errors import RuleError
from sensor.rules.loader import load_rules, rule_files

REPO = Path(__file__).resolve().parents[2]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(*dirs: Path, replace: bool = True) -> list[str]:
    with pytest.raises(RuleError) as caught:
        load_rules(list(dirs), replace=replace)
    return [str(p) for p in caught.value.problems]


@pytest.fixture(scope="module")
def bundled():
    return load_rules()


def test_bundled_dir_is_the_repository_rules_folder() -> None:
    assert bundled_rules_dir() == REPO / "rules"


def test_bundled_dir_inside_an_installed_wheel(tmp_path: Path, monkeypatch) -> None:
    # A wheel installs rules/ as sensor/_bundled_rules (pyproject force-include).
    package = tmp_path / "site-packages" / "sensor"
    (package / "_bundled_rules").mkdir(parents=True)
    monkeypatch.setattr(sensor.rules, "_PACKAGE", package)
    assert bundled_rules_dir() == package / "_bundled_rules"


def test_bundled_rules_load_every_section(bundled) -> None:
    assert set(bundled.dialects) <= set(DIALECTS)
    assert {"stratum-v1", "cryptonote", "ethproxy"} <= set(bundled.dialects)
    assert bundled.dialects["cryptonote"].coin == "xmr"
    assert "submit" in bundled.dialects["cryptonote"].share_methods
    assert bundled.coins.for_wallet("0x" + "ab" * 20).coin == "eth"
    assert len(bundled.pools) > 100
    assert all(p.source and p.date for p in bundled.pools)
    # Pool files live in rules/pools/: the bundled directory is read recursively.
    assert any(f.endswith("known_pools.yaml") for f in bundled.files)


def test_pool_records_are_normalised(tmp_path: Path) -> None:
    write(tmp_path, "p.yml", """\
        pools:
          - {id: p, domains: [Pool.Example.COM.], networks: [192.0.2.9], ports: [3333],
             source: s, date: 2026-01-02}
        """)  # fmt: skip
    (pool,) = load_rules([tmp_path], replace=True).pools
    assert pool.domains == ("pool.example.com",)
    assert pool.networks == (ipaddress.ip_network("192.0.2.9/32"),)
    assert (pool.ports, pool.date) == ((3333,), "2026-01-02")


def test_pool_kind_defaults_to_pool(tmp_path: Path) -> None:
    write(tmp_path, "p.yml", """\
        pools:
          - {id: web, domains: [webminer.example], kind: browser, source: s}
          - {id: pool, domains: [pool.example], source: s}
        """)  # fmt: skip
    kinds = {p.id: p.kind for p in load_rules([tmp_path], replace=True).pools}
    assert kinds == {"web": "browser", "pool": "pool"}


def test_bundled_browser_mining_services_are_marked(bundled) -> None:
    kinds = {p.id: p.kind for p in bundled.pools}
    for service in ("coinhive", "authedmine", "crypto-loot"):
        assert kinds[f"minewatch.pool.{service}"] == "browser"
    assert kinds["minewatch.pool.nanopool"] == "pool"


MINE = "pools:\n  - {id: my.pool, domains: [pool.example.net], source: me}\n"


def test_rules_dir_adds_to_the_bundled_set(tmp_path: Path, bundled) -> None:
    write(tmp_path, "mine.yaml", MINE)
    added = load_rules([tmp_path])
    assert len(added.pools) == len(bundled.pools) + 1
    assert added.dialects.keys() == bundled.dialects.keys()


def test_replace_uses_only_the_given_dirs(tmp_path: Path) -> None:
    write(tmp_path, "mine.yaml", MINE)
    replaced = load_rules([tmp_path], replace=True)
    assert [p.id for p in replaced.pools] == ["my.pool"]
    assert replaced.dialects == {}
    assert replaced.files == (str(tmp_path / "mine.yaml"),)


def test_later_dir_overrides_same_id_in_place(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    write(first, "c.yaml", """\
        coins:
          - {id: c.one, coin: xmr, host: one, source: s}
          - {id: c.two, coin: eth, host: two, source: s}
        """)  # fmt: skip
    write(second, "c.yaml", "coins:\n  - {id: c.one, coin: zec, host: one, source: mine}\n")
    hints = load_rules([first, second], replace=True).coins.hints
    # The override keeps the overridden hint's place: coin hints are tried in order.
    assert [(h.id, h.coin) for h in hints] == [("c.one", "zec"), ("c.two", "eth")]


def test_later_dir_replaces_a_dialect_signature(tmp_path: Path, bundled) -> None:
    write(tmp_path, "d.yaml", """\
        dialects:
          - id: my.cryptonote
            dialect: cryptonote
            description: with a new method
            client_methods: [login, submit, mining.hello]
        """)  # fmt: skip
    rules = load_rules([tmp_path])
    assert rules.dialects["cryptonote"].id == "my.cryptonote"
    assert rules.dialects["stratum-v1"] == bundled.dialects["stratum-v1"]


def test_two_signatures_for_one_dialect_in_one_dir_is_an_error(tmp_path: Path) -> None:
    entry = "  - {{id: {}, dialect: grin, description: d}}\n"
    write(tmp_path, "d.yaml", "dialects:\n" + entry.format("g1") + entry.format("g2"))
    (problem,) = problems_of(tmp_path)
    assert problem.startswith(f"{tmp_path / 'd.yaml'}:3: dialect 'grin' already has rule 'g1'")


def test_duplicate_id_across_files_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "pools:\n  - {id: dup, domains: [a.example], source: s}\n")
    write(tmp_path, "sub/b.yaml", "# c\npools:\n  - {id: dup, domains: [b.example], source: s}\n")
    assert problems_of(tmp_path) == [
        f"{tmp_path / 'sub' / 'b.yaml'}:3: duplicate id 'dup' (first defined at "
        f"{tmp_path / 'a.yaml'}:2)"
    ]


def test_all_problems_of_all_files_are_raised_together(tmp_path: Path) -> None:
    write(
        tmp_path, "a.yaml", "pools:\n  - id: a\n    prot: 1\n    domains: [x.com]\n    source: s\n"
    )
    write(tmp_path, "b.yaml", "pools:\n  - {id: b, domains: [x.com], ports: [0], source: s}\n")
    write(tmp_path, "c.yaml", "pools: [\n")
    found = problems_of(tmp_path)
    assert [p.split(": ", 1)[0] for p in found] == [
        f"{tmp_path / 'a.yaml'}:3",
        f"{tmp_path / 'b.yaml'}:2",
        f"{tmp_path / 'c.yaml'}:2",
    ]
    assert "unknown key 'prot'" in found[0]


def test_a_broken_user_dir_fails_even_when_adding(tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", "coins:\n  - {id: x, coin: xmr, wallet: '(', source: s}\n")
    (problem,) = problems_of(tmp_path, replace=False)
    assert problem.startswith(f"{tmp_path / 'bad.yaml'}:2: 'wallet': bad regular expression")


def test_missing_or_empty_dir_is_a_problem(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "nope") == [f"{tmp_path / 'nope'}: no such file or directory"]
    assert problems_of(tmp_path) == [f"{tmp_path}: no rule files (*.yaml, *.yml) found"]


def test_rule_files_are_sorted_and_filtered(tmp_path: Path) -> None:
    for name in ("b.yaml", "a/z.yml", "a.yaml", "notes.txt", "c.yaml.bak"):
        write(tmp_path, name, "")
    found = [p.relative_to(tmp_path).as_posix() for p in rule_files(tmp_path)]
    assert found == ["a/z.yml", "a.yaml", "b.yaml"]
    assert rule_files(tmp_path / "b.yaml") == [tmp_path / "b.yaml"]


def test_undecodable_file_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "bin.yaml").write_bytes(b"pools:\n  - \xff\xfe\n")
    (problem,) = problems_of(tmp_path)
    assert problem.startswith(f"{tmp_path / 'bin.yaml'}: cannot read")
