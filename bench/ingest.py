"""Ingestion: replayed OrderFilled logs -> leader.fills throughput, and live detection latency on anvil.

Part 1 (replay): N raw `OrderFilled` logs (eth_getLogs-shaped dicts, V1 and V2 layouts, several leaders
and tokens, some transactions with several logs, block timestamps from a block_time mapping) go through
decode_log -> aggregate -> FillSink.emit (Postgres claim, produce, mark) in batches of whole transactions,
to leader.fills. Printed: LeaderFills/s (and logs/s) for the full path, for decode+aggregate alone (no
Kafka, no database), and the full path as a ratio to the raw pass-through reference measured in the same
run (bench/kafka_passthrough.py; one reference message = one LeaderFill).

Part 2 (detection latency): a real `horus ingest chain` process following one leader on anvil; M fills
are sent one by one (a transaction each, at --rate tx/s) and each is timed from just before its
transaction is sent to its LeaderFill being read from leader.fills by a consumer in this process (one
clock). Printed: p50 / p99 / max in ms and the load actually sent.

Run: `.venv/bin/python bench/ingest.py --logs 50000 --fills 200` with the stack up. It uses its own topics
and a scratch database, both removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from eth_abi import encode as abi_encode  # noqa: E402
from eth_utils import keccak, to_hex  # noqa: E402
from kafka_passthrough import run_reference  # noqa: E402
from web3 import Web3  # noqa: E402
from web3.exceptions import TimeExhausted  # noqa: E402

from horus.codec import default_codec  # noqa: E402
from horus.db.engine import scratch_database  # noqa: E402
from horus.domain import ids  # noqa: E402
from horus.domain.events import envelope  # noqa: E402
from horus.domain.fills import aggregate  # noqa: E402
from horus.ingest.sink import FillSink  # noqa: E402
from horus.kafka.admin import create_topics, delete_topics  # noqa: E402
from horus.kafka.client import (  # noqa: E402
    assign_from_beginning,
    end_offsets,
    flush_or_raise,
    make_consumer,
    make_producer,
    poll_batch,
)
from horus.ops.testchain import V2Fill, deploy_emitters, emit_v2, web3_for  # noqa: E402
from horus.settings import Settings, load_settings  # noqa: E402
from horus.topics import ALL_TOPICS, CONFIG_CHANGES, LEADER_FILLS  # noqa: E402
from horus.venue.polymarket.exchanges import (  # noqa: E402
    CTF_EXCHANGE_V1,
    CTF_EXCHANGE_V2,
    EXCHANGE_V3,
    NEG_RISK_CTF_EXCHANGE_V2,
    ORDER_FILLED_V1_TOPIC,
    ORDER_FILLED_V2_TOPIC,
    ExchangeBook,
)
from horus.venue.polymarket.fills import decode_log  # noqa: E402

HORUS = str(Path(sys.executable).with_name("horus"))
V2_TYPES = ["uint8", "uint256", "uint256", "uint256", "uint256", "bytes32", "bytes32"]
V1_TYPES = ["uint256"] * 5
V2_EXCHANGES = (CTF_EXCHANGE_V2, NEG_RISK_CTF_EXCHANGE_V2, EXCHANGE_V3)
SENDER_INDEX = -3  # anvil dev account used for the live fills
FIRST_BLOCK, FIRST_TIME = 80_000_000, 1_777_000_000  # Polygon-like numbers; 2 s blocks
codec = default_codec()


# ---------------------------------------------------------------------------------------------- part 1
def _word(address: str) -> str:
    return to_hex(abi_encode(["address"], [address]))


def replay_logs(count: int, seed: int = 7) -> tuple[list[list[dict]], dict[int, int]]:
    """`count` OrderFilled logs grouped by transaction (1 to 4 logs each), and block -> timestamp.

    20 leaders, 60 outcome tokens, 85% V2 layout (over the three V2 exchanges) and 15% V1; in a
    multi-log transaction the leader and token repeat often, so aggregation has sums to do."""
    rng = random.Random(seed)
    leaders = ["0x" + keccak(text=f"bench-leader-{i}")[-20:].hex() for i in range(20)]
    counterparties = ["0x" + keccak(text=f"bench-taker-{i}")[-20:].hex() for i in range(50)]
    tokens = [int.from_bytes(keccak(text=f"bench-token-{i}"), "big") for i in range(60)]
    zero = b"\x00" * 32
    txs: list[list[dict]] = []
    block_time: dict[int, int] = {}
    made, block, index_in_block = 0, FIRST_BLOCK, 0
    while made < count:
        if rng.random() < 0.3 or index_in_block > 200:
            block += 1
            index_in_block = 0
        block_time[block] = FIRST_TIME + 2 * (block - FIRST_BLOCK)
        size = min(count - made, rng.choice((1, 1, 1, 1, 2, 2, 3, 4)))
        tx = to_hex(keccak(text=f"bench-tx-{seed}-{len(txs)}"))
        leader, token, side = rng.choice(leaders), rng.choice(tokens), rng.randint(0, 1)
        v1 = rng.random() < 0.15
        exchange = CTF_EXCHANGE_V1 if v1 else rng.choice(V2_EXCHANGES)
        logs = []
        for k in range(size):
            if k and rng.random() < 0.4:  # another leader / token in the same transaction
                leader, token = rng.choice(leaders), rng.choice(tokens)
            shares = rng.randint(1, 5_000) * 10_000
            price_ticks = rng.randint(1, 99)  # cents
            collateral = shares * price_ticks // 100
            maker_amount, taker_amount = (collateral, shares) if side == 0 else (shares, collateral)
            taker = exchange if k == size - 1 and size > 1 else rng.choice(counterparties)
            if v1:
                topic0 = ORDER_FILLED_V1_TOPIC
                assets = (0, token) if side == 0 else (token, 0)
                data = abi_encode(V1_TYPES, [*assets, maker_amount, taker_amount, 0])
            else:
                topic0 = ORDER_FILLED_V2_TOPIC
                data = abi_encode(V2_TYPES, [side, token, maker_amount, taker_amount, rng.randint(0, 2000), zero, zero])
            logs.append(
                {
                    "address": exchange,
                    "topics": [topic0, to_hex(keccak(text=f"bench-order-{seed}-{made}")), _word(leader), _word(taker)],
                    "data": to_hex(data),
                    "blockNumber": hex(block),
                    "blockHash": to_hex(keccak(text=f"bench-block-{block}")),
                    "transactionHash": tx,
                    "transactionIndex": hex(len(txs) % 500),
                    "logIndex": hex(index_in_block),
                    "removed": False,
                }
            )
            index_in_block += 1
            made += 1
        txs.append(logs)
    return txs, block_time


def batches(txs: list[list[dict]], size: int) -> list[list[dict]]:
    """Batches of about `size` logs that never split a transaction (a LeaderFill is one tx's sum)."""
    out, current = [], []
    for tx in txs:
        current.extend(tx)
        if len(current) >= size:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def decode_and_aggregate(batch: list[dict], book: ExchangeBook, block_time: dict[int, int]) -> list[dict]:
    return aggregate((decode_log(log, book) for log in batch), source="replay", block_time=block_time)


def replay_cpu(groups: list[list[dict]], book: ExchangeBook, block_time: dict[int, int]) -> tuple[int, float]:
    started = time.perf_counter()
    records = sum(len(decode_and_aggregate(batch, book, block_time)) for batch in groups)
    return records, time.perf_counter() - started


def replay_full(
    settings: Settings, groups: list[list[dict]], book: ExchangeBook, block_time: dict[int, int]
) -> tuple[int, float, float]:
    """decode -> aggregate -> FillSink.emit per batch; (LeaderFills produced, wall s, CPU s)."""
    sink = FillSink(settings, "replay")
    sink.emit([])  # connect the producer and the pool outside the clock
    produced = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for batch in groups:
        produced += len(sink.emit(decode_and_aggregate(batch, book, block_time)))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    sink.producer.flush(10)
    return produced, seconds, cpu


def count_topic(settings: Settings, topic: str) -> tuple[int, int]:
    """(messages, distinct LeaderFill event ids) in `topic`."""
    consumer = make_consumer(settings, None)
    try:
        ends = {p: o for p, o in end_offsets(consumer, topic).items() if o > 0}
        total = sum(ends.values())
        assign_from_beginning(consumer, [topic])
        seen: set[str] = set()
        deadline = time.monotonic() + 120
        while ends and time.monotonic() < deadline:
            for message in poll_batch(consumer, 10_000, 0.5):
                name, record = codec.decode(message.value())
                if name == "LeaderFill":
                    seen.add(record["envelope"]["event_id"])
                if message.offset() + 1 >= ends.get(message.partition(), 0):
                    ends.pop(message.partition(), None)
        return total, len(seen)
    finally:
        consumer.close()


# ---------------------------------------------------------------------------------------------- part 2
def follow(settings: Settings, follow_id: str, leader: str) -> None:
    body = json.dumps(
        {
            "follow_id": follow_id,
            "follower": "0x" + "f0" * 20,
            "leader": leader,
            "sizing": {"mode": "fixed", "amount": "5"},
        }
    )
    record = {
        "envelope": envelope(ids.make_id("bench-config", follow_id, uuid.uuid4().hex), "bench", 0),
        "entity": "FOLLOW",
        "entity_id": follow_id,
        "op": "UPSERT",
        "body": body,
    }
    producer = make_producer(settings)
    producer.produce(settings.topic(CONFIG_CHANGES.name), codec.encode("ConfigChange", record), key=follow_id)
    flush_or_raise(producer)


class FillWatcher(threading.Thread):
    """Reads leader.fills from the beginning and stamps each LeaderFill event id when first seen."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.consumer = make_consumer(settings, None, **{"fetch.wait.max.ms": 10})
        assign_from_beginning(self.consumer, [settings.topic(LEADER_FILLS.name)])
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        self.changed = threading.Condition()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                batch = poll_batch(self.consumer, 1000, 0.02)
                now = time.perf_counter()
                if not batch:
                    continue
                with self.changed:
                    for message in batch:
                        name, record = codec.decode(message.value())
                        if name == "LeaderFill":
                            self.seen.setdefault(record["envelope"]["event_id"], now)
                    self.changed.notify_all()
        finally:
            self.consumer.close()

    def wait_for(self, event_id: str, timeout: float) -> float | None:
        deadline = time.perf_counter() + timeout
        with self.changed:
            while event_id not in self.seen:
                left = deadline - time.perf_counter()
                if left <= 0:
                    return None
                self.changed.wait(left)
            return self.seen[event_id]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def lag_metric(port: int) -> tuple[float, float]:
    """(count, sum) of horus_ingest_detection_lag_seconds from the source's /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("horus_ingest_detection_lag_seconds")
    }
    return (
        values.get('horus_ingest_detection_lag_seconds_count{source="chain"}', 0.0),
        values.get('horus_ingest_detection_lag_seconds_sum{source="chain"}', 0.0),
    )


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


