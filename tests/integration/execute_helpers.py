"""Shared by the execute integration tests: private topics, the CLOB simulator with one market,
follower accounts with credentials in the real store, COPY decisions, reading execution.results, and
the executor as a thread or as a subprocess (`python -m streams.execute`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from pydantic import SecretStr

from horus.codec import default_codec
from horus.credentials import generate_key
from horus.domain import ids
from horus.domain.events import envelope
from horus.kafka.admin import create_topics
from horus.kafka.client import (
    assign_from_beginning,
    flush_or_raise,
    make_consumer,
    make_producer,
    poll_batch,
    produce_reliably,
)
from horus.ops import paper
from horus.ops.paper import PaperFollower
from horus.settings import Settings
from horus.topics import COPY_DECISIONS, EXECUTION_RESULTS
from horus.venue.polymarket.orders import intent_metadata
from horus.venue.simulator.clob import MarketConfig, SimulatorConfig, TokenConfig, run_simulator

REPO = Path(__file__).resolve().parents[2]
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
NO_TOKEN = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
CONDITION = "0x" + "c0" * 32
T0_US = 1_764_000_000_000_000
TERMINAL = {"FILLED", "PARTIAL", "NOT_FILLED", "REJECTED", "DRY_RUN"}


def private_settings(settings: Settings, *, partitions: int = 4, **overrides) -> Settings:
    """The session's database, topics of its own (a private prefix), a credentials key."""
    run = uuid.uuid4().hex[:6]
    private = settings.model_copy(
        update={
            "topic_prefix": f"{settings.topic_prefix}x{run}.",
            "app_id": f"{settings.app_id}-x{run}",
            "credentials_key": SecretStr(generate_key()),
            "reconcile_min_age_s": 0.5,
            "reconcile_interval_s": 0.5,
            "execute_lease_s": 3.0,
            **overrides,
        }
    )
    create_topics(private, partitions=partitions)
    return private


def market_config(**overrides) -> MarketConfig:
    return MarketConfig(
        condition_id=CONDITION,
        tokens=[TokenConfig(token_id=TOKEN, price="0.5"), TokenConfig(token_id=NO_TOKEN, outcome="No", price="0.5")],
        tick_size="0.01",
        min_order_size=1,
        levels=5,
        level_size=100000,
        replenish=True,
        **overrides,
    )


def simulator(**faults):
    config = SimulatorConfig(markets=[market_config()], default_collateral_e6=10**12, seed=7, faults={**faults})
    return run_simulator(config)


def set_faults(sim, **faults) -> None:
    paper.set_faults(sim.url, faults)


def venue_orders(sim) -> list[dict]:
    return paper.venue_orders(sim.url)["orders"]


def paper_settings(settings: Settings, sim) -> Settings:
    return settings.model_copy(update={"clob_url": sim.url, "gamma_url": sim.url, "venue_mode": "paper"})


def make_followers(settings: Settings, n: int) -> list[PaperFollower]:
    """n accounts with fresh keys in the credentials store (paper mode derives their API creds via L1)."""
    return paper.create_followers(settings, [f"f{i}" for i in range(n)], f"test-{uuid.uuid4().hex[:12]}")


def accounts_of(followers: list[PaperFollower]):
    configs = {f.address: f.config() for f in followers}
    return lambda address: configs.get(address.lower())


def copy_decision(
    follower: str,
    n: int,
    *,
    size_e6: int = 10_000_000,
    worst_price: str = "0.55",
    order_type: str = "FAK",
    side: str = "BUY",
    token: str = TOKEN,
    tag: str = "",
    expires_at_us: int | None = None,
    now_us: int | None = None,
) -> dict:
    follow_id = f"follow-{follower}-{tag}"
    fill_id = ids.make_id("test-fill", tag, n)
    candidate = ids.candidate_id(fill_id, follow_id)
    produced = now_us if now_us is not None else time.time_ns() // 1000
    return {
        "envelope": envelope(
            ids.decision_id(candidate), "decide", T0_US + n, causation_id=candidate, produced_at_us=produced
        ),
        "candidate_id": candidate,
        "follow_id": follow_id,
        "follower": follower,
        "leader_fill_id": fill_id,
        "action": "COPY",
        "intent_id": ids.intent_id(follow_id, fill_id),
        "token_id": token,
        "side": side,
        "size_e6": size_e6,
        "worst_price": worst_price,
        "order_type": order_type,
        "expires_at_us": expires_at_us,
        "reason_code": None,
        "reason_detail": None,
    }


