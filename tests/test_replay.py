"""The replay job: files and folders, libpcap two-pass against pure Python, bad inputs.

Captures are written by the traffic factory into tmp_path; pipelines are the real
ones, built by a factory like the CLI's, writing real EVE files.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from scapy.packet import Packet

from sensor.capture.replay import libpcap_available
from sensor.pipeline import Endpoints, Pipeline, PipelineSettings
from sensor.replay import Replay, ReplayOutcome
from sensor.sinks.events import EveWriter
from sensor.sinks.report import ReportBuilder
from tests.factory import (
    LINKTYPE_LINUX_SLL,
    T0,
    TcpSession,
    broker_exchange,
    dns_lookup,
    http_get,
    jsonrpc_exchange,
    merge,
    shift,
    syn_scan,
    tls_session,
    vlan,
    write_pcap,
    write_pcapng,
    xmpp_session,
)
from tests.sessions import MINING, NOT_MINING, SCRIPTS
from tests.test_pipeline import RULES, VARIANTS, Variant, build_capture, events_of

needs_libpcap = pytest.mark.skipif(not libpcap_available(), reason="libpcap not installed")


def replay(
    paths: list[Path], events: Path, prefilter: bool, report: ReportBuilder | None = None
) -> tuple[list[dict[str, Any]], ReplayOutcome]:
    """Replay `paths` as `minewatch replay` does; the parsed events and the outcome."""
    sinks: list[Any] = [EveWriter(events)] + ([report] if report else [])

    def factory(
        settings: PipelineSettings, with_sinks: bool, admit: Callable[[Endpoints], bool] | None
    ) -> Pipeline:
        return Pipeline(RULES, sinks if with_sinks else (), settings, admit=admit)

    outcome = Replay(paths, factory, PipelineSettings(), prefilter=prefilter).run()
    return [json.loads(line) for line in events.read_text().splitlines()], outcome


def background(start: float) -> list[Packet]:
    """Ordinary traffic, some of it chosen to look like mining (see factory.background)."""
    return merge(
        http_get(("10.9.1.1", 52000), ("192.0.2.80", 80), "www.example.org", start=start),
        http_get(("10.9.1.2", 52001), ("192.0.2.81", 4444), "intranet.example", start=start + 1),
        tls_session(("10.9.1.3", 52002), ("192.0.2.43", 443), "www.example.com", start=start + 2),
        jsonrpc_exchange(("10.9.1.4", 52003), start=start + 3),
        broker_exchange(("10.9.1.5", 52004), start=start + 3.5),
        xmpp_session(("10.9.1.6", 52005), start=start + 4),
        syn_scan("10.9.1.7", "192.0.2.99", start=start + 5, open_ports=(3333,)),
    )


def pool_by_dns(start: float) -> list[Packet]:
    """A DNS answer names a known pool; then an opaque flow to it (an endpoint match)."""
    client, pool = ("10.9.2.1", 53001), "203.0.113.200"
    lookup = dns_lookup(client, ("192.0.2.53", 53), "pool.supportxmr.com", a=[pool], start=start)
    opaque = [("client", b"\x16\x03\x01" + bytes(120)), ("server", bytes(300))]
    flow = TcpSession(("10.9.2.1", 41500), (pool, 443), start=start + 0.1).script(opaque)
    return merge(lookup, flow.packets())


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two files: every script plus background on VLAN 42 (pcapng), and a later SLL pcap
    whose second session starts after the idle timeout of the first."""
    folder = tmp_path_factory.mktemp("mixed")
    first = folder / "a.pcapng"
    extra = [*background(T0 - 30), *pool_by_dns(T0 + 20)]
    build_capture(
        first, [*MINING, *NOT_MINING], Variant(wrap=lambda p: vlan(p, 42), pcapng=True), extra
    )
    second = folder / "b.pcap"
    sc = SCRIPTS["cryptonote_xmrig"]
    early = TcpSession(("10.9.3.1", 42000), ("203.0.113.50", 3333), start=T0 + 100, close=None)
    late = TcpSession(("10.9.3.2", 42001), ("203.0.113.50", 3333), start=T0 + 1000)
    packets = merge(early.script(sc.steps).packets(), late.script(sc.steps).packets())
    write_pcap(second, merge(packets, shift(background(T0), 1500)), LINKTYPE_LINUX_SLL)
    return [first, second]


