"""A small MaxMind DB writer (format 2.0, ../shared/mmdb/MaxMind-DB-spec.md).

Writes IPv6 databases with IPv4 data in the `::/96` subtree and an alias from
`::ffff:0:0/96` (IPv4-mapped) to the same subtree, as MaxMind's own files do.
The IPv4 subtree holds IPv4 networks only: an IPv6 network such as `::/0` does
not answer for IPv4 addresses, exactly as in PrefixIndex. There is no 6to4
(`2002::/16`) alias, because PrefixIndex does not decode 6to4 addresses either.

Overlapping networks resolve by longest prefix (a longer one is carved out of
the shorter one's range); for the same network inserted twice the first stays.
Values that many networks share are written once and reached by pointer.
"""

from __future__ import annotations

import os
import struct
import time
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sensor.attribute.prefixes import IPNetwork, normalize_network

METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"
_SEPARATOR = bytes(16)
_V4_PATHS = (0, 0xFFFF << 32)  # ::/96 and ::ffff:0:0/96, both leading to the IPv4 subtree


class Uint16(int):
    """An int to be written as uint16 (metadata fields have fixed types)."""


class Uint32(int):
    """An int to be written as uint32."""


class Uint64(int):
    """An int to be written as uint64."""


@dataclass(frozen=True, slots=True)
class Shared:
    """A value written once in the data section; every use of it becomes a pointer."""

    value: Any


@dataclass(frozen=True, slots=True)
class Pointer:
    """A pointer to a value already in the data section (an offset DataSection.add gave)."""

    offset: int


def _control(type_no: int, size: int) -> bytes:
    if size < 29:
        first, extra = size, b""
    elif size < 285:
        first, extra = 29, bytes([size - 29])
    elif size < 65_821:
        first, extra = 30, (size - 285).to_bytes(2, "big")
    elif size < 16_843_037:
        first, extra = 31, (size - 65_821).to_bytes(3, "big")
    else:
        raise ValueError(f"value too large for an mmdb field ({size})")
    if type_no <= 7:
        return bytes([type_no << 5 | first]) + extra
    return bytes([first, type_no - 7]) + extra  # extended type: size bytes follow the type byte


def encode_pointer(offset: int) -> bytes:
    if offset < 2_048:
        return bytes([0x20 | offset >> 8, offset & 0xFF])
    if offset < 526_336:
        value = offset - 2_048
        return bytes([0x28 | value >> 16]) + (value & 0xFFFF).to_bytes(2, "big")
    if offset < 134_744_064:
        value = offset - 526_336
        return bytes([0x30 | value >> 24]) + (value & 0xFFFFFF).to_bytes(3, "big")
    return b"\x38" + offset.to_bytes(4, "big")


def _uint(type_no: int, value: int) -> bytes:
    payload = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return _control(type_no, len(payload)) + payload


def _int(value: int) -> bytes:
    if isinstance(value, Uint16):
        return _uint(5, value)
    if isinstance(value, Uint64):
        return _uint(9, value)
    if 0 <= value < 1 << 32:
        return _uint(6, value)  # Uint32 and plain ints that fit
    if value < 0:
        if value < -(1 << 31):
            raise ValueError(f"{value} does not fit an mmdb int32")
        return _control(8, 4) + (value & 0xFFFFFFFF).to_bytes(4, "big")
    if value < 1 << 64:
        return _uint(9, value)
    if value < 1 << 128:
        return _uint(10, value)
    raise ValueError(f"{value} does not fit an mmdb uint128")


