"""Linux AF_PACKET sockets: opening, options, BPF, statistics, and a plain reader.

Everything here is a thin layer over socket options documented in packet(7)
and Documentation/networking/packet_mmap.rst. The memory-mapped ring lives in
`ring`; `PlainReader` is the fallback when a ring cannot be set up, and reads
one packet a system call with `recvmsg`.

A socket is created listening to no protocol, so nothing is queued before the
filter is attached: only `bind` (with ETH_P_ALL) starts the flow of packets.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import socket
import struct
from collections.abc import Iterable
from typing import Any, Protocol

from sensor.capture.errors import CaptureError
from sensor.model import Frame

log = logging.getLogger(__name__)

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_AUXDATA = 8
PACKET_VERSION = 10
PACKET_FANOUT = 18
PACKET_MR_PROMISC = 1
PACKET_FANOUT_HASH = 0
PACKET_FANOUT_FLAG_DEFRAG = 0x8000
SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33
PLAIN_RCVBUF = 64 << 20
SIOCGIFINDEX = 0x8933
SIOCGIFHWADDR = 0x8927
ETH_P_ALL = 3

TP_STATUS_VLAN_VALID = 0x10
TP_STATUS_VLAN_TPID_VALID = 0x40
ETH_P_8021Q = 0x8100

BPF_MAXINSNS = 4096  # the kernel refuses longer classic BPF programs
LINKTYPE_ETHERNET, LINKTYPE_RAW = 1, 101
# ARPHRD_* device types -> pcap link types. Loopback frames carry a (zeroed)
# Ethernet header; tunnel devices without a link header give bare IP packets.
HATYPE_LINKTYPES = {1: LINKTYPE_ETHERNET, 772: LINKTYPE_ETHERNET, 65534: LINKTYPE_RAW}

_AUXDATA = struct.Struct("=IIIHHHH")  # struct tpacket_auxdata
_TIMESPEC = struct.Struct("=qq")
_VLAN = struct.Struct(">HH")
_ANCILLARY = socket.CMSG_SPACE(_AUXDATA.size) + socket.CMSG_SPACE(_TIMESPEC.size)
_BATCH = 512  # packets a plain read takes before it yields to the other interfaces

Insn = tuple[int, int, int, int]  # (code, jt, jf, k), as struct sock_filter


class _InsnLike(Protocol):
    code: int
    jt: int
    jf: int
    k: int


def new_socket(interface: str) -> socket.socket:
    """A packet socket that receives nothing until `bind`."""
    try:
        return socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    except PermissionError as exc:
        raise CaptureError(
            interface, "permission denied: live capture needs root or CAP_NET_RAW"
        ) from exc
    except (OSError, AttributeError) as exc:
        raise CaptureError(interface, f"AF_PACKET sockets are not available: {exc}") from exc


def _ifreq(sock: socket.socket, interface: str, request: int) -> bytes:
    name = interface.encode()
    if not name or len(name) >= 16:
        raise CaptureError(interface, "not a valid interface name")
    try:
        return fcntl.ioctl(sock.fileno(), request, struct.pack("16s16x", name))
    except OSError as exc:
        if exc.errno == errno.ENODEV:
            raise CaptureError(interface, "no such interface") from exc
        raise CaptureError(interface, f"cannot query interface: {exc.strerror}") from exc


def interface_index(sock: socket.socket, interface: str) -> int:
    """The interface index, asked through the socket so that its namespace counts."""
    index: int = struct.unpack_from("=i", _ifreq(sock, interface, SIOCGIFINDEX), 16)[0]
    return index


def interface_linktype(sock: socket.socket, interface: str) -> int:
    """The pcap link type of the interface's frames as a SOCK_RAW socket reads them."""
    hatype: int = struct.unpack_from("=H", _ifreq(sock, interface, SIOCGIFHWADDR), 16)[0]
    if hatype not in HATYPE_LINKTYPES:
        raise CaptureError(interface, f"unsupported device type (ARPHRD {hatype})")
    return HATYPE_LINKTYPES[hatype]


def bind(sock: socket.socket, interface: str) -> None:
    """Start receiving every protocol on the interface."""
    try:
        sock.bind((interface, ETH_P_ALL))  # Python converts the protocol to network order
    except OSError as exc:
        raise CaptureError(interface, f"cannot bind: {exc.strerror}") from exc


def set_promiscuous(sock: socket.socket, interface: str, ifindex: int) -> None:
    """Promiscuous mode as a membership: the kernel counts holders and undoes it
    when the socket closes, so a crash never leaves the interface promiscuous."""
    mreq = struct.pack("=iHH8s", ifindex, PACKET_MR_PROMISC, 0, b"")
    try:
        sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
    except OSError as exc:
        raise CaptureError(interface, f"cannot enter promiscuous mode: {exc.strerror}") from exc


def join_fanout(sock: socket.socket, interface: str, group: int) -> None:
    """Share the interface's packets with the group's other sockets by flow hash.

    The hash is symmetric, so both directions of a flow go to one socket; DEFRAG
    reassembles IP fragments first so that they hash like the rest of the flow.
    """
    if not 0 <= group <= 0xFFFF:
        raise CaptureError(interface, f"fanout group {group} is not within 0..65535")
    mode = PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG
    try:
        # As bytes: with the DEFRAG flag the value no longer fits a signed int.
        sock.setsockopt(SOL_PACKET, PACKET_FANOUT, struct.pack("=I", group | mode << 16))
    except OSError as exc:
        why = "in use with other settings or another interface" if exc.errno == errno.EINVAL else ""
        raise CaptureError(
            interface, f"cannot join fanout group {group}: {why or exc.strerror}"
        ) from exc