def test_mixed_capture_finds_every_mining_flow(mixed, tmp_path):
    events, outcome = replay(mixed, tmp_path / "events.json", prefilter=False)
    assert outcome.mode == "python" and not outcome.errors.messages
    mining = [e for e in events if e["event_type"] == "mining"]
    # every script, the DNS-named endpoint, and both cryptonote sessions of b.pcap
    assert len(mining) == len(MINING) + 1 + 2
    assert len([e for e in events if e["event_type"] == "flow"]) == len(mining)
    endpoint = events_of(events, "mining", ("10.9.2.1", 41500))
    assert [e["mining"]["dialect"] for e in endpoint] == ["endpoint"]
    assert endpoint[0]["mining"]["pool"] == "pool.supportxmr.com:443"
    reasons = {e["src_port"]: e["flow"]["reason"] for e in events if e["event_type"] == "flow"}
    assert reasons[42000] == "idle_timeout"  # no FIN, and silent for 900 s
    assert {e["pcap_filename"] for e in mining} == {"a.pcapng", "b.pcap"}


def _sorted(events: list[dict[str, Any]], keep_reason: bool = True) -> list[str]:
    out = []
    for event in events:
        event = json.loads(json.dumps(event))  # a deep copy
        if not keep_reason and "flow" in event:
            del event["flow"]["reason"]
        out.append(json.dumps(event, sort_keys=True))
    return sorted(out)


@pytest.fixture(scope="module")
def both_ways(mixed, tmp_path_factory):
    if not libpcap_available():
        pytest.skip("libpcap not installed: no two-pass replay to compare")
    folder = tmp_path_factory.mktemp("both")
    return replay(mixed, folder / "python.json", False), replay(mixed, folder / "two.json", True)


def test_two_pass_and_python_give_the_same_events(both_ways):
    (python, slow), (two_pass, fast) = both_ways
    assert (slow.mode, fast.mode) == ("python", "libpcap two-pass")
    assert len(python) > 2 * len(MINING)
    assert _sorted(two_pass, keep_reason=False) == _sorted(python, keep_reason=False)
    assert (fast.packets, fast.bytes) == (slow.packets, slow.bytes)  # counted in C
    assert fast.candidates < fast.packets  # the background was filtered out


def test_two_pass_flow_end_reasons_match_python(both_ways):
    (python, _), (two_pass, _) = both_ways
    assert _sorted(two_pass) == _sorted(python)


@needs_libpcap
def test_two_pass_report_window_spans_the_whole_capture(mixed, tmp_path):
    reports = []
    for prefilter in (False, True):
        report = ReportBuilder()
        _, outcome = replay(mixed, tmp_path / f"{prefilter}.json", prefilter, report)
        stats = outcome.pipeline.stats
        reports.append(report.build(stats.first_ts, stats.last_ts))
    assert reports[1]["window"] == reports[0]["window"]
    assert reports[1]["totals"] == reports[0]["totals"]


def test_window_spans_files_given_out_of_time_order(tmp_path):
    sc = SCRIPTS["stratum_v1_btc"]
    late, early = tmp_path / "late.pcap", tmp_path / "early.pcap"
    write_pcap(late, TcpSession(start=T0 + 3600).script(sc.steps).packets())
    write_pcap(early, TcpSession(start=T0).script(sc.steps).packets())
    _, outcome = replay([late, early], tmp_path / "events.json", prefilter=False)
    stats = outcome.pipeline.stats
    assert stats.first_ts == pytest.approx(T0)
    assert stats.last_ts is not None and stats.last_ts > T0 + 3600


