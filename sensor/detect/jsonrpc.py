"""JSON-RPC bookkeeping shared by the JSON pool dialects.

Pools answer requests by id; to know that a result accepts a share, or that
an OK answers a login, a detector needs the method of the request the answer
refers to. `RpcLedger` remembers pending requests per side, bounded so that a
peer that never answers cannot grow it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sensor.detect.base import is_response, method_of
from sensor.model import Side

_MAX_PENDING = 64


def id_key(value: Any) -> str | None:
    """A request (or job) id as a dict key: "1" and 1 are the same for a pool."""
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


@dataclass(slots=True)
class RpcLedger:
    """Matches responses to the requests they answer."""

    pending: dict[tuple[Side, str], str] = field(default_factory=dict)

    def request(self, side: Side, obj: Any) -> str | None:
        """Record a request sent by `side`; returns its method (None if not a request)."""
        method = method_of(obj)
        key = id_key(obj.get("id")) if method else None
        if method and key is not None:
            if len(self.pending) >= _MAX_PENDING:
                self.pending.pop(next(iter(self.pending)))
            self.pending[(side, key)] = method
        return method

    def answered(self, side: Side, obj: Any) -> str | None:
        """For a response sent by `side`, the method of the request it answers, if seen."""
        if not is_response(obj):
            return None
        key = id_key(obj.get("id"))
        if key is None:
            return None
        return self.pending.pop((side.other, key), None)
