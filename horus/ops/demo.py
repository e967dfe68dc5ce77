"""`horus demo`: the whole pipeline on the local stack, fed by a bundled replay, shown live.

It starts what is not running (stack, worker, projections), a CLOB simulator (paper trading: the market
of each token follows the prices the leaders traded at), funded follower accounts whose keys sit in the
encrypted credentials store, and their follower/follow configs on config.changes. It replays leader fills
into a fresh set of topics (prefix `demo.<run>.`), shows every stage's counts, the decisions by reason and
the Postgres projections moving, and ends by itself once every fill has gone through every stage and into
Postgres, with a table per follower: copies, fills, skips by reason, spend, positions, slippage against the
leader's price and latency. It stops everything it started, including the stack if it was not up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from pydantic import SecretStr
from rich.columns import Columns
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from horus.codec import default_codec
from horus.credentials import generate_key
from horus.domain.fill_json import leader_fill_from_json
from horus.domain.follow_graph import Follow, FollowGraph
from horus.domain.plan import plan
from horus.kafka.admin import create_topics
from horus.kafka.client import flush_or_raise, make_consumer, make_producer, produce_reliably
from horus.ops.stack import INFRASTRUCTURE, LocalStack
from horus.settings import Settings
from horus.topics import (
    CONFIG_CHANGES,
    COPY_CANDIDATES,
    COPY_DECISIONS,
    DEAD_LETTERS,
    EXECUTION_RESULTS,
    LEADER_FILLS,
    SETTLEMENT_EVENTS,
)
from projections import queries

DATA = Path(__file__).resolve().parents[2] / "data" / "demo"
STAGE_TOPICS = [
    ("sources", LEADER_FILLS),
    ("plan", COPY_CANDIDATES),
    ("decide", COPY_DECISIONS),
    ("execute", EXECUTION_RESULTS),
    ("settle", SETTLEMENT_EVENTS),
    ("parked", DEAD_LETTERS),
]
PROJECTION_TABLES = [
    "leader_fills",
    "copy_decisions",
    "execution_results",
    "settlement_events",
    "dead_letters",
    "follow_configs",
    "copy_trades",
]


@dataclass
class DemoOptions:
    fills: Path = DATA / "leader_fills.jsonl"
    follows: Path = DATA / "follows.json"
    follow: bool = False
    rate: float = 40.0  # fills per second, so the stages can be watched
    timeout: float = 180.0
    keep_stack: bool = False
    source: str = "replay"  # "replay": fills straight onto leader.fills; "chain": a leader trading on anvil


class FillFeed(Protocol):
    """Where the demo sends the leader fills: onto leader.fills, through the chain, or via a market move."""

    def send(self, fill: dict) -> None: ...

    def flush(self) -> None: ...


class KafkaFeed:
    """Replay source: the bundled fills go straight onto leader.fills."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.codec = default_codec()
        self.producer = make_producer(settings, log_level=3)  # a fresh broker's 'coordinator loading' is not news

    def send(self, fill: dict) -> None:
        produce_reliably(
            self.producer,
            self.settings.topic(LEADER_FILLS.name),
            self.codec.encode("LeaderFill", fill),
            key=fill["leader"],
        )
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
        from horus.ops.testchain import V2Fill, emit_v2

        buy = fill["side"] == "BUY"
        shares, collateral = fill["shares_e6"], fill["collateral_e6"]
        emit_v2(
            self.rpc_url,
            self.emitter,
            V2Fill(
                order_hash=fill["order_hashes"][0],
                maker=fill["leader"],
                taker=self.COUNTERPARTY,
                side=0 if buy else 1,
                token_id=int(fill["token_id"]),
                maker_amount_filled=collateral if buy else shares,
                taker_amount_filled=shares if buy else collateral,
            ),
        )

    def flush(self) -> None:
        pass


@dataclass
class Children:
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / f"demo-{name}.log", "ab") as log:  # the child keeps its own copy of the descriptor
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "horus.cli.main", *argv],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

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


