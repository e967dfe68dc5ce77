"""End-to-end latency: leader fill observed -> order POST received by the venue, at a stated load.

The stages run as a real `horus worker --runner confluent --stages plan,decide,execute` process (`--split`: plan,decide
and execute in two processes), execute in paper mode against the CLOB simulator in this process; paper followers
(keys in the encrypted credentials store, funded on the simulator, balances read from the venue like the demo's).
Per phase (venue latency L, fan-out F): one leader, followed by F followers with fixed $2 FAK copies, fills at a steady
`--rate` for `--seconds` after a warm-up (API keys derived, connections open, market data cached).

Times are wall clock on one host: a fill is "observed" when it is produced to leader.fills (its envelope's
produced_at_us, set right before the produce, as ingest does); candidates and decisions carry their stage's
produced_at_us; "POST sent" is when the simulator received the order (its order log's received_us, before the
simulated latency). Orders are joined to fills through the decision (order metadata = sha256(intent id)).
Reference, same run, same load: a probe produced beside each fill (same producer, same key, a topic with as many
partitions) and the moment a plain consumer's poll() returns it.

    .venv/bin/python bench/latency.py [--rate 5] [--seconds 20] [--fanout 1,20] [--latency-ms 0,60] [--split]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from decide import CONDITION, TOKEN, fill, leader  # noqa: E402
from execute import pct  # noqa: E402

from horus.codec import default_codec  # noqa: E402
from horus.domain.config import config_change, parse_follow_config  # noqa: E402
from horus.kafka.admin import create_topics, create_topics_named, delete_topics_with_prefix  # noqa: E402
from horus.kafka.client import assign_from_beginning, make_consumer, make_producer, poll_batch  # noqa: E402
from horus.ops.chaos import Children, produce_configs, wait_for_groups  # noqa: E402
from horus.ops.paper import create_followers, fund, set_faults, venue_orders  # noqa: E402
from horus.settings import Settings, load_settings  # noqa: E402
from horus.topics import COPY_CANDIDATES, COPY_DECISIONS, LEADER_FILLS  # noqa: E402
from horus.venue.polymarket.orders import intent_metadata  # noqa: E402

PROBE = "bench.latency.probe"


class Probes(threading.Thread):
    """The reference: a plain group-less consumer on the probe topic, noting when poll() hands it each probe."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="latency-probes", daemon=True)
        self.consumer = make_consumer(settings)
        assign_from_beginning(self.consumer, [settings.topic(PROBE)])
        self.seen: dict[str, float] = {}  # fill id -> epoch seconds
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            message = self.consumer.poll(0.1)
            if message is not None and message.error() is None:
                self.seen[message.value().decode()] = time.time()
        self.consumer.close()


