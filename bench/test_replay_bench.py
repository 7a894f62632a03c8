"""Tests of the replay benchmark runner (run: pytest bench/test_replay_bench.py)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import replay_bench as rb
from bigcap.pcapio import PcapWriter

NDPI_SUMMARY = """
Traffic statistics:
\tIP packets:            148346        of 148390 packets total
\tUnique flows:          13727
Detected protocols:
\tDNS                  packets: 8528          bytes: 900000        flows: 2400
\tMining               packets: 11112         bytes: 2064400       flows: 824
"""


def _run(wall: float, found: dict[str, object] | None = None, exit: int = 0) -> rb.Run:
    return rb.Run(wall, wall, 10.0, exit, found or {})


def test_parse_ndpi_reads_flows_and_mining_flows() -> None:
    assert rb.parse_ndpi(NDPI_SUMMARY, None) == {"flows": 13727, "mining_flows": 824}
    assert rb.parse_ndpi("nothing useful", None) == {}


def test_parse_minewatch_reads_the_report_and_mode(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"totals": {"mining_flows": 1342}}))
    out = "minewatch replay: 1 file(s), 10 packets (1 KB) in 1 s (10 packets/s, libpcap two-pass)"
    assert rb.parse_minewatch(out, report) == {"mining_flows": 1342, "mode": "libpcap two-pass"}
    assert rb.parse_minewatch("", tmp_path / "absent.json") == {}


@pytest.mark.skipif(not Path(rb.GNU_TIME).exists(), reason="GNU time is not installed")
def test_run_once_measures_the_child_alone() -> None:
    big = rb.Tool(
        "big", [sys.executable, "-c", "x = bytearray(96 << 20); x[::4096] = b'1' * 24576"]
    )
    small = rb.Tool("small", [sys.executable, "-c", "import sys; sys.exit(3)"])
    ballast = bytearray(128 << 20)  # this process is larger than both children
    ballast[::4096] = b"1" * len(ballast[::4096])
    big_run, small_run = rb.run_once(big, "", 30), rb.run_once(small, "", 30)
    assert 96 <= big_run.peak_rss_mib < 128
    assert small_run.peak_rss_mib < 64 and small_run.exit == 3
    assert big_run.wall_s > 0 and big_run.cpu_s > 0


def test_run_once_parses_what_the_tool_printed() -> None:
    tool = rb.Tool("ndpi-like", [sys.executable, "-c", f"print({NDPI_SUMMARY!r})"], rb.parse_ndpi)
    assert rb.run_once(tool, "", 30).found == {"flows": 13727, "mining_flows": 824}


def test_summarise_takes_the_median_and_relates_to_tcpdump_and_ndpi() -> None:
    tools = [rb.Tool(n, [n]) for n in ("tcpdump", "ndpiReader", "minewatch")]
    runs = {
        "tcpdump": [_run(1.0), _run(0.9), _run(5.0)],
        "ndpiReader": [_run(2.0), _run(2.0), _run(2.2)],
        "minewatch": [_run(4.0), _run(3.0, {"mining_flows": 5}), _run(4.4)],
    }
    median = {r.name: r for r in rb.summarise(tools, runs, 1_000_000, "median")}
    assert median["tcpdump"].wall_s == 1.0 and median["tcpdump"].x_tcpdump == 1.0
    assert median["minewatch"].wall_s == 4.0 and median["minewatch"].pps == 250_000
    assert median["minewatch"].x_tcpdump == 0.25 and median["minewatch"].x_ndpireader == 0.5
    best = {r.name: r for r in rb.summarise(tools, runs, 1_000_000, "best")}
    assert best["minewatch"].wall_s == 3.0 and best["minewatch"].x_tcpdump == 0.3


def test_check_compares_every_minewatch_variant_with_the_truth() -> None:
    tools = [rb.Tool("minewatch", ["m"]), rb.Tool("minewatch --no-prefilter", ["m"])]
    runs = {
        "minewatch": [_run(1.0, {"mining_flows": 10})],
        "minewatch --no-prefilter": [_run(1.0, {"mining_flows": 9})],
    }
    results = rb.summarise(tools, runs, 10, "median")
    assert rb.check(results, {"mining_flows": 10}).ok is False
    assert rb.check(results[:1], {"mining_flows": 10}).ok is True
    assert rb.check(results, {}).expected is None


def test_absent_tools_are_skipped_with_a_note(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    tools, notes = rb.make_tools(tmp_path / "x.pcap", tmp_path, no_prefilter=True)
    assert [t.name for t in tools] == ["minewatch", "minewatch --no-prefilter"]
    assert {n.split(":")[0] for n in notes} == {"cat", "tcpdump", "ndpiReader"}


@pytest.mark.skipif(shutil.which("minewatch") is None, reason="minewatch is not installed")
def test_main_times_every_tool_and_checks_the_count(tmp_path: Path) -> None:
    frame = bytes(12) + b"\x08\x00" + bytes.fromhex("4500001c00000000401100000a0000010a000002")
    path = tmp_path / "tiny.pcap"
    with path.open("wb") as fh:
        PcapWriter(fh).write_all(
            [(1_700_000_000_000_000 + n, frame + bytes(8), 42) for n in range(5)]
        )
    path.with_name("tiny.pcap.truth.json").write_text(json.dumps({"packets": 5, "mining_flows": 0}))
    out = tmp_path / "bench.json"
    assert rb.main([str(path), "--runs", "1", "--cpu", "", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    names = [t["name"] for t in doc["tools"]]
    assert names[-1] == "minewatch" and doc["mining_flows"]["ok"] is True
    assert doc["packets"] == 5 and all(t["wall_s"] > 0 for t in doc["tools"])
