"""A thin ctypes binding to the system libpcap, for BPF-filtered file reading.

libpcap runs the BPF program in C over every record, so packets that cannot
matter never reach Python. ctypes releases the GIL during each foreign call,
which lets the packet count run in a second thread while Python inspects the
candidates. When libpcap is missing the replay falls back to the pure-Python
reader (`pcapfile`), with identical results and lower speed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from sensor.capture.errors import CaptureError
from sensor.model import Frame

_ERRBUF_SIZE = 256
_NETMASK_UNKNOWN = 0xFFFFFFFF


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _PktHdr(ctypes.Structure):
    _fields_ = [("ts", _Timeval), ("caplen", ctypes.c_uint32), ("len", ctypes.c_uint32)]


class _BpfInsn(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint32),
    ]


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_BpfInsn))]


_BPF_RET_K = 0x06
_BPF_JA = 0x05


@cache
def load() -> ctypes.CDLL | None:
    """The libpcap shared library with prototypes declared, or None if absent."""
    name = ctypes.util.find_library("pcap") or "libpcap.so.0.8"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    vp, cp, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    _proto(lib.pcap_open_offline_with_tstamp_precision, vp, [cp, ctypes.c_uint, cp])
    _proto(lib.pcap_open_dead, vp, [i, i])
    _proto(lib.pcap_close, None, [vp])
    _proto(lib.pcap_geterr, cp, [vp])
    _proto(lib.pcap_datalink, i, [vp])
    _proto(lib.pcap_compile, i, [vp, ctypes.POINTER(_BpfProgram), cp, i, ctypes.c_uint32])
    _proto(lib.pcap_setfilter, i, [vp, ctypes.POINTER(_BpfProgram)])
    _proto(lib.pcap_freecode, None, [ctypes.POINTER(_BpfProgram)])
    _proto(lib.pcap_next_ex, i, [vp, ctypes.POINTER(ctypes.POINTER(_PktHdr)), ctypes.c_void_p])
    _proto(lib.pcap_dispatch, i, [vp, i, vp, vp])
    _proto(lib.pcap_dump_fopen, vp, [vp, vp])
    _proto(lib.pcap_dump_close, None, [vp])
    return lib


_CookieWrite = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)


class _CookieFunctions(ctypes.Structure):
    _fields_ = [
        ("read", ctypes.c_void_p),
        ("write", _CookieWrite),
        ("seek", ctypes.c_void_p),
        ("close", ctypes.c_void_p),
    ]


class _ByteCounter:
    """A write-only stdio stream (glibc fopencookie) that counts and discards.

    With a 1 MiB buffer, Python runs once per MiB written, not once per packet.
    """

    def __init__(self) -> None:
        self.written = 0
        self._write = _CookieWrite(self._on_write)  # kept alive as long as the stream
        libc = ctypes.CDLL(None)
        libc.fopencookie.restype = ctypes.c_void_p
        libc.fopencookie.argtypes = [ctypes.c_void_p, ctypes.c_char_p, _CookieFunctions]
        libc.setvbuf.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t]
        self.stream = libc.fopencookie(None, b"w", _CookieFunctions(None, self._write, None, None))
        if self.stream:
            libc.setvbuf(self.stream, None, 0, 1 << 20)  # 0 = _IOFBF

    def _on_write(self, _cookie: int, _buf: int, size: int) -> int:
        self.written += size
        return size


def _proto(fn: Any, restype: object, argtypes: list[object]) -> None:
    fn.restype = restype
    fn.argtypes = argtypes


class Filter:
    """A BPF program compiled once for a link type and shared by every file."""

    def __init__(self, linktype: int, expression: str, optimize: bool = True) -> None:
        lib = load()
        if lib is None:
            raise CaptureError("bpf", "libpcap is not available")
        self._lib, self.expression = lib, expression
        self.program = _BpfProgram()
        dead = lib.pcap_open_dead(linktype, 262144)
        try:
            code = expression.encode()
            if lib.pcap_compile(
                dead, ctypes.byref(self.program), code, int(optimize), _NETMASK_UNKNOWN
            ):
                message = (lib.pcap_geterr(dead) or b"").decode(errors="replace")
                raise CaptureError("bpf", f"filter does not compile: {message}")
        finally:
            lib.pcap_close(dead)

    def __del__(self, _byref: Any = ctypes.byref) -> None:
        # `_byref` is bound at definition: cached filters die at interpreter exit,
        # when module globals such as `ctypes` may already be gone.
        if getattr(self, "program", None) is not None and self.program.bf_insns:
            self._lib.pcap_freecode(_byref(self.program))

    def instructions(self) -> list[_BpfInsn]:
        return [self.program.bf_insns[i] for i in range(self.program.bf_len)]


class GeneratedFilter:
    """A BPF program built from instructions (see `bpfgen`), usable in a union."""

    def __init__(self, insns: list[Any], expression: str) -> None:
        self._insns = [_BpfInsn(i.code, i.jt, i.jf, i.k) for i in insns]
        self.expression = expression

    def instructions(self) -> list[_BpfInsn]:
        return self._insns


class UnionFilter:
    """Accepts what any of its programs accepts, in one BPF program.

    libpcap's optimiser is fast on each part but slow on their `or` (it grows
    faster than linearly), so parts are compiled apart and joined here: every
    `ret #0` (reject) of one part becomes a jump to the start of the next.
    libpcap copies the program when it is installed.
    """

    def __init__(self, parts: list[Filter | GeneratedFilter]) -> None:
        insns: list[_BpfInsn] = []
        for index, part in enumerate(parts):
            code = part.instructions()
            last = index == len(parts) - 1
            for pos, insn in enumerate(code):
                if not last and insn.code == _BPF_RET_K and insn.k == 0:
                    insn = _BpfInsn(_BPF_JA, 0, 0, len(code) - pos - 1)
                insns.append(_BpfInsn(insn.code, insn.jt, insn.jf, insn.k))
        self._array = (_BpfInsn * len(insns))(*insns)
        self.program = _BpfProgram(len(insns), self._array)
        self.expression = " || ".join(p.expression for p in parts)


@cache
def compiled(linktype: int, expression: str) -> Filter:
    """The compiled filter for a link type (cached: large filters take a while)."""
    return Filter(linktype, expression)


class PcapFile:
    """One capture file opened through libpcap, optionally with a BPF filter."""

    def __init__(self, path: Path, bpf: str | Filter | UnionFilter | None = None) -> None:
        lib = load()
        if lib is None:
            raise CaptureError(path.name, "libpcap is not available")
        self._lib, self.name = lib, path.name
        errbuf = ctypes.create_string_buffer(_ERRBUF_SIZE)
        # Nanosecond precision (1) keeps pcapng and nanosecond pcap timestamps exact.
        self._handle = lib.pcap_open_offline_with_tstamp_precision(str(path).encode(), 1, errbuf)
        if not self._handle:
            raise CaptureError(path.name, errbuf.value.decode(errors="replace"))
        self.linktype = lib.pcap_datalink(self._handle)
        if bpf:
            self._set_filter(bpf)

    def _set_filter(self, bpf: str | Filter | UnionFilter) -> None:
        try:
            program = compiled(self.linktype, bpf) if isinstance(bpf, str) else bpf
        except CaptureError as exc:
            self.close()
            raise CaptureError(self.name, exc.message) from exc
        if self._lib.pcap_setfilter(self._handle, ctypes.byref(program.program)):
            message = self._error()
            self.close()
            raise CaptureError(self.name, f"BPF filter not accepted: {message}")

    def _error(self) -> str:
        return (self._lib.pcap_geterr(self._handle) or b"").decode(errors="replace")

    def frames(self) -> Iterator[Frame]:
        """Frames that pass the filter; raises CaptureError at a damaged record."""
        hdr = ctypes.POINTER(_PktHdr)()
        data = ctypes.c_void_p()
        next_ex, handle = self._lib.pcap_next_ex, self._handle
        linktype, name, string_at = self.linktype, self.name, ctypes.string_at
        while True:
            status = next_ex(handle, ctypes.byref(hdr), ctypes.byref(data))
            if status == 1:
                h = hdr.contents
                ts = h.ts.tv_sec + h.ts.tv_usec * 1e-9
                yield Frame(ts, linktype, string_at(data.value or 0, h.caplen), h.len, name)
            elif status == -2:  # end of file
                return
            else:
                raise CaptureError(name, self._error() or "read error")

    def count(self) -> tuple[int, int]:
        """(packets, captured bytes) of the whole file, counted in C.

        libpcap's own `pcap_dump` serves as the per-packet callback, writing to
        a stream that only counts: `pcap_dispatch` returns the packet count and
        the bytes written are a 24-byte file header plus 16 bytes of header and
        the captured bytes per packet. No Python runs per packet, and the GIL is
        released but once a MiB.
        """
        lib, counter = self._lib, _ByteCounter()
        dumper = lib.pcap_dump_fopen(self._handle, counter.stream) if counter.stream else None
        if not dumper:
            raise CaptureError(self.name, f"cannot count packets: {self._error()}")
        try:
            callback = ctypes.cast(lib.pcap_dump, ctypes.c_void_p)
            packets = lib.pcap_dispatch(self._handle, -1, callback, dumper)
        finally:
            lib.pcap_dump_close(dumper)  # flushes, then closes the counting stream
        if packets < 0:
            raise CaptureError(self.name, self._error() or "read error")
        return packets, counter.written - 24 - 16 * packets

    def close(self) -> None:
        if self._handle:
            self._lib.pcap_close(self._handle)
            self._handle = None

    def __enter__(self) -> PcapFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
