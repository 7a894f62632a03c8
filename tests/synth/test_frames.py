"""On the wire: retargets as set_difficulty + notify (or a job with a new target), and
submits naming the job the miner had, decoded back from the written pcap with dpkt."""

from __future__ import annotations

import json
import socket
from collections import defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import dpkt
import pytest

from sensor.detect.cryptonote import target_difficulty
from sensor.estimate import hashes_per_share
from sensor.synth.build import synthesise
from sensor.synth.population import Miner, plan
from sensor.synth.scenario import MinerGroup, Organisation, Pool, Scenario, Vardiff
from sensor.synth.timing import RTT_US

# Shares come 8x faster than wanted at the start: two clamped retargets ten
# seconds apart, with shares in flight when the new jobs go out.
EVERY = Vardiff(target=0.05, every=10.0)
POOLS = (
    Pool("btc", "198.51.100.1", 3333, "btc", "stratum-v1", 2**-4, vardiff=EVERY),
    Pool("eth", "198.51.100.2", 4444, "eth", "ethereum-stratum", 2**-4, vardiff=EVERY),
    Pool("xmr", "198.51.100.3", 5555, "xmr", "cryptonote", 10.0, vardiff=EVERY),
)
GROUPS = (
    MinerGroup("btc", 1, 10 * 2**32),
    MinerGroup("btc", 1, 10 * 2**32, share_timing="regular"),
    MinerGroup("eth", 1, 10 * 2**32),
    MinerGroup("xmr", 1, 1600.0),
    MinerGroup("xmr", 1, 1600.0, share_timing="regular"),
)
SCENARIO = Scenario(
    POOLS, (Organisation("A", "education", "Suzhou", "10.0.0.0/24", GROUPS),), duration=60.0
)
_ALGORITHMS = {"btc": "sha256d", "eth": "ethash", "xmr": "randomx"}

Message = tuple[int, bool, dict[str, Any]]  # (microseconds, from the miner, JSON)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, list[Message]], dict]:
    pcap = tmp_path_factory.mktemp("frames") / "vardiff.pcap"
    out = synthesise(SCENARIO, pcap)
    facts = json.loads(out.truth.read_text())
    return _messages(pcap), {row["ip"]: row for row in facts["miners"]}


def _messages(pcap: Path) -> dict[str, list[Message]]:
    """Every JSON line of every pool conversation, by miner address, in capture order."""
    ports = {pool.port for pool in POOLS}
    by_miner: dict[str, list[Message]] = defaultdict(list)
    with pcap.open("rb") as fh:
        for ts, frame in dpkt.pcap.Reader(fh):
            ip = dpkt.ethernet.Ethernet(frame).data
            tcp = ip.data
            if not isinstance(tcp, dpkt.tcp.TCP) or not tcp.data:
                continue
            from_miner = tcp.dport in ports
            miner = socket.inet_ntoa(ip.src if from_miner else ip.dst)
            for line in tcp.data.splitlines():
                by_miner[miner].append((round(ts * 1e6), from_miner, json.loads(line)))
    return by_miner


def _job(pool: Pool, message: dict[str, Any]) -> tuple[str, str | None] | None:
    """(job id, CryptoNote target) of a job the pool sends, else None."""
    if pool.dialect == "cryptonote":
        job = message.get("params") if message.get("method") == "job" else None
        job = job or (message.get("result") or {}).get("job")
        return (job["job_id"], job["target"]) if job else None
    if message.get("method") == "mining.notify":
        assert message["params"][-1] is True  # clean_jobs: old work is void
        return message["params"][0], None
    return None


def _named(pool: Pool, submit: dict[str, Any]) -> str:
    params = submit["params"]
    return params["job_id"] if pool.dialect == "cryptonote" else params[1]


def _replay(pool: Pool, messages: list[Message]) -> tuple[float, list[str], int]:
    """Hashes of the submits at their jobs' difficulty, job ids in order, in-flight submits."""
    unit = {"btc": 1.0, "eth": 1.0, "xmr": None}[pool.coin]
    difficulty, worth, jobs = 0.0, {}, []
    hashes, stale = 0.0, 0
    for _, from_miner, message in messages:
        if from_miner and message.get("method") in ("mining.submit", "submit"):
            named = _named(pool, message)
            assert named in jobs[-2:]  # the newest job, or the one before if still in flight
            stale += named != jobs[-1]
            hashes += worth[named]
        elif message.get("method") == "mining.set_difficulty":
            difficulty = message["params"][0]  # for jobs from the next notify on
        elif (job := _job(pool, message)) is not None:
            job_id, target = job
            seen = difficulty * unit if unit else target_difficulty(target)
            per_share, note = hashes_per_share(pool.dialect, _ALGORITHMS[pool.coin], seen)
            assert note is None and per_share is not None
            worth[job_id] = per_share
            jobs.append(job_id)
    return hashes, jobs, stale


def _miners() -> dict[str, Miner]:
    return {m.ip: m for m in plan(SCENARIO)}


def test_realised_hashes_are_what_the_wire_says(written: tuple[dict, dict]) -> None:
    by_miner, truth = written
    stale = 0
    for ip, miner in _miners().items():
        hashes, _, in_flight = _replay(miner.pool, by_miner[ip])
        assert hashes / SCENARIO.duration == pytest.approx(truth[ip]["realised_hs"], rel=1e-9)
        stale += in_flight
    assert stale >= 3  # some submits named the job before the newest, as planned


def test_stratum_retargets_are_set_difficulty_then_notify(written: tuple[dict, dict]) -> None:
    by_miner, truth = written
    for ip, miner in _miners().items():
        if miner.pool.dialect == "cryptonote":
            continue
        sent = [(ts, m) for ts, from_miner, m in by_miner[ip] if not from_miner]
        at = [n for n, (_, m) in enumerate(sent) if m.get("method") == "mining.set_difficulty"]
        assert at[0] == 2  # the handshake's, after the subscribe and authorize answers
        retargets = [job for job in miner.jobs if job.retarget]
        assert len(at) - 1 == len(retargets) == truth[ip]["retargets"] >= 2
        for n, job in zip(at[1:], retargets, strict=True):
            ts, message = sent[n]
            assert message["params"] == [job.difficulty]
            assert sent[n + 1][1]["method"] == "mining.notify"
            # On time, unless the answer to a share just before holds it back a little.
            assert job.at_us <= ts <= job.at_us + RTT_US + 2
        assert sent[at[-1]][1]["params"] == [truth[ip]["final_difficulty"]]


def test_cryptonote_retargets_are_jobs_with_a_new_target(written: tuple[dict, dict]) -> None:
    by_miner, truth = written
    for ip, miner in _miners().items():
        if miner.pool.dialect != "cryptonote":
            continue
        jobs = [job for m in by_miner[ip] if (job := _job(miner.pool, m[2])) is not None]
        targets = [target for _, target in jobs]
        changed = [new for old, new in pairwise(targets) if new != old]
        assert len(changed) == truth[ip]["retargets"] == sum(j.retarget for j in miner.jobs) >= 2
        assert len(jobs) == len(miner.jobs)  # one job on the wire per planned job
        final = target_difficulty(targets[-1])
        assert final == pytest.approx(truth[ip]["final_difficulty"], rel=1e-3)