def detection_latency(settings: Settings, count: int, rate: float, warmup: int) -> dict:
    rpc = settings.eth_rpc_url
    # a dev account of its own: the tests and the demo send from the last one and account 0, and a shared
    # nonce sequence makes transactions wait for (or replace) each other
    sender = web3_for(rpc).eth.accounts[SENDER_INDEX]
    emitters = deploy_emitters(rpc, sender=sender)
    leader = "0x" + keccak(text=f"bench-live-leader-{uuid.uuid4().hex}")[-20:].hex()
    follow(settings, "bench-follow", leader)
    port = free_port()
    from_block = Web3(Web3.HTTPProvider(rpc)).eth.block_number + 1
    env = {**os.environ, **settings.as_env()}
    # the child writes its log here for as long as it runs; closed after it exits
    log_file = tempfile.NamedTemporaryFile(prefix="bench-ingest-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [
            HORUS,
            "ingest",
            "chain",
            "--exchange",
            emitters.v1,
            "--exchange",
            emitters.v2,
            "--from-block",
            str(from_block),
            "--metrics-port",
            str(port),
        ],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    watcher = FillWatcher(settings)
    watcher.start()
    latencies: list[float] = []
    try:
        # live = connected, and a fill of the followed leader made it through (not timed)
        deadline = time.monotonic() + 60
        while "chain source connected" not in Path(log_file.name).read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"horus ingest chain did not start; see {log_file.name}")
            time.sleep(0.1)
        sent: list[tuple[str, float]] = []
        interval = 1.0 / rate if rate > 0 else 0.0
        send_started = None
        for n in range(warmup + count):
            if n == warmup:
                send_started = time.perf_counter()
            fill = V2Fill(
                order_hash=ids.make_id("bench-order", leader, n, uuid.uuid4().hex),
                maker=leader,
                taker=None,
                side=n % 2,
                token_id=1000 + n % 5,
                maker_amount_filled=2_000_000 + n,
                taker_amount_filled=1_000_000 + n,
            )
            next_at = (send_started or time.perf_counter()) + (n - warmup + 1) * interval
            t_sent = time.perf_counter()
            try:
                receipt = emit_v2(rpc, emitters.v2, fill, sender=sender)
            except TimeExhausted:
                raise RuntimeError(
                    f"live fill {n}: its transaction was dropped; anvil is shared, and something "
                    f"reorged it (anvil_reorg in the chain integration test?): run again"
                ) from None
            event_id = ids.leader_fill_id(
                receipt["transactionHash"].to_0x_hex(), leader, str(fill.token_id), "BUY" if fill.side == 0 else "SELL"
            )
            if n < warmup:
                if watcher.wait_for(event_id, 60) is None:
                    raise RuntimeError(f"warm-up fill {n} never reached leader.fills; see {log_file.name}")
                continue
            sent.append((event_id, t_sent))
            pause = next_at - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        send_seconds = time.perf_counter() - send_started
        for event_id, t_sent in sent:
            seen = watcher.wait_for(event_id, 30)
            if seen is None:
                raise RuntimeError(f"fill {event_id} never reached leader.fills; see {log_file.name}")
            latencies.append(seen - t_sent)
        metric_count, metric_sum = lag_metric(port)
        if proc.poll() is not None:
            raise RuntimeError(f"horus ingest chain exited with {proc.returncode}; see {log_file.name}")
    finally:
        watcher.stop.set()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        watcher.join(5)
        log_file.close()
    exit_code = proc.returncode
    text = Path(log_file.name).read_text(errors="replace")
    os.unlink(log_file.name)
    for line in [line for line in text.splitlines() if " ERROR " in line][:5]:
        print(f"horus ingest chain: {line}", file=sys.stderr)  # e.g. a reorg of anvil by a concurrent test
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    return {
        "fills": count,
        "sent_per_s": round(count / send_seconds, 1),
        "p50_ms": round(percentile(ms, 50), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(ms[-1], 1),
        "min_ms": round(ms[0], 1),
        "metric_lag_count": int(metric_count),
        "metric_lag_mean_s": round(metric_sum / metric_count, 3) if metric_count else None,
        "source_exit_code": exit_code,
        "source_errors": text.count(" ERROR "),
    }


# ---------------------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=int, default=50_000, help="replayed OrderFilled logs (part 1)")
    parser.add_argument("--batch", type=int, default=1000, help="logs per emit batch (whole transactions)")
    parser.add_argument("--fills", type=int, default=200, help="live fills sent on anvil (part 2)")
    parser.add_argument("--rate", type=float, default=10.0, help="live fills sent per second (0: back to back)")
    parser.add_argument("--warmup", type=int, default=5, help="live fills sent first and not timed")
    parser.add_argument("--skip-live", action="store_true", help="part 1 only")
    args = parser.parse_args()

    base = load_settings()
    reference = run_reference(base, args.logs)
    txs, block_time = replay_logs(args.logs)
    groups = batches(txs, args.batch)
    book = ExchangeBook.mainnet()
    expected = sum(len(decode_and_aggregate(batch, book, block_time)) for batch in groups)  # also warms up

    run = uuid.uuid4().hex[:6]
    settings = base.model_copy(update={"topic_prefix": f"bench.{run}.", "app_id": f"bench-{run}"})
    create_topics(settings)
    try:
        with scratch_database(settings, f"horus_bench_{run}") as scratch:
            cpu_records, cpu_seconds = replay_cpu(groups, book, block_time)
            produced, seconds, cpu = replay_full(scratch, groups, book, block_time)
            in_topic, distinct = count_topic(scratch, scratch.topic(LEADER_FILLS.name))
            if not produced == expected == cpu_records == in_topic == distinct:
                raise RuntimeError(
                    f"expected {expected} LeaderFills, produced {produced}, "
                    f"{in_topic} in leader.fills ({distinct} distinct)"
                )
            live = None if args.skip_live else detection_latency(scratch, args.fills, args.rate, args.warmup)
    finally:
        delete_topics(settings, [settings.topic(spec.name) for spec in ALL_TOPICS])

    full_rate, cpu_rate = produced / seconds, cpu_records / cpu_seconds
    ratio = full_rate / reference.msgs_per_s
    print(f"reference (confluent consume -> decode -> encode -> produce): {reference.msgs_per_s:,.0f} msg/s")
    print(
        f"replay: {args.logs:,} OrderFilled logs in {len(txs):,} txs -> {produced:,} LeaderFills "
        f"(batches of ~{args.batch} logs)"
    )
    print(f"  decode + aggregate only:          {cpu_rate:,.0f} LeaderFills/s ({args.logs / cpu_seconds:,.0f} logs/s)")
    print(
        f"  decode + aggregate + sink (claim, produce, mark): {full_rate:,.0f} LeaderFills/s "
        f"({args.logs / seconds:,.0f} logs/s, {cpu / produced * 1e6:.0f} CPU us/fill) "
        f"= {ratio:.0%} of the reference"
    )
    if live:
        print(
            f"detection latency on anvil (tx sent -> LeaderFill read from leader.fills), {live['fills']} fills "
            f"at {live['sent_per_s']} fills/s: p50 {live['p50_ms']} ms, p99 {live['p99_ms']} ms, "
            f"max {live['max_ms']} ms (source metric: {live['metric_lag_count']} fills, mean block-time lag "
            f"{live['metric_lag_mean_s']} s)"
        )
    print(
        json.dumps(
            {
                "benchmark": "ingest",
                "logs": args.logs,
                "txs": len(txs),
                "leader_fills": produced,
                "batch_logs": args.batch,
                "reference_msgs_per_s": reference.msgs_per_s,
                "decode_aggregate_fills_per_s": round(cpu_rate),
                "full_fills_per_s": round(full_rate),
                "full_logs_per_s": round(args.logs / seconds),
                "cpu_us_per_fill": round(cpu / produced * 1e6, 1),
                "ratio": round(ratio, 3),
                "live": live,
            }
        )
    )


if __name__ == "__main__":
    main()
