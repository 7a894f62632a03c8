"""tools/import_poollists.py: parsing the public lists, and deterministic output."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from sensor.rules.schema import validate_text

REPO = Path(__file__).resolve().parents[2]
LISTS = REPO / ".." / "shared" / "poollists"


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        "import_poollists", REPO / "tools" / "import_poollists.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


def test_maltrail_hosts_addresses_ports_and_titles() -> None:
    text = "\n".join(
        [
            "# Reference: https://example.org/report",
            "Pool.Example.com",
            "http://198.51.7.1/path",
            "8.8.4.4:3333",
            "8.8.4.4:5555",
            "10.0.0.1:3333",  # private: never a public pool
            "# TITLE-HOST/IP=Some Mining Pool",
            "1.1.1.1:7777",
            "# Reference: https://example.org/other",
            "xmr.example.net",
        ]
    )
    items = list(tool.parse_maltrail(text))
    assert [(i.host, i.ip, i.port, i.pool) for i in items] == [
        ("pool.example.com", None, None, None),
        (None, "198.51.7.1", None, None),
        (None, "8.8.4.4", 3333, None),
        (None, "8.8.4.4", 5555, None),
        (None, "1.1.1.1", 7777, "Some Mining Pool"),
        ("xmr.example.net", None, None, None),
    ]


def test_adblock_keeps_only_whole_host_rules() -> None:
    text = "\n".join(
        [
            "! comment",
            "||miner.example^$third-party",
            "||coinimp.example$third-party",
            "||ddns.example^*=ws://$third-party",
            "||cdn.example/js/miner.js",
            "||proxy-*.now.example^",
            "@@||allowed.example^",
            "/coinhive.min.js",
            "||203.0.113.9^",  # documentation range: not global
            "||45.15.156.210^",
        ]
    )
    items = list(tool.parse_adblock(text))
    assert [(i.host, i.ip) for i in items] == [
        ("miner.example", None),
        ("coinimp.example", None),
        (None, "45.15.156.210"),
    ]


def test_url_patterns_keep_websocket_and_whole_host_patterns() -> None:
    text = "\n".join(
        [
            "*://coinhive.example/lib*",  # one script path: not the whole host
            "wss://*.proxy.example/proxy*",
            "ws://*.ws.example:9333/proxy/*",
            "*://*.whole.example/*",
            "*://*/*plugins/ajcryptominer/assets/*",
        ]
    )
    assert [i.host for i in tool.parse_url_patterns(text)] == [
        "proxy.example",
        "ws.example",
        "whole.example",
    ]


def test_hosts_file_and_shared_hosting_parents() -> None:
    text = "# c\n0.0.0.0 miner.example\n0.0.0.0 now.sh\n0.0.0.0 x.now.sh\n127.0.0.1\n"
    assert [i.host for i in tool.parse_hosts(text)] == ["miner.example", "x.now.sh"]


@pytest.mark.parametrize(
    ("host", "coin", "base"),
    [
        ("xmr-eu1.nanopool.org", "xmr", "nanopool.org"),
        ("stratum-eth.antpool.com", "eth", "antpool.com"),
        ("pool.monero.hashvault.pro", "xmr", "hashvault.pro"),
        ("xmrpool.eu", None, "xmrpool.eu"),  # the registered name itself says nothing
        ("eth-xmr.example.com", None, "example.com"),  # two coins: neither
        ("mine.zlx.com.br", None, "zlx.com.br"),
    ],
)
def test_host_coin_and_base_domain(host: str, coin: str | None, base: str) -> None:
    assert tool.host_coin(host) == coin
    assert tool.base_domain(host) == base


@pytest.fixture(scope="module")
def lists() -> Path:
    if not LISTS.is_dir():
        pytest.skip("shared pool lists not present")
    return LISTS


def test_importer_is_deterministic_and_matches_the_committed_files(
    lists: Path, tmp_path: Path
) -> None:
    first, second = tmp_path / "1", tmp_path / "2"
    assert tool.main(["--lists", str(lists), "--out", str(first)]) == 0
    assert tool.main(["--lists", str(lists), "--out", str(second)]) == 0
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(s.out for s in tool.SOURCES)
    for name in names:
        text = (first / name).read_text()
        assert text == (second / name).read_text()
        # The bundled copies are what the importer makes: regenerate after changing either.
        assert text == (REPO / "rules" / "pools" / name).read_text(), name


def test_imported_files_validate_and_cite_their_source(lists: Path) -> None:
    for src in tool.SOURCES:
        text = tool.generate(src, lists)
        entries, problems = validate_text(text, src.out)
        assert problems == []
        assert len(entries) > 10
        assert {e.values["source"] for e in entries} == {src.source}
        assert "Permission is hereby granted" in text or "Apache License" in text


def test_nocoin_entries_are_browser_mining_and_others_omit_the_default() -> None:
    items = [tool.Item(host="miner.example"), tool.Item(ip="45.15.156.210")]
    for src in tool.SOURCES:
        entries = tool.host_entries(src, items) + tool.network_entries(src, items)
        assert len(entries) == 2
        kinds = {e.get("kind") for e in entries}
        browser = src.key in ("nocoin", "keraf")
        assert kinds == ({"browser"} if browser else {None}), src.key


def test_importer_refuses_missing_lists(tmp_path: Path) -> None:
    assert tool.main(["--lists", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()
