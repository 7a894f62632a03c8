"""Replay benchmark: minewatch against tcpdump and ndpiReader on one capture, in one run.

    python bench/replay_bench.py bench/out/big.pcap [--runs 3] [--no-prefilter] [--json FILE]

Each tool reads the whole file, pinned to one core (`taskset -c 0`) when
taskset exists. Runs are interleaved round robin, so drift hits every tool
alike, after one read of the file that puts it in the page cache. Reported per
tool: the median (or `--stat best`) wall time of `--runs`, packets/s, peak RSS
and CPU seconds (from the rusage wait4 returns for that child alone), and
throughput relative to tcpdump and to ndpiReader (above 1: faster than them).
minewatch's mining flow count is checked against `<FILE>.truth.json`, written
by make_big_capture.py; the exit status is 1 when it differs, or when a tool
fails. Tools that are not installed are skipped with a note.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

Findings = dict[str, object]
GNU_TIME = "/usr/bin/time"


def _nothing(_out: str, _report: Path | None) -> Findings:
    return {}


@dataclass(slots=True)
class Tool:
    """A reader to time: its command, and how to read its findings from its output."""

    name: str
    cmd: list[str]
    parse: Callable[[str, Path | None], Findings] = _nothing
    report: Path | None = None  # where minewatch writes its JSON report


@dataclass(slots=True)
class Run:
    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    exit: int
    found: Findings


@dataclass(slots=True)
class Result:
    """One tool's figures over all its runs; wall_s is the chosen statistic."""

    name: str
    cmd: str
    walls: list[float]
    wall_s: float
    pps: float
    peak_rss_mib: float
    cpu_s: float
    exit: int
    found: Findings
    x_tcpdump: float | None = None
    x_ndpireader: float | None = None


@dataclass(slots=True)
class Check:
    expected: int | None
    found: dict[str, object] = field(default_factory=dict)
    ok: bool = True


def run_once(tool: Tool, cpu: str, timeout: float) -> Run:
    """Runs a tool to the end: wall time, CPU and peak RSS of that process (and children)."""
    if tool.report is not None:
        tool.report.unlink(missing_ok=True)  # a stale report must not pass for this run's
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r") as rss:
        stdout = out if tool.parse is not _nothing else subprocess.DEVNULL
        started = time.perf_counter()
        proc = subprocess.Popen(wrapped(tool.cmd, cpu, rss.name), stdout=stdout, stderr=out)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            # os.wait4 rather than Popen.wait: it hands back this child's own rusage.
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        text = _tail(out)
        peak_kib = _time_rss(rss.read()) or usage.ru_maxrss
    found = tool.parse(text, tool.report)
    cpu_s = usage.ru_utime + usage.ru_stime
    return Run(wall, cpu_s, peak_kib / 1024, proc.returncode, found)


def wrapped(cmd: list[str], cpu: str, rss_file: str) -> list[str]:
    """`cmd` pinned to `cpu` and under GNU time when they exist.

    GNU time forks the tool from its own small image. Without it the tool's
    peak RSS would start at this script's: a child spawned from Python keeps
    its parent's high-water mark across exec.
    """
    if cpu and shutil.which("taskset"):
        cmd = ["taskset", "-c", cpu, *cmd]
    if Path(GNU_TIME).exists():
        cmd = [GNU_TIME, "-f", "%M", "-o", rss_file, *cmd]
    return cmd


def _tail(fh: IO[bytes], limit: int = 1 << 20) -> str:
    """The last `limit` bytes a tool wrote (its summary), as text."""
    size = fh.seek(0, os.SEEK_END)
    fh.seek(max(0, size - limit))
    return fh.read().decode(errors="replace")


def _time_rss(text: str) -> int:
    """Peak RSS in KiB from GNU time's `-f %M` output (0 when absent)."""
    lines = text.strip().splitlines()
    return int(lines[-1]) if lines and lines[-1].isdigit() else 0


