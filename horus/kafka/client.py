"""confluent-kafka producers, consumers and admin, configured the one way Horus needs them."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from horus.settings import Settings

# librdkafka's default (consistent_random, CRC32) puts keys on other partitions than Java,
# aiokafka and Faust (murmur2); every producer must use this so one follower stays on one partition.
PARTITIONER = "murmur2_random"
RETRY_ON = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART}
# librdkafka's produce() raises MSG_SIZE_TOO_LARGE for a message whose key and value (plus a few bytes of framing)
# exceed its message.max.bytes, 1,000,000 by default; no Horus producer changes it. A stage that derives a message
# from its input (an output, a dead letter) checks the size first: raised there, the error would stop the stage
# on that input after every restart.
MESSAGE_MAX_BYTES = 1_000_000
MESSAGE_FRAMING_BYTES = 1_000  # room for what librdkafka counts on top of key and value (measured: < 50)


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    config = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "client.id": f"horus-{socket.gethostname()}",
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": PARTITIONER,
        "linger.ms": 5,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 200_000,
    }
    config.update(overrides)
    return config


def message_bytes(key: bytes | str | None, value: bytes | None) -> int:
    """Key plus value, as produce() counts them."""
    key_bytes = len(key.encode("utf-8")) if isinstance(key, str) else len(key or b"")
    return key_bytes + len(value or b"")


def fits_in_a_message(key: bytes | str | None, value: bytes | None) -> bool:
    return message_bytes(key, value) <= MESSAGE_MAX_BYTES - MESSAGE_FRAMING_BYTES


def make_producer(settings: Settings, **overrides: Any) -> Producer:
    return Producer(producer_config(settings, **overrides))


def consumer_config(settings: Settings, group_id: str | None, **overrides: Any) -> dict[str, Any]:
    config = {
        "bootstrap.servers": settings.kafka_bootstrap,
        # a group-less reader (tap, replay) still needs an id; it never commits
        "group.id": group_id or f"horus-reader-{uuid.uuid4().hex[:12]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "enable.partition.eof": False,
    }
    config.update(overrides)
    return config


def make_consumer(settings: Settings, group_id: str | None = None, **overrides: Any) -> Consumer:
    return Consumer(consumer_config(settings, group_id, **overrides))


def make_admin(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka_bootstrap})


def produce_reliably(
    producer: Producer,
    topic: str,
    value: bytes,
    key: bytes | str | None = None,
    on_delivery: Callable | None = None,
    headers: list | None = None,
) -> None:
    """produce(), waiting for room in the local queue instead of failing when it is full."""
    while True:
        try:
            producer.produce(topic, value=value, key=key, on_delivery=on_delivery, headers=headers)
            return
        except BufferError:
            producer.poll(0.05)


def flush_or_raise(producer: Producer, timeout: float = 30.0) -> None:
    remaining = producer.flush(timeout)
    if remaining:
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"{remaining} messages not delivered in {timeout}s"))


def poll_batch(consumer: Consumer, max_messages: int = 1000, timeout: float = 0.5) -> list[Message]:
    """consume() that drops partition-EOF markers and raises real errors."""
    return _checked(consumer.consume(max_messages, timeout))


def fetch_available(consumer: Consumer, max_messages: int, wait_s: float) -> list[Message]:
    """What is fetched already (up to a batch); when nothing is, wait up to `wait_s` for ONE message and take
    whatever came with it. consume(n, timeout) holds a lone message until n arrive or the timeout ends (up
    to 50 ms per stage at light load, measured by bench/latency.py); a backlog still comes in full batches.
    Raw messages, errors included."""
    messages = consumer.consume(max_messages, 0)
    if messages:
        return messages
    first = consumer.poll(wait_s)
    if first is None:
        return []
    return [first, *consumer.consume(max_messages - 1, 0)] if max_messages > 1 else [first]


def poll_available(consumer: Consumer, max_messages: int, wait_s: float) -> list[Message]:
    """fetch_available() that drops partition-EOF markers and raises real errors."""
    return _checked(fetch_available(consumer, max_messages, wait_s))


def _checked(messages: list[Message]) -> list[Message]:
    batch = []
    for message in messages:
        error = message.error()
        if error is None:
            batch.append(message)
        elif error.code() != KafkaError._PARTITION_EOF:
            raise KafkaException(error)
    return batch


def consumed_at(message: Message) -> tuple[int, int]:
    """(partition, offset) of a record a consumer returned. confluent-kafka types both Optional (a Message built
    by hand has neither); every consumed record has both."""
    return cast(int, message.partition()), cast(int, message.offset())


def watermarks(consumer: Consumer, topic: str, partition: int, timeout: float = 10.0) -> tuple[int, int]:
    """(low, high) offsets of a partition. Retries while a just-created partition still answers
    NOT_LEADER / leader-not-available, which happens for a moment even after metadata shows a leader."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
        except KafkaException as exc:
            error = exc.args[0]
            if not error.retriable() and error.code() not in RETRY_ON or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def end_offsets(consumer: Consumer, topic: str, timeout: float = 10.0) -> dict[int, int]:
    """partition -> high watermark for every partition of the topic."""
    metadata = consumer.list_topics(topic, timeout=timeout)
    return {p: watermarks(consumer, topic, p, timeout)[1] for p in metadata.topics[topic].partitions}


def assign_from_beginning(consumer: Consumer, topics: Iterable[str], timeout: float = 10.0) -> list[TopicPartition]:
    """Group-less assignment of every partition of the topics at their first offset (tap, replay)."""
    assignment = []
    for topic in topics:
        metadata = consumer.list_topics(topic, timeout=timeout)
        assignment += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.topics[topic].partitions]
    consumer.assign(assignment)
    return assignment
