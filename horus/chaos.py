"""`horus chaos`: the proof of DESIGN invariants 1-4 under crashes, rebalances and a misbehaving venue.

One run, on the local stack with topics and consumer groups of its own:
- the CLOB simulator in this process with two deep markets and fault injection on (latency, 5xx before
  processing, replies held past the executor's timeout, replies lost after processing, FOK/FAK "killed"
  replies hiding a partial fill, 425 restart windows followed by post-only periods switched on mid-run);
- N paper followers (keys in the encrypted credentials store, funded on the simulator), each following the
  leader with fixed $2-5 copies, published on config.changes; M leader fills produced at a steady rate;
- D `horus worker --stages plan,decide` and I `horus worker --stages execute` processes, and a killer that
  SIGKILLs one of them at random moments (mostly executors) and restarts it at once;
- once every COPY has reached an executor, faults off; everything drains; `horus reconcile --once` until no
  ledger row of the run is open.

`compare` (a pure function over plain data) then checks the COPY decisions on copy.decisions against three
independent sources: the ledger (copy_trades), the venue's order log (/_sim/orders, traced back to intents
by the signed `metadata` word) and execution.results. The verdict's `summary_line` is the one
line a script reads: `orders=... duplicates=0 orphans=0 lost=0 unresolved=0 overfilled=0`.

Every roll (faults, sizes, kill times and targets) comes from one RNG seeded with `--seed`; what the
processes do in between is up to the scheduler, so a seed repeats the plan, not the interleaving.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from horus.domain.execute import OPEN, TERMINAL
from horus.paper import create_followers, fund, set_faults, venue_orders
from horus.settings import Settings
from horus.venue.polymarket.orders import intent_metadata

REPO = Path(__file__).resolve().parents[1]
LEADER = "0x" + "1e" * 20
EXCHANGE = "0x" + "0e" * 20
MARKETS = 2
EXECUTOR_SHARE = 0.75  # of the kills; the rest hit decide workers
SHOWN_INTENTS = 10  # failing intents printed per count, for debugging
FAULTS_OFF = {"latency_ms": 0, "jitter_ms": 0, "error_rate": 0, "read_error_rate": 0, "timeout_rate": 0,
              "reply_lost_rate": 0, "hidden_fill_rate": 0}


class ChaosError(RuntimeError):
    """The run could not be carried out (a bad option, a process that never joined): no verdict."""


@dataclass(frozen=True)
class ChaosOptions:
    followers: int = 40
    fills: int = 40
    kills: int = 20
    instances: int = 2  # executor processes
    decide_workers: int = 2
    seed: int = 1
    timeout: float = 900.0  # seconds for the whole run, set-up to verdict
    keep: bool = False  # keep the run's topics
    fill_rate: float = 2.0  # leader fills per second
    kill_gap_s: float = 1.5  # mean seconds between kills: the chaos window stretches so every kill fits
    order_ttl_s: int = 30  # intent expiry: an order never seen by the venue settles NOT_FILLED after it
    venue_timeout_s: float = 2.0  # the executor's HORUS_VENUE_TIMEOUT_S; held replies last longer

    def check(self) -> None:
        """Clear errors naming the option."""
        for name, low in (("followers", 1), ("fills", 1), ("kills", 0), ("instances", 1), ("decide_workers", 1)):
            if getattr(self, name) < low:
                raise ChaosError(f"--{name.replace('_', '-')} must be at least {low}, got {getattr(self, name)}")
        for name in ("timeout", "fill_rate", "kill_gap_s", "venue_timeout_s"):
            if getattr(self, name) <= 0:
                raise ChaosError(f"{name} must be positive, got {getattr(self, name)}")
        if self.order_ttl_s < 5:
            raise ChaosError(f"order_ttl_s must be at least 5 seconds, got {self.order_ttl_s}")

    @property
    def window_s(self) -> float:
        """How long fills are produced and processes killed."""
        return max(self.fills / self.fill_rate, self.kills * self.kill_gap_s, 1.0)


# ------------------------------------------------------------------------------------------ the verdict
@dataclass
class Verdict:
    """What the three sources say, as counts and the intents (or venue order ids) behind them."""

    decisions: int = 0
    copies: int = 0
    decided_twice: list[str] = field(default_factory=list)  # candidates with more than one decision
    orders: int = 0  # venue orders traced to this run's intents
    duplicates: list[str] = field(default_factory=list)  # intents with more than one venue order
    orphans: list[str] = field(default_factory=list)  # venue order ids without their ledger row
    lost: list[str] = field(default_factory=list)  # COPY intents with no terminal result nor terminal row
    unresolved_open: list[str] = field(default_factory=list)  # ledger rows still PENDING/UNKNOWN/SUBMITTED
    unresolved_missing: list[str] = field(default_factory=list)  # COPY intents without any ledger row
    overfilled: list[str] = field(default_factory=list)  # intents (or order ids) filled above their size
    statuses: Counter = field(default_factory=Counter)  # ledger status of each COPY intent

    @property
    def unresolved(self) -> int:
        return len(self.unresolved_open) + len(self.unresolved_missing)

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.orphans or self.lost or self.unresolved or self.overfilled)

    def summary_line(self) -> str:
        return (f"orders={self.orders} duplicates={len(self.duplicates)} orphans={len(self.orphans)} "
                f"lost={len(self.lost)} unresolved={self.unresolved} overfilled={len(self.overfilled)}")

    def failures(self) -> list[str]:
        """One line per non-empty count, naming up to SHOWN_INTENTS intents or order ids."""
        lines = []
        for name, items in (("duplicates (intents)", self.duplicates), ("orphans (venue orders)", self.orphans),
                            ("lost (intents)", self.lost),
                            ("unresolved: ledger rows still open (intents)", self.unresolved_open),
                            ("unresolved: COPY decisions without a ledger row (intents)", self.unresolved_missing),
                            ("overfilled (intents or venue orders)", self.overfilled)):
            if items:
                lines.append(f"{name}: {len(items)}: {', '.join(sorted(items)[:SHOWN_INTENTS])}")
        return lines


def compare(decisions: Iterable[dict], results: Iterable[dict], ledger: Iterable[dict],
            venue_orders: Iterable[dict]) -> Verdict:
    """Check invariants 1-4 over plain data.

    decisions: {candidate_id, action, intent_id, size_e6}; results: {intent_id, status, filled_shares_e6};
    ledger: {intent_id, status, order_hash, filled_shares_e6}; venue_orders: {order_id, metadata, size_e6,
    size_matched_e6} (the simulator's order log). Order ids and hashes compare case-insensitively."""
    verdict = Verdict()
    copies: dict[str, dict] = {}
    per_candidate: Counter = Counter()
    for d in decisions:
        verdict.decisions += 1
        per_candidate[d["candidate_id"]] += 1
        if d["action"] == "COPY":
            copies.setdefault(d["intent_id"], d)
    verdict.copies = len(copies)
    verdict.decided_twice = [c for c, n in per_candidate.items() if n > 1]
    rows = {r["intent_id"]: r for r in ledger}
    by_metadata = {intent_metadata(i).lower(): i for i in {*copies, *rows}}

    orders_of: dict[str, set[str]] = defaultdict(set)
    overfilled: set[str] = set()
    for order in venue_orders:
        order_id = order["order_id"].lower()
        intent = by_metadata.get((order.get("metadata") or "").lower())
        row = rows.get(intent) if intent else None
        if row is None or (row.get("order_hash") or "").lower() != order_id:
            verdict.orphans.append(order_id)
        if intent is not None:
            orders_of[intent].add(order_id)
        if order["size_matched_e6"] > order["size_e6"]:
            overfilled.add(intent or order_id)
    verdict.orders = sum(len(ids) for ids in orders_of.values())
    verdict.duplicates = [i for i, ids in orders_of.items() if len(ids) > 1]

    terminal_results = set()
    result_fill: dict[str, int] = defaultdict(int)
    for r in results:
        if r["status"] in TERMINAL:
            terminal_results.add(r["intent_id"])
        result_fill[r["intent_id"]] = max(result_fill[r["intent_id"]], r["filled_shares_e6"])
    for intent, decision in copies.items():
        row = rows.get(intent)
        verdict.statuses[row["status"] if row else "NO_ROW"] += 1
        if intent not in terminal_results and not (row and row["status"] in TERMINAL):
            verdict.lost.append(intent)
        if row is None:
            verdict.unresolved_missing.append(intent)
        elif row["status"] in OPEN:
            verdict.unresolved_open.append(intent)
        filled = max(result_fill.get(intent, 0), row["filled_shares_e6"] if row else 0)
        if filled > decision["size_e6"]:
            overfilled.add(intent)
    verdict.overfilled = sorted(overfilled)
    return verdict


# ------------------------------------------------------------------------------------------ the plan
@dataclass(frozen=True)
class Event:
    at_s: float  # seconds into the chaos window
    kind: str  # "kill" (target: a process name) or "faults" (target: JSON of a /_sim/faults update)
    target: str


def process_names(options: ChaosOptions) -> tuple[list[str], list[str]]:
    return ([f"decide-{i}" for i in range(options.decide_workers)],
            [f"execute-{i}" for i in range(options.instances)])


def base_faults(rng: random.Random, options: ChaosOptions) -> dict:
    """Fault injection for the whole chaos window (a FaultConfig body)."""
    return {"latency_ms": 20, "jitter_ms": rng.choice([10, 20, 30]),
            "error_rate": 0.03, "read_error_rate": 0.02,
            "timeout_rate": 0.02, "timeout_seconds": options.venue_timeout_s + 1.5,
            "reply_lost_rate": 0.03, "reply_lost_mode": rng.choice(["5xx", "drop"]),
            "hidden_fill_rate": 0.05}


def timeline(rng: random.Random, options: ChaosOptions) -> list[Event]:
    """Kills at random moments (mostly executors), one or two 425 restart windows with a post-only period
    after them, and the lost-reply mode switched half-way."""
    decide, execute = process_names(options)
    window = options.window_s
    events = []
    for _ in range(options.kills):
        pool = decide if rng.random() > EXECUTOR_SHARE else execute
        events.append(Event(rng.uniform(0.5, window), "kill", rng.choice(pool)))
    for _ in range(rng.choice([1, 2])):
        restart = {"restart_seconds": round(rng.uniform(1.5, 3.0), 2),
                   "post_only_seconds": round(rng.uniform(1.5, 3.0), 2)}
        events.append(Event(rng.uniform(0.2, 0.8) * window, "faults", json.dumps(restart)))
    events.append(Event(window / 2, "faults", json.dumps({"reply_lost_mode": rng.choice(["5xx", "drop"])})))
    return sorted(events, key=lambda e: e.at_s)


def market_ids(seed: int) -> list[tuple[str, list[str]]]:
    """(condition id, [yes token, no token]) per market, derived from the seed."""
    out = []
    for m in range(MARKETS):
        condition = "0x" + hashlib.sha256(f"chaos-market:{seed}:{m}".encode()).hexdigest()
        tokens = [str(int(hashlib.sha256(f"chaos-token:{seed}:{m}:{o}".encode()).hexdigest(), 16) % 2**255)
                  for o in range(2)]
        out.append((condition, tokens))
    return out


def simulator_config(options: ChaosOptions):
    from horus.venue.simulator.clob import MarketConfig, SimulatorConfig, TokenConfig

    markets = [MarketConfig(condition_id=condition, tokens=[TokenConfig(token_id=yes, price="0.5"),
                                                            TokenConfig(token_id=no, outcome="No", price="0.5")],
                            tick_size="0.01", min_order_size=1, levels=5, level_size=100000, replenish=True)
               for condition, (yes, no) in market_ids(options.seed)]
    return SimulatorConfig(markets=markets, seed=options.seed)


def leader_fill(run: str, n: int, markets: list[tuple[str, list[str]]], rng: random.Random) -> dict:
    """A fresh BUY of 20 shares at 0.5 by the leader, alternating markets."""
    from horus.codec import envelope
    from horus.domain import ids

    condition, tokens = markets[n % len(markets)]
    token = rng.choice(tokens)
    tx = "0x" + ids.make_id("chaos-tx", run, n)
    now_us = time.time_ns() // 1000
    return {"envelope": envelope(ids.leader_fill_id(tx, LEADER, token, "BUY"), "chaos", now_us),
            "leader": LEADER, "exchange": EXCHANGE, "tx_hash": tx, "block_number": 1000 + n, "log_index": 0,
            "token_id": token, "condition_id": condition, "side": "BUY", "shares_e6": 20_000_000,
            "collateral_e6": 10_000_000, "price": "0.5", "fee_e6": 0, "role": "TAKER", "order_hashes": []}


def config_changes(run: str, followers, rng: random.Random, options: ChaosOptions) -> list[dict]:
    """A FOLLOWER and a FOLLOW change per follower: fixed $2-5, FAK (a quarter FOK), generous limits."""
    from horus.domain.config import config_change, parse_follow_config

    changes = []
    for i, follower in enumerate(followers):
        changes.append(config_change("FOLLOWER", follower.address, follower.config(), "chaos"))
        follow = parse_follow_config({
            "follow_id": f"chaos-{run}-{i}", "follower": follower.address, "leader": LEADER,
            "sizing": {"mode": "fixed", "amount": str(rng.choice([2, 3, 4, 5]))},
            "order_type": "FOK" if rng.random() < 0.25 else "FAK", "order_ttl_s": options.order_ttl_s,
            "max_fill_age_s": 3600})
        changes.append(config_change("FOLLOW", follow.follow_id, follow, "chaos"))
    return changes


# ------------------------------------------------------------------------------------------ processes
class Children:
    """The worker processes, each in its own process group (a SIGKILL takes its threads and children)."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.argv: dict[str, list[str]] = {}
        self.procs: dict[str, subprocess.Popen] = {}
        self.kills: Counter = Counter()  # by kind: "execute" or "decide"
        self.crashes: list[str] = []  # exits nobody asked for
        self.lock = threading.Lock()

    def start(self, name: str, argv: list[str]) -> None:
        self.argv[name] = argv
        with open(self.log_dir / f"{name}.log", "ab") as log:
            log.write(f"=== start at {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            self.procs[name] = subprocess.Popen([sys.executable, "-m", "horus.cli.main", *argv], cwd=REPO,
                                                env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                                start_new_session=True)

    def kill_and_restart(self, name: str) -> None:
        """SIGKILL `name` and start it again at once. A process that died by itself meanwhile is restarted
        first (and recorded), so every planned kill hits a live process."""
        with self.lock:
            self._restart_dead()
            proc = self.procs[name]
            _signal_group(proc, signal.SIGKILL)
            proc.wait(30)
            self.kills[name.split("-")[0]] += 1
            self.start(name, self.argv[name])

    def restart_crashed(self) -> None:
        with self.lock:
            self._restart_dead()

    def _restart_dead(self) -> None:
        for name, proc in list(self.procs.items()):
            if proc.poll() is not None:
                self.crashes.append(f"{name} exited with {proc.returncode}")
                self.start(name, self.argv[name])

    def stop_all(self, timeout: float = 60.0) -> None:
        with self.lock:
            for proc in self.procs.values():
                if proc.poll() is None:
                    _signal_group(proc, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            for proc in self.procs.values():
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    _signal_group(proc, signal.SIGKILL)
                    proc.wait(10)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


class Chaos(threading.Thread):
    """Plays the timeline: kills (and immediate restarts) and fault switches at their moments."""

    def __init__(self, events: list[Event], children: Children, sim_url: str, started: float,
                 stop: threading.Event) -> None:
        super().__init__(name="chaos-timeline", daemon=True)
        self.events, self.children, self.sim_url, self.started, self.stop = events, children, sim_url, started, stop
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for event in self.events:
                if self.stop.wait(max(0.0, self.started + event.at_s - time.monotonic())):
                    return
                if event.kind == "kill":
                    self.children.kill_and_restart(event.target)
                else:
                    set_faults(self.sim_url, json.loads(event.target))
        except BaseException as exc:  # surfaced by the driver
            self.error = exc


class _SkipClientDisconnect(logging.Filter):
    """A SIGKILLed executor leaves requests the simulator was still reading; uvicorn logs each as an ASGI
    error with a traceback. Expected here, so not printed; every other error still is."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and type(record.exc_info[1]).__name__ == "ClientDisconnect")


def start_simulator(options: ChaosOptions):
    from horus.venue.simulator.clob import run_simulator

    uvicorn_errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _SkipClientDisconnect) for f in uvicorn_errors.filters):
        uvicorn_errors.addFilter(_SkipClientDisconnect())
    return run_simulator(simulator_config(options))