def parse_ndpi(out: str, _report: Path | None) -> Findings:
    """ndpiReader's summary: unique flows, and the flows it calls Mining."""
    found: Findings = {}
    if m := re.search(r"Unique flows:\s+(\d+)", out):
        found["flows"] = int(m.group(1))
    if m := re.search(r"^\s*Mining\s+packets:\s*\d+\s+bytes:\s*\d+\s+flows:\s*(\d+)", out, re.M):
        found["mining_flows"] = int(m.group(1))
    return found


def parse_minewatch(out: str, report: Path | None) -> Findings:
    """Mining flows from the JSON report (a documented contract); mode from the summary."""
    found: Findings = {}
    if report is not None and report.exists():
        found["mining_flows"] = json.loads(report.read_text())["totals"]["mining_flows"]
    if m := re.search(r"packets/s, ([^)]+)\)", out):
        found["mode"] = m.group(1)
    return found


def minewatch_cmd() -> list[str]:
    exe = shutil.which("minewatch")
    return [exe, "replay"] if exe else [sys.executable, "-m", "sensor", "replay"]


def make_tools(path: Path, workdir: Path, no_prefilter: bool) -> tuple[list[Tool], list[str]]:
    """The tools to time, and a note for each one skipped."""
    f = str(path)
    candidates = [
        Tool("cat", ["cat", f]),
        Tool("tcpdump", ["tcpdump", "-r", f, "-w", os.devnull, *_as_root()]),
        # Without -v, ndpiReader prints no per-flow lines, only a short summary (parsed).
        Tool("ndpiReader", ["ndpiReader", "-i", f], parse_ndpi),
        _minewatch("minewatch", f, workdir, []),
    ]
    if no_prefilter:
        candidates.append(_minewatch("minewatch --no-prefilter", f, workdir, ["--no-prefilter"]))
    present, notes = [], []
    for tool in candidates:
        if shutil.which(tool.cmd[0]):
            present.append(tool)
        else:
            notes.append(f"{tool.name}: skipped ({tool.cmd[0]} not found)")
    return present, notes


def _as_root() -> list[str]:
    """As root, tcpdump hands its output file to user tcpdump (here /dev/null): -Z root not."""
    return ["-Z", "root"] if os.geteuid() == 0 else []


def _minewatch(name: str, path: str, workdir: Path, extra: list[str]) -> Tool:
    report = workdir / f"report-{len(extra)}.json"
    cmd = [*minewatch_cmd(), path, "--report", str(report), "--no-progress", *extra]
    return Tool(name, cmd, parse_minewatch, report)


def warm_cache(path: Path) -> None:
    with path.open("rb") as fh:
        while fh.read(1 << 23):
            pass


def load_truth(path: Path, truth: Path | None) -> dict[str, object]:
    truth = truth or path.with_name(path.name + ".truth.json")
    return json.loads(truth.read_text()) if truth.exists() else {}


def count_packets(path: Path, facts: dict[str, object]) -> int:
    """Packets in the file: from the ground truth when there is one, else counted in C."""
    if isinstance(facts.get("packets"), int):
        return int(facts["packets"])  # type: ignore[call-overload]
    from sensor.capture.replay import FileReader, InputErrors

    return FileReader(InputErrors()).count(path)[0]


def measure(selected: list[Tool], args: argparse.Namespace) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {t.name: [] for t in selected}
    for n in range(args.runs):
        for tool in selected:
            run = run_once(tool, args.cpu, args.timeout)
            runs[tool.name].append(run)
            note = f"  run {n + 1}/{args.runs} {tool.name:<26} {run.wall_s:8.2f} s"
            print(note + (f"  exit {run.exit}" if run.exit else ""), file=sys.stderr)
    return runs


def summarise(
    selected: list[Tool], runs: dict[str, list[Run]], packets: int, stat: str
) -> list[Result]:
    results = []
    for tool in selected:
        done = runs[tool.name]
        walls = [r.wall_s for r in done]
        wall = min(walls) if stat == "best" else statistics.median(walls)
        results.append(
            Result(
                name=tool.name,
                cmd=" ".join(tool.cmd),
                walls=[round(w, 3) for w in walls],
                wall_s=round(wall, 3),
                pps=round(packets / wall) if wall > 0 else 0.0,
                peak_rss_mib=round(max(r.peak_rss_mib for r in done), 1),
                cpu_s=round(statistics.median(r.cpu_s for r in done), 2),
                exit=max((r.exit for r in done), key=abs),
                found=done[-1].found,
            )
        )
    for name, attr in (("tcpdump", "x_tcpdump"), ("ndpiReader", "x_ndpireader")):
        ref = next((r for r in results if r.name == name), None)
        for r in results:
            if ref is not None and r.wall_s > 0:
                setattr(r, attr, round(ref.wall_s / r.wall_s, 3))
    return results


