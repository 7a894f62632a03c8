"""The per-flow inspector: framing both directions and feeding the dialect detectors.

Conversations are the session scripts (tests/sessions), fed whole per step or
cut into TCP segments by the traffic factory and put back together by the
flows stage's `Stream`, as the pipeline does.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import ClassVar

import pytest

from sensor.detect.base import Detector, DetectorFactory, Message
from sensor.detect.inspector import DetectContext, FlowInspector
from sensor.flows.reassembly import Stream
from sensor.model import Confidence, Finding, Side
from sensor.rules.loader import load_rules
from sensor.rules.model import PoolEndpoint, RuleSet
from tests.factory import CLIENT, TcpSession, client_hello, server_hello
from tests.sessions import MINING, NOT_MINING, Script, line

BTC_VERSION = bytes.fromhex("f9beb4d9") + b"version\x00\x00\x00\x00\x00" + bytes(4 + 4 + 102)


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    bundled = load_rules()
    # A pool of our own (reserved names), so TLS expectations do not follow the shipped lists.
    pool = PoolEndpoint("test.pool.examplepool", "ExamplePool", domains=("examplepool.org",))
    return dataclasses.replace(bundled, pools=(pool,))


@pytest.fixture
def ctx(rules: RuleSet) -> DetectContext:
    return DetectContext.from_rules(rules)


def side_of(who: str, miner: Side) -> Side:
    return miner if who == CLIENT else miner.other


def run(ctx: DetectContext, script: Script, miner: Side = Side.ORIG) -> FlowInspector:
    """The script fed step by step (one step, one delivery), then the flow's end."""
    inspector = FlowInspector(ctx, script.port)
    for n, (who, data) in enumerate(script.steps):
        inspector.data(side_of(who, miner), float(n), data)
    inspector.finish(float(len(script.steps)))
    return inspector


def ids(scripts: tuple[Script, ...]) -> list[str]:
    return [s.name for s in scripts]


# --- end to end on the session scripts ---------------------------------------------------


@pytest.mark.parametrize("script", MINING, ids=ids(MINING))
@pytest.mark.parametrize("miner", [Side.ORIG, Side.RESP])
def test_every_mining_session_is_found(ctx: DetectContext, script: Script, miner: Side) -> None:
    # miner=RESP: a capture in which the pool's side sent the flow's first packet.
    finding = run(ctx, script, miner).finding
    assert finding is not None
    assert finding.dialect == script.expect.dialect
    assert finding.miner_side is miner
    assert finding.confirmed


@pytest.mark.parametrize("script", MINING, ids=ids(MINING))
def test_mining_sessions_cut_into_segments(ctx: DetectContext, script: Script) -> None:
    """Small, out-of-order and repeated segments, put back together per direction."""
    # A binary stream is judged on its first delivery, so its first message is left whole.
    session = TcpSession(mss=None if script.framing == "binary" else 29)
    for n, (who, data) in enumerate(script.steps):
        session.send(who, data, reorder=n % 2 == 1, retransmit=n % 3 == 0)
    inspector = FlowInspector(ctx, script.port)
    streams = [Stream(1 << 20), Stream(1 << 20)]
    for seg in session.segments():
        side = side_of(seg.side, Side.ORIG)
        if "S" in seg.flags:
            streams[side].syn(seg.seq)
        data = streams[side].segment(seg.seq, seg.payload)
        if data:
            inspector.data(side, seg.ts, data)
    inspector.finish(seg.ts)
    assert inspector.finding is not None
    assert (inspector.finding.dialect, inspector.finding.miner_side) == (
        script.expect.dialect,
        Side.ORIG,
    )


@pytest.mark.parametrize("script", NOT_MINING, ids=ids(NOT_MINING))
@pytest.mark.parametrize("miner", [Side.ORIG, Side.RESP])
def test_sessions_that_are_not_mining_give_no_finding(
    ctx: DetectContext, script: Script, miner: Side
) -> None:
    assert run(ctx, script, miner).finding is None


def test_tls_pool_detector_joins_binary_streams(ctx: DetectContext) -> None:
    inspector = FlowInspector(ctx, 4443)
    inspector.data(Side.ORIG, 1.0, client_hello("xmr-eu1.examplepool.org"))
    found = inspector.finding
    assert found is not None and (found.dialect, found.confidence) == ("tls", "suspected")
    assert found.host == "xmr-eu1.examplepool.org" and found.miner_side is Side.ORIG
    inspector.data(Side.RESP, 1.1, server_hello("examplepool"))
    assert inspector.finding is not None and inspector.finding.confirmed


def test_node_hello_is_named(ctx: DetectContext) -> None:
    inspector = FlowInspector(ctx, 8333)
    inspector.data(Side.ORIG, 1.0, BTC_VERSION)
    assert inspector.node == "bitcoin-p2p" and inspector.finding is None


