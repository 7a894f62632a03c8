"""Replay inputs: which files a replay reads, and reading them without ever raising.

`FileReader` is exercised with both readers (libpcap when installed, and the
pure-Python one), which must agree frame for frame, damage included.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from sensor.capture.errors import CaptureError
from sensor.capture.pcapfile import read_frames
from sensor.capture.progress import Progress
from sensor.capture.replay import FileReader, InputErrors, expand, libpcap_available
from tests.factory import T0, TcpSession, write_pcap, write_pcapng
from tests.sessions import SCRIPTS

READERS = [
    pytest.param(False, id="python"),
    pytest.param(
        True,
        id="libpcap",
        marks=pytest.mark.skipif(not libpcap_available(), reason="libpcap is not installed"),
    ),
]


def packets(port: int = 3333) -> list:
    steps = SCRIPTS["stratum_v1_btc"].steps[:3]
    return TcpSession(("10.1.2.3", 50000), ("198.51.100.7", port), start=T0).script(steps).packets()


def damaged(tmp_path: Path, name: str = "damaged.pcap") -> tuple[Path, int]:
    """A pcap whose last record is cut short, and the number of good frames before it."""
    path = tmp_path / name
    write_pcap(path, packets())
    good = len(list(read_frames(path))) - 1
    path.write_bytes(path.read_bytes()[:-5])
    return path, good


# --- expand ------------------------------------------------------------------------------


def test_expand_files_and_folders(tmp_path: Path) -> None:
    folder = tmp_path / "captures"
    (folder / "deeper").mkdir(parents=True)
    write_pcap(folder / "b.pcap", packets())
    write_pcapng(folder / "a.pcapng", packets())
    write_pcap(folder / "deeper" / "capture-no-suffix", packets())  # found by its magic
    (folder / "notes.txt").write_text("not a capture\n")
    (folder / "deeper" / "blob.bin").write_bytes(b"\x00\x01\x02\x03\x04")
    (folder / "empty").write_bytes(b"")
    single = tmp_path / "single.cap"
    write_pcap(single, packets())
    errors = InputErrors()
    # A file named twice, and once more through its folder, is read once.
    found = expand([single, folder, folder / "b.pcap", single], errors)
    assert found == [
        single,
        folder / "a.pcapng",
        folder / "b.pcap",
        folder / "deeper" / "capture-no-suffix",
    ]
    assert errors.messages == [] and errors.files == set()


def test_expand_keeps_named_files_whatever_they_hold(tmp_path: Path) -> None:
    # A file named on the command line is the user's choice: reading it reports the problem.
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    assert expand([notes], InputErrors()) == [notes]


def test_expand_records_missing_paths(tmp_path: Path) -> None:
    write_pcap(tmp_path / "here.pcap", packets())
    errors = InputErrors()
    found = expand([tmp_path / "gone.pcap", tmp_path / "here.pcap", tmp_path / "nodir"], errors)
    assert found == [tmp_path / "here.pcap"]
    assert errors.files == {str(tmp_path / "gone.pcap"), str(tmp_path / "nodir")}
    assert len(errors.messages) == 2
    assert all("no such file or folder" in m for m in errors.messages)


def test_input_errors_record_each_message_once() -> None:
    errors = InputErrors()
    errors.add(CaptureError("a.pcap", "truncated packet at offset 96"))
    errors.add(CaptureError("a.pcap", "truncated packet at offset 96"))
    errors.add(CaptureError("a.pcap", "not a pcap or pcapng file"))
    errors.add(CaptureError("b.pcap", "empty file"))
    assert errors.messages == [
        "a.pcap: truncated packet at offset 96",
        "a.pcap: not a pcap or pcapng file",
        "b.pcap: empty file",
    ]
    assert errors.files == {"a.pcap", "b.pcap"}


# --- FileReader --------------------------------------------------------------------------


@pytest.mark.parametrize("use_libpcap", READERS)
def test_frames_of_good_files(tmp_path: Path, use_libpcap: bool) -> None:
    write_pcap(tmp_path / "good.pcap", packets())
    write_pcapng(tmp_path / "good.pcapng", packets())
    errors = InputErrors()
    reader = FileReader(errors, use_libpcap=use_libpcap)
    assert reader.use_libpcap is use_libpcap
    for path in (tmp_path / "good.pcap", tmp_path / "good.pcapng"):
        frames = list(reader.frames(path))
        assert [f.data for f in frames] == [f.data for f in read_frames(path)]
        assert {f.source for f in frames} == {path.name}
    assert errors.messages == []


@pytest.mark.parametrize("use_libpcap", READERS)
def test_damage_is_recorded_and_good_frames_kept(tmp_path: Path, use_libpcap: bool) -> None:
    path, good = damaged(tmp_path)
    errors = InputErrors()
    reader = FileReader(errors, use_libpcap=use_libpcap)
    frames = list(reader.frames(path))  # no exception escapes
    assert len(frames) == good > 0
    assert errors.files == {"damaged.pcap"}
    assert len(errors.messages) == 1 and errors.messages[0].startswith("damaged.pcap: ")


@pytest.mark.parametrize("use_libpcap", READERS)
@pytest.mark.parametrize("content", [b"", b"plain text, no capture\n"])
def test_unreadable_files_are_recorded(tmp_path: Path, use_libpcap: bool, content: bytes) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    errors = InputErrors()
    reader = FileReader(errors, use_libpcap=use_libpcap)
    assert list(reader.frames(path)) == []
    assert list(reader.frames(tmp_path / "gone.pcap")) == []
    assert errors.files == {"bad.pcap", "gone.pcap"}
    assert reader.count(path) == (0, 0)


@pytest.mark.parametrize("use_libpcap", READERS)
def test_count_good_and_damaged_files(tmp_path: Path, use_libpcap: bool) -> None:
    reader = FileReader(InputErrors(), use_libpcap=use_libpcap)
    good = tmp_path / "good.pcapng"
    write_pcapng(good, packets())
    frames = list(read_frames(good))
    assert reader.count(good) == (len(frames), sum(len(f.data) for f in frames))
    path, n = damaged(tmp_path)
    counted = reader.count(path)
    assert counted == (n, sum(len(f.data) for f in frames[:n]))
    assert reader.errors.messages == []  # counting leaves reporting to the reading pass


@pytest.mark.skipif(not libpcap_available(), reason="libpcap is not installed")
def test_libpcap_reader_filters_and_knows_link_types(tmp_path: Path) -> None:
    path = tmp_path / "two.pcap"
    write_pcap(path, packets(3333) + packets(4444))
    reader = FileReader(InputErrors())
    assert reader.linktype(path) == 1
    assert reader.linktype(tmp_path / "gone.pcap") is None
    filtered = list(reader.frames(path, "tcp port 4444"))
    assert len(filtered) == len(packets(4444))
    list(reader.frames(path, "tcp port nonsense"))
    assert reader.errors.files == {"two.pcap"}


def test_python_reader_when_libpcap_is_declined(tmp_path: Path) -> None:
    assert FileReader(InputErrors(), use_libpcap=False).use_libpcap is False


# --- progress ----------------------------------------------------------------------------


def test_progress_passes_paths_through_and_reports_when_enabled(tmp_path: Path) -> None:
    paths = [tmp_path / "a.pcap", tmp_path / "b.pcap"]
    for path in paths:
        write_pcap(path, packets())
    out = io.StringIO()
    assert list(Progress(enabled=True, stream=out).files(paths, "scan")) == paths
    text = out.getvalue()
    assert "scan: file 1/2 a.pcap (0%)" in text and text.endswith("scan: done\n")
    quiet = io.StringIO()
    assert list(Progress(enabled=False, stream=quiet).files(paths, "scan")) == paths
    assert quiet.getvalue() == ""
    assert Progress(stream=io.StringIO()).enabled is False  # not a terminal
