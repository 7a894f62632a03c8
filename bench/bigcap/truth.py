"""Ground truth of the big capture: what minewatch finds in the source captures.

The big capture holds `copies` address-rewritten copies of the sources, so it
must contain `copies` times the mining flows minewatch reports for the sources
themselves (replayed as they are, as one run over the files). Background
flows are built to contain none.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path


def minewatch_command() -> list[str]:
    """The replay command of the installed package, run by this interpreter."""
    return [sys.executable, "-m", "sensor", "replay"]


def source_events(files: list[Path]) -> tuple[int, dict[str, object]]:
    """Mining flows minewatch finds in `files`, and their split by dialect and file."""
    with tempfile.TemporaryDirectory(prefix="bigcap-truth-") as tmp:
        events = Path(tmp) / "events.jsonl"
        cmd = [*minewatch_command(), *map(str, files), "--events", str(events)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode not in (0, 2) or not events.exists():
            raise RuntimeError(
                f"minewatch replay failed ({done.returncode}): {done.stderr[-2000:]}"
            )
        return summarise(events.read_text().splitlines())


def summarise(lines: list[str]) -> tuple[int, dict[str, object]]:
    """Counts from EVE lines: mining flows, and details (by dialect, by file, node events)."""
    by_dialect: Counter[str] = Counter()
    by_file: Counter[str] = Counter()
    node = 0
    for line in lines:
        event = json.loads(line)
        if event.get("event_type") == "mining":
            by_dialect[event["mining"]["dialect"]] += 1
            by_file[event.get("pcap_filename", "?")] += 1
        elif event.get("event_type") == "crypto_node":
            node += 1
    return sum(by_dialect.values()), {
        "by_dialect": dict(sorted(by_dialect.items())),
        "by_file": dict(sorted(by_file.items())),
        "crypto_node_events": node,
    }
