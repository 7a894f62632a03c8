"""`minewatch report EVENTS... -o FILE`: the report rebuilt from a replay's events.

One synthetic capture with miners of several dialects and owners (an ownership
CSV names most of them) is replayed with --events and --report; `report` over
those events must give the report the replay gave. The capture holds only the
miners' flows, so the events' window is the capture's window too.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from sensor.cli import main
from sensor.commands.report import output_format
from sensor.sinks.report import ReportBuilder
from sensor.sinks.report_events import (
    EventLog,
    EventLogError,
    Span,
    egress_series,
    feed,
    mining_record,
)
from tests.factory import T0, TcpSession, merge, write_pcap
from tests.sessions import SCRIPTS

OWNERS = """network,org,org_type,region
10.1.0.0/16,Nanjing Campus,education,Jiangsu/Nanjing
10.2.0.0/16,Suzhou Bureau,government,Jiangsu/Suzhou
10.3.0.0/16,Wuxi Works,enterprise,Jiangsu/Wuxi
"""
# miner, pool, script, start offset (s): two miners share an org, one has no owner
MINERS = (
    ("10.1.0.2", "198.51.100.10", "stratum_v1_btc", 0.0),
    ("10.1.0.3", "198.51.100.11", "ethereum_stratum", 1.5),
    ("10.2.0.2", "198.51.100.12", "cryptonote_xmrig", 3.0),
    ("10.3.0.2", "198.51.100.13", "stratum_v1_ltc", 4.5),
    ("192.0.2.50", "198.51.100.10", "stratum_v1_btc", 6.0),
)


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("report_command")
    sessions = []
    for n, (miner, pool, name, offset) in enumerate(MINERS):
        script = SCRIPTS[name]
        session = TcpSession((miner, 41000 + n), (pool, script.port), start=T0 + offset)
        sessions.append(session.script(script.steps).packets())
    write_pcap(folder / "miners.pcap", merge(*sessions))
    (folder / "owners.csv").write_text(OWNERS, encoding="utf-8")
    paths = {name: folder / name for name in ("miners.pcap", "owners.csv")}
    paths["events"], paths["report"] = folder / "events.json", folder / "report.json"
    args = ["replay", str(paths["miners.pcap"]), "--ownership", str(paths["owners.csv"])]
    args += ["--events", str(paths["events"]), "--report", str(paths["report"])]
    assert main(args) == 0
    return paths


def _report(replayed: dict[str, Path], out: Path, *extra: str) -> int:
    args = ["report", str(replayed["events"]), "-o", str(out)]
    return main([*args, "--ownership", str(replayed["owners.csv"]), *extra])


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_report_from_events_equals_the_replays_report(replayed, tmp_path):
    assert _report(replayed, tmp_path / "r.json") == 0
    ours, theirs = _load(tmp_path / "r.json"), _load(replayed["report"])
    assert theirs["totals"]["suspect_ips"] == len(MINERS)
    for key in ("window", "totals", "by_coin", "by_org_type", "by_region", "by_org"):
        assert ours[key] == theirs[key], key
    assert ours["suspects"] == theirs["suspects"]
    assert ours["pools"] == theirs["pools"]


def test_the_compared_reports_have_estimates_not_only_nulls(replayed):
    # Equality above would hold trivially if the estimates were all null.
    report = _load(replayed["report"])
    assert all(s["hashrate_hs"] and s["power_w"] for s in report["suspects"])
    assert report["totals"]["energy_kwh_per_day"] > 0


def test_html_output_by_suffix(replayed, tmp_path):
    assert _report(replayed, tmp_path / "r.html") == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert 'data-field="totals.suspect_ips" data-value="5"' in page
    assert 'data-series="egress.bytes"' in page  # the events allow egress over time


def test_csv_output_to_a_folder(replayed, tmp_path):
    assert _report(replayed, tmp_path / "tables", "--format", "csv") == 0
    theirs = _load(replayed["report"])
    with open(tmp_path / "tables" / "suspects.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["ip"] for r in rows] == [s["ip"] for s in theirs["suspects"]]
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == [
        "by_coin.csv",
        "by_org.csv",
        "by_org_type.csv",
        "by_region.csv",
        "pools.csv",
        "suspects.csv",
        "totals.csv",
    ]


def test_a_bad_event_line_is_named_and_exits_2(tmp_path, capsys):
    events = tmp_path / "events.json"
    events.write_text('{"event_type": "crypto_node"}\n\nnot json\n', encoding="utf-8")
    assert main(["report", str(events), "-o", str(tmp_path / "r.json")]) == 2
    assert f"{events}:3: not JSON" in capsys.readouterr().err
    with pytest.raises(EventLogError, match=":1: bad flow event"):
        events.write_text('{"event_type": "flow", "mining": {}}\n', encoding="utf-8")
        feed([events], ReportBuilder())


@pytest.mark.parametrize(
    ("output", "given", "expected"),
    [
        ("r.html", None, "html"),
        ("R.HTM", None, "html"),
        ("out/", None, "csv"),
        ("r.json", None, "json"),
        ("r", None, "json"),
        ("r.html", "json", "json"),
    ],
)
def test_output_format(output, given, expected):
    assert output_format(output, given) == expected


def test_egress_series_spreads_each_flows_bytes_over_its_lifetime():
    log = EventLog(start=0.0, end=10.0, spans=[Span(0.0, 10.0, 1000), Span(2.5, 2.5, 7)])
    series = egress_series(log, buckets=4)
    assert [b["bytes"] for b in series] == [250.0, 257.0, 250.0, 250.0]
    assert sum(b["bytes"] for b in series) == 1007
    assert series[1]["mbps"] == round(257 * 8 / 1e6 / 2.5, 6)
    assert egress_series(EventLog(), buckets=4) == []


@pytest.mark.parametrize(
    ("dest_ip", "pool", "host"),
    [
        ("198.51.100.10", "198.51.100.10:3333", None),
        ("2001:db8::1", "[2001:db8::1]:3333", None),
        ("2001:db8::1", "pool.example:3333", "pool.example"),
    ],
)
def test_pool_host_comes_back_from_the_pool_field(dest_ip, pool, host):
    event = {
        "timestamp": "2023-11-14T22:13:20.000000+00:00",
        "flow_id": 7,
        "proto": "TCP",
        "src_ip": "10.1.0.2",
        "src_port": 40000,
        "dest_ip": dest_ip,
        "dest_port": 3333,
        "mining": {
            "dialect": "stratum-v1",
            "confidence": "confirmed",
            "rule_id": "x",
            "pool": pool,
        },
    }
    rec = mining_record(event)
    assert (rec.pool_host, rec.pool, rec.ts) == (host, pool, T0)
