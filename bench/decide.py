"""plan + decide throughput against the raw confluent reference, same run, plus a 5,000-follower fan-out.

Each stage runs as a real `horus worker --runner confluent` process on preloaded input; market rules and
books come from the CLOB simulator (in this process), balances are fixed (`balance_source=fixed`).
Prints msg/s and the ratio to the reference (DESIGN goal: each stage >= 25%) for:
- plan: leader fills -> candidates (one follow per leader); decide: preloaded candidates -> decisions;
- decide, COPY-heavy: fresh fills, caps that never bind (every candidate sized, priced, reserved);
- decide, SKIP-heavy: the market is paused (the guard answers before any sizing);
- fan-out: one leader fill with 5,000 followers -> all 5,000 decisions on copy.decisions, seconds.
Run: `.venv/bin/python bench/decide.py --messages 20000` with the stack up.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kafka_passthrough import run_reference  # noqa: E402
from stage_passthrough import worker_rate  # noqa: E402

from horus.codec import default_codec  # noqa: E402
from horus.domain import ids  # noqa: E402
from horus.domain.config import config_change, config_key, parse_follow_config, parse_follower  # noqa: E402
from horus.domain.control import control_command, control_key  # noqa: E402
from horus.domain.events import envelope  # noqa: E402
from horus.kafka.admin import create_topics, delete_topics  # noqa: E402
from horus.kafka.client import (  # noqa: E402
    assign_from_beginning,
    flush_or_raise,
    make_consumer,
    make_producer,
    poll_batch,
    produce_reliably,
)
from horus.settings import Settings, load_settings  # noqa: E402
from horus.topics import ALL_TOPICS, CONFIG_CHANGES, CONTROL_COMMANDS, COPY_CANDIDATES, COPY_DECISIONS, LEADER_FILLS  # noqa: E402
from horus.venue.simulator.clob import MarketConfig, SimulatorConfig, TokenConfig, run_simulator  # noqa: E402

TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
CONDITION = "0x" + "c0" * 32


def follower(i: int) -> str:
    return f"0x{i + 1:040x}"


def leader(i: int) -> str:
    return f"0x{0xAB0000 + i:040x}"


def write_configs(settings: Settings, followers: int, leader_of) -> None:
    codec, producer = default_codec(), make_producer(settings, **{"linger.ms": 20})
    topic = settings.topic(CONFIG_CHANGES.name)
    for i in range(followers):
        address = follower(i)
        changes = [
            config_change("FOLLOWER", address, parse_follower({"follower": address}), "bench"),
            config_change(
                "FOLLOW",
                f"f{i}",
                parse_follow_config(
                    {
                        "follow_id": f"f{i}",
                        "follower": address,
                        "leader": leader_of(i),
                        "sizing": {"mode": "fixed", "amount": "2"},
                        "max_fill_age_s": 3600,
                    }
                ),
                "bench",
            ),
        ]
        for change in changes:
            produce_reliably(
                producer,
                topic,
                codec.encode("ConfigChange", change),
                key=config_key(change["entity"], change["entity_id"]),
            )
    flush_or_raise(producer, 120)


def fill(n: int, who: str, now_us: int) -> dict:
    tx = "0x" + ids.make_id("bench-tx", n, now_us)
    return {
        "envelope": envelope(ids.leader_fill_id(tx, who, TOKEN, "BUY"), "bench", now_us),
        "leader": who,
        "exchange": "0x" + "0e" * 20,
        "tx_hash": tx,
        "block_number": n,
        "log_index": 0,
        "token_id": TOKEN,
        "condition_id": CONDITION,
        "side": "BUY",
        "shares_e6": 20_000_000,
        "collateral_e6": 10_000_000,
        "price": "0.5",
        "fee_e6": 0,
        "role": "TAKER",
        "order_hashes": [],
    }


def preload_fills(settings: Settings, count: int, leaders: int) -> None:
    codec, producer = default_codec(), make_producer(settings, **{"linger.ms": 20})
    now = time.time_ns() // 1000
    for n in range(count):
        record = fill(n, leader(n % leaders), now)
        produce_reliably(
            producer, settings.topic(LEADER_FILLS.name), codec.encode("LeaderFill", record), key=record["leader"]
        )
    flush_or_raise(producer, 120)


def preload_candidates(settings: Settings, count: int, leaders: int) -> None:
    """The candidates plan would make of `count` fills, one follow per leader (decide measured alone)."""
    codec, producer = default_codec(), make_producer(settings, **{"linger.ms": 20})
    now = time.time_ns() // 1000
    for n in range(count):
        i = n % leaders
        f = fill(n, leader(i), now)
        cand_id = ids.candidate_id(f["envelope"]["event_id"], f"f{i}")
        record = {
            "envelope": envelope(cand_id, "plan", now, causation_id=f["envelope"]["event_id"]),
            "leader_fill_id": f["envelope"]["event_id"],
            "follow_id": f"f{i}",
            "follower": follower(i),
            "leader": f["leader"],
            "token_id": TOKEN,
            "side": "BUY",
            "leader_shares_e6": f["shares_e6"],
            "leader_collateral_e6": f["collateral_e6"],
            "leader_price": "0.5",
            "condition_id": CONDITION,
        }
        produce_reliably(
            producer,
            settings.topic(COPY_CANDIDATES.name),
            codec.encode("CopyCandidate", record),
            key=record["follower"],
        )
    flush_or_raise(producer, 120)


def pause_market(settings: Settings) -> None:
    producer = make_producer(settings)
    command = control_command("MARKET", "PAUSE", CONDITION, reason="bench: SKIP-heavy mix")
    produce_reliably(
        producer,
        settings.topic(CONTROL_COMMANDS.name),
        default_codec().encode("ControlCommand", command),
        key=control_key("MARKET", CONDITION),
    )
    flush_or_raise(producer)


def fresh_settings(base: Settings, sim_url: str) -> Settings:
    run = uuid.uuid4().hex[:6]
    settings = base.model_copy(
        update={
            "topic_prefix": f"bench.{run}.",
            "app_id": f"bench-{run}",
            "clob_url": sim_url,
            "gamma_url": "",
            "balance_source": "fixed",
            "fixed_balance": "1000000",
        }
    )
    create_topics(settings)
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--fanout", type=int, default=5_000)
    args = parser.parse_args()
    base = load_settings()
    reference = run_reference(base, args.messages * 5)
    print(f"reference (confluent consume -> decode -> encode -> produce): {reference.msgs_per_s:,.0f} msg/s")
    report = {"benchmark": "decide", "reference_msgs_per_s": round(reference.msgs_per_s)}
    market = MarketConfig(
        condition_id=CONDITION,
        tokens=[TokenConfig(token_id=TOKEN, price="0.5")],
        tick_size="0.01",
        levels=5,
        level_size=10**9,
        replenish=True,
    )
    n = args.messages
    with run_simulator(SimulatorConfig(markets=[market])) as sim:
        cases = [
            ("plan", "plan", COPY_CANDIDATES, False),
            ("decide_copy", "decide", COPY_DECISIONS, False),
            ("decide_skip", "decide", COPY_DECISIONS, True),
        ]
        for name, stages, out, skip in cases:
            settings = fresh_settings(base, sim.url)
            try:
                write_configs(settings, 500, lambda i: leader(i))  # one follow per leader: candidates = fills
                if skip:
                    pause_market(settings)
                if name == "plan":
                    preload_fills(settings, n, 500)
                else:
                    preload_candidates(settings, n, 500)
                rate, startup = worker_rate(settings, stages, "confluent", out, n)
            finally:
                delete_topics(settings, [settings.topic(spec.name) for spec in ALL_TOPICS])
            ratio = rate / reference.msgs_per_s
            label = {
                "plan": "plan (fills -> candidates)",
                "decide_copy": "decide, COPY-heavy",
                "decide_skip": "decide, SKIP-heavy (market paused)",
            }[name]
            print(
                f"{label}: {rate:,.0f} msg/s ({ratio:.0%} of the reference; goal >= 25%), "
                f"first output {startup:.1f}s after start"
            )
            report[f"{name}_msgs_per_s"], report[f"{name}_ratio"] = round(rate), round(ratio, 3)

        settings = fresh_settings(base, sim.url)
        try:
            write_configs(settings, args.fanout, lambda i: leader(0))
            env = {**os.environ, **settings.as_env()}
            worker = subprocess.Popen(
                [sys.executable, "-m", "horus.cli.main", "worker", "--stages", "plan,decide", "--loglevel", "warning"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            consumer = make_consumer(settings)
            assign_from_beginning(consumer, [settings.topic(COPY_DECISIONS.name)])
            try:
                # warm up: one fill decided end to end (group joined, books rebuilt, market data cached)
                for round_, count in ((0, args.fanout), (1, args.fanout)):
                    preload_fills_start = time.perf_counter()
                    codec, producer = default_codec(), make_producer(settings)
                    record = fill(10**6 + round_, leader(0), time.time_ns() // 1000)
                    produce_reliably(
                        producer,
                        settings.topic(LEADER_FILLS.name),
                        codec.encode("LeaderFill", record),
                        key=record["leader"],
                    )
                    flush_or_raise(producer)
                    seen = 0
                    while seen < count and time.perf_counter() - preload_fills_start < 300:
                        seen += len(poll_batch(consumer, 10_000, 0.05))
                    seconds = time.perf_counter() - preload_fills_start
                    if seen < count:
                        raise RuntimeError(f"fan-out: only {seen} of {count} decisions")
            finally:
                worker.terminate()
                worker.wait(30)
                consumer.close()
        finally:
            delete_topics(settings, [settings.topic(spec.name) for spec in ALL_TOPICS])
        print(
            f"fan-out: one fill, {args.fanout:,} followers -> {args.fanout:,} decisions in {seconds:.2f}s (warm worker)"
        )
        report["fanout_followers"], report["fanout_seconds"] = args.fanout, round(seconds, 3)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
