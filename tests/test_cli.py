"""`minewatch` as users run it: replay and rules check, exit codes, stdout and stderr.

In-process through `sensor.cli.main`, and once as a subprocess (`python -m sensor`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sensor.cli import main
from tests.factory import T0, TcpSession, write_pcap
from tests.sessions import MINING, SCRIPTS
from tests.test_pipeline import VARIANTS, build_capture, garbage_frames
from tests.test_replay import bad_inputs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "mining.pcap"
    build_capture(path, MINING, VARIANTS["plain"])
    return path


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_replay_writes_events_report_and_a_summary(capture, tmp_path, capsys):
    events, report = tmp_path / "events.json", tmp_path / "report.json"
    code = main(["replay", str(capture), "--events", str(events), "--report", str(report)])
    assert code == 0
    out = capsys.readouterr().out
    mining = [e for e in _lines(events) if e["event_type"] == "mining"]
    assert len(mining) == len(MINING)
    data = json.loads(report.read_text())
    assert data["totals"]["mining_flows"] == len(MINING)
    assert "minewatch replay: 1 file(s)" in out
    assert f"mining flows: {len(MINING)} from {len(MINING)} miner IP(s)" in out
    for event in mining:
        assert event["src_ip"] in out  # one line per miner


def test_replay_without_options_prints_only_the_summary(capture, capsys):
    assert main(["replay", str(capture), "--no-prefilter"]) == 0
    out = capsys.readouterr().out
    assert "(" in out and "python)" in out.splitlines()[0]
    assert not any(line.startswith("{") for line in out.splitlines())


def test_events_to_stdout_are_json_lines_only(capture, capsysbinary):
    assert main(["replay", str(capture), "--events", "-"]) == 0
    out = capsysbinary.readouterr().out.decode()
    events = [json.loads(line) for line in out.splitlines()]  # every line is JSON
    assert len([e for e in events if e["event_type"] == "mining"]) == len(MINING)
    assert len(events) == 2 * len(MINING)


def test_bad_inputs_exit_2_after_writing_the_good_files_events(tmp_path, capsys):
    good, bad, names = bad_inputs(tmp_path)
    alone, events = tmp_path / "alone.json", tmp_path / "events.json"
    assert main(["replay", str(good), "--events", str(alone)]) == 0
    capsys.readouterr()
    code = main(["replay", str(good), *map(str, bad), "--events", str(events)])
    assert code == 2
    out = capsys.readouterr().out
    written = [e for e in _lines(events) if e["pcap_filename"] == good.name]
    assert written == _lines(alone)
    errors = [line for line in out.splitlines() if line.startswith("input error: ")]
    for name in names.values():
        assert sum(f"input error: {name}: " in line for line in errors) == 1, (name, errors)


def test_malformed_packets_are_counted_and_the_run_goes_on(tmp_path, capsys):
    path = tmp_path / "garbage.pcap"
    build_capture(path, [SCRIPTS["grin"]], VARIANTS["plain"], garbage_frames(T0 + 0.02))
    events = tmp_path / "events.json"
    assert main(["replay", str(path), "--events", str(events), "--no-prefilter"]) == 0
    out = capsys.readouterr().out
    assert "decode errors: 5 (" in out
    assert [e["mining"]["dialect"] for e in _lines(events)] == ["grin", "grin"]


def _broken_rules(folder: Path) -> Path:
    rules = folder / "rules"
    rules.mkdir()
    (rules / "pools.yaml").write_text(
        "pools:\n"
        "  - id: test.pool.ok\n"
        "    domains: [pool.example]\n"
        "    source: test\n"
        "  - id: test.pool.broken\n"
        "    domains: [other.example]\n"
        "    prot: 3333\n"
        "    source: test\n"
    )
    return rules


def test_invalid_rules_exit_2_naming_file_and_line(capture, tmp_path, capsys):
    rules = _broken_rules(tmp_path)
    assert main(["replay", str(capture), "--rules", str(rules)]) == 2
    err = capsys.readouterr().err
    assert f"{rules / 'pools.yaml'}:7: unknown key 'prot'" in err


def test_rules_check_of_the_bundled_rules_exits_0(capsys):
    assert main(["rules", "check"]) == 0
    assert "rules OK" in capsys.readouterr().out


def test_rules_check_of_a_broken_dir_exits_2_naming_file_and_line(tmp_path, capsys):
    rules = _broken_rules(tmp_path)
    assert main(["rules", "check", str(rules)]) == 2
    out = capsys.readouterr().out
    assert f"{rules / 'pools.yaml'}:7: unknown key 'prot'" in out
    assert out.splitlines()[-1] == "1 problem in 1 file"


def test_missing_path_alone_exits_2(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "nothing.pcap")]) == 2
    assert f"input error: {tmp_path / 'nothing.pcap'}: no such file" in capsys.readouterr().out


def test_bad_usage_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["replay"])
    assert exc.value.code == 2
    assert "PATH" in capsys.readouterr().err


def test_python_dash_m_sensor_streams_events_and_names_bad_files(tmp_path):
    """The console entry point in a real process: stdout carries only events; the bad
    file is named on stderr; exit code 2 once the good file is done."""
    good = tmp_path / "good.pcap"
    sc = SCRIPTS["ethproxy"]
    write_pcap(
        good, TcpSession(("10.3.0.1", 40000), ("203.0.113.9", 8008)).script(sc.steps).packets()
    )
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\xd4\xc3\xb2\xa1" + b"\x00" * 10)  # a pcap magic, then nothing
    done = subprocess.run(
        [sys.executable, "-m", "sensor", "replay", str(good), str(bad), "--events", "-"],
        capture_output=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 2
    events = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert [e["event_type"] for e in events] == ["mining", "flow"]
    assert events[0]["mining"]["dialect"] == "ethproxy"
    assert "bad.pcap" in done.stderr.decode()
    assert "good.pcap" not in done.stderr.decode()


def test_replay_takes_settings_from_a_config_file_and_flags_win(tmp_path):
    from sensor.cli import main as _main

    sample = Path(__file__).resolve().parents[1] / "samples" / "minewatch-sample.pcapng"
    registry = tmp_path / "owners.csv"
    registry.write_text("network,org,org_type,region\n10.20.0.0/16,Example Uni,education,R1\n")
    report, other = tmp_path / "report.json", tmp_path / "other.json"
    config = tmp_path / "minewatch.yml"
    config.write_text(f"ownership: [{registry}]\nreport: {report}\n")
    assert _main(["replay", str(sample), "--config", str(config)]) == 0
    data = json.loads(report.read_text())
    education = data["by_org_type"][0]
    assert (education["org_type"], education["suspect_ips"], education["share"]) == (
        "education",
        5,
        0.833333,
    )
    assert _main(["replay", str(sample), "--config", str(config), "--report", str(other)]) == 0
    assert other.exists()
    bad = tmp_path / "bad.yml"
    bad.write_text("bogus: 1\n")
    assert _main(["replay", str(sample), "--config", str(bad)]) == 2
