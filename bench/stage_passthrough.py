"""One stage (decide, pass-through) under each runner against the raw confluent reference, same run.

Prints the raw reference (bench/kafka_passthrough.py) and the decide stage as a real
`horus worker --stages decide --runner R` process for R in faust and confluent, in msg/s, with each
one's ratio to the reference (DESIGN goal: >= 25%).
Run: `.venv/bin/python bench/stage_passthrough.py --messages 20000` with the stack up.
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

from kafka_passthrough import run_reference  # noqa: E402

from horus.codec import default_codec, envelope  # noqa: E402
from horus.domain import ids  # noqa: E402
from horus.kafka.admin import create_topics, delete_topics  # noqa: E402
from horus.kafka.client import (assign_from_beginning, flush_or_raise, make_consumer, make_producer,  # noqa: E402
                                poll_batch, produce_reliably)
from horus.settings import Settings, load_settings  # noqa: E402
from horus.topics import ALL_TOPICS, COPY_CANDIDATES, COPY_DECISIONS  # noqa: E402


def candidate(i: int) -> dict:
    fill, follow = ids.make_id("bench-fill", i), f"bench-follow-{i % 500}"
    return {"envelope": envelope(ids.candidate_id(fill, follow), "plan", 1_760_000_000_000_000, fill),
            "leader_fill_id": fill, "follow_id": follow, "follower": "0x" + ids.make_id("follower", i % 500)[:40],
            "leader": "0x" + "a" * 40, "token_id": str(10**70 + i % 7), "side": "BUY",
            "leader_shares_e6": 1_000_000 + i, "leader_collateral_e6": 500_000, "leader_price": "0.5"}


def preload_candidates(settings: Settings, count: int) -> None:
    codec, producer = default_codec(), make_producer(settings, **{"linger.ms": 20})
    topic = settings.topic(COPY_CANDIDATES.name)
    for i in range(count):
        record = candidate(i)
        produce_reliably(producer, topic, codec.encode("CopyCandidate", record), key=record["follower"])
    flush_or_raise(producer, 120)


def stage_rate(settings: Settings, count: int, runner: str) -> tuple[float, float]:
    """Start a decide worker on the preloaded candidates; msg/s from first to last output, and start-up s."""
    env = {**os.environ, **settings.as_env()}
    started = time.perf_counter()
    worker = subprocess.Popen([sys.executable, "-m", "horus.cli.main", "worker", "--stages", "decide",
                               "--loglevel", "warning", "--runner", runner], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    consumer = make_consumer(settings)
    assign_from_beginning(consumer, [settings.topic(COPY_DECISIONS.name)])
    seen, first = 0, None
    try:
        while seen < count and time.perf_counter() - started < 600:
            batch = poll_batch(consumer, 10_000, 0.05)
            if batch and first is None:
                first = time.perf_counter()
            seen += len(batch)
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited with {worker.returncode}")
        last = time.perf_counter()
    finally:
        worker.terminate()
        worker.wait(30)
        consumer.close()
    if first is None or seen < count:
        raise RuntimeError(f"only {seen} of {count} decisions arrived")
    return seen / (last - first), first - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args()
    base = load_settings()
    reference = run_reference(base, args.messages * 5)
    print(f"reference (confluent consume -> decode -> encode -> produce): {reference.msgs_per_s:,.0f} msg/s")
    report = {"benchmark": "stage_passthrough", "reference_msgs_per_s": reference.msgs_per_s}
    for runner in ("faust", "confluent"):
        run = uuid.uuid4().hex[:6]
        settings = base.model_copy(update={"topic_prefix": f"bench.{run}.", "app_id": f"bench-{run}"})
        create_topics(settings)
        try:
            preload_candidates(settings, args.messages)
            rate, startup = stage_rate(settings, args.messages, runner)
        finally:
            delete_topics(settings, [settings.topic(spec.name) for spec in ALL_TOPICS])
        ratio = rate / reference.msgs_per_s
        print(f"decide stage, {runner} runner: {rate:,.0f} msg/s ({ratio:.0%} of the reference; goal >= 25%), "
              f"first output {startup:.1f}s after start")
        report[f"{runner}_msgs_per_s"] = round(rate)
        report[f"{runner}_ratio"] = round(ratio, 3)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