def test_folder_expands_to_its_capture_files(tmp_path):
    folder = tmp_path / "captures"
    (folder / "sub").mkdir(parents=True)
    sc = SCRIPTS["stratum_v1_ltc"]
    packets = TcpSession().script(sc.steps).packets()
    write_pcap(folder / "a.pcap", packets)
    write_pcapng(folder / "sub" / "b.pcapng", shift(packets, 60))
    write_pcap(folder / "no-suffix", shift(packets, 120))  # recognised by its magic
    (folder / "README.txt").write_text("not a capture\n")
    events, outcome = replay([folder, folder / "a.pcap"], tmp_path / "events.json", False)
    names = [p.relative_to(folder).as_posix() for p in outcome.files]
    assert names == ["a.pcap", "no-suffix", "sub/b.pcapng"]  # sorted, each once
    mining = [e for e in events if e["event_type"] == "mining"]
    assert sorted(e["pcap_filename"] for e in mining) == ["a.pcap", "b.pcapng", "no-suffix"]


def _corrupt_pcapng(good: bytes, nth_packet: int) -> bytes:
    """`good` with the length of its nth enhanced packet block made absurd."""
    data, off, seen = bytearray(good), 0, 0
    while off < len(data):
        kind, length = struct.unpack_from("<II", data, off)
        seen += kind == 6
        if seen == nth_packet:
            struct.pack_into("<I", data, off + 4, 0x7FFFFFF0)
            return bytes(data)
        off += length
    raise AssertionError("capture too short")


def bad_inputs(folder: Path) -> tuple[Path, list[Path], dict[str, str]]:
    """A good capture, the bad inputs beside it, and the name each bad one is reported by."""
    good = folder / "good.pcapng"
    build_capture(good, MINING, VARIANTS["ethernet-pcapng"])
    sc = SCRIPTS["cryptonote_xmrig"]
    full = folder / "full.pcap"
    write_pcap(
        full, TcpSession(("10.7.0.1", 40000), ("203.0.113.7", 3333)).script(sc.steps).packets()
    )
    truncated = folder / "truncated.pcap"
    truncated.write_bytes(full.read_bytes()[:-25])
    corrupt = folder / "corrupt.pcapng"
    build_capture(corrupt, MINING, VARIANTS["ethernet-pcapng"], first=50)
    corrupt.write_bytes(_corrupt_pcapng(corrupt.read_bytes(), 40))
    text = folder / "notes.pcap"
    text.write_text("these are notes, not packets\n" * 4)
    missing = folder / "missing.pcap"
    names = {"truncated": truncated.name, "corrupt": corrupt.name, "text": text.name}
    names["missing"] = str(missing)
    return good, [truncated, corrupt, text, missing], names


@pytest.mark.parametrize(
    "prefilter", [False, pytest.param(True, marks=needs_libpcap)], ids=["python", "two-pass"]
)
def test_bad_inputs_are_named_and_the_good_file_is_read(tmp_path, prefilter):
    good, bad, names = bad_inputs(tmp_path)
    alone, _ = replay([good], tmp_path / "alone.json", prefilter)
    events, outcome = replay([good, *bad], tmp_path / "events.json", prefilter)
    messages = outcome.errors.messages
    assert len(messages) == 4, messages
    for name in names.values():
        assert sum(m.startswith(f"{name}: ") for m in messages) == 1, (name, messages)
    assert outcome.errors.files == set(names.values())
    from_good = [e for e in events if e["pcap_filename"] == good.name]
    assert from_good == alone  # every event of the good file, unchanged
    # frames before the damage are kept: the sessions they hold are found
    found = {(e["pcap_filename"], e["mining"]["dialect"]) for e in events if "mining" in e}
    assert ("corrupt.pcapng", "stratum-v1") in found
    assert ("truncated.pcap", "cryptonote") in found


def test_unsupported_link_type_is_an_input_error_and_the_rest_is_read(tmp_path: Path) -> None:
    import struct

    from sensor.cli import main

    wifi = tmp_path / "wifi.pcap"  # LINKTYPE_IEEE802_11_RADIOTAP (127): not decoded
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 127)
    wifi.write_bytes(header + struct.pack("<IIII", 1, 0, 10, 10) + b"\x00" * 10)
    sample = Path(__file__).resolve().parents[1] / "samples" / "minewatch-sample.pcapng"
    events = tmp_path / "events.jsonl"
    assert main(["replay", str(wifi), str(sample), "--events", str(events)]) == 2
    mining = [line for line in events.read_text().splitlines() if '"event_type":"mining"' in line]
    assert len(mining) == 6  # the sample's six mining flows are all still found
