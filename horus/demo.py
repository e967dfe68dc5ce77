"""`horus demo`: the whole pipeline on the local stack, fed by a bundled replay, shown live.

It starts what is not running (stack, worker, projections), replays follows and leader fills into
a fresh set of topics (prefix `demo.<run>.`), shows every stage's counts and the Postgres
projections moving, and ends by itself once every fill has gone through every stage and into
Postgres. It stops everything it started, including the stack if the stack was not already up.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from horus.codec import default_codec
from horus.domain.fill_json import leader_fill_from_json
from horus.domain.follow_graph import FollowGraph, apply_config_change
from horus.domain.follows import follow_change
from horus.domain.plan import plan
from horus.kafka.admin import create_topics
from horus.kafka.client import flush_or_raise, make_consumer, make_producer, produce_reliably
from horus.settings import Settings
from horus.stack import PARTS, LocalStack
from horus.topics import (CONFIG_CHANGES, COPY_CANDIDATES, COPY_DECISIONS, DEAD_LETTERS, EXECUTION_RESULTS,
                          LEADER_FILLS, SETTLEMENT_EVENTS)

DATA = Path(__file__).resolve().parents[1] / "data" / "demo"
STAGE_TOPICS = [("sources", LEADER_FILLS), ("plan", COPY_CANDIDATES), ("decide", COPY_DECISIONS),
                ("execute", EXECUTION_RESULTS), ("settle", SETTLEMENT_EVENTS), ("parked", DEAD_LETTERS)]
PROJECTION_TABLES = ["leader_fills", "copy_decisions", "execution_results", "settlement_events", "dead_letters"]


@dataclass
class DemoOptions:
    fills: Path = DATA / "leader_fills.jsonl"
    follows: Path = DATA / "follows.json"
    follow: bool = False
    rate: float = 40.0  # fills per second, so the stages can be watched
    timeout: float = 180.0
    keep_stack: bool = False
    source: str = "replay"  # "replay": fills straight onto leader.fills; "chain": a leader trading on anvil


class KafkaFeed:
    """Replay source: the bundled fills go straight onto leader.fills."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.codec = default_codec()
        self.producer = make_producer(settings, log_level=3)  # a fresh broker's 'coordinator loading' is not news

    def send(self, fill: dict) -> None:
        produce_reliably(self.producer, self.settings.topic(LEADER_FILLS.name),
                         self.codec.encode("LeaderFill", fill), key=fill["leader"])
        self.producer.poll(0)

    def flush(self) -> None:
        flush_or_raise(self.producer)


class ChainFeed:
    """Chain source: a simulated leader trades on the test exchange contract on anvil; `horus ingest
    chain` sees the OrderFilled logs over WebSocket and produces the LeaderFills."""

    COUNTERPARTY = "0x" + "c0" * 20

    def __init__(self, rpc_url: str, emitter: str):
        self.rpc_url = rpc_url
        self.emitter = emitter

    def send(self, fill: dict) -> None:
        from horus.testchain import V2Fill, emit_v2

        buy = fill["side"] == "BUY"
        shares, collateral = fill["shares_e6"], fill["collateral_e6"]
        emit_v2(self.rpc_url, self.emitter, V2Fill(
            order_hash=fill["order_hashes"][0], maker=fill["leader"], taker=self.COUNTERPARTY,
            side=0 if buy else 1, token_id=int(fill["token_id"]),
            maker_amount_filled=collateral if buy else shares, taker_amount_filled=shares if buy else collateral))

    def flush(self) -> None:
        pass


@dataclass
class Children:
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        log = open(log_dir / f"demo-{name}.log", "ab")
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "horus.cli.main", *argv], env=env,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"the {name} process exited with {proc.returncode}; see .horus/logs/demo-{name}.log")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


