"""Frames built with struct parse as what they claim to be, with consistent seq/ack."""

from __future__ import annotations

import dpkt

from sensor.synth.wire import TcpConversation, udp


def _ip(frame: bytes) -> dpkt.ip.IP:
    eth = dpkt.ethernet.Ethernet(frame)
    return eth.data


def test_tcp_conversation_seq_and_ack() -> None:
    conv = TcpConversation(("10.0.0.1", 40000), ("198.51.100.1", 3333), None, 1000)
    syn, syn_ack, ack = conv.handshake()
    request = conv.send(True, b'{"id":1}\n')[0]
    answer = conv.send(False, b'{"id":1,"result":true}\n')[0]
    segments = [_ip(f).data for f in (syn, syn_ack, ack, request, answer)]
    assert [s.flags for s in segments] == [0x02, 0x12, 0x10, 0x18, 0x18]
    assert segments[1].ack == segments[0].seq + 1
    assert segments[2].seq == segments[0].seq + 1 and segments[2].ack == segments[1].seq + 1
    assert segments[4].ack == segments[3].seq + len(b'{"id":1}\n')
    assert segments[3].data == b'{"id":1}\n'
    assert (segments[3].sport, segments[3].dport) == (40000, 3333)


def test_ip_checksum_and_addresses() -> None:
    conv = TcpConversation(("10.0.0.1", 40000), ("198.51.100.1", 3333), None, 7)
    frame = conv.send(True, b"x" * 10)[0]
    ip = _ip(frame)
    header = bytes(frame[14:34])
    total = sum(int.from_bytes(header[i : i + 2], "big") for i in range(0, 20, 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    assert total == 0xFFFF  # a correct checksum makes the header sum to all ones
    assert (ip.src, ip.dst, ip.len) == (bytes([10, 0, 0, 1]), bytes([198, 51, 100, 1]), 50)


def test_long_payload_split_at_mss() -> None:
    conv = TcpConversation(("10.0.0.1", 40000), ("198.51.100.1", 80), None, 0)
    frames = conv.send(False, b"a" * 3000)
    assert [len(_ip(f).data.data) for f in frames] == [1460, 1460, 80]


def test_vlan_tag() -> None:
    frame = udp(("10.0.0.1", 5000), ("192.0.2.53", 53), b"hello", 120, 1)
    eth = dpkt.ethernet.Ethernet(frame)
    assert frame[12:14] == b"\x81\x00" and eth.vlan_tags[0].id == 120
    assert eth.data.data.data == b"hello" and eth.data.data.ulen == 13
