"""decide's partition rebuild: the whole history folded vs a snapshot restored + the tail folded.

One copy.decisions / execution.results partition is preloaded with `--decisions` decisions (1,000 followers,
70% COPY, 90% of those with a FILLED result, spread over the last hours), then:
- full: a fresh DecideStage (snapshots off) folds the whole partition;
- snapshot: a stage folds it, snapshots it (copy on the stage's thread; encode + upsert on the writer
  thread, both timed), `--tail` more decisions are produced, and a fresh stage restores the snapshot and
  folds only those.
Run: `.venv/bin/python bench/decide_rebuild.py --decisions 100000 --tail 1000` with the stack up. It uses its
own topics and a scratch database, both removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from horus.codec import default_codec  # noqa: E402
from horus.db.engine import psycopg_conninfo, scratch_database  # noqa: E402
from horus.domain import ids  # noqa: E402
from horus.domain.events import envelope  # noqa: E402
from horus.domain.execute import result_record  # noqa: E402
from horus.kafka.admin import create_topics, delete_topics  # noqa: E402
from horus.kafka.client import flush_or_raise, make_producer, produce_reliably  # noqa: E402
from horus.settings import Settings, load_settings  # noqa: E402
from horus.topics import ALL_TOPICS, COPY_DECISIONS, EXECUTION_RESULTS  # noqa: E402
from streams.decide import DecideStage  # noqa: E402
from streams.runtime import Runtime  # noqa: E402

FOLLOWERS, LEADERS, TOKENS = 1_000, 20, 200


def decision(i: int, produced_at_us: int) -> dict:
    follower, copy, buy = i % FOLLOWERS, i % 10 < 7, i % 5 != 4
    fill_id = ids.make_id("bench-fill", i)
    cand = ids.candidate_id(fill_id, f"f{follower}")
    return {
        "envelope": envelope(
            ids.decision_id(cand), "decide", produced_at_us - 50_000, causation_id=cand, produced_at_us=produced_at_us
        ),
        "candidate_id": cand,
        "follow_id": f"f{follower}",
        "follower": f"0x{follower + 1:040x}",
        "leader_fill_id": fill_id,
        "action": "COPY" if copy else "SKIP",
        "intent_id": ids.intent_id(f"f{follower}", fill_id) if copy else None,
        "token_id": str(10**70 + (i * 7) % TOKENS),
        "side": "BUY" if buy else "SELL",
        "size_e6": 4_000_000 if copy else 0,
        "worst_price": "0.51" if copy else None,
        "order_type": "FAK" if copy else None,
        "expires_at_us": produced_at_us + 60_000_000 if copy else None,
        "reason_code": None if copy else "DAILY_CAP",
        "reason_detail": None if copy else "daily cap reached",
        "leader": f"0x{0xAB0000 + i % LEADERS:040x}",
        "condition_id": f"0x{(i * 7) % TOKENS // 2:064x}",
        "reserved_e6": 2_040_000 if copy and buy else 0,
        "leader_shares_e6": 20_000_000,
        "inputs": '{"balance_e6": 1000000000}' if copy else None,
    }


def preload(settings: Settings, first: int, count: int, total: int) -> None:
    """Decisions first..first+count (spread over the last total x 0.1 s) and the results of 90% of the COPYs."""
    codec, producer = default_codec(), make_producer(settings, **{"linger.ms": 20})
    now = time.time_ns() // 1000
    decisions, results = settings.topic(COPY_DECISIONS.name), settings.topic(EXECUTION_RESULTS.name)
    for i in range(first, first + count):
        d = decision(i, now - (total - i) * 100_000)
        produce_reliably(producer, decisions, codec.encode("CopyDecision", d), key=d["follower"])
        if d["action"] == "COPY" and i % 10 != 0:
            r = result_record(
                intent_id=d["intent_id"],
                follow_id=d["follow_id"],
                follower=d["follower"],
                leader_fill_id=d["leader_fill_id"],
                decision_id=d["envelope"]["event_id"],
                occurred_at_us=d["envelope"]["occurred_at_us"],
                status="FILLED",
                seq=1,
                now_us=d["envelope"]["produced_at_us"] + 1_000_000,
                order_hash=None,
                filled_shares_e6=4_000_000,
                filled_collateral_e6=2_000_000,
                attempts=1,
            )
            produce_reliably(producer, results, codec.encode("ExecutionResult", r), key=d["follower"])
        if i % 10_000 == 0:
            producer.poll(0)
    flush_or_raise(producer, 120)


def rebuild(settings: Settings) -> tuple[DecideStage, float]:
    stage = DecideStage(Runtime(settings))
    started = time.perf_counter()
    stage.assign([0])
    return stage, time.perf_counter() - started


def same_books(a: DecideStage, b: DecideStage) -> bool:
    def view(book):
        return (
            book.reservations,
            book.positions,
            book.leader_holdings,
            book.spend,
            list(book.fills_after),
            book.reserved_cost,
            book._exposure,
            book._selling,
            book._buying,
        )

    return a.state.books.keys() == b.state.books.keys() and all(
        view(book) == view(b.state.books[follower]) for follower, book in a.state.books.items()
    )


def close(stage: DecideStage) -> None:
    stage.revoke([0])
    stage.runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--tail", type=int, default=1_000)
    args = parser.parse_args()
    base = load_settings()
    run = uuid.uuid4().hex[:6]
    with scratch_database(base, f"horus_bench_rebuild_{run}") as db:
        settings = db.model_copy(
            update={
                "topic_prefix": f"bench.{run}.",
                "app_id": f"bench-{run}",
                "snapshot_key": SecretStr(f"bench-{run}"),  # snapshots are sealed
                "decide_snapshot_every": 10**9,
                "decide_snapshot_interval_s": 0.0,
            }
        )
        create_topics(settings, partitions=1)
        try:
            n, tail = args.decisions, args.tail
            preload(settings, 0, n, n + tail)
            # the stage that will snapshot: fold everything, then time the copy and the write separately
            stage, _ = rebuild(settings)
            followers = len(stage.state.books)
            started = time.perf_counter()
            stage._snapshot([0])
            copy_s = time.perf_counter() - started
            started = time.perf_counter()
            stage.snapshots.flush(120)
            write_s = time.perf_counter() - started
            with psycopg.connect(psycopg_conninfo(settings.database_url)) as conn:
                size = conn.execute("SELECT octet_length(state) FROM decide_snapshots").fetchone()[0]
            stage.changes.clear()  # no second snapshot on revoke: the tail is produced after this one
            close(stage)
            preload(settings, n, tail, n + tail)
            off = settings.model_copy(update={"decide_snapshot_every": 0, "decide_snapshot_interval_s": 0.0})
            full, full_s = rebuild(off)
            resumed, resumed_s = rebuild(settings)
            assert same_books(full, resumed), "snapshot + tail differs from the whole history"
            close(full)
            close(resumed)
        finally:
            delete_topics(settings, [settings.topic(spec.name) for spec in ALL_TOPICS])
    print(
        f"partition of {n + tail:,} decisions ({followers:,} followers): full fold {full_s:.2f}s; "
        f"snapshot + {tail:,} tail {resumed_s:.2f}s ({full_s / resumed_s:.0f}x faster)"
    )
    print(
        f"snapshot of {n:,}: copy on the stage thread {copy_s * 1000:.0f} ms, encode + upsert {write_s * 1000:.0f} ms, "
        f"{size / 1e6:.2f} MB"
    )
    print(
        json.dumps(
            {
                "benchmark": "decide_rebuild",
                "decisions": n + tail,
                "tail": tail,
                "followers": followers,
                "full_fold_s": round(full_s, 3),
                "snapshot_rebuild_s": round(resumed_s, 3),
                "snapshot_copy_ms": round(copy_s * 1000, 1),
                "snapshot_write_ms": round(write_s * 1000, 1),
                "snapshot_bytes": size,
            }
        )
    )


if __name__ == "__main__":
    main()
