"""`horus chaos`: the proof of DESIGN invariants 1-5 and 8 under crashes, restarts and a misbehaving venue.

One run, on a PRIVATE local stack (Kafka, PostgreSQL, anvil under the run's log directory: it restarts them,
so it never touches the stack other work uses):
- the CLOB simulator in this process with a fee-bearing market pair and fault injection on from the first
  order to the verdict (latency, 5xx before processing, replies held past the executor's timeout, replies
  lost after processing, FOK/FAK "killed" replies hiding a partial fill, failed reads, balance checked before
  the duplicate check so a re-send gets a 4xx, trades lagging MATCHED -> MINED -> CONFIRMED with some FAILED,
  425 restart windows followed by post-only periods);
- N paper followers (keys in the encrypted credentials store) funded with tens to hundreds of dollars on the
  simulator, balances read from the venue, follower and follow daily caps, fixed $2-5 copies; M leader fills
  produced at a steady rate (and more at that pace while a crash point has not fired its minimum yet);
- D `horus worker --stages plan,decide` and I `horus worker --stages execute` processes, some with their wall
  clock seconds ahead or behind (libfaketime); a killer that SIGKILLs one of them at random moments (mostly
  executors) and restarts it at once; executors started with `HORUS_CRASH_AT=<step>:<n>` so they SIGKILL
  themselves at a chosen step (cycling through every step); PostgreSQL killed (-9 on every server process)
  and restarted, and the Kafka broker killed (-9) and restarted, mid-flight;
- everything drains with every fault still on, then `horus reconcile --once` (faults still on) until no
  ledger row of the run is open.

`compare` (a pure function over plain data) then checks the decisions on copy.decisions against independent
sources: the venue's order log (/_sim/orders, traced back to intents by the signed `metadata` word), its
trades (/_sim/trades), the ledger (copy_trades, with each row's commit time from Postgres itself) and
execution.results. The last line is the one a script reads:

    orders=N duplicates=0 orphans=0 lost=0 unresolved=0 overfilled=0 mismatched=0 late=0 overspent=0 decided_twice=0

Each count and its evidence:
- duplicates: intents with more than one order in the venue's order log (invariant 1);
- orphans: venue orders without a ledger row holding their hash whose inserting transaction committed before
  the venue received the order: `pg_xact_commit_timestamp(prewrite_xid)` (track_commit_timestamp, Postgres'
  own clock) against the order log's `received_us` (invariant 2);
- lost: COPY decisions with no terminal result ON execution.results (a terminal ledger row alone does not
  count: the result is what decide folds to release the reservation and book the fill);
- unresolved: COPY decisions whose ledger row is still open (PENDING/UNKNOWN/SUBMITTED), holds fills from a
  match not yet confirmed on chain (`final` false), or is missing;
- overfilled: a venue order matched above its size, or fills (ledger, results) above the decision's size;
- mismatched: per intent, the order log's matched size vs the ledger row's filled_shares vs every final
  terminal result's fills on execution.results: all equal, and the statuses agree (venue matched > 0: no
  NOT_FILLED / REJECTED / FAILED; nothing matched or no venue order: no FILLED / PARTIAL); and the last result
  (highest sequence) is final: a provisional one (a matched reply, before the chain settled it) must have been
  settled by a later result of the intent (invariant 4);
- late: venue orders received (order log `received_us`) at or after their intent's `expires_at_us` (8);
- overspent: per follower and per follow, per UTC day of the match, the collateral the venue debited for
  their BUYs (its trades: notional + fee, FAILED trades excluded; cross-checked against the accounts' balance
  change) above the daily cap (invariant 5);
- decided_twice: candidates with two different decisions on copy.decisions (the same decision produced again,
  at-least-once, is one decision).
The run fails (exit 1) if any count is not 0, if it did not drain (every candidate decided, every COPY with a
terminal result, no open row) before the deadline, if a `horus reconcile --once` round failed, if the
venue's trades and balances disagree or trades are still in flight at the verdict, or if fewer crash-point kills
or restarts happened than asked.
Unplanned exits (a worker that died by itself) are restarted, as a supervisor would, and counted: safety is
judged by the counts, liveness by the drain.

Every roll (faults, funds, caps, sizes, kill times and targets, crash points) comes from RNGs seeded with
`--seed`; what the processes do in between is up to the scheduler, so a seed repeats the plan, not the
interleaving.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
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
from typing import TYPE_CHECKING, Any, cast

from horus.domain.events import OPEN, TERMINAL
from horus.ops.paper import create_followers, fund, set_faults, venue_orders
from horus.settings import Settings
from horus.venue.polymarket.orders import intent_metadata

if TYPE_CHECKING:  # confluent-kafka is imported where it is used: the CLI starts without it
    from confluent_kafka import KafkaError, Message

REPO = Path(__file__).resolve().parents[2]
LEADER = "0x" + "1e" * 20
EXCHANGE = "0x" + "0e" * 20
MARKETS = 2
FEE_RATE = Decimal("0.1")  # taker fee rate x (p(1-p)): 2.5 cents a share at 0.50, 5% of the notional
EXECUTOR_SHARE = 0.75  # of the random kills; the rest hit decide workers
SHOWN_INTENTS = 10  # failing intents printed per count, for debugging
CRASH_ENV = "HORUS_CRASH_AT"
# the executor's crash points (horus/execution/crash.py): it SIGKILLs itself the n-th time it reaches one
CRASH_POINTS = ("after_prewrite_commit", "after_post_sent", "after_reply", "after_ledger_commit")
CRASH_N_MAX = 3  # n is rolled in 1..this: a crash point fires within a few orders
RESTART_GAP_S = {"postgres": 8.0, "kafka": 20.0}  # chaos window per restart: start-up plus some traffic after
# the simulator's fault settings this run needs beyond the basic ones (a simulator without them is refused)
VENUE_FAULTS_NEEDED = (
    "balance_before_duplicate",
    "trade_mined_seconds",
    "trade_confirmed_seconds",
    "trade_failed_rate",
)
TRADE_FINAL_S = 3.0  # trades are MATCHED, MINED after a second, CONFIRMED or FAILED after this


class ChaosError(RuntimeError):
    """The run could not be carried out (a bad option, a process that never joined): no verdict."""


@dataclass(frozen=True)
class ChaosOptions:
    followers: int = 40
    fills: int = 40
    kills: int = 20  # random-time SIGKILLs (each followed by a restart)
    crash_kills: int = 1  # at least this many executor self-kills at each crash point
    pg_restarts: int = 1  # PostgreSQL killed -9 and restarted
    broker_restarts: int = 1  # the Kafka broker killed -9 and restarted
    instances: int = 2  # executor processes
    decide_workers: int = 2
    seed: int = 1
    timeout: float = 900.0  # seconds for the whole run, set-up to verdict
    keep: bool = False  # keep the run's private stack (and topics) running
    fill_rate: float = 2.0  # leader fills per second
    kill_gap_s: float = 1.5  # mean seconds between kills: the chaos window stretches so every kill fits
    order_ttl_s: int = 30  # intent expiry: an order never seen by the venue settles NOT_FILLED after it
    venue_timeout_s: float = 2.0  # the executor's HORUS_VENUE_TIMEOUT_S; held replies last longer
    clock_skew_s: float = 2.0  # workers' wall clocks cycle through +skew, -skew, 0 (0: no skew)

    def check(self) -> None:
        """Clear errors naming the option."""
        for name, low in (
            ("followers", 1),
            ("fills", 1),
            ("kills", 0),
            ("crash_kills", 0),
            ("pg_restarts", 0),
            ("broker_restarts", 0),
            ("instances", 1),
            ("decide_workers", 1),
        ):
            if getattr(self, name) < low:
                raise ChaosError(f"--{name.replace('_', '-')} must be at least {low}, got {getattr(self, name)}")
        for name in ("timeout", "fill_rate", "kill_gap_s", "venue_timeout_s"):
            if getattr(self, name) <= 0:
                raise ChaosError(f"{name} must be positive, got {getattr(self, name)}")
        if self.order_ttl_s < 5:
            raise ChaosError(f"order_ttl_s must be at least 5 seconds, got {self.order_ttl_s}")
        if not 0 <= self.clock_skew_s <= 30:
            raise ChaosError(f"clock_skew_s must be between 0 and 30 seconds, got {self.clock_skew_s}")

    @property
    def window_s(self) -> float:
        """How long fills are produced and processes killed and restarted."""
        restarts = self.pg_restarts * RESTART_GAP_S["postgres"] + self.broker_restarts * RESTART_GAP_S["kafka"]
        return max(self.fills / self.fill_rate, self.kills * self.kill_gap_s, restarts, 1.0)


# ------------------------------------------------------------------------------------------ the verdict
NO_FILL = frozenset({"NOT_FILLED", "REJECTED", "FAILED"})  # a terminal status that says nothing was bought
FILLED = frozenset({"FILLED", "PARTIAL"})
DAY_S = 86_400


@dataclass(frozen=True)
class Caps:
    """Daily caps in collateral micro-units (fees included): follower address -> cap, follow id -> cap.
    Absent: no cap."""

    follower: dict[str, int] = field(default_factory=dict)
    follow: dict[str, int] = field(default_factory=dict)


@dataclass
class Verdict:
    """What the sources say, as counts and the intents (or venue order ids, or scopes) behind them.
    `notes[count][item]` says why, for the failure lines."""

    decisions: int = 0
    copies: int = 0
    orders: int = 0  # venue orders traced to this run's intents
    duplicates: list[str] = field(default_factory=list)  # intents with more than one venue order
    orphans: list[str] = field(default_factory=list)  # venue order ids without a row committed before receipt
    lost: list[str] = field(default_factory=list)  # COPY intents with no terminal result on execution.results
    # ledger rows still PENDING/UNKNOWN/SUBMITTED, or fills from a match not yet settled on chain (final = false)
    unresolved_open: list[str] = field(default_factory=list)
    unresolved_missing: list[str] = field(default_factory=list)  # COPY intents without any ledger row
    overfilled: list[str] = field(default_factory=list)  # intents (or order ids) filled above their size
    mismatched: list[str] = field(default_factory=list)  # intents: venue matched vs ledger vs results disagree
    late: list[str] = field(default_factory=list)  # intents whose venue order arrived at or after expiry
    overspent: list[str] = field(default_factory=list)  # "follower <address> day <n>" / "follow <id> day <n>"
    decided_twice: list[str] = field(default_factory=list)  # candidates with two different decisions
    statuses: Counter = field(default_factory=Counter)  # ledger status of each COPY intent
    notes: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))

    @property
    def unresolved(self) -> int:
        return len(self.unresolved_open) + len(self.unresolved_missing)

    def counts(self) -> dict[str, int]:
        return {
            "duplicates": len(self.duplicates),
            "orphans": len(self.orphans),
            "lost": len(self.lost),
            "unresolved": self.unresolved,
            "overfilled": len(self.overfilled),
            "mismatched": len(self.mismatched),
            "late": len(self.late),
            "overspent": len(self.overspent),
            "decided_twice": len(self.decided_twice),
        }

    @property
    def ok(self) -> bool:
        return not any(self.counts().values())

    def summary_line(self) -> str:
        return f"orders={self.orders} " + " ".join(f"{name}={n}" for name, n in self.counts().items())

    def failures(self) -> list[str]:
        """One line per non-empty count, naming its evidence and up to SHOWN_INTENTS items (with why)."""
        lines = []
        for count, name, items in (
            ("duplicates", "duplicates: intents with more than one order in the venue order log", self.duplicates),
            (
                "orphans",
                "orphans: venue orders (order log) without a ledger row committed before the venue "
                "received them (pg_xact_commit_timestamp vs received_us)",
                self.orphans,
            ),
            ("lost", "lost: COPY intents with no terminal result on execution.results", self.lost),
            ("unresolved", "unresolved: ledger rows still open or not final", self.unresolved_open),
            ("unresolved", "unresolved: COPY decisions without a ledger row", self.unresolved_missing),
            (
                "overfilled",
                "overfilled: venue size_matched above the order's size, or fills above the decision's size",
                self.overfilled,
            ),
            (
                "mismatched",
                "mismatched: venue order log size_matched vs ledger filled_shares vs "
                "execution.results fills and statuses",
                self.mismatched,
            ),
            (
                "late",
                "late: venue orders received (order log received_us) at or after the intent's expires_at_us",
                self.late,
            ),
            (
                "overspent",
                "overspent: collateral the venue debited (its trades: notional + fee) above a daily cap",
                self.overspent,
            ),
            (
                "decided_twice",
                "decided_twice: candidates with two different decisions on copy.decisions",
                self.decided_twice,
            ),
        ):
            if items:
                why = self.notes.get(count, {})
                shown = sorted(items)[:SHOWN_INTENTS]
                lines.append(
                    f"{name}: {len(items)}: "
                    + ", ".join(f"{item} ({why[item]})" if item in why else item for item in shown)
                )
        return lines


def _decision_content(d: dict) -> tuple:
    """What a decision says; a re-production of the same decision (at-least-once) has the same content."""
    return (
        d["action"],
        d.get("intent_id"),
        d["size_e6"],
        d.get("worst_price"),
        d.get("reserved_e6"),
        d.get("reason_code"),
    )


def _e6(amount: int) -> str:
    return f"{Decimal(amount) / 1_000_000:f}"


def compare(
    decisions: Iterable[dict],
    results: Iterable[dict],
    ledger: Iterable[dict],
    venue_orders: Iterable[dict],
    trades: Iterable[dict] = (),
    caps: Caps | None = None,
) -> Verdict:
    """Check invariants 1-5 and 8 over plain data.

    decisions (copy.decisions, in topic order): {candidate_id, action, intent_id, size_e6, follow_id, follower,
      expires_at_us} (+ worst_price, reserved_e6, reason_code when present: what makes two decisions differ);
    results (execution.results, in topic order): {intent_id, status, filled_shares_e6};
    ledger (copy_trades): {intent_id, status, order_hash, filled_shares_e6, committed_us}, committed_us = the
      commit time of the transaction that inserted the row (Postgres' own), None if unknown;
    venue_orders (the simulator's order log): {order_id, metadata, size_e6, size_matched_e6, received_us};
    trades (the venue's trades that took collateral): {order_id (the taker order), follower, day (UTC day
      number of the match), debit_e6 (notional + fee)}; caps: the daily caps the run configured.
    Order ids and hashes compare case-insensitively."""
    caps = caps or Caps()
    verdict = Verdict()
    copies: dict[str, dict] = {}
    contents: dict[str, set[tuple]] = defaultdict(set)
    for d in decisions:
        verdict.decisions += 1
        contents[d["candidate_id"]].add(_decision_content(d))
        if d["action"] == "COPY":
            copies.setdefault(d["intent_id"], d)
    verdict.copies = len(copies)
    verdict.decided_twice = sorted(c for c, seen in contents.items() if len(seen) > 1)
    rows = {r["intent_id"]: r for r in ledger}
    by_metadata = {intent_metadata(i).lower(): i for i in {*copies, *rows}}

    orders_of: dict[str, dict[str, dict]] = defaultdict(dict)  # intent -> order id -> order
    intent_of_order: dict[str, str] = {}
    overfilled: set[str] = set()
    late: set[str] = set()
    for order in venue_orders:
        order_id = order["order_id"].lower()
        intent = by_metadata.get((order.get("metadata") or "").lower())
        row = rows.get(intent) if intent else None
        committed = row.get("committed_us") if row else None
        if row is None or (row.get("order_hash") or "").lower() != order_id:
            verdict.orphans.append(order_id)
            verdict.notes["orphans"][order_id] = "no ledger row with this order hash"
        elif committed is None or committed >= order["received_us"]:
            verdict.orphans.append(order_id)
            verdict.notes["orphans"][order_id] = (
                "row commit time unknown"
                if committed is None
                else f"row committed {committed - order['received_us']} us after the venue received the order"
            )
        if intent is None:
            continue
        intent_of_order[order_id] = intent
        orders_of[intent][order_id] = order
        if order["size_matched_e6"] > order["size_e6"]:
            overfilled.add(intent)
        expires = (copies.get(intent) or {}).get("expires_at_us")
        if expires is not None and order["received_us"] >= expires:
            late.add(intent)
            verdict.notes["late"][intent] = f"received {(order['received_us'] - expires) / 1e6:.3f} s after expiry"
    verdict.orders = sum(len(ids) for ids in orders_of.values())
    verdict.duplicates = sorted(i for i, ids in orders_of.items() if len(ids) > 1)
    verdict.late = sorted(late)
    for intent in verdict.duplicates:
        verdict.notes["duplicates"][intent] = f"orders {', '.join(sorted(orders_of[intent]))}"
    _check_copies(copies, rows, results, orders_of, overfilled, verdict)
    verdict.overfilled = sorted(overfilled)
    verdict.overspent = _overspent(trades, caps, copies, intent_of_order, verdict.notes["overspent"])
    return verdict


def _check_copies(
    copies: dict[str, dict],
    rows: dict[str, dict],
    results: Iterable[dict],
    orders_of: dict[str, dict[str, dict]],
    overfilled: set[str],
    verdict: Verdict,
) -> None:
    """Each COPY intent against its ledger row and terminal results: counted by row status; lost (no terminal
    result), unresolved (no row, or one still open), overfilled (into `overfilled`), mismatched."""
    terminal: dict[str, list[dict]] = defaultdict(list)  # intent -> its terminal results, by result sequence
    for r in sorted(results, key=lambda r: r.get("seq") or 0):  # stable: redeliveries keep their topic order
        if r["status"] in TERMINAL:
            terminal[r["intent_id"]].append(r)
    for intent, decision in copies.items():
        row = rows.get(intent)
        verdict.statuses[row["status"] if row else "NO_ROW"] += 1
        said = terminal.get(intent, [])
        if not said:
            verdict.lost.append(intent)
        if row is None:
            verdict.unresolved_missing.append(intent)
        elif row["status"] in OPEN or not row.get("final", True):
            verdict.unresolved_open.append(intent)
        fills = [r["filled_shares_e6"] for r in said] + ([row["filled_shares_e6"]] if row else [])
        if max(fills, default=0) > decision["size_e6"]:
            overfilled.add(intent)
        problem = _disagreement(orders_of.get(intent), row, said)
        if problem:
            verdict.mismatched.append(intent)
            verdict.notes["mismatched"][intent] = problem


def _disagreement(orders: dict[str, dict] | None, row: dict | None, said: list[dict]) -> str | None:
    """Why the venue's matched size, the ledger row and the terminal results of one intent disagree, or None.
    Every final terminal result must agree, not only the last (decide books each), and the last one must be final:
    a non-final result carries the venue's match before it settled on chain, which a later result of the same
    intent settles (the same fills, or fewer when a trade FAILED) and decide books by the difference."""
    matched = sum(o["size_matched_e6"] for o in orders.values()) if orders else 0
    problems = []
    if row is None:
        if matched:
            problems.append("no ledger row")
    elif row["filled_shares_e6"] != matched:
        problems.append(f"ledger {row['status']} {_e6(row['filled_shares_e6'])}")
    elif row["status"] in (NO_FILL if matched else FILLED):
        problems.append(f"ledger status {row['status']}")
    if matched and not said:
        problems.append("no terminal result")
    for r in said:
        if not r.get("final", True):
            continue
        if r["filled_shares_e6"] != matched or r["status"] in (NO_FILL if matched else FILLED):
            problems.append(f"result {r['status']} {_e6(r['filled_shares_e6'])}")
    if said and not said[-1].get("final", True):
        problems.append(f"last result {said[-1]['status']} {_e6(said[-1]['filled_shares_e6'])} not final")
    if not problems:
        return None
    venue = f"venue matched {_e6(matched)}" if orders else "no venue order"
    return f"{venue}; " + "; ".join(dict.fromkeys(problems))


def _overspent(
    trades: Iterable[dict], caps: Caps, copies: dict[str, dict], intent_of_order: dict[str, str], notes: dict[str, str]
) -> list[str]:
    """Per UTC day: what the venue debited per follower and per follow, above its cap."""
    spent: Counter = Counter()
    for t in trades:
        spent[("follower", t["follower"].lower(), t["day"])] += t["debit_e6"]
        intent = intent_of_order.get(t["order_id"].lower())
        follow = (copies.get(intent) or {}).get("follow_id") if intent else None
        if follow is not None:
            spent[("follow", follow, t["day"])] += t["debit_e6"]
    out = []
    for (scope, key, day), amount in spent.items():
        cap = (caps.follower if scope == "follower" else caps.follow).get(key)
        if cap is not None and amount > cap:
            name = f"{scope} {key} day {day}"
            out.append(name)
            notes[name] = f"debited {_e6(amount)} > cap {_e6(cap)}"
    return sorted(out)


# ------------------------------------------------------------------------------------------ the plan
@dataclass(frozen=True)
class Event:
    at_s: float  # seconds into the chaos window
    # "kill" (target: a process name), "faults" (target: JSON of a /_sim/faults update) or "restart" (target:
    # "postgres" or "kafka", the private stack's part killed -9 and started again)
    kind: str
    target: str


def process_names(options: ChaosOptions) -> tuple[list[str], list[str]]:
    return ([f"decide-{i}" for i in range(options.decide_workers)], [f"execute-{i}" for i in range(options.instances)])


def clock_offsets(options: ChaosOptions) -> dict[str, float]:
    """Wall-clock offset per process: each kind cycles through +skew, -skew, 0 (ahead, behind, true)."""
    cycle = (options.clock_skew_s, -options.clock_skew_s, 0.0) if options.clock_skew_s else (0.0,)
    return {name: cycle[i % len(cycle)] for names in process_names(options) for i, name in enumerate(names)}


def base_faults(rng: random.Random, options: ChaosOptions) -> dict:
    """Fault injection from the first order to the verdict (a FaultConfig body)."""
    return {
        "latency_ms": 20,
        "jitter_ms": rng.choice([10, 20, 30]),
        "error_rate": 0.03,
        "read_error_rate": 0.02,
        "timeout_rate": 0.02,
        "timeout_seconds": options.venue_timeout_s + 1.5,
        "reply_lost_rate": 0.03,
        "reply_lost_mode": rng.choice(["5xx", "drop"]),
        "hidden_fill_rate": 0.05,
        # a re-sent order is refused for balance (4xx) before the venue sees it is a duplicate (D5)
        "balance_before_duplicate": True,
        # trades settle late (MATCHED -> MINED -> CONFIRMED) and some FAIL, undoing their fill (D11)
        "trade_mined_seconds": 1.0,
        "trade_confirmed_seconds": TRADE_FINAL_S,
        "trade_failed_rate": 0.03,
    }


def timeline(rng: random.Random, options: ChaosOptions) -> list[Event]:
    """Kills at random moments (mostly executors); PostgreSQL and broker restarts spread over the window in a
    random order; one or two 425 restart windows with a post-only period after them; the lost-reply mode
    switched half-way."""
    decide, execute = process_names(options)
    window = options.window_s
    events = []
    for _ in range(options.kills):
        pool = decide if rng.random() > EXECUTOR_SHARE else execute
        events.append(Event(rng.uniform(0.5, window), "kill", rng.choice(pool)))
    parts = ["postgres"] * options.pg_restarts + ["kafka"] * options.broker_restarts
    rng.shuffle(parts)
    for k, part in enumerate(parts):  # one per slot, so a restart is over before the next begins
        slot = window / len(parts)
        events.append(Event(k * slot + rng.uniform(0.1, 0.4) * slot, "restart", part))
    for _ in range(rng.choice([1, 2])):
        restart = {
            "restart_seconds": round(rng.uniform(1.5, 3.0), 2),
            "post_only_seconds": round(rng.uniform(1.5, 3.0), 2),
        }
        events.append(Event(rng.uniform(0.2, 0.8) * window, "faults", json.dumps(restart)))
    events.append(Event(window / 2, "faults", json.dumps({"reply_lost_mode": rng.choice(["5xx", "drop"])})))
    return sorted(events, key=lambda e: e.at_s)


def market_ids(seed: int) -> list[tuple[str, list[str]]]:
    """(condition id, [yes token, no token]) per market, derived from the seed."""
    out = []
    for m in range(MARKETS):
        condition = "0x" + hashlib.sha256(f"chaos-market:{seed}:{m}".encode()).hexdigest()
        tokens = [
            str(int(hashlib.sha256(f"chaos-token:{seed}:{m}:{o}".encode()).hexdigest(), 16) % 2**255) for o in range(2)
        ]
        out.append((condition, tokens))
    return out


def simulator_config(options: ChaosOptions):
    from horus.venue.simulator.clob import SimulatorConfig

    # validated from plain data, as a config file is: the rest keeps the simulator's defaults
    markets = [
        {
            "condition_id": condition,
            "tokens": [{"token_id": yes, "price": "0.5"}, {"token_id": no, "outcome": "No", "price": "0.5"}],
            "tick_size": "0.01",
            "min_order_size": 1,
            "levels": 5,
            "level_size": 100000,
            "replenish": True,
            "fee_rate": FEE_RATE,
        }
        for condition, (yes, no) in market_ids(options.seed)
    ]
    return SimulatorConfig.model_validate({"markets": markets, "seed": options.seed})


def leader_fill(run: str, n: int, markets: list[tuple[str, list[str]]], rng: random.Random) -> dict:
    """A fresh BUY of 20 shares at 0.5 by the leader, alternating markets."""
    from horus.domain import ids
    from horus.domain.events import envelope

    condition, tokens = markets[n % len(markets)]
    token = rng.choice(tokens)
    tx = "0x" + ids.make_id("chaos-tx", run, n)
    now_us = time.time_ns() // 1000
    return {
        "envelope": envelope(ids.leader_fill_id(tx, LEADER, token, "BUY"), "chaos", now_us),
        "leader": LEADER,
        "exchange": EXCHANGE,
        "tx_hash": tx,
        "block_number": 1000 + n,
        "log_index": 0,
        "token_id": token,
        "condition_id": condition,
        "side": "BUY",
        "shares_e6": 20_000_000,
        "collateral_e6": 10_000_000,
        "price": "0.5",
        "fee_e6": 0,
        "role": "TAKER",
        "order_hashes": [],
    }


@dataclass
class FollowPlan:
    changes: list[dict]  # config.changes: a FOLLOWER and a FOLLOW per follower
    accounts: list[dict]  # the FollowerConfigs (what `horus reconcile --accounts` reads)
    funds: dict[str, Decimal]  # follower address -> collateral on the venue at the start
    caps: Caps


# dollars a day, fees included (None: no cap); some followers run into them within a few fills, some never do
FOLLOWER_CAPS = (None, None, 15, 25, 40, 60)
FOLLOW_CAPS = (None, None, 8, 12, 20)
WHALE_EVERY = 4
WHALE_DOLLARS_PER_FILL = 6  # a $5 copy and its fee; x3: fills are added while a crash point has not fired enough


def follow_plan(run: str, followers, rng: random.Random, options: ChaosOptions) -> FollowPlan:
    """Per follower: $20-300 on the venue, maybe a follower daily cap, one follow of the leader with fixed
    $2-5 copies, FAK (a quarter FOK), maybe a follow daily cap. Caps and balances bind within a few fills. One
    follower in four is a whale, funded for every fill of the run and without caps: orders keep flowing to the
    end, so a long run (and the crash points, which need orders to fire) never runs dry."""
    from horus.domain.config import config_change, parse_follow_config

    plan = FollowPlan([], [], {}, Caps())
    for i, follower in enumerate(followers):
        follower_cap, follow_cap = rng.choice(FOLLOWER_CAPS), rng.choice(FOLLOW_CAPS)
        plan.funds[follower.address] = Decimal(rng.randint(20, 300))
        if i % WHALE_EVERY == 0:
            follower_cap = follow_cap = None
            plan.funds[follower.address] = Decimal(WHALE_DOLLARS_PER_FILL * max(options.fills, 1) * 3)
        account = follower.config(daily_cap=None if follower_cap is None else Decimal(follower_cap))
        plan.accounts.append(json.loads(account.to_body()))
        plan.changes.append(config_change("FOLLOWER", follower.address, account, "chaos"))
        follow = parse_follow_config(
            {
                "follow_id": f"chaos-{run}-{i}",
                "follower": follower.address,
                "leader": LEADER,
                "sizing": {"mode": "fixed", "amount": str(rng.choice([2, 3, 4, 5]))},
                "order_type": "FOK" if rng.random() < 0.25 else "FAK",
                "order_ttl_s": options.order_ttl_s,
                "max_fill_age_s": 3600,
                "daily_cap": None if follow_cap is None else str(follow_cap),
            }
        )
        plan.changes.append(config_change("FOLLOW", follow.follow_id, follow, "chaos"))
        if follower_cap is not None:
            plan.caps.follower[follower.address] = follower_cap * 1_000_000
        if follow_cap is not None:
            plan.caps.follow[follow.follow_id] = follow_cap * 1_000_000
    return plan


# ------------------------------------------------------------------------------------------ processes
class Children:
    """The worker processes, each in its own process group (a SIGKILL takes its threads and children).

    Executors are started armed (`HORUS_CRASH_AT=<step>:<n>`, n rolled in 1..CRASH_N_MAX) while a crash point is
    below its target (and until `stop_all`), the least-fired point first. An armed process that ends by SIGKILL
    without the harness having killed it fired its crash point."""

    def __init__(
        self, env: dict[str, str], log_dir: Path, options: ChaosOptions | None = None, rng: random.Random | None = None
    ) -> None:
        """Without `options` (other harnesses, benchmarks): no crash points, no clock skew."""
        options = options or ChaosOptions(crash_kills=0, clock_skew_s=0.0)
        self.env = env
        self.log_dir = log_dir
        self.options = options
        self.rng = rng or random.Random(0)
        self.offsets = clock_offsets(options)
        self.argv: dict[str, list[str]] = {}
        self.procs: dict[str, subprocess.Popen] = {}
        self.armed: dict[str, str | None] = {}  # process -> "<step>:<n>" it was started with
        self.kills: Counter = Counter()  # random kills by kind: "execute" or "decide"
        self.crash_kills: Counter = Counter()  # self-kills by crash point
        self.crashes: list[str] = []  # exits nobody asked for
        self.arming = options.crash_kills > 0
        self.lock = threading.Lock()

    def _crash_spec(self, name: str) -> str | None:
        if not (self.arming and name.startswith("execute")):
            return None
        pending = Counter(spec.split(":")[0] for other, spec in self.armed.items() if spec and other != name)
        wanted = [p for p in CRASH_POINTS if self.crash_kills[p] + pending[p] < self.options.crash_kills]
        if not wanted:
            return None
        point = min(wanted, key=lambda p: self.crash_kills[p] + pending[p])
        return f"{point}:{self.rng.randint(1, CRASH_N_MAX)}"

    def start(self, name: str, argv: list[str]) -> None:
        from horus.ops.stack.faketime import skewed_env

        self.argv[name] = argv
        spec = self.armed[name] = self._crash_spec(name)
        env = {**self.env, **skewed_env(self.offsets.get(name, 0.0)), **({CRASH_ENV: spec} if spec else {})}
        with open(self.log_dir / f"{name}.log", "ab") as log:
            log.write(
                f"=== start at {time.strftime('%H:%M:%S')}, clock {self.offsets.get(name, 0.0):+g}s"
                f"{f', {CRASH_ENV}={spec}' if spec else ''}\n".encode()
            )
            log.flush()
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "horus.cli.main", *argv],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

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

    def crash_points_short(self) -> bool:
        """Some crash point has fired fewer times than asked."""
        return any(self.crash_kills[p] < self.options.crash_kills for p in CRASH_POINTS)

    def restart_crashed(self) -> None:
        with self.lock:
            self._restart_dead()

    def _restart_dead(self) -> None:
        for name, proc in list(self.procs.items()):
            code = proc.poll()
            if code is None:
                continue
            spec = self.armed.get(name)
            if spec and code == -signal.SIGKILL:
                self.crash_kills[spec.split(":")[0]] += 1
            else:
                self.crashes.append(f"{name} exited with {code}" + (f" ({CRASH_ENV}={spec})" if spec else ""))
            self.start(name, self.argv[name])

    def stop_all(self, timeout: float = 60.0, sig: int = signal.SIGTERM) -> None:
        """Stop every process (SIGKILL after `timeout`); `sig=SIGKILL` ends them at once."""
        with self.lock:
            self.arming = False
            self._restart_dead()  # count what died before the stop (and stop its replacement with the rest)
            for proc in self.procs.values():
                if proc.poll() is None:
                    _signal_group(proc, sig)
            deadline = time.monotonic() + timeout
            for proc in self.procs.values():
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    _signal_group(proc, signal.SIGKILL)
                    proc.wait(10)
            self.procs.clear()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


class Player(threading.Thread):
    """Plays events at their moments (seconds after `started`, monotonic); an error stops it and is kept."""

    def __init__(
        self, name: str, events: list[Event], act: Callable[[Event], None], started: float, stop: threading.Event
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.events, self.act, self.started, self.stop = events, act, started, stop
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for event in self.events:
                if self.stop.wait(max(0.0, self.started + event.at_s - time.monotonic())):
                    return
                self.act(event)
        except BaseException as exc:  # surfaced by the driver
            self.error = exc


class PrivateStack:
    """The run's own Kafka, PostgreSQL and anvil under `state_dir`: this run kills and restarts them, which it
    must never do to the stack other work shares."""

    def __init__(self, settings: Settings, state_dir: Path) -> None:
        from horus.ops.stack import LocalStack

        self.settings = settings.model_copy(update={"state_dir": state_dir})
        self.state_dir = state_dir
        self.stack = LocalStack(self.settings)
        self.restarts: Counter = Counter()

    def up(self) -> Settings:
        from horus.ops.stack import INFRASTRUCTURE

        env = self.stack.up(INFRASTRUCTURE)  # the venue is the run's own simulator, in this process
        return self.settings.model_copy(
            update={
                "kafka_bootstrap": env["HORUS_KAFKA_BOOTSTRAP"],
                "database_url": env["HORUS_DATABASE_URL"],
                "eth_rpc_url": env["HORUS_ETH_RPC_URL"],
            }
        )

    def restart(self, part: str) -> None:
        """SIGKILL every process of `part` (PostgreSQL: the postmaster and all its backends, as a crash or the
        OOM killer would), then start it again on the same ports."""
        import psutil

        ports = json.loads(self.stack.ports_file.read_text())
        proc = self.stack.procs.live(part)
        if proc is None:
            raise ChaosError(f"the run's {part} is not running; see {self.state_dir / 'logs'}")
        tree = [proc, *proc.children(recursive=True)]
        for p in tree:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(tree, timeout=30)
        if part == "postgres":
            self.stack.postgres.start(ports["postgres"])
        else:
            self.stack.kafka.start(ports["kafka"], ports["kafka_controller"])
        self.restarts[part] += 1

    def down(self) -> None:
        """Stop it and drop its data (its logs stay)."""
        self.stack.down()
        for data in ("postgres", "kafka"):
            shutil.rmtree(self.state_dir / data, ignore_errors=True)


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


def require_venue_faults() -> None:
    """The simulator must know every fault this run injects: a missing one would leave a path unproven."""
    from horus.venue.simulator.clob.config import FaultConfig

    missing = [name for name in VENUE_FAULTS_NEEDED if name not in FaultConfig.model_fields]
    if missing:
        raise ChaosError(
            f"the CLOB simulator has no fault setting {', '.join(missing)}, which this run injects "
            "(horus/venue/simulator/clob/config.py FaultConfig)"
        )


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
            if (
                group.state == ConsumerGroupState.STABLE
                and len(group.members) == members
                and all(m.assignment and m.assignment.topic_partitions for m in group.members)
            ):
                del waiting[group_id]
        time.sleep(0.3)
    if waiting:
        raise ChaosError(f"consumer groups not stable in {timeout:g}s: {sorted(waiting)}; see {children.log_dir}")


# ------------------------------------------------------------------------------------------ reading back
DECISION_FIELDS = (
    "candidate_id",
    "action",
    "intent_id",
    "size_e6",
    "follow_id",
    "follower",
    "expires_at_us",
    "worst_price",
    "reserved_e6",
    "reason_code",
    "reason_detail",
)
RESULT_FIELDS = ("intent_id", "status", "filled_shares_e6", "filled_collateral_e6", "fee_e6", "final", "seq", "error")


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
            _, record = self.codec.decode(cast(bytes, m.value()))  # these topics hold no tombstones
            name = self.names[cast(str, m.topic())]  # a consumed record has its topic
            if name == COPY_CANDIDATES.name:
                self.candidates.add(record["envelope"]["event_id"])
            elif name == COPY_DECISIONS.name:
                self.decisions.append({k: record[k] for k in DECISION_FIELDS})
            else:
                self.results.append({k: record.get(k) for k in RESULT_FIELDS})
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
            positions = {
                (tp.topic, tp.partition): tp.offset
                for tp in self.consumer.position([TopicPartition(t, p) for t, p in ends])
            }
            if all(high == 0 or positions.get(key, -1) >= high for key, high in ends.items()):
                return

    def copies(self) -> set[str]:
        return {d["intent_id"] for d in self.decisions if d["action"] == "COPY"}

    def close(self) -> None:
        self.consumer.close()


def require_commit_timestamps(setting: str) -> None:
    """The orphans count needs each row's commit time from Postgres: refuse to count without it."""
    if setting != "on":
        raise ChaosError(
            f"PostgreSQL does not record commit timestamps (track_commit_timestamp = {setting}), so "
            "no ledger row can be proven committed before the venue received its order. Start the "
            "server with `-c track_commit_timestamp=on`: the local stack's PostgreSQL does "
            "(horus/ops/stack/postgres.py) once started again (`horus stack down && horus stack up`)"
        )


def ledger_rows(settings: Settings, intents: Iterable[str]) -> list[dict]:
    """The rows of these intents, each with the commit time of the transaction that inserted it (microseconds,
    Postgres' clock; None when Postgres no longer knows it)."""
    import psycopg
    from psycopg.rows import dict_row

    from horus.db.engine import psycopg_conninfo

    with psycopg.connect(psycopg_conninfo(settings.database_url), row_factory=dict_row) as conn:
        shown = cast("dict[str, Any]", conn.execute("SHOW track_commit_timestamp").fetchone())  # SHOW answers one row
        require_commit_timestamps(shown["track_commit_timestamp"])
        return conn.execute(
            "SELECT idempotency_key AS intent_id, status, final, order_hash, filled_shares_e6, last_error, "
            "(extract(epoch FROM pg_xact_commit_timestamp(prewrite_xid::xid)) * 1000000)::bigint AS committed_us "
            "FROM copy_trades WHERE idempotency_key = ANY(%s)",
            (sorted(intents),),
        ).fetchall()


def open_intents(settings: Settings, intents: Iterable[str]) -> set[str]:
    """Intents whose ledger row is open, or holds fills from a match the reconciler has not confirmed yet."""
    import psycopg

    from horus.db.engine import psycopg_conninfo

    with psycopg.connect(psycopg_conninfo(settings.database_url)) as conn:
        return {
            r[0]
            for r in conn.execute(
                "SELECT idempotency_key FROM copy_trades WHERE idempotency_key = ANY(%s) "
                "AND (status = ANY(%s) OR NOT final)",
                (sorted(intents), sorted(OPEN)),
            )
        }


@dataclass
class VenueBooks:
    """What the venue itself recorded."""

    orders: list[dict]  # the order log
    counts: dict  # posts, accepted, duplicates (same order re-posted), rejected
    trades: list[dict]  # debits: {order_id, follower, day, debit_e6}
    unsettled_trades: int  # trades not yet final (MATCHED / MINED / RETRYING)
    books_disagree: list[str]  # followers whose balance change differs from their trades' debits


def _in_flight(trade: dict) -> bool:
    return trade.get("status") not in ("CONFIRMED", "FAILED")


def _e6_of(text: str) -> int:
    return int(Decimal(text) * 1_000_000)


def trade_debits(trades: Iterable[dict]) -> list[dict]:
    """Collateral each BUY trade took from its taker: notional (rounded down, as the venue does) + fee. A
    FAILED trade took nothing (its settlement reverted)."""
    out = []
    for t in trades:
        if t["side"] != "BUY" or t.get("status") == "FAILED":
            continue
        notional = _e6_of(t["size"]) * _e6_of(t["price"]) // 1_000_000
        out.append(
            {
                "order_id": t["taker_order_id"],
                "follower": t["maker_address"].lower(),
                "day": int(t["match_time"]) // DAY_S,
                "debit_e6": notional + int(t["_fee_e6"]),
            }
        )
    return out


def venue_books(sim_url: str, funds: dict[str, Decimal], wait_s: float = 4 * TRADE_FINAL_S) -> VenueBooks:
    """The order log, the trades, and each follower's balance change checked against its trades' debits, once
    no trade is in flight any more (or `wait_s` passed: the books then say how many still were)."""
    import httpx

    give_up = time.monotonic() + wait_s
    while True:
        trades = httpx.get(f"{sim_url}/_sim/trades", timeout=60).json()  # each read moves trades on by the clock
        if not any(_in_flight(t) for t in trades) or time.monotonic() > give_up:
            break
        time.sleep(0.5)
    log = venue_orders(sim_url)
    debits = trade_debits(trades)
    debited: Counter = Counter()
    for d in debits:
        debited[d["follower"]] += d["debit_e6"]
    disagree = []
    for address, funded in funds.items():
        account = httpx.get(f"{sim_url}/_sim/accounts/{address}", timeout=30).json()
        change = int(funded * 1_000_000) - account["collateral_e6"]
        if change != debited[address.lower()]:
            disagree.append(
                f"{address}: balance fell by {_e6(change)}, its trades debited {_e6(debited[address.lower()])}"
            )
    unsettled = sum(1 for t in trades if _in_flight(t))
    return VenueBooks(log["orders"], log["counts"], debits, unsettled, disagree)


# ------------------------------------------------------------------------------------------ the run
@dataclass
class ChaosReport:
    verdict: Verdict
    options: ChaosOptions
    run: str
    kills: Counter  # random kills by kind: "execute", "decide"
    crash_kills: Counter  # executor self-kills by crash point
    restarts: Counter  # "postgres", "kafka"
    crashes: list[str]  # unplanned exits
    offsets: dict[str, float]  # clock offset per process
    fills: int  # leader fills produced (more than planned while a crash point was short)
    candidates: int
    expected_candidates: int
    seconds: float
    drained: bool
    reconcile_rounds: int
    reconcile_failures: list[int]  # exit codes of `horus reconcile --once` rounds that failed
    venue: VenueBooks
    log_dir: Path

    @property
    def total_kills(self) -> int:
        return sum(self.kills.values()) + sum(self.crash_kills.values())

    def problems(self) -> list[str]:
        """Why the run fails besides the verdict's counts."""
        out = []
        if not self.drained:
            out.append(
                "not drained: before the deadline, some candidate was not decided, some COPY had no terminal "
                "result on execution.results, or some ledger row was still open"
            )
        if self.reconcile_failures:
            out.append(
                f"`horus reconcile --once` rounds failed (exit codes {self.reconcile_failures}); see reconcile.log"
            )
        for point in CRASH_POINTS:
            if self.crash_kills[point] < self.options.crash_kills:
                out.append(
                    f"crash point {point} fired {self.crash_kills[point]} times, at least "
                    f"{self.options.crash_kills} asked (does the executor read {CRASH_ENV}?)"
                )
        for part, asked in (("postgres", self.options.pg_restarts), ("kafka", self.options.broker_restarts)):
            if self.restarts[part] < asked:
                out.append(f"{part} restarted {self.restarts[part]} times, {asked} asked")
        out += [f"venue books disagree: {line}" for line in self.venue.books_disagree[:SHOWN_INTENTS]]
        if self.venue.unsettled_trades:
            out.append(
                f"{self.venue.unsettled_trades} venue trades still in flight at the verdict: matched sizes "
                "are not final"
            )
        return out

    @property
    def ok(self) -> bool:
        return self.verdict.ok and not self.problems()

    def lines(self) -> list[str]:
        v = self.verdict
        points = " ".join(f"{p}={self.crash_kills[p]}" for p in CRASH_POINTS)
        skew = " ".join(f"{name} {offset:+g}s" for name, offset in self.offsets.items() if offset)
        lines = [
            f"chaos run {self.run}: logs in {self.log_dir}",
            f"fills={self.fills} ({self.options.fills} planned) candidates={self.candidates}/"
            f"{self.expected_candidates} decisions={v.decisions} copies={v.copies}",
            f"kills={self.total_kills} (random: execute {self.kills['execute']}, decide {self.kills['decide']}; "
            f"crash points: {points}) restarts: postgres={self.restarts['postgres']} "
            f"kafka={self.restarts['kafka']} unplanned_exits={len(self.crashes)}",
            f"drained={'yes' if self.drained else 'no'} reconcile_rounds={self.reconcile_rounds} "
            f"seconds={self.seconds:.1f} clock skew: {skew or 'none'}",
            "ledger statuses: " + " ".join(f"{s}={n}" for s, n in sorted(v.statuses.items())),
            "venue: "
            + " ".join(f"{k}={self.venue.counts.get(k, 0)}" for k in ("posts", "accepted", "duplicates", "rejected"))
            + f" trades={len(self.venue.trades)} unsettled_trades={self.venue.unsettled_trades}",
        ]
        lines += [f"unplanned exit: {c}" for c in self.crashes[:SHOWN_INTENTS]]
        lines += [f"run failed: {p}" for p in self.problems()]
        lines += v.failures()
        lines.append(v.summary_line())
        return lines


def run_settings(settings: Settings, run: str, options: ChaosOptions, sim_url: str) -> Settings:
    """Topics and groups of the run's own, paper venue on the simulator, balances read from the venue, short
    timeouts so partitions move and stuck rows are picked up quickly. The circuit breaker is held off: the
    injected faults fail a share of executions on purpose, and a tripped breaker would pause all copying, so
    the rest of the run would prove nothing (the breaker has tests of its own)."""
    from pydantic import SecretStr

    from horus.credentials import generate_key

    key = settings.credentials_key or SecretStr(generate_key())
    return settings.model_copy(
        update={
            "topic_prefix": f"{settings.topic_prefix}chaos{run}.",
            "app_id": f"horus-chaos-{run}",
            "credentials_key": key,
            "venue_mode": "paper",
            "clob_url": sim_url,
            "gamma_url": "",
            "balance_source": "venue",
            "session_timeout_s": 6.0,
            "venue_timeout_s": options.venue_timeout_s,
            "execute_lease_s": 5.0,
            "reconcile_interval_s": 1.0,
            "reconcile_min_age_s": 1.0,
            "breaker_min_executions": 10**9,
        }
    )


def child_env(config: Settings) -> dict[str, str]:
    """The workers' environment: the run's settings, nothing inherited that would skew or crash them."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("HORUS_", "FAKETIME")) and k != "LD_PRELOAD"}
    return {**inherited, **config.as_env(), "PYTHONUNBUFFERED": "1"}


def produce_configs(settings: Settings, changes: list[dict]) -> None:
    from horus.codec import default_codec
    from horus.domain.config import config_key
    from horus.kafka.client import flush_or_raise, make_producer, produce_reliably
    from horus.topics import CONFIG_CHANGES

    codec, producer = default_codec(), make_producer(settings, log_level=3)
    for change in changes:
        produce_reliably(
            producer,
            settings.topic(CONFIG_CHANGES.name),
            codec.encode("ConfigChange", change),
            key=config_key(change["entity"], change["entity_id"]),
        )
    flush_or_raise(producer)


def produce_fills(
    settings: Settings,
    run: str,
    options: ChaosOptions,
    rng: random.Random,
    started: float,
    children: Children,
    players: list[Player],
    extend_until: float,
) -> int:
    """M fills spread evenly over the chaos window, then more at the same pace while a crash point is below its
    minimum (until `extend_until`, monotonic): a crash point fires only while orders flow, and restarts under load
    can eat the window. Processes that died by themselves are restarted. Waits out a broker restart (the producer
    keeps the fills until the broker is back). Returns how many fills were produced."""
    from horus.codec import default_codec
    from horus.kafka.client import flush_or_raise, make_producer, produce_reliably
    from horus.topics import LEADER_FILLS

    # log_level 0: the broker restarts on purpose mid-window, and each refused reconnect would print a line;
    # a fill that is not delivered in the end still fails the run (below)
    codec, producer = default_codec(), make_producer(settings, log_level=0)
    failed: list[str] = []

    def on_delivery(err: KafkaError | None, _message: Message) -> None:
        if err:
            failed.append(str(err))

    markets = market_ids(options.seed)
    gap = options.window_s / options.fills
    n = 0
    while n < options.fills or (children.crash_points_short() and time.monotonic() + gap < extend_until):
        time.sleep(max(0.0, started + n * gap - time.monotonic()))
        fill = leader_fill(run, n, markets, rng)
        produce_reliably(
            producer,
            settings.topic(LEADER_FILLS.name),
            codec.encode("LeaderFill", fill),
            key=fill["leader"],
            on_delivery=on_delivery,
        )
        producer.poll(0)
        children.restart_crashed()
        for player in players:
            if player.error is not None:
                raise ChaosError(f"the chaos timeline failed: {player.error!r}")
        n += 1
    flush_or_raise(producer, timeout=120)
    if failed:
        raise ChaosError(f"{len(failed)} leader fills were not delivered: {failed[0]}")
    return n


def drained(tail: TopicTail, settings: Settings, expected: int) -> bool:
    """Every candidate decided and every COPY settled: a terminal result on the topic, no open ledger row."""
    if len(tail.candidates) < expected or not tail.candidates <= {d["candidate_id"] for d in tail.decisions}:
        return False
    copies = tail.copies()
    if not copies <= {r["intent_id"] for r in tail.results if r["status"] in TERMINAL}:
        return False
    return not open_intents(settings, copies)


def reconcile_until_settled(
    settings: Settings, env: dict[str, str], accounts: Path, intents: set[str], log_dir: Path, deadline: float
) -> tuple[int, list[int]]:
    """`horus reconcile --once` until none of the run's ledger rows is open (at least one round, which also
    re-emits results a killed process committed but never produced). Returns the rounds run and the
    non-zero exit codes among them."""
    rounds, failed = 0, []
    with open(log_dir / "reconcile.log", "ab") as log:
        while True:
            rounds += 1
            log.write(f"=== round {rounds} at {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            done = subprocess.run(
                [sys.executable, "-m", "horus.cli.main", "reconcile", "--once", "--accounts", str(accounts)],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=max(10.0, deadline - time.monotonic()),
                check=False,
            )
            if done.returncode:
                failed.append(done.returncode)
            if not open_intents(settings, intents) or time.monotonic() > deadline:
                return rounds, failed
            time.sleep(1.0)


def start_workers(children: Children, options: ChaosOptions) -> tuple[list[str], list[str]]:
    decide, execute = process_names(options)
    for name in decide:
        children.start(name, ["worker", "--stages", "plan,decide", "--runner", "confluent"])
    for name in execute:
        children.start(name, ["worker", "--stages", "execute"])
    return decide, execute


def wait_for(
    done: Callable[[TopicTail, Settings, int], bool],
    tail: TopicTail,
    settings: Settings,
    children: Children,
    expected: int,
    deadline: float,
) -> bool:
    """Poll the topics until `done` (True) or the deadline (False); a process that died is restarted."""
    while time.monotonic() < deadline:
        tail.poll(1.0)
        children.restart_crashed()
        if done(tail, settings, expected):
            return True
    return False


def run_chaos(settings: Settings, options: ChaosOptions, say: Callable[[str], None] = print) -> ChaosReport:
    from horus.db.engine import upgrade
    from horus.kafka.admin import create_topics
    from horus.ops.stack import StackError
    from horus.ops.stack.faketime import faketime_library

    options.check()
    require_venue_faults()
    if options.clock_skew_s:
        try:
            faketime_library()
        except StackError as exc:
            raise ChaosError(str(exc)) from None
    began = time.monotonic()
    deadline = began + options.timeout
    rng = random.Random(options.seed)
    run = uuid.uuid4().hex[:6]
    log_dir = (settings.state_dir / "logs" / f"chaos-{run}").resolve()
    log_dir.mkdir(parents=True, exist_ok=True)
    stack = PrivateStack(settings, log_dir / "stack")
    say(f"chaos run {run}: starting its private stack (Kafka, PostgreSQL, anvil) in {stack.state_dir}")
    sim = tail = children = None
    stop = threading.Event()
    try:
        try:
            config = stack.up()
        except StackError as exc:
            raise ChaosError(f"the run's private stack did not start: {exc}") from None
        say(f"chaos run {run}: private stack up after {time.monotonic() - began:.0f}s")
        sim = start_simulator(options)
        config = run_settings(config, run, options, sim.url)
        env = child_env(config)
        create_topics(config)
        upgrade(config)
        followers = create_followers(config, [f"f{i}" for i in range(options.followers)], f"chaos{run}")
        plan = follow_plan(run, followers, rng, options)
        fund(sim.url, list(plan.funds.items()))
        accounts = log_dir / "accounts.json"  # what `horus reconcile` looks orders up with
        accounts.write_text(json.dumps(plan.accounts))
        produce_configs(config, plan.changes)
        children = Children(env, log_dir, options, random.Random(f"{options.seed}:processes"))
        decide, execute = start_workers(children, options)
        say(
            f"chaos run {run}: {options.followers} followers x {options.fills} fills, {options.kills} random kills, "
            f">= {options.crash_kills} at each crash point, {options.pg_restarts} PostgreSQL and "
            f"{options.broker_restarts} broker restarts over {options.window_s:.0f}s, {options.decide_workers} "
            f"decide + {options.instances} execute processes; logs in {log_dir}"
        )
        wait_for_groups(
            config,
            {config.app_id: len(decide), f"{config.app_id}-execute": len(execute)},
            children,
            timeout=min(120.0, max(10.0, deadline - time.monotonic())),
        )
        say(f"chaos run {run}: workers joined after {time.monotonic() - began:.0f}s; chaos begins")

        set_faults(sim.url, base_faults(rng, options))
        events = timeline(rng, options)
        started = time.monotonic()

        def act(event: Event) -> None:
            if event.kind == "kill":
                children.kill_and_restart(event.target)
            else:
                set_faults(sim.url, json.loads(event.target))

        players = [
            Player("chaos-processes", [e for e in events if e.kind != "restart"], act, started, stop),
            Player(
                "chaos-restarts",
                [e for e in events if e.kind == "restart"],
                lambda e: stack.restart(e.target),
                started,
                stop,
            ),
        ]
        for player in players:
            player.start()
        # extra fills (for crash points still short) leave time to drain: two order lifetimes and a minute
        fills = produce_fills(
            config, run, options, rng, started, children, players, extend_until=deadline - 2 * options.order_ttl_s - 60
        )
        for player in players:
            player.join(max(0.0, deadline - time.monotonic()))
            if player.error is not None:
                raise ChaosError(f"the chaos timeline failed: {player.error!r}")
        # executors stay armed while the drain goes on, until every crash point has fired its minimum
        say(
            f"chaos run {run}: chaos window over after {time.monotonic() - started:.0f}s "
            f"({time.monotonic() - began:.0f}s in); draining with the venue's faults on"
        )
        tail = TopicTail(config)
        expected = options.followers * fills
        is_drained = wait_for(drained, tail, config, children, expected, deadline)
        say(
            f"chaos run {run}: {'drained' if is_drained else 'NOT drained'} after {time.monotonic() - began:.0f}s; "
            "workers killed, reconciling with the venue's faults on"
        )
        children.stop_all(sig=signal.SIGKILL)  # one more crash, and no wait for graceful exits: the ledger must cope
        rounds, reconcile_failures = reconcile_until_settled(config, env, accounts, tail.copies(), log_dir, deadline)
        tail.read_to_end()
        books = venue_books(sim.url, plan.funds)
        ledger = ledger_rows(config, tail.copies())
        verdict = compare(tail.decisions, tail.results, ledger, books.orders, books.trades, plan.caps)
        # everything the verdict was computed from, for a look after the private stack is gone
        (log_dir / "evidence.json").write_text(
            json.dumps(
                {
                    "decisions": tail.decisions,
                    "results": tail.results,
                    "ledger": ledger,
                    "venue_orders": books.orders,
                    "trades": books.trades,
                    "caps": {"follower": plan.caps.follower, "follow": plan.caps.follow},
                }
            )
        )
        return ChaosReport(
            verdict,
            options,
            run,
            children.kills,
            children.crash_kills,
            stack.restarts,
            children.crashes,
            children.offsets,
            fills,
            len(tail.candidates),
            expected,
            time.monotonic() - began,
            is_drained,
            rounds,
            reconcile_failures,
            books,
            log_dir,
        )
    finally:
        stop.set()
        if children is not None:
            children.stop_all()
        if tail is not None:
            tail.close()
        if sim is not None:
            sim.stop()
        if options.keep:
            say(
                f"the run's stack keeps running: `HORUS_STATE_DIR={stack.state_dir} horus tap ...`; stop it with "
                f"`HORUS_STATE_DIR={stack.state_dir} horus stack down`"
            )
        else:
            stack.down()