def skip_decision(follower: str, n: int, tag: str = "") -> dict:
    d = copy_decision(follower, n, tag=tag)
    return {
        **d,
        "action": "SKIP",
        "intent_id": None,
        "worst_price": None,
        "order_type": None,
        "size_e6": 0,
        "reason_code": "PAUSED",
    }


def produce_decisions(settings: Settings, decisions: list[dict], raw: list[bytes] = ()) -> None:
    producer = make_producer(settings)
    codec = default_codec()
    topic = settings.topic(COPY_DECISIONS.name)
    for d in decisions:
        produce_reliably(producer, topic, codec.encode("CopyDecision", d), key=d["follower"])
    for value in raw:
        produce_reliably(producer, topic, value, key=b"garbage")
    flush_or_raise(producer)


class Results:
    """Group-less reader of execution.results, keeping everything seen."""

    def __init__(self, settings: Settings) -> None:
        self.consumer = make_consumer(settings)
        assign_from_beginning(self.consumer, [settings.topic(EXECUTION_RESULTS.name)])
        self.codec = default_codec()
        self.seen: list[dict] = []
        self.raw: list[bytes] = []

    def poll(self, seconds: float = 0.2) -> None:
        for m in poll_batch(self.consumer, 5000, seconds):
            self.raw.append(m.value())
            self.seen.append(self.codec.decode(m.value())[1])

    def latest(self) -> dict[str, dict]:
        """intent -> its result with the highest sequence (the last word)."""
        out: dict[str, dict] = {}
        for r in self.seen:
            out[r["intent_id"]] = r  # topic order per follower = emission order
        return out

    def wait(self, predicate, timeout: float = 60.0) -> dict[str, dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            latest = self.latest()
            if predicate(latest):
                return latest
        raise AssertionError(
            f"timed out; have {len(self.latest())} intents: {sorted({r['status'] for r in self.latest().values()})}"
        )

    def close(self) -> None:
        self.consumer.close()


def all_terminal(intents: set[str]):
    return lambda latest: intents <= set(latest) and all(latest[i]["status"] in TERMINAL for i in intents)


def all_settled(intents: set[str]):
    """Terminal and final: a fill from a matched reply is provisional until the reconciler confirms it."""
    terminal = all_terminal(intents)
    return lambda latest: terminal(latest) and all(latest[i].get("final", True) for i in intents)


class ServiceThread:
    """The executor in this process, on its own thread and event loop (`with`: stopped, and its error raised, at the end)."""

    def __init__(self, settings: Settings, followers: list[PaperFollower], **options) -> None:
        from streams.execute import run_service

        self.stop = threading.Event()
        self.error: BaseException | None = None

        def target():
            try:
                run_service(settings, accounts_of(followers), self.stop, **options)
            except BaseException as exc:  # surfaced by close()
                self.error = exc

        self.thread = threading.Thread(target=target, name="executor", daemon=True)
        self.thread.start()

    def close(self, timeout: float = 60) -> None:
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "executor did not stop"
        if self.error is not None:
            raise self.error

    def __enter__(self) -> ServiceThread:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start_subprocess(
    settings: Settings, followers: list[PaperFollower], log_path: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen:
    accounts = log_path.with_suffix(".accounts.json")
    accounts.write_text(json.dumps([json.loads(f.config().to_body()) for f in followers]))
    env = {**os.environ, **settings.as_env(), "PYTHONUNBUFFERED": "1", **(env or {})}
    with open(log_path, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "streams.execute", "--accounts", str(accounts), *extra],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def orders_by_intent(sim, intents: set[str]) -> dict[str, list[dict]]:
    by_meta = {intent_metadata(i): i for i in intents}
    out: dict[str, list[dict]] = {i: [] for i in intents}
    for order in venue_orders(sim):
        intent = by_meta.get(order["metadata"])
        if intent is not None:
            out[intent].append(order)
    return out


class DecisionStream:
    """COPY decisions produced at a steady rate on a thread of its own (round-robin over the followers, one
    leader fill each) until stopped, so an executor started, rebalanced or killed meanwhile has work in flight."""

    def __init__(self, settings: Settings, followers: list[PaperFollower], per_second: float, tag: str) -> None:
        self.produced: list[dict] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(settings, followers, per_second, tag), name="decision-stream", daemon=True
        )
        self._thread.start()

    def _run(self, settings: Settings, followers: list[PaperFollower], per_second: float, tag: str) -> None:
        try:
            producer, codec, topic = make_producer(settings), default_codec(), settings.topic(COPY_DECISIONS.name)
            started = time.monotonic()
            while not self._stop.is_set():
                due = int((time.monotonic() - started) * per_second) + 1
                batch = [
                    copy_decision(followers[n % len(followers)].address, n, tag=tag)
                    for n in range(len(self.produced), due)
                ]
                for d in batch:
                    produce_reliably(producer, topic, codec.encode("CopyDecision", d), key=d["follower"])
                flush_or_raise(producer)
                self.produced.extend(batch)
                self._stop.wait(0.1)
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def stop(self) -> list[dict]:
        """Stop producing; every decision produced (all acknowledged by the broker)."""
        self._stop.set()
        self._thread.join(30)
        if self.error is not None:
            raise self.error
        return self.produced


def publish_accounts(settings: Settings, followers: list[PaperFollower]) -> None:
    """The followers' FOLLOWER configs on config.changes, where `horus worker` folds its accounts from."""
    from horus.domain.config import config_change
    from horus.ops.chaos import produce_configs

    produce_configs(settings, [config_change("FOLLOWER", f.address, f.config(), "test") for f in followers])


def start_worker(settings: Settings, log_path: Path) -> subprocess.Popen:
    """`horus worker --stages execute`: the executor as deployed (a service thread; accounts from config.changes)."""
    env = {**os.environ, **settings.as_env(), "PYTHONUNBUFFERED": "1"}
    with open(log_path, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "horus.cli.main", "worker", "--stages", "execute"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def group_partitions(settings: Settings, group_id: str) -> list[set[int]] | None:
    """The partitions each member of a STABLE consumer group holds; None while it rebalances (or is not there)."""
    from confluent_kafka import ConsumerGroupState

    from horus.kafka.client import make_admin

    admin = make_admin(settings)  # held: a client collected mid-request never resolves its future
    try:
        group = admin.describe_consumer_groups([group_id])[group_id].result(10)
    except Exception:  # noqa: BLE001 - the group does not exist until its first member joins
        return None
    if group.state != ConsumerGroupState.STABLE:
        return None
    return [{tp.partition for tp in (m.assignment.topic_partitions if m.assignment else [])} for m in group.members]


def leased_rows(settings: Settings, pid: int) -> list[str]:
    """Intents whose ledger row the executor process `pid` holds the lease on: prewritten (maybe POSTed),
    outcome not yet recorded. Its work in flight."""
    import psycopg

    from horus.db.engine import psycopg_conninfo

    with psycopg.connect(psycopg_conninfo(settings.database_url)) as conn:
        rows = conn.execute(
            "SELECT idempotency_key FROM copy_trades WHERE locked_by LIKE %s AND status = ANY(%s)",
            (f"%:{pid}:%", ["PENDING", "UNKNOWN", "SUBMITTED"]),
        ).fetchall()
    return [r[0] for r in rows]


def verdict(settings: Settings, sim, decisions: list[dict], results: Results):
    """horus.ops.chaos.compare over the decisions, execution.results, the ledger and the simulator's order log."""
    from horus.ops.chaos import compare, ledger_rows

    rows = ledger_rows(settings, {d["intent_id"] for d in decisions if d["action"] == "COPY"})
    return compare(decisions, results.seen, rows, venue_orders(sim))


def publish_control(settings: Settings, scope: str, verb: str, target: str | None = None, reason: str = "test") -> None:
    """One operator switch on control.commands, as `horus pause | resume | kill` produces it."""
    from horus.domain.control import control_command, control_key
    from horus.topics import CONTROL_COMMANDS

    command = control_command(
        scope, verb, target, reason=reason, issued_by="test", occurred_at_us=time.time_ns() // 1000
    )
    producer = make_producer(settings)
    produce_reliably(
        producer,
        settings.topic(CONTROL_COMMANDS.name),
        default_codec().encode("ControlCommand", command),
        key=control_key(scope, command["target"]),
    )
    flush_or_raise(producer)


def publish_follow(
    settings: Settings, follow_id: str, follower: str, *, enabled: bool = True, delete: bool = False
) -> None:
    """A FOLLOW change (or its DELETE) on config.changes for a follow the test's decisions name."""
    from horus.domain.config import config_change, parse_follow_config
    from horus.ops.chaos import produce_configs

    follow = (
        None
        if delete
        else parse_follow_config(
            {
                "follow_id": follow_id,
                "follower": follower,
                "leader": "0x" + "1e" * 20,
                "enabled": enabled,
                "sizing": {"mode": "fixed", "amount": "5"},
            }
        )
    )
    produce_configs(settings, [config_change("FOLLOW", follow_id, follow, "test")])


def publish_follower(settings: Settings, follower: PaperFollower, *, enabled: bool = True) -> None:
    from horus.domain.config import config_change
    from horus.ops.chaos import produce_configs

    produce_configs(settings, [config_change("FOLLOWER", follower.address, follower.config(enabled=enabled), "test")])