def wait_for_groups(settings: Settings, groups: dict[str, int], children: Children, timeout: float) -> None:
    """Until each consumer group is STABLE with its members all holding partitions."""
    from confluent_kafka import ConsumerGroupState

    from horus.kafka.client import make_admin

    admin = make_admin(settings)
    deadline = time.monotonic() + timeout
    waiting = dict(groups)
    while waiting and time.monotonic() < deadline:
        children.restart_crashed()
        for group_id, members in list(waiting.items()):
            try:
                group = admin.describe_consumer_groups([group_id])[group_id].result(10)
            except Exception:  # noqa: BLE001 - the group does not exist until its first member joins
                continue
            if (group.state == ConsumerGroupState.STABLE and len(group.members) == members
                    and all(m.assignment and m.assignment.topic_partitions for m in group.members)):
                del waiting[group_id]
        time.sleep(0.3)
    if waiting:
        raise ChaosError(f"consumer groups not stable in {timeout:g}s: {sorted(waiting)}; see {children.log_dir}")


# ------------------------------------------------------------------------------------------ reading back
class TopicTail:
    """Group-less reader of copy.candidates, copy.decisions and execution.results from the beginning,
    keeping only the fields the comparison needs."""

    def __init__(self, settings: Settings) -> None:
        from horus.codec import default_codec
        from horus.kafka.client import assign_from_beginning, make_consumer
        from horus.topics import COPY_CANDIDATES, COPY_DECISIONS, EXECUTION_RESULTS

        self.consumer = make_consumer(settings)
        self.names = {settings.topic(t.name): t.name for t in (COPY_CANDIDATES, COPY_DECISIONS, EXECUTION_RESULTS)}
        assign_from_beginning(self.consumer, list(self.names))
        self.codec = default_codec()
        self.candidates: set[str] = set()
        self.decisions: list[dict] = []
        self.results: list[dict] = []

    def poll(self, seconds: float = 0.5) -> int:
        from horus.kafka.client import poll_batch
        from horus.topics import COPY_CANDIDATES, COPY_DECISIONS

        messages = poll_batch(self.consumer, 10_000, seconds)
        for m in messages:
            _, record = self.codec.decode(m.value())
            name = self.names[m.topic()]
            if name == COPY_CANDIDATES.name:
                self.candidates.add(record["envelope"]["event_id"])
            elif name == COPY_DECISIONS.name:
                self.decisions.append({k: record[k] for k in ("candidate_id", "action", "intent_id", "size_e6")})
            else:
                self.results.append({k: record[k] for k in ("intent_id", "status", "filled_shares_e6")})
        return len(messages)

    def read_to_end(self, quiet_s: float = 2.0) -> None:
        """Until the end offsets are reached (or nothing came for `quiet_s`)."""
        from confluent_kafka import TopicPartition

        from horus.kafka.client import end_offsets

        ends = {(t, p): high for t in self.names for p, high in end_offsets(self.consumer, t).items()}
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < quiet_s:
            if self.poll():
                quiet_since = time.monotonic()
            positions = {(tp.topic, tp.partition): tp.offset
                         for tp in self.consumer.position([TopicPartition(t, p) for t, p in ends])}
            if all(high == 0 or positions.get(key, -1) >= high for key, high in ends.items()):
                return

    def close(self) -> None:
        self.consumer.close()