class DataSection:
    """The data section being built: values appended once, identical values shared."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self._offsets: dict[bytes, int] = {}

    def add(self, value: Any) -> int:
        """Offset of `value` in the section, writing it if it is not there yet."""
        encoded = self.encode(value)
        offset = self._offsets.get(encoded)
        if offset is None:
            offset = self._offsets[encoded] = len(self.buffer)
            self.buffer += encoded
        return offset

    def encode(self, value: Any) -> bytes:
        if isinstance(value, Pointer):
            return encode_pointer(value.offset)
        if isinstance(value, Shared):
            return encode_pointer(self.add(value.value))
        if isinstance(value, str):
            data = value.encode("utf-8")
            return _control(2, len(data)) + data
        if isinstance(value, bool):  # before int: bool is an int
            return _control(14, int(value))
        if isinstance(value, int):
            return _int(value)
        if isinstance(value, float):
            return _control(3, 8) + struct.pack(">d", value)
        if isinstance(value, bytes):
            return _control(4, len(value)) + value
        if isinstance(value, dict):
            return self._map(value)
        if isinstance(value, list | tuple):
            return _control(11, len(value)) + b"".join(self.encode(v) for v in value)
        raise TypeError(f"cannot write {type(value).__name__} to an mmdb file")

    def _map(self, value: dict[Any, Any]) -> bytes:
        parts = [_control(7, len(value))]
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"mmdb map keys are strings, not {type(key).__name__}")
            parts.append(self.encode(key))
            parts.append(self.encode(item))
        return b"".join(parts)


class _Tree:
    """A binary trie in two flat arrays (compact for millions of nodes).

    A record is 0 when empty, a node index when positive (the root, node 0, is
    never a child), or -(offset + 1) for a data-section offset.
    """

    def __init__(self) -> None:
        self.left = array("q", [0])
        self.right = array("q", [0])

    def new_node(self, left: int = 0, right: int = 0) -> int:
        self.left.append(left)
        self.right.append(right)
        return len(self.left) - 1

    def put(self, node: int, value: int, length: int, width: int, record: int) -> None:
        """Set the record for prefix (value, length) under `node`, splitting leaves on the way.

        Prefixes must come shortest first: a leaf met on the way belongs to a
        shorter prefix and is pushed down into both halves of the new node.
        """
        if length == 0:
            self.left[node] = self.right[node] = record
            return
        for depth in range(length - 1):
            side = self.right if value >> (width - 1 - depth) & 1 else self.left
            child = side[node]
            if child <= 0:
                child = self.new_node(child, child)
                side[node] = child
            node = child
        side = self.right if value >> (width - length) & 1 else self.left
        side[node] = record

    def records(self, node_count: int, data_base: int) -> tuple[list[int], list[int]]:
        """Record values as the file stores them."""

        def value(record: int) -> int:
            if record > 0:
                return record
            return node_count if record == 0 else data_base - record - 1

        return [value(r) for r in self.left], [value(r) for r in self.right]


@dataclass(frozen=True, slots=True)
class WriteStats:
    node_count: int
    record_size: int
    data_bytes: int
    file_bytes: int


class MmdbWriter:
    """Collects (network, value) pairs and writes them as one mmdb file."""

    def __init__(
        self,
        database_type: str,
        description: str = "",
        languages: tuple[str, ...] = (),
        build_epoch: int | None = None,
    ) -> None:
        self.database_type = database_type
        self.description = description
        self.languages = languages
        self.build_epoch = int(time.time()) if build_epoch is None else build_epoch
        if self.build_epoch < 1:  # libmaxminddb refuses to open a file whose epoch is 0
            raise ValueError(f"build_epoch must be a positive Unix time, not {build_epoch}")
        self.data = DataSection()
        self._networks: dict[tuple[int, int, int], int] = {}  # (version, length, int) -> offset

    def insert(self, network: IPNetwork, value: Any) -> bool:
        """Add a network; False (and nothing changed) if the same network is already in."""
        network = normalize_network(network)
        key = (network.version, network.prefixlen, int(network.network_address))
        if key in self._networks:
            return False
        self._networks[key] = self.data.add(value)
        return True

    def __len__(self) -> int:
        return len(self._networks)

    def write(self, path: str | Path, record_size: int | None = None) -> WriteStats:
        """Write the file (atomically: a reader never sees half of it).

        The record size is the smallest of 24, 28, 32 bits that fits, or `record_size`.
        """
        tree = self._tree()
        node_count = len(tree.left)
        smallest = _record_size(node_count + 16 + len(self.data.buffer))
        if record_size is not None and record_size not in (24, 28, 32):
            raise ValueError(f"record_size must be 24, 28 or 32, not {record_size}")
        record_size = max(smallest, record_size or 0)
        left, right = tree.records(node_count, node_count + 16)
        body = _pack_nodes(left, right, record_size)
        metadata = self._metadata(node_count, record_size)
        out = Path(path)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            for part in (body, _SEPARATOR, self.data.buffer, METADATA_MARKER, metadata):
                fh.write(part)
        os.replace(tmp, out)
        size = len(body) + 16 + len(self.data.buffer) + len(METADATA_MARKER) + len(metadata)
        return WriteStats(node_count, record_size, len(self.data.buffer), size)

    def _tree(self) -> _Tree:
        tree = _Tree()
        v4_root = tree.new_node()
        for (version, length, value), offset in sorted(self._networks.items()):
            if version == 4:
                tree.put(v4_root, value, length, 32, -offset - 1)
            else:
                tree.put(0, value, length, 128, -offset - 1)
        # After every IPv6 prefix, so that no IPv6 data is pushed into the IPv4 subtree.
        for path in _V4_PATHS:
            tree.put(0, path, 96, 128, v4_root)
        return tree

    def _metadata(self, node_count: int, record_size: int) -> bytes:
        meta: dict[str, Any] = {
            "binary_format_major_version": Uint16(2),
            "binary_format_minor_version": Uint16(0),
            "build_epoch": Uint64(self.build_epoch),
            "database_type": self.database_type,
            "description": {"en": self.description or self.database_type},
            "ip_version": Uint16(6),
            # Optional in the spec, but readers (Python's) require it; an empty
            # list must not come last, which some C readers once mishandled.
            "languages": list(self.languages),
            "node_count": Uint32(node_count),
            "record_size": Uint16(record_size),
        }
        return DataSection().encode(meta)


def _record_size(largest: int) -> int:
    for size in (24, 28, 32):
        if largest < 1 << size:
            return size
    raise ValueError("database too large for 32-bit records")


def _pack_nodes(left: list[int], right: list[int], record_size: int) -> bytes:
    if record_size == 24:
        return b"".join(
            (lv << 24 | rv).to_bytes(6, "big") for lv, rv in zip(left, right, strict=True)
        )
    if record_size == 32:
        return b"".join(
            (lv << 32 | rv).to_bytes(8, "big") for lv, rv in zip(left, right, strict=True)
        )
    # 28 bits: the high nibbles of both records share the middle byte.
    return b"".join(
        ((lv & 0xFFFFFF) << 32 | (lv >> 24) << 28 | (rv >> 24) << 24 | (rv & 0xFFFFFF)).to_bytes(
            7, "big"
        )
        for lv, rv in zip(left, right, strict=True)
    )
