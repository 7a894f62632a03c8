"""BPF programs as the kernel takes them, and the small helpers of afpacket.

SO_ATTACH_FILTER works on any socket, so the filters are tried on loopback
UDP sockets, which need no privileges. Packet sockets are tested in
test_live.py (root only).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from sensor.capture import bpfgen, libpcap
from sensor.capture.afpacket import BPF_MAXINSNS, attach_filter, filter_instructions, with_vlan
from sensor.capture.errors import CaptureError
from sensor.capture.libpcap import GeneratedFilter, UnionFilter

RET, LD_LEN = 0x06, 0x80
ACCEPT, REJECT = (RET, 0, 0, 0xFFFF), (RET, 0, 0, 0)


@pytest.fixture
def udp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(receiver, sender) on loopback; the receiver times out quickly."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with rx, tx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(0.1)
        tx.connect(rx.getsockname())
        yield rx, tx


def _arrives(rx: socket.socket, tx: socket.socket, payload: bytes) -> bool:
    tx.send(payload)
    try:
        return rx.recv(100) == payload
    except TimeoutError:
        return False


def test_attached_program_decides_what_the_socket_receives(
    udp_pair: tuple[socket.socket, socket.socket],
) -> None:
    rx, tx = udp_pair
    assert _arrives(rx, tx, b"before")
    attach_filter(rx, [REJECT])
    assert not _arrives(rx, tx, b"rejected")
    # A UDP socket's filter sees the datagram from its UDP header: 8 + payload bytes.
    attach_filter(rx, [(LD_LEN, 0, 0, 0), (0x15, 0, 1, 8 + 5), ACCEPT, REJECT])
    assert not _arrives(rx, tx, b"four")
    assert _arrives(rx, tx, b"fives")


def test_the_kernel_limit_is_checked_before_the_kernel(
    udp_pair: tuple[socket.socket, socket.socket],
) -> None:
    rx, _tx = udp_pair
    attach_filter(rx, [(LD_LEN, 0, 0, 0)] * (BPF_MAXINSNS - 1) + [ACCEPT])
    with pytest.raises(CaptureError, match="4097 instructions; the kernel accepts at most 4096"):
        attach_filter(rx, [(LD_LEN, 0, 0, 0)] * BPF_MAXINSNS + [ACCEPT], "eth0")


@pytest.mark.parametrize(
    ("program", "message"),
    [
        ([], "empty BPF program"),
        ([(0x15, 5, 0, 1), ACCEPT], "refused by the kernel"),  # jumps past the end
        ([(RET, 0, 0, 1 << 32)], "malformed BPF instruction"),
    ],
)
def test_bad_programs_are_named_errors(
    udp_pair: tuple[socket.socket, socket.socket],
    program: list[tuple[int, int, int, int]],
    message: str,
) -> None:
    with pytest.raises(CaptureError, match=message) as caught:
        attach_filter(udp_pair[0], program, "eth3")
    assert caught.value.source == "eth3"


def test_instructions_come_from_every_kind_of_program() -> None:
    generated = bpfgen.address_set_program(1, ["198.51.100.0/24", "192.0.2.0/24"])
    assert generated is not None
    insns = [(i.code, i.jt, i.jf, i.k) for i in generated]
    assert filter_instructions(generated) == insns
    assert filter_instructions(insns) == insns
    assert filter_instructions(GeneratedFilter(generated, "two nets")) == insns
    union = UnionFilter([GeneratedFilter(generated, "a"), GeneratedFilter([bpfgen.Insn(RET)], "b")])
    joined = filter_instructions(union)
    assert len(joined) == len(insns) + 1 and joined[-1] == REJECT
    with pytest.raises(CaptureError, match="not a BPF program"):
        filter_instructions("tcp port 3333")


@pytest.mark.skipif(libpcap.load() is None, reason="libpcap is not installed")
def test_libpcap_filters_give_their_instructions(
    udp_pair: tuple[socket.socket, socket.socket],
) -> None:
    compiled = libpcap.compiled(1, "tcp port 3333")
    insns = filter_instructions(compiled)
    assert insns == [(i.code, i.jt, i.jf, i.k) for i in compiled.instructions()]
    assert insns[-1] == REJECT
    attach_filter(udp_pair[0], insns)  # the kernel takes libpcap's code as it is


def test_with_vlan_puts_the_tag_after_the_addresses() -> None:
    data = bytes(range(12)) + b"\x08\x00payload"
    assert with_vlan(data, 0x8100, 0x2064) == bytes(range(12)) + b"\x81\x00\x20\x64\x08\x00payload"
    assert with_vlan(data, 0, 5)[12:16] == b"\x81\x00\x00\x05"