class Watch:
    """Per-topic end offsets from Kafka, and projection progress from the read model (one connection held)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.consumer = make_consumer(settings)
        self._open = ExitStack()
        self.conn = self._open.enter_context(queries.connect(settings))

    def topic_count(self, name: str) -> int:
        from horus.kafka.client import end_offsets

        return sum(end_offsets(self.consumer, self.settings.topic(name)).values())

    def table_counts(self) -> dict[str, int]:
        return queries.table_counts(self.conn, PROJECTION_TABLES)

    def reasons(self, followers: list[str]) -> dict[str, int]:
        return queries.decisions_by_reason(self.conn, followers)

    def copies_without_result(self, followers: list[str]) -> int:
        """COPY decisions of these followers whose intent has no terminal execution result yet."""
        return queries.copies_without_result(self.conn, followers)

    def per_follower(self, followers: list[str]) -> list:
        return queries.follower_summary(self.conn, followers)

    def projections_caught_up(self) -> bool:
        return queries.projection_caught_up(self.settings)

    def close(self) -> None:
        self.consumer.close()
        self._open.close()


def follower_table(counter: Watch, names: dict[str, str]) -> Table:
    table = Table(title="Per follower (paper venue)", title_justify="left")
    for column in (
        "follower",
        "copies",
        "fills",
        "skips by reason",
        "spent",
        "net shares (tokens)",
        "slippage vs leader",
        "fill seen -> result p50",
    ):
        table.add_column(column, justify="left" if column in ("follower", "skips by reason") else "right")
    for row in counter.per_follower(list(names)):
        skips = Counter(row["skips"] or [])
        table.add_row(
            names[row["follower"]],
            str(row["copies"]),
            str(row["fills"]),
            "\n".join(f"{reason} {n}" for reason, n in skips.most_common()) or "-",
            f"${int(row['spent_e6']) / 1e6:,.2f}",
            f"{int(row['net_shares_e6']) / 1e6:,.2f} ({row['tokens']})",
            "-" if row["slippage_bps"] is None else f"{float(row['slippage_bps']):+.0f} bps",
            "-" if row["latency_ms"] is None else f"{float(row['latency_ms']):,.0f} ms",
        )
    return table


@dataclass
class DemoInputs:
    seed: str
    followers: list[dict]  # {"name", "balance", limits...}
    follows: list[dict]  # FollowConfig fields with "follower" = a follower's name
    fills: list[dict]


def load_inputs(options: DemoOptions) -> DemoInputs:
    config = json.loads(options.follows.read_text())
    fills = [leader_fill_from_json(json.loads(line)) for line in options.fills.read_text().splitlines() if line.strip()]
    return DemoInputs(config.get("seed", "demo"), config["followers"], config["follows"], fills)


def start_venue(inputs: DemoInputs):
    """The demo's own CLOB simulator (40-80 ms replies) with one paper market per traded token, its book around
    the token's first price."""
    from horus.venue.paper import paper_market
    from horus.venue.simulator.clob import FaultConfig, MarketConfig, SimulatorConfig, run_simulator

    first_price: dict[str, str] = {}
    for fill in inputs.fills:
        first_price.setdefault(fill["token_id"], fill["price"])
    markets = [MarketConfig.model_validate(paper_market(token, price)) for token, price in first_price.items()]
    return run_simulator(SimulatorConfig(markets=markets, faults=FaultConfig(latency_ms=40, jitter_ms=40), seed=7))


def publish_configs(settings: Settings, inputs: DemoInputs, sim_url: str, run: str) -> tuple[dict[str, str], list]:
    """Follower accounts (keys in the credentials store, collateral on the simulator) and every follow as
    validated config changes. Returns follower address -> name, and the follow configs."""
    from horus.domain.config import config_change, config_key, parse_follow_config, parse_follower
    from horus.ops.paper import create_followers, fund

    people = create_followers(settings, [f["name"] for f in inputs.followers], f"{inputs.seed}-{run}")
    by_name = {p.name: p for p in people}
    fund(sim_url, [(by_name[f["name"]].address, Decimal(f["balance"])) for f in inputs.followers])
    changes, follows = [], []
    for spec in inputs.followers:
        limits = {k: v for k, v in spec.items() if k not in ("name", "balance")}
        person = by_name[spec["name"]]
        account = parse_follower({"follower": person.address, "credentials_ref": person.credentials_ref, **limits})
        changes.append(config_change("FOLLOWER", person.address, account, "demo"))
    for i, spec in enumerate(inputs.follows):
        follower = by_name[spec["follower"]].address
        # ids carry the run: a second demo must not find the first one's intents in the ledger
        follow = parse_follow_config(
            {"follow_id": f"demo-{run}-{spec['follower']}-{i + 1}", "max_fill_age_s": 600, **spec, "follower": follower}
        )
        follows.append(follow)
        changes.append(config_change("FOLLOW", follow.follow_id, follow, "demo"))
    codec, producer = default_codec(), make_producer(settings, log_level=3)
    for change in changes:
        produce_reliably(
            producer,
            settings.topic(CONFIG_CHANGES.name),
            codec.encode("ConfigChange", change),
            key=config_key(change["entity"], change["entity_id"]),
        )
    flush_or_raise(producer)
    return {p.address: p.name for p in people}, follows


