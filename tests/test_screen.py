"""`minewatch screen CANDIDATES --events FILE...`: confirmed candidates and their organisations.

Event logs are written here line by line as the events contract describes them
(and, once, by a real replay), candidates as an operator's CSV would be.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from sensor.cli import main
from sensor.commands.screen import normal_ip, parse_candidates
from tests.factory import T0, TcpSession, merge, write_pcap
from tests.sessions import SCRIPTS

CANDIDATES = """ip,note
# screened by the bureau, October
10.1.0.2,campus
10.1.0.3,campus annex
::ffff:10.9.0.2,hospital (written IPv4-mapped)
10.9.0.7,hospital
192.0.2.50,nobody knows
2001:db8:10::2,bureau
203.0.113.5,node operator

10.1.0.2,listed twice
10.0.0.256,typo
hello world,
2001:db8::zz,
"""
INVALID = [(12, "10.0.0.256"), (13, "hello world"), (14, "2001:db8::zz")]

CAMPUS = {"name": "Nanjing Campus", "type": "education", "region": "Jiangsu/Nanjing"}
HOSPITAL = {"name": "Xuzhou Hospital", "type": "enterprise", "region": "Jiangsu/Xuzhou"}
BUREAU = {"name": "Suzhou Bureau", "type": "government", "region": "Jiangsu/Suzhou"}
NOBODY = {"name": None, "type": None, "region": None}


def _event(kind: str, src: str, org: dict[str, Any] | None = None, coin: str = "btc") -> str:
    event: dict[str, Any] = {
        "timestamp": "2021-10-01T08:00:00.000000+00:00",
        "flow_id": 1,
        "event_type": kind,
        "src_ip": src,
        "src_port": 40000,
        "dest_ip": "198.51.100.10",
        "dest_port": 3333,
        "proto": "TCP",
    }
    if kind in ("mining", "flow"):
        owner = {**(org or NOBODY), "asn": None, "source": None}
        event["mining"] = {"dialect": "stratum-v1", "coin": coin, "org": owner}
    else:
        event[kind] = {"protocol": "bitcoin"}
    return json.dumps(event)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    candidates = tmp_path / "candidates.csv"
    candidates.write_text(CANDIDATES, encoding="utf-8")
    first = [
        _event("mining", "10.1.0.2", CAMPUS),
        _event("flow", "10.1.0.2", CAMPUS),
        _event("mining", "10.9.0.2", HOSPITAL, coin="eth"),  # candidate written mapped
        _event("mining", "::ffff:10.9.0.7", HOSPITAL),  # event written mapped
        _event("crypto_node", "203.0.113.5"),  # a node, not a miner
        _event("flow", "203.0.113.5"),  # a flow without its mining event is not evidence
        '{"event_type": "mining", "src_ip": ',  # a log cut mid-line
    ]
    second = [
        _event("mining", "10.1.0.3", CAMPUS, coin="xmr"),
        _event("mining", "192.0.2.50", NOBODY),
        _event("mining", "2001:db8:10::2", BUREAU),
        _event("mining", "198.51.100.99", CAMPUS),  # a miner nobody asked about
    ]
    paths = {"candidates": candidates}
    for name, lines in (("day1.json", first), ("day2.json", second)):
        paths[name] = tmp_path / name
        paths[name].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


def _screen(files: dict[str, Path], *extra: str) -> list[str]:
    events = [str(files["day1.json"]), str(files["day2.json"])]
    return ["screen", str(files["candidates"]), "--events", *events, *extra]


def test_json_result_counts_confirmed_candidates_and_groups_them_by_org(files, capsys):
    assert main(_screen(files, "--json")) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert {"candidates", "invalid", "confirmed", "organisations", "by_org"} <= set(result)
    assert (result["candidates"], result["invalid"], result["confirmed"]) == (7, 3, 6)
    assert result["organisations"] == 3
    contract = ("org", "org_type", "region", "ips")
    assert [{k: row[k] for k in contract} for row in result["by_org"]] == [
        {**_org(CAMPUS), "ips": ["10.1.0.2", "10.1.0.3"]},
        {**_org(HOSPITAL), "ips": ["10.9.0.2", "10.9.0.7"]},
        {**_org(BUREAU), "ips": ["2001:db8:10::2"]},
    ]
    assert result["by_org"][0]["coins"] == ["btc", "xmr"]
    assert result["unattributed"] == ["192.0.2.50"]
    assert "203.0.113.5" not in result["confirmed_ips"]
    assert [(i["line"], i["text"]) for i in result["invalid_lines"]] == INVALID
    assert result["duplicates"] == 1
    assert "1 unreadable event line(s) skipped" in captured.err


def _org(owner: dict[str, Any]) -> dict[str, Any]:
    return {"org": owner["name"], "org_type": owner["type"], "region": owner["region"]}


def test_human_output_says_how_many_at_how_many_organisations(files, capsys):
    assert main(_screen(files)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "6 of 7 candidate IPs confirmed, at 3 organisations"
    assert lines[1].split() == ["org", "org_type", "region", "count", "ips"]
    assert _cells(lines[2]) == ["Nanjing Campus", "education", "Jiangsu/Nanjing", "2", IPS]
    assert _cells(lines[5]) == ["(unknown organisation)", "-", "-", "1", "192.0.2.50"]
    assert lines[6] == "3 invalid candidate line(s) (not an IP address):"
    assert lines[7:] == [f"  {files['candidates']}:{n}: {text!r}" for n, text in INVALID]


IPS = "10.1.0.2, 10.1.0.3"


def _cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line)


def test_ownership_files_take_precedence_over_the_events(files, tmp_path, capsys):
    registry = tmp_path / "owners.csv"
    registry.write_text(
        "network,org,org_type,region\n"
        "10.1.0.3/32,Jiangning Annex,education,Jiangsu/Nanjing\n"
        "192.0.2.48/28,Lianyungang Port,enterprise,Jiangsu/Lianyungang\n",
        encoding="utf-8",
    )
    assert main(_screen(files, "--ownership", str(registry), "--json")) == 0
    result = json.loads(capsys.readouterr().out)
    by_org = {row["org"]: row["ips"] for row in result["by_org"]}
    assert by_org == {
        "Nanjing Campus": ["10.1.0.2"],  # the registry does not know it: the event's owner
        "Jiangning Annex": ["10.1.0.3"],
        "Xuzhou Hospital": ["10.9.0.2", "10.9.0.7"],
        "Suzhou Bureau": ["2001:db8:10::2"],
        "Lianyungang Port": ["192.0.2.50"],
    }
    assert (result["organisations"], result["unattributed"]) == (5, [])


def test_a_missing_event_log_exits_2_after_reading_the_others(files, tmp_path, capsys):
    missing = tmp_path / "gone.json"
    args = ["screen", str(files["candidates"]), "--events", str(missing)]
    assert main([*args, "--events", str(files["day1.json"]), "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["confirmed"] == 3  # day 1 alone: 10.1.0.2, 10.9.0.2, .7
    assert f"{missing}: " in captured.err


def test_a_missing_candidates_file_exits_2(files, tmp_path, capsys):
    missing = tmp_path / "nothing.csv"
    assert main(["screen", str(missing), "--events", str(files["day1.json"])]) == 2
    assert str(missing) in capsys.readouterr().err


def test_candidates_parsing():
    found = parse_candidates(["10.0.0.1\n", "  10.0.0.2  \n", "10.0.0.1\n", "::FFFF:10.0.0.3\n"])
    assert found.ips == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert (found.invalid, found.duplicates) == ([], 1)
    headerless = parse_candidates(["not-an-ip\n", "10.0.0.1\n"])  # a first line without dots
    assert headerless.ips == ["10.0.0.1"] and headerless.invalid == []
    typo = parse_candidates(["10.0.0.1000\n", "address\n"])  # only the first row may be a header
    assert typo.invalid == [(1, "10.0.0.1000"), (2, "address")]
    quoted = parse_candidates(['"2001:DB8::1","a, b"\n'])
    assert quoted.ips == ["2001:db8::1"]
    assert normal_ip("::ffff:192.0.2.1") == "192.0.2.1" and normal_ip("10.0.0.256") is None


def test_screen_over_a_real_replays_events(tmp_path, capsys):
    """The events a replay with --ownership writes are what screen reads."""
    sc = SCRIPTS["stratum_v1_btc"]
    miners = [("10.1.0.2", "198.51.100.10"), ("::ffff:10.1.0.3", "2001:db8:ff::10")]
    sessions = [
        TcpSession((miner, 40000 + n), (pool, sc.port), start=T0 + n).script(sc.steps)
        for n, (miner, pool) in enumerate(miners)
    ]
    capture, events = tmp_path / "miners.pcap", tmp_path / "events.json"
    write_pcap(capture, merge(*(s.packets() for s in sessions)))
    registry = tmp_path / "owners.csv"
    registry.write_text(
        "network,org,org_type,region\n10.1.0.0/16,Nanjing Campus,education,Jiangsu/Nanjing\n",
        encoding="utf-8",
    )
    replay = ["replay", str(capture), "--ownership", str(registry), "--events", str(events)]
    assert main([*replay, "--no-prefilter"]) == 0
    candidates = tmp_path / "candidates.txt"
    candidates.write_text("10.1.0.3\n10.1.0.2\n10.1.0.4\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["screen", str(candidates), "--events", str(events), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["candidates"], result["confirmed"], result["organisations"]) == (3, 2, 1)
    assert result["by_org"][0]["ips"] == ["10.1.0.2", "10.1.0.3"]
    assert result["by_org"][0]["org_type"] == "education"