def ledger_rows(settings: Settings, intents: Iterable[str]) -> list[dict]:
    import psycopg
    from psycopg.rows import dict_row

    from horus.db.engine import psycopg_conninfo

    with psycopg.connect(psycopg_conninfo(settings.database_url), row_factory=dict_row) as conn:
        return conn.execute("SELECT idempotency_key AS intent_id, status, order_hash, filled_shares_e6 "
                            "FROM copy_trades WHERE idempotency_key = ANY(%s)", (sorted(intents),)).fetchall()


def venue_order_log(sim_url: str) -> tuple[list[dict], dict]:
    """The simulator's order log and its counters (posts, accepted, duplicate posts, rejected)."""
    log = venue_orders(sim_url)
    return log["orders"], log["counts"]


# ------------------------------------------------------------------------------------------ the run
@dataclass
class ChaosReport:
    verdict: Verdict
    run: str
    kills: Counter  # by kind: "execute", "decide"
    crashes: list[str]
    candidates: int
    expected_candidates: int
    seconds: float
    drained: bool
    reconcile_rounds: int
    reconcile_failures: list[int]  # exit codes of `horus reconcile --once` rounds that failed
    venue_counts: dict  # the simulator's: posts, accepted, duplicates (same order re-posted), rejected
    log_dir: Path

    @property
    def ok(self) -> bool:
        return self.verdict.ok

    def lines(self) -> list[str]:
        v = self.verdict
        lines = [f"chaos run {self.run}: logs in {self.log_dir}",
                 f"candidates={self.candidates}/{self.expected_candidates} decisions={v.decisions} "
                 f"copies={v.copies} decided_twice={len(v.decided_twice)}",
                 f"kills={sum(self.kills.values())} (execute {self.kills['execute']}, decide "
                 f"{self.kills['decide']}) unplanned_exits={len(self.crashes)} "
                 f"drained={'yes' if self.drained else 'no'} reconcile_rounds={self.reconcile_rounds} "
                 f"seconds={self.seconds:.1f}",
                 "ledger statuses: " + " ".join(f"{s}={n}" for s, n in sorted(v.statuses.items())),
                 "venue: " + " ".join(f"{k}={self.venue_counts.get(k, 0)}"
                                      for k in ("posts", "accepted", "duplicates", "rejected"))]
        lines += [f"unplanned exit: {c}" for c in self.crashes[:SHOWN_INTENTS]]
        if self.reconcile_failures:
            lines.append(f"reconcile rounds that failed (exit codes): {self.reconcile_failures}; see reconcile.log")
        if v.decided_twice:
            lines.append(f"candidates decided more than once: {', '.join(sorted(v.decided_twice)[:SHOWN_INTENTS])}")
        lines += v.failures()
        lines.append(v.summary_line())
        return lines