def expected_candidates(follows: list, fills: list[dict]) -> int:
    """What the plan stage will fan the fills out to, by the plan stage's own functions."""
    graph = FollowGraph()
    for follow in follows:
        graph.upsert(Follow(follow.follow_id, follow.follower, follow.leader, follow.enabled))
    return sum(len(plan(fill, graph, now_us=0)[0]) for fill in fills)


def view(
    counts: dict[str, int],
    tables: dict[str, int],
    reasons: dict[str, int],
    expected: int,
    produced: int,
    total: int,
    progress: Progress,
    state: str,
) -> Group:
    stages = Table(title="Horus pipeline", title_justify="left")
    stages.add_column("stage")
    stages.add_column("topic")
    stages.add_column("events", justify="right")
    for stage, spec in STAGE_TOPICS:
        stages.add_row(stage, spec.name, f"{counts.get(spec.name, 0):,}")
    decisions = Table(title="Decisions", title_justify="left")
    decisions.add_column("outcome")
    decisions.add_column("count", justify="right")
    for reason, n in sorted(reasons.items(), key=lambda kv: (kv[0] != "COPY", -kv[1])):
        decisions.add_row(reason, f"{n:,}")
    projections = Table(title="Postgres projections", title_justify="left")
    projections.add_column("table")
    projections.add_column("rows", justify="right")
    for table, rows in tables.items():
        projections.add_row(table, f"{rows:,}")
    progress.update(progress.task_ids[0], completed=produced, total=total)
    progress.update(progress.task_ids[1], completed=counts.get(COPY_CANDIDATES.name, 0), total=expected)
    return Group(progress, Columns([stages, decisions, projections]), f"[bold]{state}[/]")


def run_demo(settings: Settings, options: DemoOptions, console: Console) -> int:
    stack = LocalStack(settings)
    was_up = all(row.healthy for row in stack.status() if row.name in INFRASTRUCTURE)
    console.print("[bold]Horus demo[/]: starting the local stack (Kafka, PostgreSQL, anvil)...")
    env = stack.up(INFRASTRUCTURE, progress=lambda line: console.print(f"  {line}"))
    run = uuid.uuid4().hex[:6]
    inputs = load_inputs(options)
    sim = start_venue(inputs)
    console.print(f"  CLOB simulator (paper venue) on {sim.url}: {len(sim.state.markets)} markets, 40-80 ms replies")
    settings = settings.model_copy(
        update={
            "kafka_bootstrap": env["HORUS_KAFKA_BOOTSTRAP"],
            "database_url": env["HORUS_DATABASE_URL"],
            "eth_rpc_url": env["HORUS_ETH_RPC_URL"],
            "topic_prefix": f"demo.{run}.",
            "app_id": f"horus-demo-{run}",
            "clob_url": sim.url,
            "gamma_url": "",
            "venue_mode": "paper",
            "balance_source": "venue",
            "credentials_key": settings.credentials_key or SecretStr(generate_key()),
        }
    )
    children = Children()
    counter = None
    try:
        from horus.db.engine import upgrade

        create_topics(settings)
        upgrade(settings)
        console.print(f"  topics created under prefix [cyan]{settings.topic_prefix}[/]; database migrated")
        names, follows = publish_configs(settings, inputs, sim.url, run)
        console.print(
            f"  {len(names)} followers (keys in the encrypted credentials store, funded on the venue), "
            f"{len(follows)} follows on config.changes"
        )
        child_env = {**os.environ, **settings.as_env()}
        log_dir = settings.state_dir / "logs"
        children.start("worker", ["worker", "--stages", "plan,decide,execute,settle"], child_env, log_dir)
        children.start("projections", ["projections", "run"], child_env, log_dir)
        feed: FillFeed = KafkaFeed(settings)
        if options.source == "chain":
            feed = start_chain_source(settings, console, children, child_env, log_dir)
        feed = MarketMoves(feed, sim.url)
        expected = expected_candidates(follows, inputs.fills)
        counter = Watch(settings)
        outcome = _drive(settings, options, console, children, counter, feed, inputs.fills, expected, list(names))
        if outcome == 0:
            # wide enough for the reasons column even when the output is not a terminal (80 columns)
            Console(file=console.file, width=max(console.width, 130)).print(follower_table(counter, names))
        return outcome
    finally:
        children.stop()
        sim.stop()
        if counter is not None:
            counter.close()
        if was_up and not options.keep_stack:  # the stack stays; this run's topics need not
            from horus.kafka.admin import delete_topics_with_prefix

            delete_topics_with_prefix(settings, settings.topic_prefix)
        if not was_up and not options.keep_stack:
            stack.down(progress=lambda line: console.print(f"  {line}"))


