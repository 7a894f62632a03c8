"""The live daemon's state file (`STATE_DIR/state.sqlite3`): what survives a restart.

Three things are kept: the suspect registry (every miner IP with its first and
last sighting, coins, pools, owner, bytes, shares and estimated work per coin;
and the pools with their clients), the counters behind the `_total` metrics
(the estimated energy among them), and the flow estimates behind the hash-rate
and power gauges (those of the suspect window, and every label set seen). The
daemon restores all three at start, so the report still lists the miners seen
before with their hash rate and power, every counter goes on from where it was
and the gauges do not drop to 0; it checkpoints them every few seconds and on
exit; a crash (`kill -9`) loses at most one checkpoint interval.

The registry itself is the report's (`ReportBuilder.suspects` and `.pools`):
this sink only notes which rows changed since the last checkpoint, and the
shares per miner the report does not keep, so a checkpoint writes few rows.

SQLite in WAL mode with `synchronous=NORMAL`: a commit survives the process
dying at any point, and costs no fsync. A file that is not a readable state
database is moved aside (and logged), and the daemon starts afresh: a sensor
that will not start over a broken state file sees nothing. A file of an older
schema is migrated in place (version 1: suspects without estimated work, no
estimates), one of a newer one is moved aside.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from sensor.model import FlowProgress, FlowRecord, MiningRecord, NodeRecord
from sensor.sinks.live_health import Counters
from sensor.sinks.metrics_state import Estimates, FlowEstimate, RateKey
from sensor.sinks.report import PoolSeen, Rate, ReportBuilder, Suspect

log = logging.getLogger(__name__)

FILE_NAME = "state.sqlite3"
SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value REAL);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT NOT NULL, labels TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (name, labels));
CREATE TABLE IF NOT EXISTS suspects (
    ip TEXT PRIMARY KEY, org TEXT, org_type TEXT, region TEXT, coins TEXT, dialects TEXT,
    pools TEXT, wallets TEXT, first_seen REAL, last_seen REAL, flows INTEGER,
    egress INTEGER, ingress INTEGER, shares INTEGER, rates TEXT);
CREATE TABLE IF NOT EXISTS pools (
    endpoint TEXT PRIMARY KEY, host TEXT, ip TEXT, coins TEXT, clients TEXT, rates TEXT);
CREATE TABLE IF NOT EXISTS estimates (
    seq INTEGER PRIMARY KEY, coin TEXT NOT NULL, algorithm TEXT NOT NULL, last REAL NOT NULL,
    hashrate_hs REAL NOT NULL, power_w REAL);
CREATE TABLE IF NOT EXISTS rate_keys (
    coin TEXT NOT NULL, algorithm TEXT NOT NULL, PRIMARY KEY (coin, algorithm));
"""
# Version 1 had no estimated work: its suspects get none, the new tables start empty.
_FROM_V1 = "ALTER TABLE suspects ADD COLUMN rates TEXT; ALTER TABLE pools ADD COLUMN rates TEXT;"
_SUSPECT_COLUMNS = (
    "ip, org, org_type, region, coins, dialects, pools, wallets, first_seen, last_seen, "
    "flows, egress, ingress, shares, rates"
)
_POOL_COLUMNS = "endpoint, host, ip, coins, clients, rates"


@dataclass(slots=True)
class EstimateChanges:
    """The flow estimates a checkpoint writes: every one (`whole`: the table is replaced,
    as at a process's first checkpoint), or those changed since the last one and the
    sequence numbers of those gone."""

    changed: list[FlowEstimate]
    gone: list[int] = field(default_factory=list)
    keys: set[RateKey] = field(default_factory=set)
    whole: bool = False


@dataclass(slots=True)
class Saved:
    """What a state file holds."""

    counters: Counters = field(default_factory=dict)
    suspects: list[tuple[Suspect, int]] = field(default_factory=list)  # with shares
    pools: list[PoolSeen] = field(default_factory=list)
    started: float | None = None  # when the sensor first counted: the report window's start
    saved_at: float | None = None
    estimates: Estimates = field(default_factory=Estimates)


