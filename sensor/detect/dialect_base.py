"""Bookkeeping shared by the JSON-RPC dialect detectors (EthProxy, CryptoNote, Grin).

Each detector fills a draft `Finding`, fixes the miner's side on its first
evidence, and declines on off-dialect messages until the pool has confirmed;
only what the dialects parse differs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from sensor.detect.jsonrpc import RpcLedger
from sensor.detect.shares import ShareBook
from sensor.model import Confidence, Finding, Side
from sensor.rules.model import CoinHints, DialectRule


class JsonDialect:
    """The state and helpers every JSON-RPC dialect detector has."""

    dialect: ClassVar[str]

    def __init__(self, rule: DialectRule, coins: CoinHints) -> None:
        self._rule = rule
        self._coins = coins
        self._ledger = RpcLedger()
        self._draft = Finding(self.dialect, Confidence.SUSPECTED, Side.ORIG, rule.id)
        self._declined = False
        self._miner: Side | None = None
        self._answered = False  # the pool answered in protocol
        self._book = ShareBook()  # what each share is worth, job by job

    def _difficulty(self, value: float, job_id: object = None) -> None:
        """A job (or a bare target) with its own difficulty."""
        self._draft.difficulty = value
        self._book.job(job_id, value)

    def _tally(self, request_id: object, accepted: bool) -> None:
        """The pool answered a share: accepted or rejected."""
        if accepted:
            self._draft.shares_accepted += 1
            self._book.accepted_share(request_id)
        else:
            self._draft.shares_rejected += 1
            self._book.rejected_share(request_id)

    @property
    def _confirmed(self) -> bool:
        """The pool answered in protocol, or the miner submitted shares."""
        return self._answered or self._draft.shares > 0

    def _build(self, coin: str | None, algorithm: str | None) -> Finding:
        """The Finding for this flow: the draft, its confidence, coin and share work."""
        assert self._miner is not None  # callers decline before the first evidence
        draft = self._draft
        submitted, accepted = self._book.work()
        return replace(
            draft,
            confidence=Confidence.CONFIRMED if self._confirmed else Confidence.SUSPECTED,
            miner_side=self._miner,
            evidence=list(draft.evidence),
            coin=coin,
            algorithm=algorithm,
            submitted_work=submitted,
            accepted_work=accepted,
        )

    @property
    def declined(self) -> bool:
        return self._declined

    def _claim(self, miner: Side) -> bool:
        """Fix the miner's side on first evidence; False if it contradicts it."""
        if self._miner is None:
            self._miner = miner
        return self._miner == miner

    def _contrary(self) -> None:
        # Before the pool confirmed, anything off-dialect means this is another
        # protocol; afterwards it is tolerated as a pool extension or noise.
        if not self._confirmed:
            self._declined = True

    def _note(self, method: str) -> None:
        if method not in self._draft.evidence:
            self._draft.evidence.append(method)
