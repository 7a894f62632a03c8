"""TLS handshake sniffing: the server name and protocols a client asks for.

Pools that wrap stratum in TLS (stratum+ssl, XMRig's `tls: true`) still
announce the pool's host name in the ClientHello's SNI extension, so the
first bytes a client sends are enough to match pool endpoints. This parser is
sans-I/O and defensive: the sensor only ever holds the first few KiB of a
direction, so a hello cut short yields whatever was read before the cut, and
no input makes it raise.
"""

from __future__ import annotations

from dataclasses import dataclass

_HANDSHAKE = 0x16
_CLIENT_HELLO = 0x01
_SERVER_HELLO = 0x02
_MAX_RECORD = 16384 + 2048  # TLSCiphertext limit (RFC 8446 5.2)
_EXT_SNI = 0x0000
_EXT_ALPN = 0x0010
_EXT_SUPPORTED_VERSIONS = 0x002B


@dataclass(slots=True, frozen=True)
class ClientHello:
    """What a ClientHello reveals. `version` is the highest version offered
    (supported_versions for TLS 1.3 clients, else the legacy field), e.g. 0x0303."""

    version: int
    sni: str | None = None
    alpn: tuple[str, ...] = ()
    truncated: bool = False  # the data ended before the extensions did


def _record_ok(data: bytes, pos: int) -> bool:
    # SSL 3.0 .. TLS 1.3 all keep major version 3 in the record header.
    return (
        len(data) >= pos + 5
        and data[pos] == _HANDSHAKE
        and data[pos + 1] == 3
        and data[pos + 2] <= 4
    )


def _handshake_stream(data: bytes) -> bytes | None:
    """The handshake bytes carried by the leading handshake records, joined.

    A large hello (post-quantum key shares) may be split over records; joining
    their fragments restores the message, cut short where the data ends.
    """
    if not _record_ok(data, 0):
        return None
    parts: list[bytes] = []
    pos = 0
    while _record_ok(data, pos):
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        if length == 0 or length > _MAX_RECORD:
            break
        parts.append(data[pos + 5 : pos + 5 + length])
        pos += 5 + length
    return b"".join(parts) if parts else None


def _u8_vector(buf: bytes, pos: int) -> int | None:
    """Offset just past a vector with a one-byte length at `pos` (None if cut)."""
    if pos >= len(buf):
        return None
    end = pos + 1 + buf[pos]
    return end if end <= len(buf) else None


def _u16_vector(buf: bytes, pos: int) -> int | None:
    if pos + 2 > len(buf):
        return None
    end = pos + 2 + int.from_bytes(buf[pos : pos + 2], "big")
    return end if end <= len(buf) else None


def _parse_sni(ext: bytes) -> str | None:
    end = _u16_vector(ext, 0)
    pos = 2
    while end is not None and pos + 3 <= end:
        name_type = ext[pos]
        name_end = pos + 3 + int.from_bytes(ext[pos + 1 : pos + 3], "big")
        if name_end > end:
            return None
        if name_type == 0:  # host_name
            try:
                return ext[pos + 3 : name_end].decode("ascii").lower() or None
            except UnicodeDecodeError:
                return None
        pos = name_end
    return None


def _parse_alpn(ext: bytes) -> tuple[str, ...]:
    end = _u16_vector(ext, 0)
    names: list[str] = []
    pos = 2
    while end is not None and pos < end:
        item_end = _u8_vector(ext, pos)
        if item_end is None or item_end > end:
            break
        names.append(ext[pos + 1 : item_end].decode("ascii", "replace"))
        pos = item_end
    return tuple(names)


def _is_grease(version: int) -> bool:
    # RFC 8701 reserves 0x?A?A values so that servers learn to ignore unknowns.
    return (version & 0x0F0F) == 0x0A0A


def _max_supported_version(ext: bytes) -> int | None:
    end = _u8_vector(ext, 0)
    if end is None:
        return None
    versions = [int.from_bytes(ext[i : i + 2], "big") for i in range(1, end - 1, 2) if i + 2 <= end]
    real = [v for v in versions if not _is_grease(v)]
    return max(real) if real else None


def _skip_to_extensions(body: bytes) -> int | None:
    """Offset of the extensions block: past version, random, session id, suites, compression."""
    pos = _u8_vector(body, 2 + 32)  # legacy_session_id
    if pos is not None:
        pos = _u16_vector(body, pos)  # cipher_suites
    if pos is not None:
        pos = _u8_vector(body, pos)  # legacy_compression_methods
    return pos


def _hello_body(data: bytes) -> tuple[bytes, bool] | None:
    """The ClientHello body, and whether all of it is present."""
    hs = _handshake_stream(data)
    if hs is None or len(hs) < 6 or hs[0] != _CLIENT_HELLO:
        return None
    length = int.from_bytes(hs[1:4], "big")
    body = hs[4 : 4 + length]
    if len(body) < 2 or body[0] != 3:
        return None
    return body, len(body) == length


def parse_client_hello(data: bytes) -> ClientHello | None:
    """Parse a TLS ClientHello from the first bytes of a stream, or None if it is not one."""
    got = _hello_body(data)
    if got is None:
        return None
    body, complete = got
    version = int.from_bytes(body[0:2], "big")
    pos = _skip_to_extensions(body)
    if pos is not None and pos == len(body) and complete:
        return ClientHello(version=version)  # a pre-TLS 1.2 hello may carry no extensions
    if pos is None or pos + 2 > len(body):
        return ClientHello(version=version, truncated=True)
    # Read the extensions that arrived even when the block was cut short.
    declared = pos + 2 + int.from_bytes(body[pos : pos + 2], "big")
    end = min(declared, len(body))
    return _read_extensions(body, pos + 2, end, version, declared > end)


def _read_extensions(body: bytes, pos: int, end: int, version: int, cut: bool) -> ClientHello:
    sni: str | None = None
    alpn: tuple[str, ...] = ()
    while pos + 4 <= end:
        ext_type = int.from_bytes(body[pos : pos + 2], "big")
        ext_end = pos + 4 + int.from_bytes(body[pos + 2 : pos + 4], "big")
        if ext_end > end:
            break
        ext = body[pos + 4 : ext_end]
        if ext_type == _EXT_SNI:
            sni = _parse_sni(ext)
        elif ext_type == _EXT_ALPN:
            alpn = _parse_alpn(ext)
        elif ext_type == _EXT_SUPPORTED_VERSIONS:
            version = _max_supported_version(ext) or version
        pos = ext_end
    return ClientHello(version=version, sni=sni, alpn=alpn, truncated=cut or pos != end)


def is_server_hello(data: bytes) -> bool:
    """True when `data` starts with a TLS handshake record carrying a ServerHello."""
    if not _record_ok(data, 0) or len(data) < 6:
        return False
    length = int.from_bytes(data[3:5], "big")
    if length < 4 or length > _MAX_RECORD or data[5] != _SERVER_HELLO:
        return False
    # The hello's own version field keeps major 3 as well (when it is present).
    return len(data) < 10 or data[9] == 3
