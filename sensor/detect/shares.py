"""What each share is worth: the difficulty of the job it answers (vardiff-proof).

Pools retarget a miner's difficulty so that shares come at a steady pace
("vardiff"): a flow's shares are then worth different amounts, and a rate from
the last difficulty alone is off by the ratio of the difficulties. `ShareBook`
keeps, per flow, the difficulty of each recent job and sums the difficulty of
every share at the job it names:

- stratum (v1 and EthereumStratum): `mining.set_difficulty` applies to jobs from
  the next `mining.notify` on (slush's specification), so a late share for an
  older job is still worth the old difficulty;
- CryptoNote, Grin, EthProxy: each job carries its own target or difficulty.

A share naming a job the capture never showed (it began mid-session) is worth
the difficulty in force; a share from before any difficulty was seen is valued
at the first difficulty seen later, the nearest evidence there is. Accepted
work comes from the answers, matched by request id to the share they accept.

Bounded: the last `MAX_JOBS` jobs and `MAX_PENDING` unanswered shares, so that
a peer that never answers or never repeats a job cannot grow it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sensor.detect.jsonrpc import id_key

MAX_JOBS = 32
MAX_PENDING = 64
_UNSEEN = -1.0  # a pending share whose request was not seen: priced at the current difficulty


@dataclass(slots=True)
class ShareBook:
    """Difficulty per job, and the work (summed difficulty) of submitted and accepted shares."""

    current: float | None = None  # the difficulty in force for jobs sent from now on
    first: float | None = None  # the first difficulty seen
    submitted: float = 0.0
    accepted: float = 0.0
    unpriced_submitted: int = 0  # shares from before any difficulty was seen
    unpriced_accepted: int = 0
    _jobs: dict[str, float | None] = field(default_factory=dict)
    _pending: dict[str, float | None] = field(default_factory=dict)  # request id -> worth

    def difficulty(self, value: float) -> None:
        """The pool set a new difficulty (for jobs from the next one on)."""
        self.current = value
        if self.first is None:
            self.first = value

    def job(self, job_id: Any, difficulty: float | None = None) -> None:
        """A new job, with its own difficulty if the dialect sends one."""
        if difficulty is not None:
            self.difficulty(difficulty)
        key = id_key(job_id)
        if key is None:
            return
        jobs = self._jobs
        if key not in jobs and len(jobs) >= MAX_JOBS:
            del jobs[next(iter(jobs))]
        jobs[key] = self.current

    def worth(self, job_id: Any) -> float | None:
        """The difficulty a share for `job_id` is worth: its job's, else the current one."""
        key = id_key(job_id)
        price = self._jobs.get(key) if key is not None else None
        return price if price is not None else self.current

    def submit(self, request_id: Any, job_id: Any) -> None:
        """The miner submitted a share for `job_id` in request `request_id`."""
        worth = self.worth(job_id)
        if worth is None:
            self.unpriced_submitted += 1
        else:
            self.submitted += worth
        key = id_key(request_id)
        if key is not None:
            pending = self._pending
            if len(pending) >= MAX_PENDING:
                del pending[next(iter(pending))]
            pending[key] = worth

    def accepted_share(self, request_id: Any) -> None:
        """The pool accepted the share submitted in request `request_id`."""
        key = id_key(request_id)
        worth = self._pending.pop(key, _UNSEEN) if key is not None else _UNSEEN
        if worth == _UNSEEN:
            worth = self.current
        if worth is None:
            self.unpriced_accepted += 1
        else:
            self.accepted += worth

    def rejected_share(self, request_id: Any) -> None:
        key = id_key(request_id)
        if key is not None:
            self._pending.pop(key, None)

    def work(self) -> tuple[float | None, float | None]:
        """Submitted and accepted work in difficulty units (None: no difficulty ever seen)."""
        first = self.first
        if first is None:
            return None, None
        return (
            self.submitted + self.unpriced_submitted * first,
            self.accepted + self.unpriced_accepted * first,
        )