class Counter:
    """Per-topic end offsets and projection progress, read from Kafka and Postgres."""

    def __init__(self, settings: Settings):
        from sqlalchemy import text

        from horus.db.engine import make_engine

        self.settings = settings
        self.consumer = make_consumer(settings)
        self.engine = make_engine(settings)
        self.text = text

    def topic_count(self, name: str) -> int:
        from horus.kafka.client import end_offsets

        return sum(end_offsets(self.consumer, self.settings.topic(name)).values())

    def table_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {t: conn.execute(self.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in PROJECTION_TABLES}

    def projections_caught_up(self) -> bool:
        from projections import projection_lag

        return all(row["lag"] == 0 for row in projection_lag(self.settings))

    def close(self) -> None:
        self.consumer.close()


def load_inputs(options: DemoOptions) -> tuple[list[dict], list[dict]]:
    follows = json.loads(options.follows.read_text())
    fills = [leader_fill_from_json(json.loads(line)) for line in options.fills.read_text().splitlines() if line.strip()]
    return follows, fills


def expected_candidates(follows: list[dict], fills: list[dict]) -> int:
    """What the plan stage will fan the fills out to, by the plan stage's own functions."""
    graph = FollowGraph()
    for follow in follows:
        apply_config_change(follow_change(follow, source="demo"), graph)
    return sum(len(plan(fill, graph, now_us=0)[0]) for fill in fills)


def view(counts: dict[str, int], tables: dict[str, int], expected: int, produced: int, total: int,
         progress: Progress, state: str) -> Group:
    stages = Table(title="Horus pipeline", title_justify="left")
    stages.add_column("stage")
    stages.add_column("topic")
    stages.add_column("events", justify="right")
    for stage, spec in STAGE_TOPICS:
        stages.add_row(stage, spec.name, f"{counts.get(spec.name, 0):,}")
    projections = Table(title="Postgres projections", title_justify="left")
    projections.add_column("table")
    projections.add_column("rows", justify="right")
    for table, rows in tables.items():
        projections.add_row(table, f"{rows:,}")
    progress.update(progress.task_ids[0], completed=produced, total=total)
    progress.update(progress.task_ids[1], completed=counts.get(COPY_CANDIDATES.name, 0), total=expected)
    return Group(progress, stages, projections, f"[bold]{state}[/]")


def run_demo(settings: Settings, options: DemoOptions, console: Console) -> int:
    stack = LocalStack(settings)
    was_up = all(row.healthy for row in stack.status())
    console.print("[bold]Horus demo[/]: starting the local stack (Kafka, PostgreSQL, anvil)...")
    env = stack.up(PARTS, progress=lambda line: console.print(f"  {line}"))
    run = uuid.uuid4().hex[:6]
    settings = settings.model_copy(update={
        "kafka_bootstrap": env["HORUS_KAFKA_BOOTSTRAP"], "database_url": env["HORUS_DATABASE_URL"],
        "eth_rpc_url": env["HORUS_ETH_RPC_URL"], "topic_prefix": f"demo.{run}.", "app_id": f"horus-demo-{run}"})
    children = Children()
    counter = None
    try:
        from horus.db.engine import upgrade

        create_topics(settings)
        upgrade(settings)
        console.print(f"  topics created under prefix [cyan]{settings.topic_prefix}[/]; database migrated")
        child_env = {**os.environ, **settings.as_env()}
        log_dir = settings.state_dir / "logs"
        children.start("worker", ["worker", "--stages", "plan,decide,execute,settle"], child_env, log_dir)
        children.start("projections", ["projections", "run"], child_env, log_dir)
        follows, fills = load_inputs(options)
        publish_follows(settings, follows)
        feed = KafkaFeed(settings)
        if options.source == "chain":
            feed = start_chain_source(settings, console, children, child_env, log_dir)
        expected = expected_candidates(follows, fills)
        counter = Counter(settings)
        return _drive(settings, options, console, children, counter, feed, fills, expected)
    finally:
        children.stop()
        if counter is not None:
            counter.close()
        if was_up and not options.keep_stack:  # the stack stays; this run's topics need not
            from horus.kafka.admin import delete_topics_with_prefix

            delete_topics_with_prefix(settings, settings.topic_prefix)
        if not was_up and not options.keep_stack:
            stack.down(progress=lambda line: console.print(f"  {line}"))


def publish_follows(settings: Settings, follows: list[dict]) -> None:
    codec, producer = default_codec(), make_producer(settings, log_level=3)
    for follow in follows:
        change = follow_change(follow, source="demo")
        produce_reliably(producer, settings.topic(CONFIG_CHANGES.name), codec.encode("ConfigChange", change),
                         key=change["entity_id"])
    flush_or_raise(producer)


def start_chain_source(settings, console, children, child_env, log_dir) -> ChainFeed:
    from horus.stack.anvil import rpc
    from horus.testchain import deploy_emitters

    console.print("  deploying the test exchange contracts on anvil (forge + solc-js, cached)...")
    emitters = deploy_emitters(settings.eth_rpc_url, cache_dir=settings.cache_dir)
    head = int(rpc(settings.eth_rpc_url, "eth_blockNumber"), 16)
    children.start("ingest", ["ingest", "chain", "--exchange", emitters.v1, "--exchange", emitters.v2,
                              "--from-block", str(head + 1)], child_env, log_dir)
    console.print(f"  leader trades go to {emitters.v2}; `horus ingest chain` follows them over WebSocket")
    return ChainFeed(settings.eth_rpc_url, emitters.v2)


def _drive(settings, options, console, children, counter, feed, fills, expected) -> int:
    progress = Progress(TextColumn("{task.description:>18}"), BarColumn(), TextColumn("{task.completed}/{task.total}"))
    progress.add_task("leader fills sent", total=len(fills))
    progress.add_task("copy candidates", total=expected)
    started = time.monotonic()
    produced, quiet_since, last_seen = 0, None, None
    outcome = None
    with Live(console=console, refresh_per_second=8, transient=False) as live:
        while outcome is None:
            # send fills at the chosen rate, then watch
            due = len(fills) if options.rate <= 0 else min(len(fills), int((time.monotonic() - started) * options.rate) + 1)
            while produced < due:
                feed.send(fills[produced])
                produced += 1
            if produced == len(fills):
                feed.flush()
            children.check_alive()
            counts = {spec.name: counter.topic_count(spec.name) for _, spec in STAGE_TOPICS}
            tables = counter.table_counts()
            done = (produced == len(fills) and counts[COPY_CANDIDATES.name] >= expected
                    and counts[COPY_DECISIONS.name] >= counts[COPY_CANDIDATES.name]
                    and counter.projections_caught_up())
            snapshot = (tuple(counts.values()), tuple(tables.values()))
            quiet_since = (quiet_since or time.monotonic()) if done and snapshot == last_seen else None
            last_seen = snapshot
            finished = quiet_since is not None and time.monotonic() - quiet_since > 2.0
            state = "every fill went through every stage into Postgres" if finished else "running..."
            if options.follow and finished:
                state += " (--follow: waiting for more; Ctrl-C to stop)"
            live.update(view(counts, tables, expected, produced, len(fills), progress, state))
            if finished and not options.follow:
                outcome = 0
            elif not options.follow and time.monotonic() - started > options.timeout:
                outcome = 1
            else:
                time.sleep(0.25)
    if not console.is_terminal:
        console.print()  # Live leaves its last frame without a newline when output is not a terminal
    if outcome == 1:
        console.print(f"[red]timed out[/] after {options.timeout:.0f}s; logs in .horus/logs/demo-*.log")
        return 1
    console.print(f"[green]done[/] in {time.monotonic() - started:.1f}s: {len(fills)} leader fills, "
                  f"{counts[COPY_CANDIDATES.name]} candidates, {counts[COPY_DECISIONS.name]} decisions, "
                  f"{counts[EXECUTION_RESULTS.name]} execution results, "
                  f"{counts[SETTLEMENT_EVENTS.name]} settlement events, all folded into Postgres")
    if options.keep_stack:
        console.print(f"inspect them: HORUS_TOPIC_PREFIX={settings.topic_prefix} horus tap copy.decisions "
                      "--from-beginning")
    return 0