class StateStore:
    """The SQLite file: created with its schema when new; `load()` and `save()`."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / FILE_NAME
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            self._db = self._start_afresh(exc)

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, 1, SCHEMA_VERSION):
                raise sqlite3.DatabaseError(f"schema version {version}, expected {SCHEMA_VERSION}")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            # One transaction: a migration that fails half-way leaves the old file as it was.
            migrate = _FROM_V1 if version == 1 else ""
            db.executescript(
                f"BEGIN; {migrate} {_SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
            )
            db.execute("SELECT count(*) FROM suspects").fetchone()
            if version == 1:
                log.info("state file %s migrated from schema version 1", self.path)
        except BaseException:
            db.close()
            raise
        return db

    def _start_afresh(self, exc: Exception) -> sqlite3.Connection:
        aside = self.path.with_name(f"{FILE_NAME}.broken-{int(time.time())}")
        log.error("unusable state file %s (%s) moved to %s; starting afresh", self.path, exc, aside)
        self.path.rename(aside)
        for suffix in ("-wal", "-shm"):
            self.path.with_name(FILE_NAME + suffix).unlink(missing_ok=True)
        return self._open()

    def load(self) -> Saved:
        db = self._db
        meta = dict(db.execute("SELECT key, value FROM meta"))
        counters: Counters = {}
        for name, labels, value in db.execute("SELECT name, labels, value FROM counters"):
            counters.setdefault(name, {})[tuple(orjson.loads(labels))] = value
        rows = db.execute(f"SELECT {_SUSPECT_COLUMNS} FROM suspects")
        suspects = [_suspect(row) for row in rows]
        pools = [_pool(row) for row in db.execute(f"SELECT {_POOL_COLUMNS} FROM pools")]
        started, saved_at = meta.get("started"), meta.get("saved_at")
        return Saved(counters, suspects, pools, started, saved_at, _load_estimates(db))

    def save(
        self,
        counters: Counters,
        suspects: Iterable[tuple[Suspect, int]],
        pools: Iterable[PoolSeen],
        started: float | None,
        estimates: EstimateChanges | None = None,
    ) -> None:
        """One transaction: all counters, and the given (changed) suspects, pools and
        flow estimates."""
        rows = [
            (name, orjson.dumps(list(labels)).decode(), value)
            for name, values in counters.items()
            for labels, value in values.items()
        ]
        db = self._db
        with db:
            db.execute("BEGIN")
            db.execute("DELETE FROM counters")
            db.executemany("INSERT INTO counters VALUES (?, ?, ?)", rows)
            db.executemany(
                f"INSERT OR REPLACE INTO suspects ({_SUSPECT_COLUMNS}) VALUES ({_marks(15)})",
                [_suspect_row(s, shares) for s, shares in suspects],
            )
            db.executemany(
                f"INSERT OR REPLACE INTO pools ({_POOL_COLUMNS}) VALUES ({_marks(6)})",
                [_pool_row(p) for p in pools],
            )
            if estimates is not None:
                _save_estimates(db, estimates)
            meta = [("saved_at", time.time())] + ([("started", started)] if started else [])
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta)

    def close(self) -> None:
        self._db.close()


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _json(values: Iterable[str]) -> str:
    return orjson.dumps(sorted(values)).decode()


def _suspect_row(s: Suspect, shares: int) -> tuple[object, ...]:
    return (
        s.ip, s.org, s.org_type, s.region, _json(s.coins), _json(s.dialects), _json(s.pools),
        _json(s.wallets), s.first_seen, s.last_seen, s.flows, s.egress, s.ingress, shares,
        _rates_json(s.rates),
    )  # fmt: skip


def _suspect(row: tuple) -> tuple[Suspect, int]:
    ip, org, org_type, region, coins, dialects, pools, wallets, first, last, *counts = row
    flows, egress, ingress, shares, rates = counts
    suspect = Suspect(
        ip, org, org_type, region,
        set(orjson.loads(coins)), set(orjson.loads(dialects)), set(orjson.loads(pools)),
        set(orjson.loads(wallets)), first, last, flows, egress, ingress,
        _rates(rates),
    )  # fmt: skip
    return suspect, shares


def _rates_json(rates: Mapping[Any, Rate]) -> str:
    """[[key, hashes, joules, powered, first, last], ...] in the dict's order (keys: coins
    of a suspect, client IPs of a pool): the report sums over it, and a float sum depends
    on its order."""
    return orjson.dumps(
        [[coin, r.hashes, r.joules, r.powered, r.first, r.last] for coin, r in rates.items()]
    ).decode()


def _rates(text: str | None) -> dict[Any, Rate]:
    """None: a row of schema version 1, which had no estimated work."""
    rows = orjson.loads(text) if text else []
    return {coin: Rate(*figures) for coin, *figures in rows}


_ESTIMATE_COLUMNS = "seq, coin, algorithm, last, hashrate_hs, power_w"


def _save_estimates(db: sqlite3.Connection, changes: EstimateChanges) -> None:
    if changes.whole:
        db.execute("DELETE FROM estimates")
    db.executemany("DELETE FROM estimates WHERE seq = ?", [(seq,) for seq in changes.gone])
    db.executemany(
        f"INSERT OR REPLACE INTO estimates ({_ESTIMATE_COLUMNS}) VALUES ({_marks(6)})",
        [(e.seq, *e.key, e.last, e.hashrate_hs, e.power_w) for e in changes.changed],
    )
    db.executemany("INSERT OR IGNORE INTO rate_keys VALUES (?, ?)", sorted(changes.keys))


def _load_estimates(db: sqlite3.Connection) -> Estimates:
    rows = db.execute(f"SELECT {_ESTIMATE_COLUMNS} FROM estimates ORDER BY seq")
    flows = [FlowEstimate(seq, last, (c, a), hs, w) for seq, c, a, last, hs, w in rows]
    return Estimates(flows, set(db.execute("SELECT coin, algorithm FROM rate_keys")))


def _pool_row(p: PoolSeen) -> tuple[object, ...]:
    return (p.endpoint, p.host, p.ip, _json(p.coins), _json(p.clients), _rates_json(p.rates))


def _pool(row: tuple) -> PoolSeen:
    endpoint, host, ip, coins, clients, rates = row
    clients_seen = set(orjson.loads(clients))
    return PoolSeen(endpoint, host, ip, set(orjson.loads(coins)), clients_seen, _rates(rates))


class StateSink:
    """A sink that notes what changed since the last checkpoint, and each miner's shares.

    `restore()` fills the report's registry from the file and returns what it
    held; `checkpoint(counters, estimates)` writes the counters and the changed rows.
    """

    def __init__(self, store: StateStore, report: ReportBuilder) -> None:
        self.store, self.report = store, report
        self.shares: Counter[str] = Counter()
        self.started: float | None = None
        self._ips: set[str] = set()
        self._pools: set[str] = set()
        # The estimates the file holds by seq; None until this process first wrote them.
        self._written: dict[int, FlowEstimate] | None = None

    def mining(self, rec: MiningRecord) -> None:
        self._ips.add(rec.miner_ip)
        self._pools.add(f"{rec.pool_ip}:{rec.pool_port}")

    def flow_end(self, rec: FlowRecord) -> None:
        self._ips.add(rec.mining.miner_ip)
        self._pools.add(f"{rec.mining.pool_ip}:{rec.mining.pool_port}")  # its rates changed
        self.shares[rec.mining.miner_ip] += rec.mining.finding.shares

    def progress(self, rec: FlowProgress) -> None:
        """An open flow's estimate changed: its miner's and pool's rows are written next."""
        self._ips.add(rec.miner_ip)
        if rec.pool_endpoint is not None:
            self._pools.add(rec.pool_endpoint)

    def node(self, rec: NodeRecord) -> None:
        pass

    def close(self) -> None:
        pass  # the daemon checkpoints after its sinks close, then closes the store

    def restore(self) -> Saved:
        saved = self.store.load()
        report = self.report
        for suspect, shares in saved.suspects:
            report.suspects[suspect.ip] = suspect
            self.shares[suspect.ip] = shares
        for pool in saved.pools:
            report.pools[pool.endpoint] = pool
        flows = saved.counters.get("mining_flows", {})
        report.mining_flows += int(sum(flows.values()))
        for (dialect, _coin), count in flows.items():
            report.dialect_flows[dialect] += int(count)
        report.node_flows += int(sum(saved.counters.get("crypto_node_flows", {}).values()))
        self.started = saved.started
        return saved

    def checkpoint(self, counters: Counters, estimates: Estimates | None = None) -> None:
        ips, self._ips = self._ips, set()
        endpoints, self._pools = self._pools, set()
        # Open flows count with their estimate to date, as the report says while they
        # last: after a restart they are gone, and the work they showed stays counted.
        suspects, pools = self.report.with_open_flows()
        current, changes = None, None
        if estimates is not None:
            current = {e.seq: e for e in estimates.flows}
            changes = self._changes(current, estimates.keys)
        try:
            self.store.save(
                counters,
                [(suspects[ip], self.shares[ip]) for ip in ips if ip in suspects],
                [pools[e] for e in endpoints if e in pools],
                self.started,
                changes,
            )
        except BaseException:
            self._ips |= ips  # written next time
            self._pools |= endpoints
            raise
        if current is not None:
            self._written = current

    def _changes(self, current: dict[int, FlowEstimate], keys: set[RateKey]) -> EstimateChanges:
        """Estimates are replaced, never changed: one not the object written has changed."""
        written = self._written
        if written is None:
            return EstimateChanges(list(current.values()), [], keys, whole=True)
        changed = [e for seq, e in current.items() if written.get(seq) is not e]
        return EstimateChanges(changed, [seq for seq in written if seq not in current], keys)
