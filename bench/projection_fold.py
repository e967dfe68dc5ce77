"""Projection fold rate: LeaderFills consumed, decoded, folded and upserted into Postgres with their
offsets in the same transaction, against the raw confluent reference measured in the same run.

Run: `.venv/bin/python bench/projection_fold.py --rows 50000` with the stack up. It uses its own topics and
a scratch database, both removed afterwards.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kafka_passthrough import preload, run_reference  # noqa: E402

from horus.db.engine import scratch_database  # noqa: E402
from horus.kafka.admin import create_topics, delete_topics  # noqa: E402
from horus.settings import load_settings  # noqa: E402
from horus.topics import ALL_TOPICS, LEADER_FILLS  # noqa: E402
from projections import run_projections  # noqa: E402
from projections.folds import LEADER_FILLS_PROJECTION  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    base = load_settings()
    reference = run_reference(base, args.rows)
    run = uuid.uuid4().hex[:6]
    settings = base.model_copy(update={"topic_prefix": f"bench.{run}.", "app_id": f"bench-{run}"})
    create_topics(settings)
    try:
        preload(settings, settings.topic(LEADER_FILLS.name), args.rows)
        with scratch_database(settings, f"horus_bench_{run}") as scratch:
            started = time.perf_counter()
            stats = run_projections(scratch, threading.Event(), until_caught_up=True,
                                    projections=[LEADER_FILLS_PROJECTION])
            wall = time.perf_counter() - started
    finally:
        delete_topics(settings, [settings.topic(spec.name) for spec in ALL_TOPICS])
    busy_rate = stats.rows_per_second
    print(f"reference (confluent consume -> decode -> encode -> produce): {reference.msgs_per_s:,.0f} msg/s")
    print(f"projections: {args.rows:,} LeaderFills folded in {wall:.2f}s wall ({args.rows / wall:,.0f} rows/s incl. "
          f"group join), {busy_rate:,.0f} rows/s while busy = {busy_rate / reference.msgs_per_s:.0%} of the reference")
    print(json.dumps({"benchmark": "projections", "rows": args.rows, "wall_rows_per_s": round(args.rows / wall),
                      "busy_rows_per_s": round(busy_rate), "reference_msgs_per_s": reference.msgs_per_s,
                      "ratio": round(busy_rate / reference.msgs_per_s, 3)}))


if __name__ == "__main__":
    main()