def check(results: list[Result], facts: dict[str, object]) -> Check:
    """Did every minewatch variant find the mining flows the capture holds?"""
    expected = facts.get("mining_flows")
    verdict = Check(expected if isinstance(expected, int) else None)
    for r in results:
        if r.name.startswith("minewatch"):
            verdict.found[r.name] = r.found.get("mining_flows")
            if verdict.expected is not None and r.found.get("mining_flows") != verdict.expected:
                verdict.ok = False
    return verdict


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def table(results: list[Result], packets: int, stat: str) -> str:
    head = (
        f"{'tool':<26} {'wall s':>8} {'M pkt/s':>8} {'x tcpdump':>9} {'x ndpi':>7} "
        f"{'RSS MiB':>8} {'CPU s':>7}  findings"
    )
    lines = [f"{packets:,} packets; {stat} of runs", head, "-" * len(head)]
    for r in results:
        found = ", ".join(f"{k}={v}" for k, v in r.found.items())
        if r.exit:
            found = f"EXIT {r.exit}; {found}"
        lines.append(
            f"{r.name:<26} {r.wall_s:8.2f} {r.pps / 1e6:8.3f} {_ratio(r.x_tcpdump):>9} "
            f"{_ratio(r.x_ndpireader):>7} {r.peak_rss_mib:8.1f} {r.cpu_s:7.2f}  {found}"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("file", type=Path)
    p.add_argument("--runs", type=int, default=3, help="runs per tool (default 3)")
    p.add_argument("--stat", choices=("median", "best"), default="median")
    p.add_argument("--cpu", default="0", help="taskset CPU list ('' to not pin)")
    p.add_argument("--no-prefilter", action="store_true", help="also time the pure-Python pass")
    p.add_argument("--truth", type=Path, help="ground truth (default FILE.truth.json)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON ('-': stdout)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds before a run is killed")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.file.is_file():
        print(f"{args.file}: no such file", file=sys.stderr)
        return 2
    facts = load_truth(args.file, args.truth)
    packets = count_packets(args.file, facts)
    with tempfile.TemporaryDirectory(prefix="replay-bench-") as tmp:
        selected, notes = make_tools(args.file, Path(tmp), args.no_prefilter)
        warm_cache(args.file)
        results = summarise(selected, measure(selected, args), packets, args.stat)
    verdict = check(results, facts)
    out = sys.stderr if args.json == "-" else sys.stdout
    print(table(results, packets, args.stat), file=out)
    for note in notes:
        print(f"note: {note}", file=out)
    print(_verdict_line(verdict), file=out)
    if args.json:
        _write_json(args, packets, results, verdict, notes)
    failed = any(r.exit for r in results)
    return 0 if verdict.ok and not failed else 1


def _verdict_line(v: Check) -> str:
    if v.expected is None:
        return f"mining flows: {v.found} (no ground truth file: not checked)"
    status = "OK" if v.ok else "MISMATCH"
    return f"mining flows: expected {v.expected}, found {v.found}: {status}"


def _write_json(
    args: argparse.Namespace, packets: int, results: list[Result], v: Check, notes: list[str]
) -> None:
    doc = {
        "file": str(args.file),
        "bytes": args.file.stat().st_size,
        "packets": packets,
        "runs": args.runs,
        "stat": args.stat,
        "cpu": args.cpu if shutil.which("taskset") else "",
        "tools": [asdict(r) for r in results],
        "mining_flows": asdict(v),
        "notes": notes,
    }
    text = json.dumps(doc, indent=2) + "\n"
    if args.json == "-":
        sys.stdout.write(text)
    else:
        Path(args.json).write_text(text)


if __name__ == "__main__":
    sys.exit(main())
