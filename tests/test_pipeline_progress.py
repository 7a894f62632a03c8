"""Progress records of open mining flows carry the flow's estimate to date."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from sensor.model import Frame
from sensor.pipeline import Pipeline
from sensor.rules.loader import load_rules
from tests.estimate.test_replay import BTC_DIFF, BTC_IP, btc_session
from tests.factory import ether, frame_bytes
from tests.test_run import Records

RULES = load_rules()


def _timed_frames(seed: int) -> list[Frame]:
    packets = ether(btc_session(random.Random(seed)).packets())
    return [Frame(float(p.time), 1, frame_bytes(p), len(p), "t") for p in packets]


def test_progress_estimate_follows_the_shares_and_matches_the_end() -> None:
    records = Records()
    pipeline = Pipeline(RULES, [records])
    frames = _timed_frames(2026)
    half = len(frames) // 2
    for frame in frames[:half]:
        pipeline.feed(frame)
    (early,) = pipeline.progress(frames[half - 1].ts)
    assert early.miner_ip == BTC_IP and (early.coin, early.algorithm) == ("btc", "sha256d")
    assert early.estimate is not None and early.estimate.hashrate_hs is not None
    flow = next(iter(pipeline.flows.open_flows()))
    assert early.estimate.seconds == pytest.approx(frames[half - 1].ts - flow.start, abs=1e-6)
    shares_so_far = flow.inspector.finding.shares_accepted
    assert early.estimate.hashrate_hs == pytest.approx(
        shares_so_far * BTC_DIFF * 2**32 / early.estimate.seconds
    )
    # A current finding that names no coin takes the one the mining event completed.
    bare = replace(flow.inspector.finding, coin=None, algorithm=None)
    again = pipeline.records.estimate(flow, bare, flow.reported)
    assert (bare.coin, bare.algorithm) == ("btc", "sha256d") and again == early.estimate
    for frame in frames[half:]:
        pipeline.feed(frame)
    (late,) = pipeline.progress(frames[-1].ts)
    pipeline.finish(reason="shutdown")
    (ended,) = records.ended
    assert late.estimate == ended.estimate  # the last progress saw every share