def ensure_stack(settings: Settings, say: Callable[[str], None]) -> Settings:
    """The running local stack; started (and its addresses taken) only if it is not up."""
    from horus.stack import LocalStack

    stack = LocalStack(settings)
    if all(row.healthy for row in stack.status()):
        return settings
    say("starting the local stack (Kafka, PostgreSQL, anvil)...")
    env = stack.up()
    return settings.model_copy(update={"kafka_bootstrap": env["HORUS_KAFKA_BOOTSTRAP"],
                                       "database_url": env["HORUS_DATABASE_URL"],
                                       "eth_rpc_url": env["HORUS_ETH_RPC_URL"]})


def run_settings(settings: Settings, run: str, options: ChaosOptions, sim_url: str) -> Settings:
    """Topics and groups of the run's own, paper venue on the simulator, short timeouts so partitions move
    and stuck rows are picked up quickly. The circuit breaker is held off: injected faults are meant to
    reach the executor, not to pause copying (the breaker has tests of its own)."""
    from pydantic import SecretStr

    from horus.credentials import generate_key

    key = settings.credentials_key or SecretStr(generate_key())
    return settings.model_copy(update={
        "topic_prefix": f"{settings.topic_prefix}chaos{run}.", "app_id": f"horus-chaos-{run}",
        "credentials_key": key, "venue_mode": "paper", "clob_url": sim_url, "gamma_url": "",
        "balance_source": "fixed", "fixed_balance": "1000000", "session_timeout_s": 6.0,
        "venue_timeout_s": options.venue_timeout_s, "execute_lease_s": 5.0, "reconcile_interval_s": 1.0,
        "reconcile_min_age_s": 1.0, "breaker_min_executions": 10**9})