class Fills:
    """Leader fills at a steady rate, each with its probe; remembers every fill's observed time (seconds)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = make_producer(settings, **{"linger.ms": 1})  # as the ingest sink's
        self.codec = default_codec()
        self.observed: dict[str, float] = {}
        self.n = 0

    def produce(self, who: str, rate: float, seconds: float) -> list[str]:
        ids, started = [], time.monotonic()
        for i in range(max(1, round(rate * seconds))):
            time.sleep(max(0.0, started + i / rate - time.monotonic()))
            self.n += 1
            record = fill(self.n, who, time.time_ns() // 1000)  # envelope.produced_at_us = now
            fill_id = record["envelope"]["event_id"]
            self.producer.produce(
                self.settings.topic(LEADER_FILLS.name), self.codec.encode("LeaderFill", record), key=who
            )
            self.producer.produce(self.settings.topic(PROBE), fill_id.encode(), key=who)
            self.producer.poll(0)
            self.observed[fill_id] = record["envelope"]["produced_at_us"] / 1e6
            ids.append(fill_id)
        self.producer.flush(10)
        return ids


def wait_for_orders(sim, count: int, children: Children, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while len(sim.state.orders) < count and time.monotonic() < deadline:
        children.restart_crashed()
        if children.crashes:
            raise RuntimeError(f"a worker exited: {children.crashes}; see {children.log_dir}")
        time.sleep(0.1)
    return len(sim.state.orders)


def read_topic(settings: Settings, spec, count: int, timeout: float = 60.0) -> list[dict]:
    """The first `count` records of a topic (all partitions), decoded."""
    consumer, codec = make_consumer(settings), default_codec()
    assign_from_beginning(consumer, [settings.topic(spec.name)])
    records, deadline = [], time.monotonic() + timeout
    while len(records) < count and time.monotonic() < deadline:
        records += [codec.decode(m.value())[1] for m in poll_batch(consumer, 10_000, 0.2)]
    consumer.close()
    return records


def spread(seconds: list[float]) -> str:
    return (
        " ".join(
            f"{label} {pct(seconds, q):7,.1f}"
            for label, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
        )
        + " ms"
    )


def analyse(
    latency: float,
    fanout: int,
    fill_ids: list[str],
    rate: float,
    seconds: float,
    observed: dict,
    probes: dict,
    candidates: list[dict],
    decisions: list[dict],
    orders: list[dict],
) -> dict:
    """Print one phase's figures (and return them): each order traced back to its fill."""
    ours = set(fill_ids)
    candidate_at = {
        c["envelope"]["event_id"]: c["envelope"]["produced_at_us"] / 1e6
        for c in candidates
        if c["leader_fill_id"] in ours
    }
    mine = [d for d in decisions if d["leader_fill_id"] in ours]
    by_metadata = {intent_metadata(d["intent_id"]): d for d in mine if d["action"] == "COPY"}
    hops: dict[str, list[float]] = {
        "fill -> POST received": [],
        "fill -> candidate produced": [],
        "candidate -> decision produced": [],
        "decision -> POST received": [],
    }
    last_post: dict[str, float] = {}
    for order in orders:
        d = by_metadata.get(order["metadata"])
        if d is None:
            continue
        fill_at, posted = observed[d["leader_fill_id"]], order["received_us"] / 1e6
        candidate, decided = candidate_at[d["candidate_id"]], d["envelope"]["produced_at_us"] / 1e6
        for name, value in zip(hops, (posted - fill_at, candidate - fill_at, decided - candidate, posted - decided)):
            hops[name].append(value)
        last_post[d["leader_fill_id"]] = max(last_post.get(d["leader_fill_id"], 0.0), posted)
    if fanout > 1:
        hops[f"fill -> last of its {fanout} POSTs"] = [t - observed[f] for f, t in last_post.items()]
    reference = [probes[f] - observed[f] for f in fill_ids if f in probes]
    skips = sum(d["action"] != "COPY" for d in mine)
    print(
        f"venue latency {latency:g} ms, {rate:g} fills/s x {fanout} follower(s) = {rate * fanout:g} orders/s for "
        f"{seconds:g} s: {len(fill_ids)} fills, {len(candidate_at)} candidates, {len(mine)} decisions "
        f"({skips} not COPY), {len(hops['fill -> POST received'])} orders"
    )
    for name, values in hops.items():
        print(f"  {name:38s} {spread(values)}")
    print(f"  {'reference: Kafka produce -> poll() sees':38s} {spread(reference)}")
    ratio = pct(hops["fill -> POST received"], 0.5) / pct(reference, 0.5)
    print(f"  fill -> POST p50 = {ratio:,.0f} x the reference p50")
    return {
        "latency_ms": latency,
        "fanout": fanout,
        "fills": len(fill_ids),
        "orders": len(hops["fill -> POST received"]),
        **{
            name: {q: round(pct(v, p), 1) for q, p in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))}
            for name, v in [*hops.items(), ("reference", reference)]
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=5.0, help="leader fills per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per phase")
    parser.add_argument("--warmup-s", type=float, default=2.0)
    parser.add_argument("--fanout", default="1,20", help="followers per fill, one phase each")
    parser.add_argument("--latency-ms", default="0,60", help="simulated venue latency, one set of phases each")
    parser.add_argument("--split", action="store_true", help="execute in its own worker process")
    args = parser.parse_args()
    try:
        fanouts = [int(f) for f in args.fanout.split(",")]
        latencies = [float(x) for x in args.latency_ms.split(",")]
    except ValueError as exc:
        parser.error(f"--fanout takes whole numbers and --latency-ms numbers, comma-separated: {exc}")
    if min(fanouts) < 1 or min(latencies) < 0 or args.rate <= 0 or args.seconds <= 0 or args.warmup_s <= 0:
        parser.error("--fanout must be >= 1, --latency-ms >= 0, --rate, --seconds and --warmup-s > 0")

    from pydantic import SecretStr

    from horus.credentials import generate_key
    from horus.db.engine import scratch_database
    from horus.venue.simulator.clob import MarketConfig, SimulatorConfig, TokenConfig, run_simulator

    began = time.monotonic()
    base = load_settings()
    run = uuid.uuid4().hex[:6]
    market = MarketConfig(
        condition_id=CONDITION,
        tokens=[TokenConfig(token_id=TOKEN, price="0.5")],
        tick_size="0.01",
        levels=5,
        level_size=10**9,
        replenish=True,
    )
    with (
        run_simulator(SimulatorConfig(markets=[market])) as sim,
        scratch_database(base, f"horus_bench_latency_{run}") as db,
    ):
        settings = db.model_copy(
            update={
                "topic_prefix": f"bench-lat-{run}.",
                "app_id": f"bench-lat-{run}",
                "credentials_key": SecretStr(generate_key()),
                "venue_mode": "paper",
                "clob_url": sim.url,
                "gamma_url": "",
                "balance_source": "venue",
            }
        )
        create_topics(settings)
        create_topics_named(settings, [settings.topic(PROBE)])  # as many partitions as leader.fills
        log_dir = settings.state_dir / "logs" / f"bench-latency-{run}"
        log_dir.mkdir(parents=True, exist_ok=True)
        children = Children({**os.environ, **settings.as_env(), "PYTHONUNBUFFERED": "1"}, log_dir)
        probes = Probes(settings)
        try:
            changes = []
            for fanout in fanouts:  # leader(F) is followed by F followers of its own
                followers = create_followers(settings, [f"l{fanout}-{i}" for i in range(fanout)], f"lat{run}{fanout}")
                fund(sim.url, [(f.address, Decimal(1_000_000)) for f in followers])
                for i, f in enumerate(followers):
                    follow = parse_follow_config(
                        {
                            "follow_id": f"lat-{fanout}-{i}",
                            "follower": f.address,
                            "leader": leader(fanout),
                            "sizing": {"mode": "fixed", "amount": "2"},
                            "max_fill_age_s": 3600,
                        }
                    )
                    changes += [
                        config_change("FOLLOWER", f.address, f.config(), "bench"),
                        config_change("FOLLOW", follow.follow_id, follow, "bench"),
                    ]
            produce_configs(settings, changes)
            for i, stages in enumerate(["plan,decide", "execute"] if args.split else ["plan,decide,execute"]):
                children.start(f"worker-{i}", ["worker", "--stages", stages, "--runner", "confluent"])
            wait_for_groups(settings, {settings.app_id: 1, f"{settings.app_id}-execute": 1}, children, 90)
            probes.start()
            fills = Fills(settings)
            orders = 0
            for fanout in fanouts:  # warm-up: keys derived, sockets open, market data and balances cached
                fills.produce(leader(fanout), args.rate, args.warmup_s)
                orders += fanout * max(1, round(args.rate * args.warmup_s))
            if wait_for_orders(sim, orders, children) < orders:
                raise RuntimeError(f"warm-up: only {len(sim.state.orders)} of {orders} orders; see {log_dir}")
            phases = []
            for latency in latencies:
                set_faults(sim.url, {"latency_ms": latency})
                for fanout in fanouts:
                    time.sleep(1.0)  # an idle pipeline between phases
                    ids = fills.produce(leader(fanout), args.rate, args.seconds)
                    orders += fanout * len(ids)
                    wait_for_orders(sim, orders, children)
                    phases.append((latency, fanout, ids))
            candidates = read_topic(settings, COPY_CANDIDATES, orders)
            decisions = read_topic(settings, COPY_DECISIONS, orders)
        finally:
            probes.stop.set()
            children.stop_all()
            delete_topics_with_prefix(base, settings.topic_prefix)
        log = venue_orders(sim.url)["orders"]
        print(
            f"load: {args.rate:g} leader fills/s for {args.seconds:g} s per phase after a {args.warmup_s:g} s "
            f"warm-up; {'two worker processes (plan,decide | execute)' if args.split else 'one worker process'}, "
            f"confluent runner, paper venue in this process; load average {os.getloadavg()[0]:.1f}"
        )
        report = [
            analyse(
                latency, fanout, ids, args.rate, args.seconds, fills.observed, probes.seen, candidates, decisions, log
            )
            for latency, fanout, ids in phases
        ]
    print(json.dumps({"benchmark": "latency", "seconds": round(time.monotonic() - began), "phases": report}))


if __name__ == "__main__":
    main()