# --- a failing detector ------------------------------------------------------------------


class Exploding:
    """A detector with a bug: it raises on every message."""

    dialect: ClassVar[str] = "exploding"
    declined = False

    def __init__(self) -> None:
        self.fed = 0

    def feed(self, msg: Message) -> None:
        self.fed += 1
        raise ValueError("detector bug")

    def finding(self) -> Finding | None:
        return Finding("stratum-v1", Confidence.CONFIRMED, Side.RESP, "exploding")


class CannotConclude(Exploding):
    """A detector with another bug: it takes messages, then raises when asked."""

    dialect: ClassVar[str] = "cannot-conclude"

    def feed(self, msg: Message) -> None:
        self.fed += 1

    def finding(self) -> Finding | None:
        raise KeyError("detector bug")


@dataclasses.dataclass
class ContextWithBug(DetectContext):
    """The shared context, with a buggy detector in every table of detectors it builds."""

    bug: type[Exploding] = Exploding
    built: list[Exploding] = dataclasses.field(default_factory=list)

    def build(self, table: dict[str, DetectorFactory]) -> list[Detector]:
        detectors = super().build(table)
        if not detectors:
            return detectors
        self.built.append(self.bug())
        return [self.built[-1], *detectors]


@pytest.mark.parametrize("bug", [Exploding, CannotConclude])
def test_a_detector_that_raises_is_counted_and_dropped(
    rules: RuleSet, caplog: pytest.LogCaptureFixture, bug: type[Exploding]
) -> None:
    base = DetectContext.from_rules(rules)
    ctx = ContextWithBug(base.rules, base.pools, bug=bug)
    script = next(s for s in MINING if s.name == "stratum_v1_btc")
    with caplog.at_level(logging.ERROR, logger="sensor.detect.inspector"):
        inspector = run(ctx, script)
        run(ctx, script)  # a second flow: counted again
    assert ctx.detector_errors == {bug.dialect: 2}
    assert [b.fed for b in ctx.built] == [1, 1]  # dropped after its first failure
    # The others went on, and the dropped detector's finding no longer counts.
    assert inspector.finding is not None and inspector.finding.dialect == "stratum-v1"
    assert inspector.finding.miner_side is Side.ORIG
    assert f"detector {bug.dialect} failed" in caplog.text


# --- active and undecided ----------------------------------------------------------------


def test_a_new_inspector_is_active_and_undecided_about_nothing(ctx: DetectContext) -> None:
    inspector = FlowInspector(ctx, 3333)
    assert inspector.active and not inspector.undecided and inspector.finding is None


def test_binary_flow_nobody_wants_becomes_inactive(ctx: DetectContext) -> None:
    inspector = FlowInspector(ctx, 22)
    inspector.data(Side.ORIG, 1.0, b"SSH-2.0-OpenSSH_9.6\r\n")
    assert inspector.active  # the other direction has not spoken yet
    assert not inspector.undecided
    inspector.data(Side.RESP, 1.1, b"SSH-2.0-OpenSSH_9.3\r\n")
    # Text banners may still precede a JSON line: both sides wait for more.
    assert inspector.active
    kexinit = b"\x00\x00\x05\xdc\x06\x14" + bytes(range(256)) * 5
    inspector.data(Side.ORIG, 1.2, kexinit)
    inspector.data(Side.RESP, 1.3, kexinit)
    assert not inspector.active and not inspector.undecided


def test_json_look_alike_is_declined_by_every_detector(ctx: DetectContext) -> None:
    inspector = FlowInspector(ctx, 5555)
    inspector.data(Side.ORIG, 1.0, line({"id": 1, "method": "subscribe", "params": ["orders"]}))
    assert not inspector.undecided and inspector.active
    inspector.data(Side.RESP, 1.1, line({"id": 1, "result": True, "error": None}))
    assert not inspector.active and inspector.finding is None


def test_undecided_while_a_detector_weighs_the_flow(ctx: DetectContext) -> None:
    # Mid-session, a bare JSON-RPC result says nothing yet about which dialect it is.
    inspector = FlowInspector(ctx, 3333)
    inspector.data(Side.RESP, 1.0, line({"id": 7, "result": {"status": "OK"}, "error": None}))
    assert inspector.undecided and inspector.active and inspector.finding is None


def test_a_flow_with_a_finding_stays_active(ctx: DetectContext) -> None:
    script = next(s for s in MINING if s.name == "stratum_v1_btc")
    inspector = run(ctx, script)
    assert inspector.finding is not None and inspector.active


def test_pool_web_site_on_443_is_not_a_finding(ctx: DetectContext) -> None:
    inspector = FlowInspector(ctx, 443)
    inspector.data(Side.ORIG, 1.0, client_hello("www.examplepool.org"))
    inspector.data(Side.RESP, 1.1, server_hello("web"))
    assert inspector.finding is None and not inspector.active