def produce_configs(settings: Settings, changes: list[dict]) -> None:
    from horus.codec import default_codec
    from horus.domain.config import config_key
    from horus.kafka.client import flush_or_raise, make_producer, produce_reliably
    from horus.topics import CONFIG_CHANGES

    codec, producer = default_codec(), make_producer(settings, log_level=3)
    for change in changes:
        produce_reliably(producer, settings.topic(CONFIG_CHANGES.name), codec.encode("ConfigChange", change),
                         key=config_key(change["entity"], change["entity_id"]))
    flush_or_raise(producer)


def produce_fills(settings: Settings, run: str, options: ChaosOptions, rng: random.Random, started: float,
                  children: Children, chaos: Chaos) -> None:
    """M fills spread evenly over the chaos window; processes that died by themselves are restarted."""
    from horus.codec import default_codec
    from horus.kafka.client import flush_or_raise, make_producer, produce_reliably
    from horus.topics import LEADER_FILLS

    codec, producer = default_codec(), make_producer(settings, log_level=3)
    markets = market_ids(options.seed)
    gap = options.window_s / options.fills
    for n in range(options.fills):
        time.sleep(max(0.0, started + n * gap - time.monotonic()))
        fill = leader_fill(run, n, markets, rng)
        produce_reliably(producer, settings.topic(LEADER_FILLS.name), codec.encode("LeaderFill", fill),
                         key=fill["leader"])
        producer.poll(0)
        children.restart_crashed()
        if chaos.error is not None:
            raise ChaosError(f"the chaos timeline failed: {chaos.error}")
    flush_or_raise(producer)


