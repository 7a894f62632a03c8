"""The daemon's config file: every key, defaults, and errors that name file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sensor.cli import main
from sensor.config import ConfigError, DaemonConfig, Windows, load_config

FULL = """\
interfaces: [eth1, eth2]
workers: 2
bpf: "not port 22"
home_net: [203.0.113.0/24, "2001:db8::/32"]
rules: [rules.d, /etc/minewatch/more]
rules_replace: true
ownership: [registry.csv]
web:
  listen_address: "0.0.0.0:10091"
  config_file: web.yml
events: /var/log/minewatch/eve.json
report: report.json
state_dir: state
user: minewatch
windows: {suspect: 30m, flow_idle: 90}
checkpoint_interval: 500ms
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "minewatch.yml"
    path.write_text(text)
    return path


def test_every_key_is_read_and_relative_paths_follow_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, FULL)
    config = load_config(path)
    assert config.interfaces == ("eth1", "eth2")
    assert (config.workers, config.bpf, config.rules_replace) == (2, "not port 22", True)
    assert config.home_net == ("203.0.113.0/24", "2001:db8::/32")
    assert config.rules == (tmp_path / "rules.d", Path("/etc/minewatch/more"))
    assert config.ownership == (str(tmp_path / "registry.csv"),)
    assert config.web.listen_address == ("0.0.0.0", 10091)
    assert config.web.config_file == tmp_path / "web.yml"
    assert config.events == "/var/log/minewatch/eve.json"
    assert (config.report, config.state_dir) == (tmp_path / "report.json", tmp_path / "state")
    assert config.user == "minewatch"
    assert config.windows == Windows(suspect=1800.0, flow_idle=90.0)
    assert config.checkpoint_interval == 0.5
    assert config.source == path


def test_empty_file_and_missing_keys_give_the_defaults(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, "")) == DaemonConfig(source=tmp_path / "minewatch.yml")
    config = load_config(_write(tmp_path, "interfaces: eth0\nevents: '-'\n"))
    assert config.interfaces == ("eth0",)  # one value stands for a list of one
    assert config.events == "-"  # stdout, not a file next to the config
    assert (config.workers, config.checkpoint_interval) == (1, 2.0)
    assert config.web.listen_address == ("127.0.0.1", 10090)
    assert config.windows == Windows(suspect=900.0, flow_idle=600.0)


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert all(p.startswith(f"{path}:") for p in caught.value.problems)
    return [p.removeprefix(f"{path}:") for p in caught.value.problems]


def test_every_problem_is_reported_with_its_line(tmp_path: Path) -> None:
    text = """\
interfaces: [eth0]
workers: 0
interfce: eth1
web:
  listen_adress: ":10090"
windows:
  suspect: soon
home_net: [10.0.0.1/8]
checkpoint_interval: -1
"""
    problems = _problems(tmp_path, text)
    assert problems[0] == "2: workers: expected a whole number from 1 to 64, not 0"
    assert problems[1].startswith("3: unknown key 'interfce' (known: bpf, checkpoint_interval,")
    assert problems[2].startswith("5: web: unknown key 'listen_adress' (known: config_file,")
    assert problems[3].startswith("7: windows: suspect: bad duration 'soon'")
    assert problems[4].startswith("8: home_net: not a network in CIDR form")
    assert problems[5].startswith("9: checkpoint_interval: bad duration '-1'")
    assert len(problems) == 6


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("interfaces: [eth0, 'has space']", "1: interfaces: bad interface name 'has space'"),
        ("interfaces: [averyveryverylongname]", "1: interfaces: bad interface name"),
        ("interfaces: {eth0: 1}", "1: interfaces: expected a list"),
        ("workers: true", "1: workers: expected a whole number from 1 to 64, not True"),
        ("workers: 1.5", "1: workers: expected a whole number"),
        ("rules_replace: 'yes please'", "1: rules_replace: expected true or false"),
        ("bpf: ''", "1: bpf: expected a non-empty string"),
        ("web: {listen_address: 'localhost'}", "1: web: listen_address: bad listen address"),
        ("web: [1]", "1: web: expected a mapping"),
        ("windows: {flow_idle: 0}", "1: windows: flow_idle: must be more than 0"),
        ("user: [a, b]", "1: user: expected a non-empty string"),
        ("workers: 2\nworkers: 3", "2: 'workers' given twice"),
        ("interfaces: [eth0\nworkers: 2", ": invalid YAML"),
        ("- just\n- a list", "1: expected a mapping"),
        ("state_dir: !!python/object:os.system x", "1: state_dir: unreadable value"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, text: str, expected: str) -> None:
    (problem,) = _problems(tmp_path, text)
    assert problem.startswith(expected) or expected in problem, problem


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"
    with pytest.raises(ConfigError, match=f"^{missing}: cannot read"):
        load_config(missing)


def test_minewatch_run_exits_2_naming_file_and_line(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, "interfaces: [eth0]\nworkers: many\n")
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "minewatch: invalid config:" in err
    assert f"{path}:2: workers: expected a whole number from 1 to 64, not 'many'" in err


def test_minewatch_run_without_an_interface_is_bad_usage(tmp_path: Path, capsys) -> None:
    assert main(["run", "--config", str(_write(tmp_path, "workers: 1\n"))]) == 2
    assert "no interface" in capsys.readouterr().err


def test_an_unknown_user_is_a_config_error(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, "interfaces: [eth0]\nuser: no-such-user-here\n")
    assert main(["run", "--config", str(path)]) == 2
    assert "no such user 'no-such-user-here'" in capsys.readouterr().err
