"""Host names learned from DNS answers, so pool flows can be named host:port.

Only responses are read (by `dnsparse`, which builds no per-record objects),
and the map is bounded: the oldest names are forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict

from sensor.detect.dnsparse import answers

MAX_NAMES = 100_000


class HostNames:
    """IP address -> the last host name a DNS answer gave for it."""

    def __init__(self, limit: int = MAX_NAMES) -> None:
        self._names: OrderedDict[str, str] = OrderedDict()
        self._limit = limit
        self.malformed = 0

    def __len__(self) -> int:
        return len(self._names)

    def get(self, ip: str) -> str | None:
        return self._names.get(ip)

    def items(self) -> list[tuple[str, str]]:
        return list(self._names.items())

    def learn(self, payload: bytes) -> None:
        """Read a DNS message; remember the names of A and AAAA answers."""
        try:
            response = answers(payload)
        except ValueError:
            self.malformed += 1
            return
        if response is None:
            return
        # Through a CNAME chain, the name the client asked for is the one it dialled.
        asked, records = response
        for address, owner in records:
            self._remember(address, asked or owner)

    def remember(self, ip: str, name: str) -> None:
        """Record a name for an address learned elsewhere (SNI, HTTP Host)."""
        self._remember(ip, name)

    def _remember(self, ip: str, name: str) -> None:
        self._names[ip] = name.rstrip(".").lower()
        self._names.move_to_end(ip)
        if len(self._names) > self._limit:
            self._names.popitem(last=False)