def decided_and_sent(tail: TopicTail, settings: Settings, expected: int) -> bool:
    """Every candidate decided and every COPY at least prewritten: the executors have met every order
    once, so switching the faults off now still leaves each order its first attempt under faults."""
    if len(tail.candidates) < expected or not tail.candidates <= {d["candidate_id"] for d in tail.decisions}:
        return False
    copies = {d["intent_id"] for d in tail.decisions if d["action"] == "COPY"}
    return len(ledger_rows(settings, copies)) == len(copies)


def drained(tail: TopicTail, settings: Settings, expected: int) -> bool:
    """Every candidate decided and every COPY settled: a terminal result on the topic, no open ledger row."""
    if len(tail.candidates) < expected or not tail.candidates <= {d["candidate_id"] for d in tail.decisions}:
        return False
    copies = {d["intent_id"] for d in tail.decisions if d["action"] == "COPY"}
    settled = {r["intent_id"] for r in tail.results if r["status"] in TERMINAL}
    if not copies <= settled:
        return False
    return not any(row["status"] in OPEN for row in ledger_rows(settings, copies))


def reconcile_until_settled(settings: Settings, env: dict[str, str], accounts: Path, intents: set[str],
                            log_dir: Path, deadline: float) -> tuple[int, list[int]]:
    """`horus reconcile --once` until none of the run's ledger rows is open (at least one round, which also
    re-emits results a killed process committed but never produced). Returns the rounds run and the
    non-zero exit codes among them."""
    rounds, failed = 0, []
    with open(log_dir / "reconcile.log", "ab") as log:
        while True:
            rounds += 1
            log.write(f"=== round {rounds} at {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            done = subprocess.run([sys.executable, "-m", "horus.cli.main", "reconcile", "--once", "--accounts",
                                   str(accounts)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  timeout=max(10.0, deadline - time.monotonic()), check=False)
            if done.returncode:
                failed.append(done.returncode)
            open_rows = [r for r in ledger_rows(settings, intents) if r["status"] in OPEN]
            if not open_rows or time.monotonic() > deadline:
                return rounds, failed
            time.sleep(1.0)


