"""Build a large, deterministic benchmark capture and its ground truth.

    python bench/make_big_capture.py                       # ~1.1 GB, bench/out/big.pcap
    python bench/make_big_capture.py --size-mb 50 --out /tmp/small.pcap

The capture is `copies` copies of every Ethernet capture in ../shared/captures
(mining, node, negative), each (copy, file) with its own IPv4 addresses, plus
synthetic background traffic (HTTP, TLS, DNS, SSH-like, QUIC-like UDP, idle
TLS, plain ACKs) filling the rest of the size. By default the real captures
make up a tenth of the bytes (`--real-share`), about 33 copies at 1.1 GB.

Layouts: `sequential` (default) concatenates the copies in time, each with its
share of background spread over it; `parallel` starts all copies within
seconds of each other, as if many miners shared one link, which keeps far more
flows alive at once (a harder test of flow tables and of pass-2 filters).

Next to the capture, `<out>.truth.json` records what it contains, including
`mining_flows`: copies x the mining flows `minewatch replay` finds in the
source captures (counted by running it on them once, unless given with
`--mining-flows-per-copy`). Same arguments, same bytes.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bigcap import background, real, templates, truth
from bigcap.pcapio import PcapWriter, Record

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = ROOT / ".." / "shared"
DEFAULT_OUT = ROOT / "bench" / "out" / "big.pcap"
SOURCE_FOLDERS = ("mining", "node", "negative")
T0_US = 1_700_000_000 * 1_000_000  # 2023-11-14T22:13:20Z
FILE_GAP_US = 1_000_000  # between files of a sequential copy
STAGGER_US = 1_000_000  # between copies in the parallel layout
MB = 1_000_000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mb", type=float, default=1100, help="target size in MB (10^6 bytes)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output pcap path")
    p.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared folder")
    p.add_argument("--real-share", type=float, default=0.1, help="share of bytes from real copies")
    p.add_argument("--copies", type=int, help="copies of the real captures (overrides the share)")
    p.add_argument("--layout", choices=("sequential", "parallel"), default="sequential")
    p.add_argument(
        "--mining-flows-per-copy",
        type=int,
        help="skip running minewatch on the sources and use this count",
    )
    return p.parse_args(argv)


def find_sources(shared: Path) -> list[Path]:
    """The capture files of the source folders, in a stable order."""
    found = []
    for folder in SOURCE_FOLDERS:
        base = shared / "captures" / folder
        found += sorted(p for p in base.rglob("*") if p.suffix in (".pcap", ".pcapng"))
    return found


def load_sources(paths: list[Path]) -> tuple[list[real.SourceFile], list[Path], list[str]]:
    """Loaded Ethernet sources, their paths, and the names of files skipped."""
    loaded, used, skipped = [], [], []
    for path in paths:
        source = real.load_source(path)
        if source is None:
            skipped.append(path.name)
        else:
            loaded.append(source)
            used.append(path)
    return loaded, used, skipped


def pcap_size(source: real.SourceFile) -> int:
    return source.captured_bytes + 16 * len(source.frames)


def sequential(sources: list[real.SourceFile], copies: int) -> tuple[Iterator[Record], int]:
    """Copies one after another, files one after another: (records, span in µs)."""
    offsets, at = [], 0
    for source in sources:
        offsets.append(at)
        at += source.duration_us + FILE_GAP_US
    copy_span = at
    parts = (
        real.replay(src, T0_US + k * copy_span + offsets[i], real.address_mask(k, i, len(sources)))
        for k in range(copies)
        for i, src in enumerate(sources)
    )
    return itertools.chain.from_iterable(parts), copies * copy_span


def parallel(sources: list[real.SourceFile], copies: int) -> tuple[Iterator[Record], int]:
    """Every copy of every file starting within seconds: (records, span in µs)."""
    parts = [
        real.replay(src, T0_US + k * STAGGER_US + i * 1000, real.address_mask(k, i, len(sources)))
        for k in range(copies)
        for i, src in enumerate(sources)
    ]
    span = max(s.duration_us for s in sources) + copies * STAGGER_US
    return heapq.merge(*parts), span


def background_flows(built: dict[str, list[templates.Template]], budget: int) -> int:
    flows, _, size = background.cycle_bytes(built)
    return max(0, round(budget * flows / size))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    paths = find_sources(args.shared)
    if not paths:
        print(f"no captures under {args.shared / 'captures'}", file=sys.stderr)
        return 2
    sources, used, skipped = load_sources(paths)
    per_copy = sum(pcap_size(s) for s in sources)
    target = int(args.size_mb * MB)
    copies = args.copies or max(1, round(target * args.real_share / per_copy))
    built = templates.build()
    flows = background_flows(built, target - 24 - copies * per_copy)
    layout = sequential if args.layout == "sequential" else parallel
    real_records, span = layout(sources, copies)
    plan = background.Plan(flows, T0_US, span)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("wb") as fh:
        writer = PcapWriter(fh)
        writer.write_all(heapq.merge(real_records, background.stream(built, plan)))
    found = _source_truth(args, used)
    facts = _facts(args, used, skipped, copies, per_copy, flows, writer, found)
    facts["seconds_to_build"] = round(time.monotonic() - started, 1)
    truth_path = args.out.with_name(args.out.name + ".truth.json")
    truth_path.write_text(json.dumps(facts, indent=2) + "\n")
    print(_summary(args.out, facts))
    return 0


def _source_truth(args: argparse.Namespace, used: list[Path]) -> dict[str, object]:
    if args.mining_flows_per_copy is not None:
        return {"mining_flows": args.mining_flows_per_copy, "source": "--mining-flows-per-copy"}
    found = truth.source_events(used)
    found["source"] = "minewatch replay of the source captures"
    return found


def _facts(
    args: argparse.Namespace,
    used: list[Path],
    skipped: list[str],
    copies: int,
    per_copy: int,
    flows: int,
    writer: PcapWriter,
    found: dict[str, object],
) -> dict[str, object]:
    per_copy_flows = int(found["mining_flows"])  # type: ignore[call-overload]
    return {
        "file": str(args.out),
        "bytes": writer.bytes,
        "packets": writer.packets,
        "mean_frame_bytes": round((writer.bytes - 24) / max(writer.packets, 1) - 16, 1),
        "layout": args.layout,
        "copies": copies,
        "mining_flows": copies * per_copy_flows,
        "mining_flows_per_copy": per_copy_flows,
        "per_copy": found,
        "sources": [str(p.relative_to(args.shared)) for p in used],
        "skipped_not_ethernet": skipped,
        "real_bytes_per_copy": per_copy,
        "background_flows": flows,
    }


def _summary(out: Path, facts: dict[str, object]) -> str:
    return (
        f"{out}: {facts['bytes'] / MB:,.1f} MB, {facts['packets']:,} packets "
        f"(mean frame {facts['mean_frame_bytes']} B), {facts['copies']} copies "
        f"({facts['layout']}), {facts['background_flows']:,} background flows, "
        f"{facts['mining_flows']:,} mining flows expected; {facts['seconds_to_build']} s"
    )


if __name__ == "__main__":
    sys.exit(main())
