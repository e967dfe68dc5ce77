"""Kill switch: `horus kill` at t0 while a burst of COPYs is in flight -> the last POST the venue receives.

One `horus worker --stages execute` process (paper mode) against the CLOB simulator in this process, with the
venue answering every request after `--latency-ms`. `--followers` x `--copies` COPY decisions are produced at
once; each follower's orders go out one after another (its lane), the followers side by side, so the burst lasts
`--copies` x latency. Once `--kill-after` orders have reached the venue, the kill switch is produced on
control.commands exactly as `horus kill` does (t0 = just before the produce). Measured, from the venue's own order
log (its receive time, stamped before the simulated latency): the POSTs received at or after t0, and the time from
t0 to the last one. Everything not sent must end NOT_FILLED "KILLED: ..." on execution.results.

Reference, same run: t0 -> the moment a plain consumer of control.commands sees the command (no reader can act
sooner). Goal (DESIGN section 4): <= 250 ms from t0 to the last POST; the best peer measured 460 ms.

    .venv/bin/python bench/kill_switch.py [--followers 100] [--copies 25] [--latency-ms 100] [--kill-after 300]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from horus.codec import default_codec  # noqa: E402
from horus.domain import ids  # noqa: E402
from horus.domain.config import config_change  # noqa: E402
from horus.domain.control import control_command, control_key  # noqa: E402
from horus.kafka.admin import create_topics, delete_topics_with_prefix  # noqa: E402
from horus.kafka.client import (  # noqa: E402
    assign_from_beginning,
    flush_or_raise,
    make_consumer,
    make_producer,
    poll_batch,
    produce_reliably,
)
from horus.ops.chaos import Children, produce_configs, wait_for_groups  # noqa: E402
from horus.ops.paper import create_followers, fund  # noqa: E402
from horus.settings import load_settings  # noqa: E402
from horus.topics import CONTROL_COMMANDS, COPY_DECISIONS, EXECUTION_RESULTS  # noqa: E402

CONDITION = "0x" + "4b" * 32
TOKEN = "4242424242424242424242424242424242424242424242424242424242424242424242424242"


def copy_decision(follower: str, n: int, run: str, now_us: int) -> dict:
    from horus.domain.events import envelope

    follow_id, fill_id = f"kill-{run}-{follower[:10]}", ids.make_id("kill-fill", run, n)
    candidate = ids.candidate_id(fill_id, follow_id)
    return {
        "envelope": envelope(
            ids.decision_id(candidate), "decide", now_us, causation_id=candidate, produced_at_us=now_us
        ),
        "candidate_id": candidate,
        "follow_id": follow_id,
        "follower": follower,
        "leader_fill_id": fill_id,
        "action": "COPY",
        "intent_id": ids.intent_id(follow_id, fill_id),
        "token_id": TOKEN,
        "side": "BUY",
        "size_e6": 4_000_000,
        "worst_price": "0.55",
        "order_type": "FAK",
        "expires_at_us": now_us + 120_000_000,
        "reason_code": None,
        "reason_detail": None,
        "condition_id": CONDITION,
    }


class ControlWatch(threading.Thread):
    """The reference: a plain consumer of control.commands noting when poll() hands it the kill."""

    def __init__(self, settings) -> None:
        super().__init__(name="control-watch", daemon=True)
        self.consumer = make_consumer(settings)
        assign_from_beginning(self.consumer, [settings.topic(CONTROL_COMMANDS.name)])
        self.seen_at: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and self.seen_at is None:
            message = self.consumer.poll(0.05)
            if message is not None and message.error() is None:
                self.seen_at = time.time()
        self.consumer.close()


def results_of(settings, intents: set[str], timeout: float) -> dict[str, dict]:
    consumer, codec = make_consumer(settings), default_codec()
    assign_from_beginning(consumer, [settings.topic(EXECUTION_RESULTS.name)])
    latest: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    terminal = {"FILLED", "PARTIAL", "NOT_FILLED", "REJECTED"}
    while time.monotonic() < deadline and not all(latest.get(i, {}).get("status") in terminal for i in intents):
        for m in poll_batch(consumer, 10_000, 0.2):
            record = codec.decode(m.value())[1]
            latest[record["intent_id"]] = record
    consumer.close()
    return latest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=100)
    parser.add_argument("--copies", type=int, default=25, help="COPY decisions per follower")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="the venue's answer time")
    parser.add_argument("--kill-after", type=int, default=300, help="orders received before the kill")
    args = parser.parse_args()
    total = args.followers * args.copies
    if total < 2000 or not 0 < args.kill_after < total // 2:
        parser.error("at least 2,000 COPYs (followers x copies), and the kill before half of them is sent")

    from pydantic import SecretStr

    from horus.credentials import generate_key
    from horus.db.engine import scratch_database
    from horus.venue.simulator.clob import MarketConfig, SimulatorConfig, TokenConfig, run_simulator

    base, run = load_settings(), uuid.uuid4().hex[:6]
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
        scratch_database(base, f"horus_bench_kill_{run}") as db,
    ):
        settings = db.model_copy(
            update={
                "topic_prefix": f"bench-kill-{run}.",
                "app_id": f"bench-kill-{run}",
                "venue_mode": "paper",
                "credentials_key": SecretStr(generate_key()),
                "clob_url": sim.url,
                "gamma_url": "",
                "execute_max_in_flight": total + 100,
            }
        )
        create_topics(settings)
        log_dir = settings.state_dir / "logs" / f"bench-kill-{run}"
        log_dir.mkdir(parents=True, exist_ok=True)
        children = Children({**os.environ, **settings.as_env(), "PYTHONUNBUFFERED": "1"}, log_dir)
        watch = ControlWatch(settings)
        try:
            followers = create_followers(settings, [f"k{i}" for i in range(args.followers)], f"kill{run}")
            fund(sim.url, [(f.address, Decimal(1_000_000)) for f in followers])
            produce_configs(settings, [config_change("FOLLOWER", f.address, f.config(), "bench") for f in followers])
            children.start("execute", ["worker", "--stages", "execute"])
            wait_for_groups(settings, {f"{settings.app_id}-execute": 1}, children, 90)
            codec, producer = default_codec(), make_producer(settings, log_level=3)
            # warm-up: one order per follower (API keys derived, sockets open, market data cached)
            warm = [copy_decision(f.address, 10**6 + i, run, time.time_ns() // 1000) for i, f in enumerate(followers)]
            burst = [
                copy_decision(f.address, n, run, time.time_ns() // 1000) for n in range(args.copies) for f in followers
            ]
            for d in warm:
                produce_reliably(
                    producer, settings.topic(COPY_DECISIONS.name), codec.encode("CopyDecision", d), key=d["follower"]
                )
            flush_or_raise(producer)
            results_of(settings, {d["intent_id"] for d in warm}, 120)
            sim.state.move_book(TOKEN, Decimal("0.5"))
            set_latency = {"latency_ms": args.latency_ms}
            import httpx

            httpx.post(f"{sim.url}/_sim/faults", json=set_latency, timeout=10).raise_for_status()
            watch.start()
            before = len(sim.state.orders)
            for d in burst:
                produce_reliably(
                    producer, settings.topic(COPY_DECISIONS.name), codec.encode("CopyDecision", d), key=d["follower"]
                )
            flush_or_raise(producer)
            deadline = time.monotonic() + 120
            while len(sim.state.orders) - before < args.kill_after and time.monotonic() < deadline:
                time.sleep(0.002)
            command = control_command(
                "GLOBAL", "KILL", reason="bench: kill switch", issued_by="bench", occurred_at_us=time.time_ns() // 1000
            )
            t0 = time.time()
            produce_reliably(
                producer,
                settings.topic(CONTROL_COMMANDS.name),
                codec.encode("ControlCommand", command),
                key=control_key("GLOBAL", None),
            )
            flush_or_raise(producer)
            sent_at_kill = len(sim.state.orders) - before
            latest = results_of(settings, {d["intent_id"] for d in burst}, 180)
        finally:
            watch.stop.set()
            children.stop_all()
            delete_topics_with_prefix(base, settings.topic_prefix)
        metadata = {d["intent_id"] for d in burst}
        from horus.venue.polymarket.orders import intent_metadata

        ours = {intent_metadata(i) for i in metadata}
        received = sorted(o.received_us / 1e6 for o in sim.state.orders.values() if o.metadata in ours)
        after = [t for t in received if t >= t0]
        killed = sum(
            1
            for r in latest.values()
            if r["intent_id"] in metadata and r["status"] == "NOT_FILLED" and (r["error"] or "").startswith("KILLED")
        )
        unsettled = sum(
            1
            for i in metadata
            if latest.get(i, {}).get("status") not in ("FILLED", "PARTIAL", "NOT_FILLED", "REJECTED")
        )
    last_ms = (max(after) - t0) * 1000 if after else 0.0
    reference_ms = (watch.seen_at - t0) * 1000 if watch.seen_at else float("nan")
    print(
        f"burst: {total:,} COPYs ({args.followers} followers x {args.copies}), venue latency {args.latency_ms:g} ms; "
        f"kill after {sent_at_kill} orders reached the venue ({total - sent_at_kill:,} in flight)"
    )
    print(f"  t0 -> last POST the venue received   {last_ms:7.1f} ms   (goal <= 250 ms; best peer 460 ms)")
    print(f"  POSTs received at or after t0        {len(after):7d}")
    print(f"  reference: t0 -> a plain consumer sees the kill  {reference_ms:7.1f} ms")
    print(
        f"  COPYs ended NOT_FILLED KILLED        {killed:7,d}   unsettled {unsettled}   "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        json.dumps(
            {
                "benchmark": "kill_switch",
                "copies": total,
                "in_flight_at_kill": total - sent_at_kill,
                "t0_to_last_post_ms": round(last_ms, 1),
                "posts_after_t0": len(after),
                "reference_ms": round(reference_ms, 1),
                "killed": killed,
                "unsettled": unsettled,
            }
        )
    )


if __name__ == "__main__":
    main()