class MarketMoves:
    """Before a leader fill goes out, the simulated market moves to the price the leader traded at, and the
    fill is stamped now (a replay of old fills would otherwise be skipped as too old)."""

    def __init__(self, feed: FillFeed, sim_url: str) -> None:
        import httpx

        self.feed, self.http, self.sim_url = feed, httpx.Client(timeout=10), sim_url

    def send(self, fill: dict) -> None:
        from horus.ops.paper import move_book

        move_book(self.sim_url, fill["token_id"], fill["price"], self.http)
        now = time.time_ns() // 1000
        self.feed.send({**fill, "envelope": {**fill["envelope"], "occurred_at_us": now}})

    def flush(self) -> None:
        self.feed.flush()


def start_chain_source(settings, console, children, child_env, log_dir) -> ChainFeed:
    from horus.ops.stack.anvil import rpc
    from horus.ops.testchain import deploy_emitters

    console.print("  deploying the test exchange contracts on anvil (forge + solc-js, cached)...")
    emitters = deploy_emitters(settings.eth_rpc_url, cache_dir=settings.cache_dir)
    head = int(rpc(settings.eth_rpc_url, "eth_blockNumber"), 16)
    children.start(
        "ingest",
        ["ingest", "chain", "--exchange", emitters.v1, "--exchange", emitters.v2, "--from-block", str(head + 1)],
        child_env,
        log_dir,
    )
    console.print(f"  leader trades go to {emitters.v2}; `horus ingest chain` follows them over WebSocket")
    return ChainFeed(settings.eth_rpc_url, emitters.v2)


def _drive(settings, options, console, children, counter, feed, fills, expected, followers: list[str]) -> int:
    progress = Progress(TextColumn("{task.description:>18}"), BarColumn(), TextColumn("{task.completed}/{task.total}"))
    progress.add_task("leader fills sent", total=len(fills))
    progress.add_task("copy candidates", total=expected)
    started = time.monotonic()
    produced, quiet_since, last_seen = 0, None, None
    outcome = None
    with Live(console=console, refresh_per_second=8, transient=False) as live:
        while outcome is None:
            # send fills at the chosen rate, then watch
            due = (
                len(fills)
                if options.rate <= 0
                else min(len(fills), int((time.monotonic() - started) * options.rate) + 1)
            )
            while produced < due:
                feed.send(fills[produced])
                produced += 1
            if produced == len(fills):
                feed.flush()
            children.check_alive()
            counts = {spec.name: counter.topic_count(spec.name) for _, spec in STAGE_TOPICS}
            tables = counter.table_counts()
            reasons = counter.reasons(followers)
            done = (
                produced == len(fills)
                and counts[COPY_CANDIDATES.name] >= expected
                and counts[COPY_DECISIONS.name] >= counts[COPY_CANDIDATES.name]
                and counter.projections_caught_up()
                and counter.copies_without_result(followers) == 0
            )
            snapshot = (tuple(counts.values()), tuple(tables.values()))
            quiet_since = (quiet_since or time.monotonic()) if done and snapshot == last_seen else None
            last_seen = snapshot
            finished = quiet_since is not None and time.monotonic() - quiet_since > 2.0
            state = "every fill went through every stage into Postgres" if finished else "running..."
            if options.follow and finished:
                state += " (--follow: waiting for more; Ctrl-C to stop)"
            live.update(view(counts, tables, reasons, expected, produced, len(fills), progress, state))
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
    copies = reasons.get("COPY", 0)
    console.print(
        f"[green]done[/] in {time.monotonic() - started:.1f}s: {len(fills)} leader fills, "
        f"{counts[COPY_CANDIDATES.name]} candidates, {counts[COPY_DECISIONS.name]} decisions "
        f"({copies} copies, {counts[COPY_DECISIONS.name] - copies} skips), "
        f"{counts[EXECUTION_RESULTS.name]} execution results, "
        f"{counts[SETTLEMENT_EVENTS.name]} settlement events, all folded into Postgres"
    )
    if options.keep_stack:
        console.print(
            f"inspect them: HORUS_TOPIC_PREFIX={settings.topic_prefix} horus tap copy.decisions --from-beginning"
        )
    return 0
