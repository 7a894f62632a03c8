from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import maxminddb
import pytest

from sensor.attribute.writer import (
    METADATA_MARKER,
    DataSection,
    MmdbWriter,
    Shared,
    encode_pointer,
)

EPOCH = 1_700_000_000
MODES = [maxminddb.MODE_AUTO, maxminddb.MODE_FILE]  # C extension (when built) and pure Python


def net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text)


def decode_pointer(data: bytes) -> int:
    """The pointer value per the spec (written independently of the encoder)."""
    size = data[0] >> 3 & 3
    low = data[0] & 7
    if size == 0:
        return low << 8 | data[1]
    if size == 1:
        return (low << 16 | int.from_bytes(data[1:3], "big")) + 2048
    if size == 2:
        return (low << 24 | int.from_bytes(data[1:4], "big")) + 526336
    return int.from_bytes(data[1:5], "big")


@pytest.mark.parametrize(
    ("offset", "length"),
    [
        (0, 2),
        (2047, 2),
        (2048, 3),
        (526_335, 3),
        (526_336, 4),
        (134_744_063, 4),
        (134_744_064, 5),
        (2**32 - 1, 5),
    ],
)
def test_pointer_encoding(offset: int, length: int) -> None:
    encoded = encode_pointer(offset)
    assert len(encoded) == length
    assert encoded[0] >> 5 == 1  # type 1: pointer
    assert decode_pointer(encoded) == offset


def test_control_bytes_follow_the_spec_examples() -> None:
    section = DataSection()
    assert section.encode("ab")[:1] == bytes([0b01000010])
    assert section.encode("x" * 28)[:1] == bytes([0b01011100])
    assert section.encode("x" * 80)[:2] == bytes([0b01011101, 51])
    assert section.encode("x" * 13_392)[:3] == bytes([0b01011110, 0x33, 0x33])
    assert section.encode(2**100)[:2] == bytes([13, 3])  # extended type 10 (uint128)
    assert section.encode([])[:2] == bytes([0, 4])  # extended type 11 (array)


def test_identical_values_are_written_once() -> None:
    section = DataSection()
    first = section.add({"org": "A"})
    assert section.add({"org": "A"}) == first
    assert section.add({"org": "B"}) != first


VALUES: dict[str, Any] = {
    "empty": "",
    "text": "南京大学 / Nanjing",
    "long": "x" * 300,
    "longer": "y" * 70_000,
    "zero": 0,
    "u32": 2**32 - 1,
    "u64": 2**64 - 1,
    "u128": 2**128 - 1,
    "negative": -5,
    "int32_min": -(2**31),
    "double": 1.5e-7,
    "yes": True,
    "no": False,
    "blob": b"\x00\xffdata",
    "list": [1, "two", [3.0], {}],
    "map": {"nested": {"deeper": ["x"]}, "empty": {}},
}


@pytest.mark.parametrize("mode", MODES)
def test_values_round_trip(tmp_path: Path, mode: int) -> None:
    writer = MmdbWriter("minewatch-test", build_epoch=EPOCH)
    writer.insert(net("192.0.2.0/24"), VALUES)
    path = tmp_path / "values.mmdb"
    writer.write(path)
    reader = maxminddb.open_database(str(path), mode)
    assert reader.get("192.0.2.1") == VALUES


def test_values_that_cannot_be_written() -> None:
    section = DataSection()
    with pytest.raises(TypeError):
        section.encode({"x": object()})
    with pytest.raises(TypeError):
        section.encode({1: "x"})
    with pytest.raises(ValueError):
        section.encode(2**128)
    with pytest.raises(ValueError):
        section.encode(-(2**31) - 1)


def sample_writer() -> MmdbWriter:
    writer = MmdbWriter("minewatch-test", "a test", languages=("en",), build_epoch=EPOCH)
    shared = Shared({"org": "Campus", "org_type": "education"})
    writer.insert(net("10.0.0.0/8"), {"n": "10/8", "owner": shared})
    writer.insert(net("10.1.0.0/16"), {"n": "10.1/16", "owner": shared})
    writer.insert(net("10.1.2.3/32"), {"n": "host"})
    writer.insert(net("2001:db8::/32"), {"n": "doc"})
    writer.insert(net("::/0"), {"n": "all-v6"})
    return writer


