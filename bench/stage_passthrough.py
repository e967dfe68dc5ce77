"""One pass-through stage (settle: every result -> one NOT_REQUIRED settlement) under each runner against the
raw confluent reference, same run.

Prints the raw reference (bench/kafka_passthrough.py) and the settle stage as a real
`horus worker --stages settle --runner R` process for R in faust and confluent, in msg/s, with each
one's ratio to the reference (DESIGN goal: >= 25%). (Until the decide stage got its sizing rules, this
measured a pass-through decide; decide is now measured by bench/decide.py.)
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

from horus.codec import default_codec  # noqa: E402
from horus.domain import ids  # noqa: E402
from horus.domain.execute import result_record  # noqa: E402
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
from horus.topics import ALL_TOPICS, EXECUTION_RESULTS, SETTLEMENT_EVENTS  # noqa: E402


def result(i: int) -> dict:
    intent = ids.make_id("bench-intent", i)
    return result_record(
        intent_id=intent,
        follow_id=f"bench-follow-{i % 500}",
        follower="0x" + ids.make_id("follower", i % 500)[:40],
        leader_fill_id=ids.make_id("fill", i),
        decision_id=ids.make_id("decision", i),
        occurred_at_us=1_760_000_000_000_000,
        status="FILLED",
        seq=1,
        now_us=1_760_000_000_000_000,
        order_hash="0x" + intent,
        filled_shares_e6=1_000_000,
        filled_collateral_e6=500_000,
        attempts=1,
    )


def preload_results(settings: Settings, count: int) -> None:
    codec, producer = default_codec(), make_producer(settings, **{"linger.ms": 20})
    topic = settings.topic(EXECUTION_RESULTS.name)
    for i in range(count):
        record = result(i)
        produce_reliably(producer, topic, codec.encode("ExecutionResult", record), key=record["follower"])
    flush_or_raise(producer, 120)


def worker_rate(settings: Settings, stages: str, runner: str, output, count: int) -> tuple[float, float]:
    """Start `horus worker --stages S --runner R` on preloaded input; (msg/s from the first to the last output on
    `output`, seconds from start to the first output)."""
    env = {**os.environ, **settings.as_env()}
    consumer = make_consumer(settings)
    assign_from_beginning(consumer, [settings.topic(output.name)])
    started = time.perf_counter()
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "horus.cli.main",
            "worker",
            "--stages",
            stages,
            "--loglevel",
            "warning",
            "--runner",
            runner,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
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
        raise RuntimeError(f"only {seen} of {count} outputs arrived")
    return seen / max(last - first, 1e-9), first - started


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
            preload_results(settings, args.messages)
            rate, startup = worker_rate(settings, "settle", runner, SETTLEMENT_EVENTS, args.messages)
        finally:
            delete_topics(settings, [settings.topic(spec.name) for spec in ALL_TOPICS])
        ratio = rate / reference.msgs_per_s
        print(
            f"settle stage, {runner} runner: {rate:,.0f} msg/s ({ratio:.0%} of the reference; goal >= 25%), "
            f"first output {startup:.1f}s after start"
        )
        report[f"{runner}_msgs_per_s"] = round(rate)
        report[f"{runner}_ratio"] = round(ratio, 3)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