def filter_instructions(bpf: object) -> list[Insn]:
    """Instructions of a libpcap Filter/GeneratedFilter/UnionFilter, a bpfgen
    program, or (code, jt, jf, k) tuples."""
    raw: Iterable[Any]
    if hasattr(bpf, "instructions"):
        raw = bpf.instructions()
    elif hasattr(bpf, "program"):
        program = bpf.program
        raw = (program.bf_insns[i] for i in range(program.bf_len))
    elif isinstance(bpf, Iterable) and not isinstance(bpf, str | bytes):
        raw = bpf
    else:
        raise CaptureError("bpf", f"not a BPF program: {type(bpf).__name__}")
    return [_as_tuple(insn) for insn in raw]


def _as_tuple(insn: _InsnLike | Insn) -> Insn:
    if isinstance(insn, tuple):
        return insn
    return (insn.code, insn.jt, insn.jf, insn.k)


def attach_filter(sock: socket.socket, insns: Iterable[Insn], source: str = "bpf") -> None:
    """Attach a classic BPF program (SO_ATTACH_FILTER); the kernel copies it."""
    program = list(insns)
    if not program:
        raise CaptureError(source, "empty BPF program")
    if len(program) > BPF_MAXINSNS:
        raise CaptureError(
            source,
            f"BPF program has {len(program)} instructions; the kernel accepts "
            f"at most {BPF_MAXINSNS}",
        )
    try:
        code = b"".join(struct.pack("=HBBI", *insn) for insn in program)
    except struct.error as exc:
        raise CaptureError(source, f"malformed BPF instruction: {exc}") from exc
    buffer = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("@HP", len(program), ctypes.addressof(buffer))  # struct sock_fprog
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    except OSError as exc:
        raise CaptureError(source, f"BPF program refused by the kernel: {exc.strerror}") from exc


def read_statistics(sock: socket.socket) -> tuple[int, int, int]:
    """(packets, drops, freeze_q) since the last call: the kernel resets them on read.

    `packets` counts every packet that passed the filter, dropped ones included.
    TPACKET_V3 sockets add the freeze count; others report only the first two.
    """
    raw = sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12)
    if len(raw) >= 12:
        packets, drops, freeze_q = struct.unpack_from("=III", raw)
        return packets, drops, freeze_q
    packets, drops = struct.unpack_from("=II", raw)
    return packets, drops, 0


def with_vlan(data: bytes, tpid: int, tci: int) -> bytes:
    """The frame with the 802.1Q tag the kernel took out put back after the MACs."""
    return data[:12] + _VLAN.pack(tpid or ETH_P_8021Q, tci & 0xFFFF) + data[12:]


def _grow_receive_buffer(sock: socket.socket, size: int = PLAIN_RCVBUF) -> None:
    """Without a ring the socket buffer is all that absorbs bursts; the default
    (rmem_default, ~200 KiB) holds a few milliseconds. FORCE needs CAP_NET_ADMIN;
    plain SO_RCVBUF is capped at net.core.rmem_max."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


class PlainReader:
    """One packet a `recvmsg`, with kernel timestamps and VLAN aux data.

    The fallback for kernels or sandboxes without PACKET_RX_RING; much slower.
    """

    def __init__(self, sock: socket.socket, name: str, linktype: int, snaplen: int) -> None:
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setblocking(False)
        _grow_receive_buffer(sock)
        self.sock, self.name, self.linktype, self.snaplen = sock, name, linktype, snaplen
        # One buffer for every packet: a fresh snaplen-sized (256 KiB) buffer per
        # recvmsg would cost an mmap and page faults each time.
        self._buffer = memoryview(bytearray(snaplen))

    def read(self) -> list[Frame]:
        frames: list[Frame] = []
        recvmsg_into, buffers = self.sock.recvmsg_into, [self._buffer]
        for _ in range(_BATCH):
            try:
                size, ancillary, _flags, _addr = recvmsg_into(buffers, _ANCILLARY)
            except BlockingIOError:
                break
            except OSError as exc:  # e.g. ENETDOWN: the link may come back
                log.warning("%s: receive failed: %s", self.name, exc.strerror)
                break
            frames.append(self._frame(self._buffer[:size].tobytes(), ancillary))
        return frames

    def _frame(self, data: bytes, ancillary: list[tuple[int, int, bytes]]) -> Frame:
        ts, wire_len = 0.0, len(data)
        for level, kind, value in ancillary:
            if level == SOL_PACKET and kind == PACKET_AUXDATA:
                status, wire_len, _snap, _mac, _net, tci, tpid = _AUXDATA.unpack_from(value)
                if status & TP_STATUS_VLAN_VALID:
                    tpid = tpid if status & TP_STATUS_VLAN_TPID_VALID else ETH_P_8021Q
                    data = with_vlan(data, tpid, tci)[: self.snaplen]
                    wire_len += 4
            elif level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = _TIMESPEC.unpack_from(value)
                ts = sec + nsec * 1e-9
        return Frame(ts, self.linktype, data, wire_len, self.name)

    def close(self) -> None:
        pass  # the socket belongs to the caller
