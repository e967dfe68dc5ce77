"""The raw reference: confluent-kafka consume -> Avro decode -> encode -> produce on the local broker.

Every stage benchmark reports its throughput as a ratio to this figure measured in the same run
(`measure_passthrough`). Run: `make bench` or `.venv/bin/python bench/kafka_passthrough.py --messages 200000`.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from dataclasses import asdict, dataclass

from horus.codec import default_codec
from horus.domain.events import envelope
from horus.kafka.admin import create_topics_named, delete_topics
from horus.kafka.client import flush_or_raise, make_consumer, make_producer, poll_batch, produce_reliably
from horus.settings import Settings, load_settings


@dataclass
class PassthroughResult:
    messages: int
    seconds: float
    msgs_per_s: float
    cpu_us_per_msg: float


def sample_fill(i: int) -> dict:
    leader = f"0x{(i % 97):040x}"
    return {
        "envelope": envelope(event_id=f"{i:064x}", source="bench", occurred_at_us=1_760_000_000_000_000 + i),
        "leader": leader,
        "exchange": "0x" + "e" * 40,
        "tx_hash": f"0x{i:064x}",
        "block_number": 70_000_000 + i,
        "log_index": i % 50,
        "token_id": str(10**70 + i),
        "condition_id": None,
        "side": "BUY" if i % 2 else "SELL",
        "shares_e6": 12_345_678 + i,
        "collateral_e6": 6_172_839,
        "price": "0.5",
        "fee_e6": 0,
        "role": "MAKER",
        "order_hashes": [f"0x{i:064x}"],
    }


def preload(
    settings: Settings, topic: str, count: int, sample=None, event_type: str = "LeaderFill", key_field: str = "leader"
) -> None:
    """`count` records `sample(i)` (default: leader fills) on `topic`."""
    codec, sample = default_codec(), sample or sample_fill
    producer = make_producer(settings, **{"linger.ms": 20})
    for i in range(count):
        record = sample(i)
        produce_reliably(producer, topic, codec.encode(event_type, record), key=record[key_field])
        if i % 10_000 == 0:
            producer.poll(0)
    flush_or_raise(producer, 120)


def measure_passthrough(settings: Settings, count: int, source: str, sink: str) -> PassthroughResult:
    """consume `count` messages from source, decode, re-encode, produce to sink; wall and CPU time."""
    codec = default_codec()
    # offsets committed in the background, as a plain at-least-once stage would
    consumer = make_consumer(
        settings,
        f"bench-{uuid.uuid4().hex[:8]}",
        **{"fetch.min.bytes": 65536, "enable.auto.commit": True, "enable.auto.offset.store": True},
    )
    producer = make_producer(settings, **{"linger.ms": 20})
    consumer.subscribe([source])
    seen = 0
    # wait for the first message before starting the clock (group join is not throughput)
    first = poll_batch(consumer, 1000, 10.0)
    started, cpu_started = time.perf_counter(), time.process_time()
    batch = first
    while True:
        for message in batch:
            name, record = codec.decode(message.value())
            produce_reliably(producer, sink, codec.encode(name, record), key=message.key())
        seen += len(batch)
        producer.poll(0)
        if seen >= count:
            break
        batch = poll_batch(consumer, 1000, 1.0)
    flush_or_raise(producer, 120)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    consumer.close()
    return PassthroughResult(seen, round(seconds, 3), round(seen / seconds), round(cpu / seen * 1e6, 2))


def run_reference(settings: Settings, count: int) -> PassthroughResult:
    run = uuid.uuid4().hex[:6]
    source, sink = f"bench.{run}.in", f"bench.{run}.out"
    create_topics_named(settings, [source, sink], partitions=settings.partitions)
    try:
        preload(settings, source, count)
        return measure_passthrough(settings, count, source, sink)
    finally:
        delete_topics(settings, [source, sink])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    result = run_reference(load_settings(), args.messages)
    print(
        f"kafka passthrough (confluent consume -> avro decode -> encode -> produce): "
        f"{result.msgs_per_s:,.0f} msg/s, {result.cpu_us_per_msg} CPU us/msg over {result.messages:,} messages"
    )
    print(json.dumps({"benchmark": "kafka_passthrough", **asdict(result)}))


if __name__ == "__main__":
    main()