@pytest.mark.parametrize("record_size", [24, 28, 32])
@pytest.mark.parametrize("mode", MODES)
def test_tree_round_trip_at_every_record_size(tmp_path: Path, record_size: int, mode: int) -> None:
    path = tmp_path / "tree.mmdb"
    stats = sample_writer().write(path, record_size=record_size)
    assert stats.record_size == record_size
    assert stats.file_bytes == path.stat().st_size
    reader = maxminddb.open_database(str(path), mode)
    meta = reader.metadata()
    assert (meta.record_size, meta.node_count, meta.ip_version) == (
        record_size,
        stats.node_count,
        6,
    )
    assert (meta.database_type, meta.build_epoch, meta.languages) == (
        "minewatch-test",
        EPOCH,
        ["en"],
    )
    assert meta.description == {"en": "a test"}

    def n(ip: str) -> str | None:
        found = reader.get(ip)
        return found["n"] if isinstance(found, dict) else None

    assert n("10.200.0.1") == "10/8"
    assert n("10.1.200.1") == "10.1/16"
    assert n("10.1.2.3") == "host"
    assert n("10.1.2.4") == "10.1/16"
    assert n("::ffff:10.1.2.3") == "host"  # IPv4-mapped alias
    assert n("::10.1.2.3") == "host"  # the ::/96 IPv4 subtree
    assert n("2001:db8:ffff::1") == "doc"
    assert n("2001:4860::1") == "all-v6"
    assert n("11.0.0.1") is None  # ::/0 stays out of the IPv4 subtree
    assert n("2002:a01:203::1") == "all-v6"  # no 6to4 alias
    assert reader.get("10.0.0.1")["owner"] == {"org": "Campus", "org_type": "education"}


def test_same_network_twice_keeps_the_first(tmp_path: Path) -> None:
    writer = MmdbWriter("minewatch-test", build_epoch=EPOCH)
    assert writer.insert(net("10.0.0.0/8"), {"n": "first"})
    assert not writer.insert(net("10.0.0.0/8"), {"n": "second"})
    assert not writer.insert(net("::ffff:10.0.0.0/104"), {"n": "mapped"})  # the same network
    writer.write(tmp_path / "dup.mmdb")
    assert maxminddb.open_database(str(tmp_path / "dup.mmdb")).get("10.0.0.1") == {"n": "first"}


def test_empty_database_and_file_layout(tmp_path: Path) -> None:
    path = tmp_path / "empty.mmdb"
    stats = MmdbWriter("minewatch-test", build_epoch=EPOCH).write(path)
    data = path.read_bytes()
    tree_bytes = stats.node_count * stats.record_size * 2 // 8
    assert data[tree_bytes : tree_bytes + 16] == bytes(16)  # the data section separator
    assert data.rindex(METADATA_MARKER) == tree_bytes + 16 + stats.data_bytes
    reader = maxminddb.open_database(str(path))
    assert reader.get("10.0.0.1") is None and reader.get("2001:db8::1") is None
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed into place


def test_build_epoch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="build_epoch"):
        MmdbWriter("minewatch-test", build_epoch=0)


def test_record_size_must_be_valid(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="record_size"):
        sample_writer().write(tmp_path / "x.mmdb", record_size=20)


@pytest.mark.parametrize("mode", MODES)
def test_pointers_of_every_reachable_size_read_back(tmp_path: Path, mode: int) -> None:
    writer = MmdbWriter("minewatch-test", build_epoch=EPOCH)
    writer.insert(net("192.0.2.0/32"), {"v": Shared("near")})  # offset 0: 2-byte pointer
    writer.insert(net("192.0.2.1/32"), {"pad": b"x" * 3_000})
    writer.insert(net("192.0.2.2/32"), {"v": Shared("middle")})  # past 2048: 3-byte pointer
    writer.insert(net("192.0.2.3/32"), {"pad": b"y" * 600_000})
    writer.insert(net("192.0.2.4/32"), {"v": Shared("far")})  # past 526336: 4-byte pointer
    writer.insert(net("192.0.2.5/32"), {"v": Shared("near"), "w": Shared("far")})
    path = tmp_path / "pointers.mmdb"
    writer.write(path)
    reader = maxminddb.open_database(str(path), mode)
    assert reader.get("192.0.2.0") == {"v": "near"}
    assert reader.get("192.0.2.2") == {"v": "middle"}
    assert reader.get("192.0.2.4") == {"v": "far"}
    assert reader.get("192.0.2.5") == {"v": "near", "w": "far"}