def start_workers(children: Children, options: ChaosOptions) -> tuple[list[str], list[str]]:
    decide, execute = process_names(options)
    for name in decide:
        children.start(name, ["worker", "--stages", "plan,decide", "--runner", "confluent"])
    for name in execute:
        children.start(name, ["worker", "--stages", "execute"])
    return decide, execute


def wait_for(done: Callable[[TopicTail, Settings, int], bool], tail: TopicTail, settings: Settings,
             children: Children, expected: int, deadline: float) -> bool:
    """Poll the topics until `done` (True) or the deadline (False); a process that died is restarted."""
    while time.monotonic() < deadline:
        tail.poll(1.0)
        children.restart_crashed()
        if done(tail, settings, expected):
            return True
    return False


def run_chaos(settings: Settings, options: ChaosOptions, say: Callable[[str], None] = print) -> ChaosReport:
    from horus.credentials import CredentialStore
    from horus.db.engine import upgrade
    from horus.kafka.admin import create_topics, delete_topics_with_prefix

    options.check()
    began = time.monotonic()
    deadline = began + options.timeout
    rng = random.Random(options.seed)
    run = uuid.uuid4().hex[:6]
    settings = ensure_stack(settings, say)
    log_dir = settings.state_dir / "logs" / f"chaos-{run}"
    log_dir.mkdir(parents=True, exist_ok=True)
    sim = start_simulator(options)
    config = run_settings(settings, run, options, sim.url)
    env = {**os.environ, **config.as_env(), "PYTHONUNBUFFERED": "1"}
    children = Children(env, log_dir)
    stop = threading.Event()
    tail = followers = None
    try:
        create_topics(config)
        upgrade(config)
        followers = create_followers(config, [f"f{i}" for i in range(options.followers)], f"chaos{run}")
        fund(sim.url, [(f.address, Decimal(1_000_000)) for f in followers])
        accounts = log_dir / "accounts.json"  # what `horus reconcile` looks orders up with
        accounts.write_text(json.dumps([json.loads(f.config().to_body()) for f in followers]))
        produce_configs(config, config_changes(run, followers, rng, options))
        decide, execute = start_workers(children, options)
        say(f"chaos run {run}: {options.followers} followers x {options.fills} fills, {options.kills} kills over "
            f"{options.window_s:.0f}s, {options.decide_workers} decide + {options.instances} execute processes; "
            f"logs in {log_dir}")
        wait_for_groups(config, {config.app_id: len(decide), f"{config.app_id}-execute": len(execute)}, children,
                        timeout=min(120.0, max(10.0, deadline - time.monotonic())))

        set_faults(sim.url, base_faults(rng, options))
        started = time.monotonic()
        chaos = Chaos(timeline(rng, options), children, sim.url, started, stop)
        chaos.start()
        produce_fills(config, run, options, rng, started, children, chaos)
        chaos.join(max(0.0, deadline - time.monotonic()))
        if chaos.error is not None:
            raise ChaosError(f"the chaos timeline failed: {chaos.error}")
        tail = TopicTail(config)
        expected = options.followers * options.fills
        wait_for(decided_and_sent, tail, config, children, expected, deadline)
        set_faults(sim.url, FAULTS_OFF)
        say(f"last fill and last kill done after {options.window_s:.0f}s, every COPY reached an executor after "
            f"{time.monotonic() - started:.0f}s; faults off, draining")
        is_drained = wait_for(drained, tail, config, children, expected, deadline)
        children.stop_all()
        intents = {d["intent_id"] for d in tail.decisions if d["action"] == "COPY"}
        rounds, reconcile_failures = reconcile_until_settled(config, env, accounts, intents, log_dir, deadline)
        tail.read_to_end()
        intents = {d["intent_id"] for d in tail.decisions if d["action"] == "COPY"}
        orders, venue_counts = venue_order_log(sim.url)
        verdict = compare(tail.decisions, tail.results, ledger_rows(config, intents), orders)
        return ChaosReport(verdict, run, children.kills, children.crashes, len(tail.candidates), expected,
                           time.monotonic() - began, is_drained, rounds, reconcile_failures, venue_counts, log_dir)
    finally:
        stop.set()
        children.stop_all()
        if tail is not None:
            tail.close()
        sim.stop()
        if not options.keep:
            delete_topics_with_prefix(config, config.topic_prefix)
        store = CredentialStore(config)  # the run's keys go with the run
        for follower in followers or ():
            store.delete(follower.credentials_ref)
