"""Community ID v1 flow hashes (https://github.com/corelight/community-id-spec)."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import struct


def community_id(proto: int, src: str, sport: int, dst: str, dport: int, seed: int = 0) -> str:
    """The `1:...` hash of a flow; the same for both directions."""
    a, b = ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed
    if (a, sport) > (b, dport):
        a, b, sport, dport = b, a, dport, sport
    data = struct.pack("!H", seed) + a + b + struct.pack("!BBHH", proto, 0, sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode()
