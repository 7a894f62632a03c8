"""Build a large, deterministic benchmark capture and its ground truth.

    python bench/make_big_capture.py                       # ~1.1 GB, bench/out/big.pcap
    python bench/make_big_capture.py --size-mb 50 --out /tmp/small.pcap

The capture is `copies` copies of every Ethernet capture in ../shared/captures
(mining, node, negative), each (copy, file) with its own IPv4 addresses, plus
synthetic background traffic (HTTP, TLS, DNS, SSH-like, QUIC-like UDP, idle
TLS, plain ACKs) filling the rest of the size. By default the real captures
make up a tenth of the bytes (`--real-share`), 35 copies at 1.1 GB.

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
from dataclasses import dataclass
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


@dataclass(slots=True)
class Composition:
    """What goes into the capture: which sources, how many copies, how much background."""

    sources: list[real.SourceFile]
    used: list[Path]
    skipped: list[str]
    copies: int
    real_bytes_per_copy: int
    background_flows: int


def compose(args: argparse.Namespace, built: dict[str, list[templates.Template]]) -> Composition:
    """Copies from the real share of the size (or --copies); background fills the rest."""
    sources, used, skipped = load_sources(find_sources(args.shared))
    per_copy = sum(pcap_size(s) for s in sources)
    target = int(args.size_mb * MB)
    copies = args.copies or max(1, round(target * args.real_share / per_copy))
    cycle_flows, _, cycle_size = background.cycle_bytes(built)
    budget = target - 24 - copies * per_copy
    flows = max(0, round(budget * cycle_flows / cycle_size))
    return Composition(sources, used, skipped, copies, per_copy, flows)


def write_capture(
    out: Path, layout: str, comp: Composition, built: dict[str, list[templates.Template]]
) -> PcapWriter:
    arrange = sequential if layout == "sequential" else parallel
    real_records, span = arrange(comp.sources, comp.copies)
    plan = background.Plan(comp.background_flows, T0_US, span)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as fh:
        writer = PcapWriter(fh)
        writer.write_all(heapq.merge(real_records, background.stream(built, plan)))
    return writer


def source_truth(args: argparse.Namespace, used: list[Path]) -> tuple[int, dict[str, object]]:
    """Mining flows in one copy of the sources, with the details behind the count."""
    if args.mining_flows_per_copy is not None:
        return args.mining_flows_per_copy, {"source": "--mining-flows-per-copy"}
    flows, details = truth.source_events(used)
    details["source"] = "minewatch replay of the source captures"
    return flows, details


def truth_doc(
    args: argparse.Namespace,
    comp: Composition,
    writer: PcapWriter,
    per_copy: tuple[int, dict[str, object]],
) -> dict[str, object]:
    flows_per_copy, details = per_copy
    return {
        "file": str(args.out),
        "bytes": writer.bytes,
        "packets": writer.packets,
        "mean_frame_bytes": round((writer.bytes - 24) / max(writer.packets, 1) - 16, 1),
        "layout": args.layout,
        "copies": comp.copies,
        "mining_flows": comp.copies * flows_per_copy,
        "mining_flows_per_copy": flows_per_copy,
        "per_copy": details,
        "sources": [str(p.relative_to(args.shared)) for p in comp.used],
        "skipped_not_ethernet": comp.skipped,
        "real_bytes_per_copy": comp.real_bytes_per_copy,
        "background_flows": comp.background_flows,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    built = templates.build()
    comp = compose(args, built)
    if not comp.sources:
        print(f"no Ethernet captures under {args.shared / 'captures'}", file=sys.stderr)
        return 2
    writer = write_capture(args.out, args.layout, comp, built)
    doc = truth_doc(args, comp, writer, source_truth(args, comp.used))
    truth_path = args.out.with_name(args.out.name + ".truth.json")
    truth_path.write_text(json.dumps(doc, indent=2) + "\n")
    print(
        f"{args.out}: {writer.bytes / MB:,.1f} MB, {writer.packets:,} packets "
        f"(mean frame {doc['mean_frame_bytes']} B), {comp.copies} copies ({args.layout}), "
        f"{comp.background_flows:,} background flows, {doc['mining_flows']:,} mining flows "
        f"expected; {time.monotonic() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
