"""Projection fold rate: LeaderFills (or CopyDecisions) consumed, decoded, folded and written into Postgres
with their offsets in the same transaction, against the raw confluent reference measured in the same run.

Run: `.venv/bin/python bench/projection_fold.py --rows 50000 [--records decisions] [--batch-size 1000]` with the
stack up. It uses its own topics and a scratch database, both removed afterwards.
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
from horus.domain.events import envelope  # noqa: E402
from horus.kafka.admin import create_topics, delete_topics  # noqa: E402
from horus.settings import load_settings  # noqa: E402
from horus.topics import ALL_TOPICS  # noqa: E402
from projections import run_projections  # noqa: E402
from projections.folds import COPY_DECISIONS_PROJECTION, LEADER_FILLS_PROJECTION  # noqa: E402


def sample_decision(i: int) -> dict:
    """Every other candidate copied (sized, priced, inputs recorded), the others skipped with a reason."""
    copied = i % 2 == 0
    return {
        "envelope": envelope(
            event_id=f"{i:064x}", source="decide", occurred_at_us=1_760_000_000_000_000 + i, causation_id=f"cc-{i:062x}"
        ),
        "candidate_id": f"cc-{i:062x}",
        "follow_id": f"follow-{i % 500}",
        "follower": f"0x{(i % 500):040x}",
        "leader_fill_id": f"lf-{i // 2:062x}",
        "action": "COPY" if copied else "SKIP",
        "intent_id": f"in-{i:062x}" if copied else None,
        "token_id": str(10**70 + i),
        "side": "BUY",
        "size_e6": 2_000_000 if copied else 0,
        "worst_price": "0.55" if copied else None,
        "order_type": "FOK" if copied else None,
        "expires_at_us": 1_760_000_060_000_000 + i if copied else None,
        "reason_code": None if copied else "DAILY_LIMIT",
        "reason_detail": None if copied else "daily limit reached",
        "leader": f"0x{(i % 97):040x}",
        "condition_id": f"0x{(i % 60):064x}",
        "reserved_e6": 1_100_000 if copied else 0,
        "leader_shares_e6": 12_345_678 + i,
        "inputs": '{"balance_e6": 1000000000, "best_ask": "0.53"}' if copied else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--records", choices=("fills", "decisions"), default="fills")
    parser.add_argument("--batch-size", type=int, default=None, help="messages per transaction (runner default)")
    args = parser.parse_args()
    projection = LEADER_FILLS_PROJECTION if args.records == "fills" else COPY_DECISIONS_PROJECTION
    batching = {} if args.batch_size is None else {"batch_size": args.batch_size}
    base = load_settings()
    reference = run_reference(base, args.rows)
    run = uuid.uuid4().hex[:6]
    settings = base.model_copy(update={"topic_prefix": f"bench.{run}.", "app_id": f"bench-{run}"})
    create_topics(settings)
    try:
        topic = settings.topic(projection.topic)
        if args.records == "fills":
            preload(settings, topic, args.rows)
        else:
            preload(settings, topic, args.rows, sample_decision, "CopyDecision", "follower")
        with scratch_database(settings, f"horus_bench_{run}") as scratch:
            started = time.perf_counter()
            stats = run_projections(
                scratch, threading.Event(), until_caught_up=True, projections=[projection], **batching
            )
            wall = time.perf_counter() - started
    finally:
        delete_topics(settings, [settings.topic(spec.name) for spec in ALL_TOPICS])
    busy_rate = stats.rows_per_second
    ratio = busy_rate / reference.msgs_per_s
    print(f"reference (confluent consume -> decode -> encode -> produce): {reference.msgs_per_s:,.0f} msg/s")
    print(
        f"projections: {args.rows:,} {projection.record_type}s folded in {wall:.2f}s wall "
        f"({args.rows / wall:,.0f} rows/s incl. group join), {busy_rate:,.0f} rows/s while busy = "
        f"{ratio:.0%} of the reference"
    )
    print(
        json.dumps(
            {
                "benchmark": "projections",
                "records": args.records,
                "rows": args.rows,
                "batch_size": args.batch_size,
                "wall_rows_per_s": round(args.rows / wall),
                "busy_rows_per_s": round(busy_rate),
                "reference_msgs_per_s": reference.msgs_per_s,
                "ratio": round(ratio, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
