"""Live prefiltering: the kernel drops what cannot matter; the filter grows with what does.

Replay reads a file twice (candidates first, then whole interesting flows);
a live link cannot be read twice. Instead the socket starts with the
candidate program (pass 1's filter) and, every tick, is given a new program
that also lets through every packet to or from the addresses of flows that
turned out to matter (pool servers, undecided JSON peers). The kernel swaps
programs atomically. Packets of such a flow that came before its address
was added (the handshake, the first second) are not seen: byte totals of a
pool flow can come out a few packets short. That is the price of the speed,
which is why the mode is opt-in (`minewatch run --prefilter`).
"""

from __future__ import annotations

from collections.abc import Iterable

from sensor.capture.bpfgen import address_set_program
from sensor.capture.libpcap import GeneratedFilter, UnionFilter, compiled
from sensor.capture.prefilter import candidate_filter

BPF_MAXINSNS = 4096
# Two copies of the search (source, destination) of about five instructions
# per address, after the candidate program: this many addresses fit the kernel.
MAX_WATCHED = 300


class AdaptiveFilter:
    """The candidate program plus a binary search over watched IPv4 addresses."""

    def __init__(self, linktype: int = 1) -> None:
        self.linktype = linktype
        self._base = compiled(linktype, candidate_filter(linktype))
        self.watched: tuple[str, ...] = ()
        self.dropped = 0  # addresses left out because the kernel's size limit was reached

    def program(self) -> list[tuple[int, int, int, int]]:
        """The instructions to attach now."""
        parts: list = [self._base]
        insns = address_set_program(self.linktype, self.watched) if self.watched else None
        if insns:
            parts.append(GeneratedFilter(insns, "watched addresses"))
        union = UnionFilter(parts)
        program = union.program
        return [
            (
                program.bf_insns[i].code,
                program.bf_insns[i].jt,
                program.bf_insns[i].jf,
                program.bf_insns[i].k,
            )
            for i in range(program.bf_len)
        ]

    def update(self, addresses: Iterable[str]) -> bool:
        """Watch these addresses (IPv4; others are read only through the candidates).

        True when the set changed and the program should be attached again.
        """
        wanted = sorted({a for a in addresses if ":" not in a})
        self.dropped = max(0, len(wanted) - MAX_WATCHED)
        wanted = wanted[:MAX_WATCHED]
        if tuple(wanted) == self.watched:
            return False
        self.watched = tuple(wanted)
        return True
